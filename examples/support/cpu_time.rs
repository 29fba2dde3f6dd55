//! CPU time, for the programs that time a workload: `examples/echo_server.rs`,
//! `examples/json_encode.rs`, `benches/real.rs` and `benches/common` (for `benches/pool.rs`)
//! include this file with `#[path]`.

use std::time::Duration;

/// CPU time (user + system) used so far by every thread of the process. On a machine shared
/// with other work this is steadier than wall time, which also counts time slices lost to others.
pub fn process_cpu_time() -> Option<Duration> {
    clock(2) // CLOCK_PROCESS_CPUTIME_ID
}

/// CPU time used so far by the calling thread.
#[allow(dead_code)] // only `benches/pool.rs` times threads
pub fn thread_cpu_time() -> Option<Duration> {
    clock(3) // CLOCK_THREAD_CPUTIME_ID
}

#[cfg(all(target_os = "linux", target_pointer_width = "64"))]
fn clock(id: i32) -> Option<Duration> {
    #[repr(C)]
    struct Timespec {
        tv_sec: i64,
        tv_nsec: i64,
    }
    extern "C" {
        fn clock_gettime(clock: i32, tp: *mut Timespec) -> i32;
    }
    let mut ts = Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a writable `struct timespec`, two 64-bit fields on 64-bit Linux.
    let rc = unsafe { clock_gettime(id, &mut ts) };
    (rc == 0).then(|| Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32))
}

/// No CPU clocks here: callers fall back to wall time.
#[cfg(not(all(target_os = "linux", target_pointer_width = "64")))]
fn clock(_id: i32) -> Option<Duration> {
    None
}
