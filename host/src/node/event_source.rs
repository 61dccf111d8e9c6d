//! Turns what raft's metrics show into cluster events: a new leader, members the leader stops (or
//! starts again) hearing from, finished snapshots. [`diff`] decides, free of I/O; [`run`] feeds it
//! and publishes. (Membership events come from the apply path, one per membership entry, so none
//! is lost to sampling.)

use openraft::async_runtime::WatchReceiver;
use std::collections::BTreeMap;
use std::time::Duration;

use openraft::Raft;

use super::inspect::View;
use crate::events::EventBus;
use crate::proto::{ClusterEvent, MemberHealth, TypeConfig};
use crate::raft::{SharedRaft, StateMachineStore};

/// What one observation saw.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Observed {
    /// The leader and its term.
    pub(crate) leader: Option<(u64, u64)>,
    /// On a leader: whether each member answers (members it cannot tell about are absent).
    pub(crate) healthy: BTreeMap<u64, bool>,
    /// The snapshot's last index and size.
    pub(crate) snapshot: Option<(u64, u64)>,
}

/// What `view` shows, with the current snapshot's last index and size.
pub(crate) fn observe(
    view: &View,
    unreachable_after: Duration,
    snapshot: Option<(u64, u64)>,
) -> Observed {
    Observed {
        leader: view.leader.map(|leader| (leader, view.term)),
        healthy: view
            .members
            .keys()
            .filter(|id| **id != view.node_id)
            // A member that never acknowledged this leader has no health to change yet.
            .filter(|id| {
                view.last_ack
                    .as_ref()
                    .and_then(|acks| acks.get(id))
                    .is_some_and(Option::is_some)
            })
            .filter_map(|id| match view.health(*id, unreachable_after) {
                MemberHealth::Healthy => Some((*id, true)),
                MemberHealth::Unreachable => Some((*id, false)),
                MemberHealth::Unknown => None,
            })
            .collect(),
        snapshot,
    }
}

/// The events between two observations, in a fixed order: leadership, health,
/// snapshots.
pub(crate) fn diff(before: &Observed, after: &Observed) -> Vec<ClusterEvent> {
    let mut events = Vec::new();
    if let Some((leader, term)) = after.leader
        && before.leader != after.leader
    {
        events.push(ClusterEvent::LeaderElected { leader, term });
    }
    for (node_id, healthy) in &after.healthy {
        if before
            .healthy
            .get(node_id)
            .is_some_and(|was| was != healthy)
        {
            events.push(ClusterEvent::MemberHealthChanged {
                node_id: *node_id,
                healthy: *healthy,
            });
        }
    }
    if let Some((index, size)) = after.snapshot
        && before.snapshot.map(|(i, _)| i) != Some(index)
    {
        events.push(ClusterEvent::SnapshotCompleted { index, size });
    }
    events
}

/// The least time between two looks prompted by metric changes.
const COALESCE: Duration = Duration::from_millis(5);

/// How often health is looked at when nothing else changes.
const TICK: Duration = Duration::from_millis(200);

/// Publishes the events raft's metrics show until the node stops (following the raft core when
/// the node replaces it).
pub(crate) async fn run(
    shared: SharedRaft<StateMachineStore>,
    state_machine: StateMachineStore,
    events: EventBus,
) {
    let mut raft = shared.get();
    let mut metrics = raft.metrics();
    let mut config = state_machine.config();
    let unreachable_after = |config: &tokio::sync::watch::Receiver<crate::proto::ClusterConfig>| {
        Duration::from_millis(config.borrow().election_timeout_max_ms)
    };
    let mut before = look(&raft, &state_machine, unreachable_after(&config), None);
    loop {
        tokio::select! {
            changed = metrics.changed() => {
                if changed.is_err() {
                    // This core stopped: the node is stopping, or it is starting a new core.
                    if shared.is_stopping() {
                        return;
                    }
                    tokio::time::sleep(TICK).await;
                    raft = shared.get();
                    metrics = raft.metrics();
                    continue;
                }
                // Under write load the metrics change with every apply: look at most every few
                // milliseconds (what changed meanwhile is still seen, in one look).
                tokio::time::sleep(COALESCE).await;
            }
            _ = config.changed() => {}
            _ = tokio::time::sleep(TICK) => {}
        }
        let after = look(
            &raft,
            &state_machine,
            unreachable_after(&config),
            Some(&before),
        );
        for event in diff(&before, &after) {
            events.publish(event);
        }
        before = after;
    }
}

fn look(
    raft: &Raft<TypeConfig, StateMachineStore>,
    state_machine: &StateMachineStore,
    unreachable_after: Duration,
    previous: Option<&Observed>,
) -> Observed {
    let view = View::of(raft);
    // Read the snapshot file only when raft reports a new one; if it cannot be read now, the
    // next look tries again.
    let snapshot = match (view.snapshot, previous.and_then(|p| p.snapshot)) {
        (Some(index), Some((known, size))) if index == known => Some((known, size)),
        (Some(_), _) => state_machine
            .current_snapshot()
            .ok()
            .flatten()
            .map(|(id, size)| (id.index, size)),
        (None, _) => None,
    };
    observe(&view, unreachable_after, snapshot)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn observed(
        leader: Option<(u64, u64)>,
        healthy: &[(u64, bool)],
        snapshot: Option<(u64, u64)>,
    ) -> Observed {
        Observed {
            leader,
            healthy: healthy.iter().copied().collect(),
            snapshot,
        }
    }

    #[test]
    fn nothing_changed_means_no_events() {
        let state = observed(Some((1, 2)), &[(2, true)], Some((10, 5)));
        assert!(diff(&state, &state).is_empty());
    }

    #[test]
    fn each_change_is_one_event_in_a_fixed_order() {
        let before = observed(Some((1, 2)), &[(2, true), (3, true)], Some((10, 5)));
        let after = observed(Some((2, 3)), &[(3, false)], Some((20, 7)));
        assert_eq!(
            diff(&before, &after),
            vec![
                ClusterEvent::LeaderElected { leader: 2, term: 3 },
                ClusterEvent::MemberHealthChanged {
                    node_id: 3,
                    healthy: false
                },
                ClusterEvent::SnapshotCompleted { index: 20, size: 7 },
            ]
        );
    }

    #[test]
    fn losing_the_leader_or_first_hearing_of_a_member_is_silent() {
        let before = observed(Some((1, 2)), &[], None);
        let after = observed(None, &[(2, true)], None);
        assert!(diff(&before, &after).is_empty());
    }
}
