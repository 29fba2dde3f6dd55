//! The owner's full-fence mode, the one used where Linux `membarrier` is not available (other
//! platforms, older kernels, and always under loom and Miri): this process turns `membarrier`
//! off with `REUSE_POOL_NO_MEMBARRIER` before its first pool exists, then runs the concurrent
//! stress test of `go_pool.rs`, so the owner's fenced entry (`Local::enter_fenced`) and
//! cleanup's `fence(SeqCst)` run natively against each other. One test only: the mode is chosen
//! once per process.

mod common;

use common::{cycles_lock, manual_cycles};

#[test]
fn stress_without_membarrier() {
    let _cycles = cycles_lock();
    // Before any pool of this process exists: the mode is chosen when the first one is used.
    std::env::set_var("REUSE_POOL_NO_MEMBARRIER", "1");
    manual_cycles();
    let probe = reuse_pool::Pool::new(|| 0u8);
    drop(probe.get());
    assert!(
        !reuse_pool::uses_asymmetric_fence(),
        "REUSE_POOL_NO_MEMBARRIER did not select the full-fence mode"
    );
    common::stress_with_cycles(4, if cfg!(miri) { 100 } else { 300_000 });
}
