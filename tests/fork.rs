//! A process forked from one that uses pools: automatic cleanup resumes in the child, and a fork
//! while other threads are inside pool operations, hold the crate's locks or run a cleanup cycle
//! leaves a child that can use the pools, run cycles and drop pools.
#![cfg(all(target_os = "linux", not(miri)))]

use reuse_pool::{cleanup, Pool};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::{Duration, Instant};

/// Forks; the child runs `child` and exits with its return value (never returns into the test
/// harness). The parent waits for it, up to 30 s, and returns its exit code.
fn in_child(child: impl FnOnce() -> i32) -> i32 {
    // SAFETY: the child only runs `child`, which uses the pools and plain std, then `_exit`s.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        let code = std::panic::catch_unwind(std::panic::AssertUnwindSafe(child)).unwrap_or(101);
        // SAFETY: ends the child without running the parent's atexit handlers or destructors.
        unsafe { libc::_exit(code) };
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut status = 0;
        // SAFETY: `pid` is our child; `status` is a valid out-pointer.
        let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        if r == pid {
            assert!(libc::WIFEXITED(status), "child killed by a signal");
            return libc::WEXITSTATUS(status);
        }
        if Instant::now() > deadline {
            // SAFETY: kills and reaps our own child.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
                libc::waitpid(pid, &mut status, 0);
            }
            panic!("the child made no progress for 30 s (deadlock after fork)");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

static P: Pool<Vec<u8>> = Pool::new(|| Vec::with_capacity(64))
    .reset(Vec::clear)
    .max_per_thread(32)
    .max_shared(256);

/// One test at a time: both change the process-wide cleanup interval.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// The parent's driver thread does not exist in the child; the child starts its own, and its
/// automatic cycles age the child's objects.
#[test]
fn automatic_cycles_resume_in_the_child() {
    let _s = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    reuse_pool::set_cleanup_interval(Some(Duration::from_millis(10)));
    drop(P.get());
    let code = in_child(|| {
        if reuse_pool::cleanup_interval() != Some(Duration::from_millis(10)) {
            return 2;
        }
        let before = reuse_pool::cycles();
        P.put(Vec::new());
        let deadline = Instant::now() + Duration::from_secs(10);
        while reuse_pool::cycles() < before + 3 {
            if Instant::now() > deadline {
                return 3;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        // Three cycles ran: what was put has aged out.
        if P.try_take().is_some() {
            return 4;
        }
        0
    });
    reuse_pool::set_cleanup_interval(None);
    assert_eq!(
        code, 0,
        "1: panic, 2: interval, 3: no cycles ran in the child, 4: not aged"
    );
}

/// Forks while two threads get, spill and steal, and a third runs cleanup cycles: each child
/// uses the pool, runs cycles, makes and drops a pool, and exits.
#[test]
fn fork_during_concurrent_use_leaves_a_usable_child() {
    let _s = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    reuse_pool::set_cleanup_interval(None);
    let stop = AtomicBool::new(false);
    /// Stops the workers however the rounds end: a failed round panics, and the scope would
    /// otherwise wait for them for ever.
    struct StopOnDrop<'a>(&'a AtomicBool);
    impl Drop for StopOnDrop<'_> {
        fn drop(&mut self) {
            self.0.store(true, Relaxed);
        }
    }
    std::thread::scope(|s| {
        let _stop = StopOnDrop(&stop);
        for _ in 0..2 {
            s.spawn(|| {
                while !stop.load(Relaxed) {
                    let held: Vec<_> = (0..100).map(|_| P.take()).collect();
                    for b in held {
                        P.put(b);
                    }
                }
            });
        }
        s.spawn(|| {
            while !stop.load(Relaxed) {
                cleanup();
            }
        });
        for round in 0..40 {
            let code = in_child(|| {
                let held: Vec<_> = (0..500).map(|_| P.take()).collect();
                for b in held {
                    P.put(b);
                }
                cleanup();
                cleanup();
                let local: Pool<String> = Pool::new(String::new);
                for _ in 0..100 {
                    local.put(String::from("x"));
                }
                cleanup();
                drop(local);
                if P.take().capacity() < 64 {
                    return 5;
                }
                0
            });
            assert_eq!(code, 0, "child of round {round}");
        }
    });
}

/// Regression: a frozen cache's objects were dropped when the child dropped the pool (the docs
/// say they are leaked: their owner does not exist in the child and may have been cut off in
/// the middle of an operation).
#[test]
fn a_frozen_cache_is_leaked_not_dropped_when_the_child_drops_the_pool() {
    use std::sync::atomic::AtomicUsize;
    use std::sync::{mpsc, Arc};
    static DROPS: AtomicUsize = AtomicUsize::new(0);
    struct Counted;
    impl Drop for Counted {
        fn drop(&mut self) {
            DROPS.fetch_add(1, Relaxed);
        }
    }
    let _s = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    reuse_pool::set_cleanup_interval(None);
    // The depot off: every object stays in the putting thread's own cache.
    let pool = Arc::new(Pool::new(|| Counted).max_per_thread(64).max_shared(0));
    let (put_done, wait_put) = mpsc::channel();
    let (release, wait_release) = mpsc::channel::<()>();
    let p = pool.clone();
    let owner = std::thread::spawn(move || {
        for _ in 0..10 {
            p.put(Counted);
        }
        drop(p);
        put_done.send(()).unwrap();
        // Alive, and so still the owner of its cache, at the fork.
        let _ = wait_release.recv();
    });
    wait_put.recv().unwrap();
    let code = in_child(move || {
        DROPS.store(0, Relaxed);
        let stats = pool.stats();
        drop(pool); // the last `Arc`: the pool drops in the child
        let drops = DROPS.load(Relaxed);
        if drops != 0 {
            return 10 + drops.min(100) as i32;
        }
        if stats.drops != 0 {
            return 2;
        }
        0
    });
    release.send(()).unwrap();
    owner.join().unwrap();
    assert_eq!(
        code, 0,
        "1: panic, 2: drops counted, 10+n: the child dropped n frozen objects"
    );
    // In the parent, where the owner is alive, the closure that `in_child` dropped held the last
    // `Arc`: the pool dropped, with its 10 cached objects.
    assert_eq!(DROPS.load(Relaxed), 10, "the parent drops its caches");
}

/// Regression: a `fork()` from a TLS destructor that runs after the crate's per-thread record
/// of the fork's locks is gone took every pool's victim-tier lock and never released it, so the
/// next cleanup cycle in the parent spun for ever.
#[test]
fn a_fork_from_a_late_tls_destructor_leaves_the_parent_usable() {
    struct ForkOnExit;
    impl Drop for ForkOnExit {
        fn drop(&mut self) {
            // The child exits at once; the parent reaps it.
            let code = in_child(|| 0);
            assert_eq!(code, 0);
        }
    }
    thread_local! {
        static LATE: std::cell::RefCell<Option<ForkOnExit>> = const { std::cell::RefCell::new(None) };
    }
    let _s = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    reuse_pool::set_cleanup_interval(None);
    let pool = Pool::new(|| 0u64);
    pool.put(1);
    cleanup(); // something in the victim tier, so a cycle takes its lock
    std::thread::scope(|s| {
        s.spawn(|| {
            // Registered first, so destroyed after the thread-locals the crate registers later
            // (destructors run in reverse order of registration).
            LATE.with(|l| *l.borrow_mut() = Some(ForkOnExit));
            // A fork on this thread: the crate's fork handlers use their thread-local.
            assert_eq!(in_child(|| 0), 0);
            drop(pool.get());
        });
    });
    // The thread exited, its late destructor forked. The parent's cycles must still run.
    let (tx, rx) = std::sync::mpsc::channel();
    let t = std::thread::spawn(move || {
        cleanup();
        cleanup();
        let _ = tx.send(());
    });
    if rx.recv_timeout(Duration::from_secs(30)).is_err() {
        // Its drop would block on the same lock: leave it, and the stuck thread, behind.
        std::mem::forget(pool);
        panic!("cleanup blocked after a fork from a TLS destructor");
    }
    t.join().unwrap();
    assert!(pool.try_take().is_none(), "two cycles aged everything out");
}
