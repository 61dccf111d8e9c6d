//! The process figures: CPU time and peak resident memory, as the kernel counts them for the
//! whole node process (every thread), so that a benchmark can charge the cluster's CPU to the
//! operations it ran.

use crate::proto::ProcessFigures;

/// Bytes per unit of `ru_maxrss`: Linux counts KiB, macOS bytes.
#[cfg(target_os = "macos")]
const MAXRSS_UNIT: u64 = 1;
#[cfg(not(target_os = "macos"))]
const MAXRSS_UNIT: u64 = 1024;

/// The figures of this process now. Should the kernel refuse (it cannot for `RUSAGE_SELF`), they
/// are zero.
pub(super) fn figures() -> ProcessFigures {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: `getrusage` writes one `rusage` through the pointer, which points at one.
    let status = unsafe { libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr()) };
    if status != 0 {
        tracing::warn!(
            "getrusage failed: {}; process figures are zero",
            std::io::Error::last_os_error()
        );
        return ProcessFigures {
            cpu_user_us: 0,
            cpu_system_us: 0,
            max_resident_bytes: 0,
        };
    }
    // SAFETY: zeroed is a valid `rusage`, and getrusage filled it in.
    let usage = unsafe { usage.assume_init() };
    let micros = |t: libc::timeval| {
        u64::try_from(t.tv_sec).unwrap_or(0) * 1_000_000 + u64::try_from(t.tv_usec).unwrap_or(0)
    };
    ProcessFigures {
        cpu_user_us: micros(usage.ru_utime),
        cpu_system_us: micros(usage.ru_stime),
        max_resident_bytes: u64::try_from(usage.ru_maxrss).unwrap_or(0) * MAXRSS_UNIT,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_time_grows_with_work_and_the_peak_memory_is_real() {
        let before = figures();
        // Burn a few milliseconds of CPU.
        let mut x = 1u64;
        let started = std::time::Instant::now();
        while started.elapsed() < std::time::Duration::from_millis(50) {
            x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
        }
        let after = figures();
        let spent =
            (after.cpu_user_us + after.cpu_system_us) - (before.cpu_user_us + before.cpu_system_us);
        assert!(spent >= 10_000, "50 ms of work counted as {spent} µs");
        // A test binary holds at least a megabyte.
        assert!(after.max_resident_bytes > 1 << 20, "{after:?}");
    }
}
