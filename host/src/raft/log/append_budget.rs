//! How many log entries go into one append-entries batch: as many as fit in the byte budget that
//! `max_raft_frame` leaves, and always at least one, so no mix of entry sizes can stall
//! replication (openraft bounds a batch only by entry count).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Room in a raft frame for everything but the entries: the vote, the previous and committed log
/// ids, and the encoding's length prefixes.
pub(crate) const FRAME_HEADROOM: usize = 64 << 10;

/// The largest frame a leader sends, kept at the replicated `max_raft_frame` by the node; the
/// batch budget is what that leaves after [`FRAME_HEADROOM`]. Clones share the value.
#[derive(Clone, Debug)]
pub(crate) struct AppendBudget {
    max_frame: Arc<AtomicUsize>,
}

impl AppendBudget {
    /// A budget for frames of at most `max_frame` bytes.
    pub(crate) fn new(max_frame: usize) -> Self {
        Self {
            max_frame: Arc::new(AtomicUsize::new(max_frame)),
        }
    }

    /// The shared frame limit, for the node to keep at the replicated configuration's value.
    pub(crate) fn max_frame(&self) -> Arc<AtomicUsize> {
        self.max_frame.clone()
    }

    /// Bytes of encoded entries one batch may carry.
    pub(crate) fn batch_bytes(&self) -> usize {
        self.max_frame
            .load(Ordering::Relaxed)
            .saturating_sub(FRAME_HEADROOM)
    }
}

/// Whether the next entry, of `next` bytes, joins a batch that already holds `taken` entries of
/// `bytes` bytes in all. The first entry always does (a batch is never empty, and every entry the
/// log accepts fits in a frame on its own: `ClusterConfig::validate` keeps `max_raft_frame` above
/// the largest command and the largest deploy).
pub(crate) fn joins_batch(taken: usize, bytes: usize, next: usize, budget: usize) -> bool {
    taken == 0 || bytes.saturating_add(next) <= budget
}

#[cfg(test)]
mod tests {
    use super::*;

    /// How many of `sizes` one batch takes.
    fn batch(sizes: &[usize], budget: usize) -> usize {
        let (mut taken, mut bytes) = (0, 0);
        for &size in sizes {
            if !joins_batch(taken, bytes, size, budget) {
                break;
            }
            taken += 1;
            bytes += size;
        }
        taken
    }

    #[test]
    fn a_batch_stops_before_the_entry_that_would_overflow_it() {
        assert_eq!(batch(&[10, 10, 10, 10], 25), 2);
        assert_eq!(batch(&[10, 10, 5], 25), 3);
        assert_eq!(batch(&[25, 1], 25), 1);
    }

    #[test]
    fn an_entry_larger_than_the_budget_still_goes_alone() {
        assert_eq!(batch(&[100, 1], 25), 1);
        assert_eq!(batch(&[], 25), 0);
    }

    #[test]
    fn bug_six_15_mib_entries_made_one_90_mib_frame() {
        let mib = 1 << 20;
        let budget = AppendBudget::new(64 * mib).batch_bytes();
        assert_eq!(batch(&[15 * mib; 6], budget), 4);
        let lowered = AppendBudget::new(17 * mib).batch_bytes();
        assert_eq!(batch(&[15 * mib; 6], lowered), 1);
    }

    #[test]
    fn clones_share_the_frame_limit() {
        let budget = AppendBudget::new(1 << 20);
        budget.max_frame().store(2 << 20, Ordering::Relaxed);
        assert_eq!(budget.clone().batch_bytes(), (2 << 20) - FRAME_HEADROOM);
        assert_eq!(AppendBudget::new(10).batch_bytes(), 0);
    }
}
