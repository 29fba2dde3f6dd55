//! Bounds set on a pool that was already used: refused with a panic that names the setting, so a
//! getter never reports a bound that the pool does not enforce. Regression: they were accepted,
//! the getter reported the new value, and the storage kept enforcing the old one.

use reuse_pool::{BufPool, Pool};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

fn panic_text(p: Box<dyn std::any::Any + Send>) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_default()
}

static DROPS: AtomicUsize = AtomicUsize::new(0);
struct Counted;
impl Drop for Counted {
    fn drop(&mut self) {
        DROPS.fetch_add(1, Relaxed);
    }
}

#[test]
fn bounds_set_before_first_use_are_enforced() {
    reuse_pool::set_cleanup_interval(None);
    let before = DROPS.load(Relaxed);
    let pool = Pool::new(|| Counted).max_per_thread(1).max_shared(0);
    assert_eq!(pool.get_max_per_thread(), 1);
    for _ in 0..10 {
        pool.put(Counted);
    }
    assert_eq!(DROPS.load(Relaxed) - before, 9, "one cached, nine dropped");
    assert_eq!(pool.stats().drops, 9);
}

#[test]
fn max_per_thread_on_a_used_pool_is_refused() {
    let pool = Pool::new(Vec::<u8>::new);
    pool.put(Vec::new());
    let err = catch_unwind(AssertUnwindSafe(move || pool.max_per_thread(1))).unwrap_err();
    let text = panic_text(err);
    assert!(text.contains("max_per_thread"), "{text}");
    assert!(text.contains("already used"), "{text}");
}

#[test]
fn max_shared_on_a_used_pool_is_refused() {
    let pool = Pool::new(Vec::<u8>::new);
    drop(pool.get());
    let err = catch_unwind(AssertUnwindSafe(move || pool.max_shared(0))).unwrap_err();
    let text = panic_text(err);
    assert!(text.contains("max_shared"), "{text}");
}

#[test]
fn bounds_on_an_unused_pool_still_change() {
    // Only use makes the bounds final: a pool built in steps keeps every setter.
    let pool = Pool::new(Vec::<u8>::new)
        .max_per_thread(8)
        .max_per_thread(4);
    assert_eq!(pool.get_max_per_thread(), 4);
    let pool = pool.max_shared(10).max_shared(0);
    assert_eq!(pool.get_max_shared(), 0);
}

#[test]
fn buf_pool_settings_on_a_used_pool_are_refused() {
    let used = || {
        let b = BufPool::new();
        drop(b.get(100));
        b
    };
    type Setter = fn(BufPool) -> BufPool;
    let setters: [(&str, Setter); 4] = [
        ("max_per_thread", |b| b.max_per_thread(1)),
        ("max_bytes_per_thread", |b| b.max_bytes_per_thread(4096)),
        ("max_shared_bytes", |b| b.max_shared_bytes(0)),
        ("classes", |b| b.classes(64, 1 << 16)),
    ];
    for (name, set) in setters {
        let b = used();
        let err = catch_unwind(AssertUnwindSafe(move || set(b))).unwrap_err();
        let text = panic_text(err);
        assert!(
            text.contains("BufPool") && text.contains("already used"),
            "{name}: {text}"
        );
    }
    // Unused, the same settings apply.
    let b = BufPool::new().max_per_thread(3);
    assert_eq!(b.get_max_per_thread(), 3);
}
