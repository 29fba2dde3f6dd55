//! The automatic cleanup driver: with a short interval it ages out idle objects by itself,
//! `set_cleanup_interval(None)` stops it, and a zero interval is refused.
//!
//! Its own process (test file), so that a short interval disturbs no other test.

mod common;

use common::{cycles_lock, panic_message, Counters};
use reuse_pool::{cleanup_interval, cycles, set_cleanup_interval, Pool};
use std::thread;
use std::time::{Duration, Instant};

/// Upper bound on every wait for the driver; generous for a loaded machine.
const PATIENCE: Duration = Duration::from_secs(10);

/// Polls `done` every few milliseconds until it holds or `PATIENCE` runs out.
fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !done() {
        assert!(
            Instant::now() < deadline,
            "gave up after {PATIENCE:?} waiting for {what}"
        );
        thread::sleep(Duration::from_millis(5));
    }
}

/// Restores manual cycles when a test that started the driver ends, even by a panic.
struct StopDriver;

impl Drop for StopDriver {
    fn drop(&mut self) {
        set_cleanup_interval(None);
    }
}

/// With a 50 ms interval, objects nobody uses are dropped without any call to `cleanup()`.
#[test]
fn driver_drops_idle_objects() {
    let _cycles = cycles_lock();
    let _stop = StopDriver;
    set_cleanup_interval(Some(Duration::from_millis(50)));
    assert_eq!(cleanup_interval(), Some(Duration::from_millis(50)));
    const N: usize = 50;
    let counters = Counters::new();
    let pool = {
        let c = counters.clone();
        Pool::from_fn(move || c.make())
    };
    let start = cycles();
    let held: Vec<_> = (0..N).map(|_| pool.get()).collect();
    drop(held);
    wait_for("the driver to drop the idle objects", || {
        counters.dropped() == N as u64
    });
    assert!(
        cycles() >= start + 2,
        "two cycles at least: {} -> {}",
        start,
        cycles()
    );
    counters.assert_all_dropped_once();
    assert_eq!(pool.stats().drops, N as u64);
    assert!(pool.try_take().is_none());
}

/// `set_cleanup_interval(None)` stops the cycles: the epoch stops advancing.
#[test]
fn none_stops_the_driver() {
    let _cycles = cycles_lock();
    let _stop = StopDriver;
    // A registered pool: the driver only runs cycles when there is one.
    let pool = Pool::new(Vec::<u8>::new);
    pool.put(Vec::new());
    set_cleanup_interval(Some(Duration::from_millis(20)));
    let start = cycles();
    wait_for("the driver to run cycles", || cycles() >= start + 3);

    set_cleanup_interval(None);
    assert_eq!(cleanup_interval(), None);
    // A cycle the driver had already committed to may still start; nothing after it.
    let stopped = cycles();
    thread::sleep(Duration::from_millis(300));
    let later = cycles();
    assert!(
        later <= stopped + 1,
        "{} cycles ran in 300 ms after the driver was stopped (interval was 20 ms)",
        later - stopped
    );

    // And it starts again.
    set_cleanup_interval(Some(Duration::from_millis(20)));
    let restart = cycles();
    wait_for("the restarted driver to run cycles", || {
        cycles() >= restart + 2
    });
}

/// A zero interval is refused with a message naming the setting, and changes nothing.
#[test]
fn zero_interval_panics() {
    let _cycles = cycles_lock();
    let _stop = StopDriver;
    set_cleanup_interval(Some(Duration::from_secs(3600)));
    let err = std::panic::catch_unwind(|| set_cleanup_interval(Some(Duration::ZERO)))
        .expect_err("a zero interval must be refused");
    let msg = panic_message(&*err);
    assert!(msg.contains("interval"), "message: {msg}");
    assert_eq!(
        cleanup_interval(),
        Some(Duration::from_secs(3600)),
        "setting unchanged"
    );
}
