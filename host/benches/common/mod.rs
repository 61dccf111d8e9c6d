//! What the benchmarks share: the median of repeated samples and the same-run native baseline.

use std::time::{Duration, Instant};

pub(crate) const SAMPLES: usize = 15;

/// Median time per iteration of `f`, over `SAMPLES` samples of at least ~20 ms each.
pub(crate) fn median(mut f: impl FnMut()) -> Duration {
    for _ in 0..3 {
        f();
    }
    let mut iterations = 1u32;
    loop {
        let start = Instant::now();
        for _ in 0..iterations {
            f();
        }
        if start.elapsed() > Duration::from_millis(20) {
            break;
        }
        iterations *= 2;
    }
    let mut samples: Vec<Duration> = (0..SAMPLES)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..iterations {
                f();
            }
            start.elapsed() / iterations
        })
        .collect();
    samples.sort();
    samples[SAMPLES / 2]
}

/// The same-run baseline: sha256 over 64 KiB, natively.
pub(crate) fn baseline() -> Duration {
    let data = vec![0x5au8; 64 << 10];
    median(|| {
        std::hint::black_box(iroh_raft::sha256(std::hint::black_box(&data)));
    })
}
