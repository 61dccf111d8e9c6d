//! [`RaftRecorder`]: proposals and their latency on the leader path, and the elections and leader
//! changes this node observes in raft's metrics ([`watch_elections`]).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use openraft::async_runtime::WatchReceiver;

use super::latency::LatencyRecorder;
use crate::proto::LatencyHistogram;
use crate::raft::{SharedRaft, StateMachineStore};

/// Raft figures the node records itself (the rest come from openraft's metrics).
#[derive(Debug, Default)]
pub(crate) struct RaftRecorder {
    proposals: LatencyRecorder,
    proposals_failed: AtomicU64,
    elections: AtomicU64,
    leader_changes: AtomicU64,
}

impl RaftRecorder {
    /// Records one proposal (`client_write`) that took `elapsed`, answered or not.
    pub(crate) fn proposed(&self, elapsed: Duration, ok: bool) {
        if ok {
            self.proposals.record(elapsed);
        } else {
            self.proposals_failed.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// What one look at raft's metrics saw before and after: counts a rise of the term and a
    /// change of the known leader (to another node, not to none).
    pub(crate) fn observed(&self, before: (u64, Option<u64>), after: (u64, Option<u64>)) {
        if after.0 > before.0 {
            self.elections.fetch_add(1, Ordering::Relaxed);
        }
        if after.1.is_some() && after.1 != before.1 {
            self.leader_changes.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The proposal histogram, failed proposals, elections and leader changes.
    pub(crate) fn figures(&self) -> (LatencyHistogram, u64, u64, u64) {
        (
            self.proposals.snapshot(),
            self.proposals_failed.load(Ordering::Relaxed),
            self.elections.load(Ordering::Relaxed),
            self.leader_changes.load(Ordering::Relaxed),
        )
    }
}

/// Counts elections and leader changes as raft's metrics show them, until the node stops
/// (following the raft core when the node replaces it).
pub(crate) async fn watch_elections(
    shared: SharedRaft<StateMachineStore>,
    recorder: std::sync::Arc<RaftRecorder>,
) {
    let mut before = None;
    loop {
        let raft = shared.get();
        let mut metrics = raft.metrics();
        loop {
            let now = {
                let m = metrics.borrow_watched();
                (m.current_term, m.current_leader)
            };
            match before {
                Some(before) => recorder.observed(before, now),
                // The first look: a leader known at start counts as a change.
                None => recorder.observed((now.0, None), now),
            }
            before = Some(now);
            if metrics.changed().await.is_err() {
                break;
            }
        }
        if shared.is_stopping() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn term_rises_and_leader_changes_are_counted() {
        let recorder = RaftRecorder::default();
        recorder.observed((0, None), (1, None));
        recorder.observed((1, None), (1, Some(1)));
        recorder.observed((1, Some(1)), (1, Some(1)));
        recorder.observed((1, Some(1)), (2, None));
        recorder.observed((2, None), (2, Some(2)));
        recorder.proposed(Duration::from_millis(1), true);
        recorder.proposed(Duration::from_millis(1), false);
        let (proposals, failed, elections, changes) = recorder.figures();
        assert_eq!((proposals.count, failed, elections, changes), (1, 1, 2, 2));
    }
}
