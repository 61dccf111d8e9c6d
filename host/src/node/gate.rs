//! What a node checks before it serves a request at all: that it was not removed from its cluster
//! (`removal.rs`), and that it has caught up with the cluster since it started, so that the
//! configuration, membership and access policy it serves by are the cluster's current ones and
//! not what it last applied before it went down. Status and health are always answered: they say
//! what is going on.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use openraft::async_runtime::WatchReceiver;

use super::inspect::View;
use super::removal::{Removal, served_when_removed};
use crate::proto::{Operation, RequestError};
use crate::raft::{SharedRaft, StateMachineStore};

/// How long a request waits for the node to catch up before it is refused.
pub(crate) const CATCH_UP_WAIT: Duration = Duration::from_secs(5);

/// Whether a node has caught up: it knows a leader (so it has heard from the cluster since it
/// started) and has applied everything the cluster has committed as far as it knows. A node that
/// leads must also have heard from a quorum since it started (openraft restores a leader's own
/// vote at a restart, before anyone has answered it), unless it is the only voter.
pub(crate) fn caught_up(view: &View) -> bool {
    let alone = view.voters.len() == 1 && view.voters.contains(&view.node_id);
    view.leader.is_some()
        && view.applied >= view.cluster_committed
        && (!view.is_leader() || alone || view.millis_since_quorum_ack.is_some())
}

/// The removal record and the catch-up latch.
#[derive(Debug)]
pub(crate) struct Gate {
    pub(crate) removal: Arc<Removal>,
    ready: AtomicBool,
}

impl Gate {
    pub(crate) fn new(removal: Arc<Removal>) -> Self {
        Self {
            removal,
            ready: AtomicBool::new(false),
        }
    }

    /// Whether the node has caught up once since it started (it stays so: later lag is raft's
    /// ordinary business).
    pub(crate) fn is_ready(&self, raft: &SharedRaft<StateMachineStore>) -> bool {
        if self.ready.load(Ordering::Relaxed) {
            return true;
        }
        let ready = caught_up(&View::of(&raft.get()));
        if ready {
            self.ready.store(true, Ordering::Relaxed);
        }
        ready
    }

    /// `Ok` to serve `operation` now; waits up to [`CATCH_UP_WAIT`] for the node to catch up.
    pub(crate) async fn admit(
        &self,
        raft: &SharedRaft<StateMachineStore>,
        node_id: u64,
        operation: &Operation,
    ) -> Result<(), RequestError> {
        self.removal.check(node_id, operation)?;
        if served_when_removed(operation) || self.is_ready(raft) {
            return Ok(());
        }
        let wait = async {
            let mut metrics = raft.get().metrics();
            while !self.is_ready(raft) {
                if metrics.changed().await.is_err() {
                    // A replaced core: look at the new one.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    metrics = raft.get().metrics();
                }
            }
        };
        if tokio::time::timeout(CATCH_UP_WAIT, wait).await.is_ok() {
            return Ok(());
        }
        let view = View::of(&raft.get());
        Err(RequestError::CatchingUp {
            applied: view.applied,
            committed: view.cluster_committed,
            leader: view.leader,
        })
    }

    /// The health problem of a node that has not caught up yet, if it has not.
    pub(crate) fn problem(&self, raft: &SharedRaft<StateMachineStore>) -> Option<String> {
        if let Some(removed) = self.removal.problem() {
            return Some(removed);
        }
        if self.is_ready(raft) {
            return None;
        }
        let view = View::of(&raft.get());
        Some(match view.leader {
            None => "this node has not heard from a leader since it started: it serves only \
                     status and health until it has caught up with the cluster"
                .into(),
            Some(_) if view.is_leader() => "this node leads by the vote it had before it \
                 restarted, but no quorum has answered it since: it serves only status and health \
                 until one does"
                .into(),
            Some(leader) => format!(
                "this node is catching up with the cluster (applied {:?} of {:?}, leader {leader}): \
                 it serves only status and health until then",
                view.applied, view.cluster_committed
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_is_caught_up_once_it_knows_a_leader_and_applied_what_it_committed() {
        let mut view = View {
            applied: Some(10),
            cluster_committed: Some(10),
            ..View::default()
        };
        assert!(!caught_up(&view), "no leader heard from yet");
        view.leader = Some(1);
        assert!(caught_up(&view));
        view.cluster_committed = Some(12);
        assert!(!caught_up(&view), "two entries still to apply");
        view.applied = None;
        view.cluster_committed = None;
        assert!(caught_up(&view), "a new cluster with nothing committed");
        // A restarted leader whose vote openraft restored, before any member answered it.
        view.node_id = 1;
        view.state = Some(crate::proto::RaftRole::Leader);
        view.voters = vec![1, 2, 3];
        assert!(!caught_up(&view), "a leader no quorum answered yet");
        view.millis_since_quorum_ack = Some(40);
        assert!(caught_up(&view));
        view.voters = vec![1];
        view.millis_since_quorum_ack = None;
        assert!(caught_up(&view), "the only voter is its own quorum");
    }
}
