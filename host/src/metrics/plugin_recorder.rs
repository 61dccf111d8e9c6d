//! [`ApplyRecorder`]: what the state machine's applier records per apply call: its duration, the
//! entries applied and the entries that trapped, by kind.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::latency::LatencyRecorder;
use crate::proto::LatencyHistogram;

/// The kinds of entry failure counted as traps, as they are labelled.
pub(crate) const TRAP_KINDS: [&str; 5] = [
    "out_of_fuel",
    "out_of_memory",
    "trapped",
    "malformed",
    "over_write_budget",
];

/// The apply figures of one applier.
#[derive(Debug, Default)]
pub(crate) struct ApplyRecorder {
    latency: LatencyRecorder,
    entries: AtomicU64,
    traps: [AtomicU64; TRAP_KINDS.len()],
}

impl ApplyRecorder {
    /// Records one apply call of `entries` entries that took `elapsed`.
    pub(crate) fn applied(&self, entries: usize, elapsed: Duration) {
        self.latency.record(elapsed);
        self.entries.fetch_add(entries as u64, Ordering::Relaxed);
    }

    /// Records an entry that trapped as `kind` (one of [`TRAP_KINDS`]).
    pub(crate) fn trapped(&self, kind: &str) {
        if let Some(slot) = TRAP_KINDS.iter().position(|k| *k == kind) {
            self.traps[slot].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The apply-call histogram, the entries applied, and the traps by kind (only kinds seen).
    pub(crate) fn figures(&self) -> (LatencyHistogram, u64, Vec<(String, u64)>) {
        let traps = TRAP_KINDS
            .iter()
            .zip(&self.traps)
            .map(|(kind, count)| (kind.to_string(), count.load(Ordering::Relaxed)))
            .filter(|(_, count)| *count > 0)
            .collect();
        (
            self.latency.snapshot(),
            self.entries.load(Ordering::Relaxed),
            traps,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traps_are_counted_by_kind() {
        let recorder = ApplyRecorder::default();
        recorder.applied(8, Duration::from_micros(300));
        recorder.trapped("out_of_fuel");
        recorder.trapped("out_of_fuel");
        recorder.trapped("trapped");
        recorder.trapped("rejected");
        let (latency, entries, traps) = recorder.figures();
        assert_eq!((latency.count, latency.sum_us, entries), (1, 300, 8));
        assert_eq!(
            traps,
            vec![("out_of_fuel".to_string(), 2), ("trapped".to_string(), 1)]
        );
    }
}
