//! [`LatencyRecorder`]: a lock-free histogram of durations, one atomic per bucket, recorded from
//! hot paths (an fsync, an apply call, a proposal, an RPC) and read as a wire
//! [`LatencyHistogram`]. Imports nothing of the crate but `proto`, so every room may record.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::proto::{LATENCY_BOUNDS_US, LatencyHistogram};

/// A histogram of durations over [`LATENCY_BOUNDS_US`].
#[derive(Debug, Default)]
pub(crate) struct LatencyRecorder {
    counts: [AtomicU64; LATENCY_BOUNDS_US.len() + 1],
    sum_us: AtomicU64,
    count: AtomicU64,
}

impl LatencyRecorder {
    /// Records one observation.
    pub(crate) fn record(&self, elapsed: Duration) {
        let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        let bucket = LatencyHistogram::bucket_of(&LATENCY_BOUNDS_US, micros);
        self.counts[bucket].fetch_add(1, Ordering::Relaxed);
        self.sum_us.fetch_add(micros, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    /// What was recorded so far. Buckets are read one by one while others may record, so
    /// `count` is the sum of the counts read, never a figure they disagree with.
    pub(crate) fn snapshot(&self) -> LatencyHistogram {
        let counts: Vec<u64> = self
            .counts
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .collect();
        LatencyHistogram {
            bounds_us: LATENCY_BOUNDS_US.to_vec(),
            count: counts.iter().sum(),
            counts,
            sum_us: self.sum_us.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observations_land_in_their_buckets() {
        let recorder = LatencyRecorder::default();
        recorder.record(Duration::from_micros(40));
        recorder.record(Duration::from_micros(50));
        recorder.record(Duration::from_micros(51));
        recorder.record(Duration::from_millis(3));
        recorder.record(Duration::from_secs(60));
        let histogram = recorder.snapshot();
        assert_eq!(histogram.count, 5);
        assert_eq!(histogram.sum_us, 40 + 50 + 51 + 3_000 + 60_000_000);
        assert_eq!(histogram.counts.len(), LATENCY_BOUNDS_US.len() + 1);
        assert_eq!(
            histogram.counts[0], 2,
            "50 µs is the first bound, inclusive"
        );
        assert_eq!(histogram.counts[1], 1);
        assert_eq!(
            histogram.counts[6], 1,
            "3 ms is in the (2.5 ms, 5 ms] bucket"
        );
        assert_eq!(histogram.counts[LATENCY_BOUNDS_US.len()], 1, "over 10 s");
    }
}
