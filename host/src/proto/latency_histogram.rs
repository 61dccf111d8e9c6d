//! [`LatencyHistogram`]: a distribution of durations as it crosses the wire, in whole
//! microseconds so that figures stay exact and comparable (`Eq`) and the wire stays integer-only.
//! The recorder that fills one is `metrics/latency.rs`; Prometheus rendering turns the bounds into
//! seconds.

use serde::{Deserialize, Serialize};

/// Bucket upper bounds (µs) every latency histogram of a node uses: 50 µs to 10 s, roughly
/// ×2.5 apart, so fsyncs (0.2–3.5 ms here), loopback RPCs (~60 µs) and slow proposals all land
/// in buckets of their own.
pub const LATENCY_BOUNDS_US: [u64; 16] = [
    50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000,
    1_000_000, 2_500_000, 10_000_000,
];

/// A latency distribution.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LatencyHistogram {
    /// Upper bounds of the buckets in microseconds, ascending (inclusive: an observation equal
    /// to a bound counts in that bucket).
    pub bounds_us: Vec<u64>,
    /// Observations per bucket, not cumulative; one more than `bounds_us`: the last counts
    /// those above every bound.
    pub counts: Vec<u64>,
    /// The sum of all observations in microseconds.
    pub sum_us: u64,
    /// How many observations there were.
    pub count: u64,
}

impl LatencyHistogram {
    /// The index of the bucket `micros` falls in, for `bounds` (`bounds.len()` if above all).
    pub fn bucket_of(bounds: &[u64], micros: u64) -> usize {
        bounds.partition_point(|bound| *bound < micros)
    }

    /// `(upper bound in µs, observations at or below it)`, cumulative, for each finite bound
    /// (the `+Inf` bucket is `count`).
    pub fn cumulative(&self) -> Vec<(u64, u64)> {
        let mut total = 0;
        self.bounds_us
            .iter()
            .zip(&self.counts)
            .map(|(bound, count)| {
                total += count;
                (*bound, total)
            })
            .collect()
    }

    /// An upper estimate of the `q` quantile (0..=1) in microseconds: the bound of the bucket it
    /// falls in (`None` without observations, or when it falls above every bound).
    pub fn quantile_us(&self, q: f64) -> Option<u64> {
        if self.count == 0 {
            return None;
        }
        let rank = ((self.count as f64) * q.clamp(0.0, 1.0)).ceil().max(1.0) as u64;
        self.cumulative()
            .into_iter()
            .find(|(_, below)| *below >= rank)
            .map(|(bound, _)| bound)
    }

    /// The mean in microseconds (`None` without observations).
    pub fn mean_us(&self) -> Option<u64> {
        self.sum_us.checked_div(self.count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_are_inclusive_and_the_last_bucket_is_open() {
        let bounds = [10, 100];
        assert_eq!(LatencyHistogram::bucket_of(&bounds, 0), 0);
        assert_eq!(LatencyHistogram::bucket_of(&bounds, 10), 0);
        assert_eq!(LatencyHistogram::bucket_of(&bounds, 11), 1);
        assert_eq!(LatencyHistogram::bucket_of(&bounds, 100), 1);
        assert_eq!(LatencyHistogram::bucket_of(&bounds, 101), 2);
    }

    #[test]
    fn cumulative_counts_and_quantiles() {
        let histogram = LatencyHistogram {
            bounds_us: vec![10, 100, 1000],
            counts: vec![5, 3, 1, 1],
            sum_us: 2000,
            count: 10,
        };
        assert_eq!(histogram.cumulative(), vec![(10, 5), (100, 8), (1000, 9)]);
        assert_eq!(histogram.quantile_us(0.5), Some(10));
        assert_eq!(histogram.quantile_us(0.8), Some(100));
        assert_eq!(histogram.quantile_us(0.9), Some(1000));
        assert_eq!(histogram.quantile_us(1.0), None);
        assert_eq!(histogram.mean_us(), Some(200));
        assert_eq!(LatencyHistogram::default().quantile_us(0.5), None);
    }
}
