//! Cluster events: what a node observed, published on one in-process bus and streamed to every
//! management subscriber in order.
//!
//! Publishing never waits: each subscriber has a bounded queue, and one that falls behind loses the
//! oldest events and is told how many with [`ClusterEvent::Lagged`]. A subscriber therefore never
//! slows the node down.

use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

use crate::plugin::PluginKind;

/// How many events a subscriber may fall behind before it starts losing them.
pub const SUBSCRIBER_QUEUE: usize = 1024;

/// A member's role in the cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum MemberRole {
    /// Votes in elections and counts toward the quorum.
    Voter,
    /// Receives the log; promoted to voter automatically once caught up.
    Learner,
    /// Receives the log; never promoted.
    Observer,
}

impl MemberRole {
    /// The role of `member`: a voter if it votes, else an observer or a learner by its flag.
    pub(crate) fn of(votes: bool, member: &crate::raft::Member) -> Self {
        if votes {
            Self::Voter
        } else if member.observer {
            Self::Observer
        } else {
            Self::Learner
        }
    }

    /// The name used on the command line and in messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Voter => "voter",
            Self::Learner => "learner",
            Self::Observer => "observer",
        }
    }
}

impl std::fmt::Display for MemberRole {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for MemberRole {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "voter" => Ok(Self::Voter),
            "learner" => Ok(Self::Learner),
            "observer" => Ok(Self::Observer),
            other => Err(format!(
                "unknown role `{other}`: expected voter, learner or observer"
            )),
        }
    }
}

/// Something that happened in the cluster, as one node saw it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum ClusterEvent {
    /// A node became leader in `term`.
    LeaderElected {
        /// The new leader.
        leader: u64,
        /// Its term.
        term: u64,
    },
    /// A member joined the membership.
    MemberAdded {
        /// The member.
        node_id: u64,
        /// Its role.
        role: MemberRole,
    },
    /// A member's role changed (a learner promoted, a voter demoted, ...).
    MemberRoleChanged {
        /// The member.
        node_id: u64,
        /// Its new role.
        role: MemberRole,
    },
    /// A member left the membership.
    MemberRemoved {
        /// The member.
        node_id: u64,
    },
    /// The leader started or stopped hearing from a member.
    MemberHealthChanged {
        /// The member.
        node_id: u64,
        /// Whether it answers the leader.
        healthy: bool,
    },
    /// The replicated cluster configuration changed.
    ConfigurationChanged {
        /// Its new version.
        version: u64,
        /// The log index where it took effect.
        index: u64,
    },
    /// This node finished a snapshot.
    SnapshotCompleted {
        /// The last log index it covers.
        index: u64,
        /// Its size in bytes.
        size: u64,
    },
    /// A backup was created.
    BackupCreated {
        /// The backup's id.
        backup_id: String,
    },
    /// A plugin became active.
    PluginDeployed {
        /// Which kind.
        kind: PluginKind,
        /// The component's sha256.
        sha256: [u8; 32],
        /// The version the operator gave it.
        version: String,
        /// The log index where it took effect.
        index: u64,
    },
    /// This subscriber fell behind and missed `missed` events.
    Lagged {
        /// How many events were dropped.
        missed: u64,
    },
}

/// Each member's role in `membership`: voters, then non-voters told apart by the observer flag.
pub(crate) fn roles(
    membership: &openraft::Membership<u64, crate::raft::Member>,
) -> std::collections::BTreeMap<u64, MemberRole> {
    let voters: std::collections::BTreeSet<u64> = membership.voter_ids().collect();
    membership
        .nodes()
        .map(|(id, member)| (*id, MemberRole::of(voters.contains(id), member)))
        .collect()
}

/// The membership events between two role maps: additions and role changes in id order, then
/// removals.
pub(crate) fn role_events(
    before: &std::collections::BTreeMap<u64, MemberRole>,
    after: &std::collections::BTreeMap<u64, MemberRole>,
) -> Vec<ClusterEvent> {
    let mut events = Vec::new();
    for (node_id, role) in after {
        match before.get(node_id) {
            None => events.push(ClusterEvent::MemberAdded {
                node_id: *node_id,
                role: *role,
            }),
            Some(old) if old != role => events.push(ClusterEvent::MemberRoleChanged {
                node_id: *node_id,
                role: *role,
            }),
            Some(_) => {}
        }
    }
    for node_id in before.keys() {
        if !after.contains_key(node_id) {
            events.push(ClusterEvent::MemberRemoved { node_id: *node_id });
        }
    }
    events
}

/// The node's event bus. Clones publish to the same subscribers.
#[derive(Debug, Clone)]
pub struct EventBus {
    sender: broadcast::Sender<ClusterEvent>,
}

impl Default for EventBus {
    fn default() -> Self {
        Self::new(SUBSCRIBER_QUEUE)
    }
}

impl EventBus {
    /// A bus whose subscribers may fall `queue` events behind.
    pub fn new(queue: usize) -> Self {
        Self {
            sender: broadcast::channel(queue.max(1)).0,
        }
    }

    /// Publishes `event` to every current subscriber. Never waits.
    pub fn publish(&self, event: ClusterEvent) {
        tracing::debug!(?event, "cluster event");
        // No subscriber is not an error: nobody is listening.
        let _ = self.sender.send(event);
    }

    /// A new subscription, starting with the next event published.
    pub fn subscribe(&self) -> Subscription {
        Subscription {
            receiver: self.sender.subscribe(),
        }
    }
}

/// One subscriber's view of the bus.
#[derive(Debug)]
pub struct Subscription {
    receiver: broadcast::Receiver<ClusterEvent>,
}

impl Subscription {
    /// The next event, or [`ClusterEvent::Lagged`] if this subscriber fell behind; `None` once the
    /// bus is gone.
    pub async fn next(&mut self) -> Option<ClusterEvent> {
        match self.receiver.recv().await {
            Ok(event) => Some(event),
            Err(broadcast::error::RecvError::Lagged(missed)) => {
                Some(ClusterEvent::Lagged { missed })
            }
            Err(broadcast::error::RecvError::Closed) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn subscribers_get_every_event_in_order() {
        let bus = EventBus::new(8);
        let (mut a, mut b) = (bus.subscribe(), bus.subscribe());
        for node_id in 0..5 {
            bus.publish(ClusterEvent::MemberRemoved { node_id });
        }
        for subscriber in [&mut a, &mut b] {
            for node_id in 0..5 {
                assert_eq!(
                    subscriber.next().await,
                    Some(ClusterEvent::MemberRemoved { node_id })
                );
            }
        }
    }

    #[tokio::test]
    async fn a_slow_subscriber_is_told_how_much_it_missed() {
        let bus = EventBus::new(4);
        let mut slow = bus.subscribe();
        for node_id in 0..10 {
            bus.publish(ClusterEvent::MemberRemoved { node_id });
        }
        assert_eq!(slow.next().await, Some(ClusterEvent::Lagged { missed: 6 }));
        assert_eq!(
            slow.next().await,
            Some(ClusterEvent::MemberRemoved { node_id: 6 })
        );
    }

    #[test]
    fn role_events_name_each_change_once() {
        use MemberRole::{Learner, Observer, Voter};
        let before = [(1, Voter), (2, Voter), (3, Learner), (4, Observer)].into();
        let after = [(1, Voter), (3, Voter), (4, Observer), (5, Learner)].into();
        assert_eq!(
            role_events(&before, &after),
            vec![
                ClusterEvent::MemberRoleChanged {
                    node_id: 3,
                    role: Voter
                },
                ClusterEvent::MemberAdded {
                    node_id: 5,
                    role: Learner
                },
                ClusterEvent::MemberRemoved { node_id: 2 },
            ]
        );
        assert!(role_events(&after, &after).is_empty());
    }

    #[test]
    fn roles_parse_their_own_names() {
        for role in [MemberRole::Voter, MemberRole::Learner, MemberRole::Observer] {
            assert_eq!(role.to_string().parse::<MemberRole>().unwrap(), role);
        }
        assert!(
            "leader"
                .parse::<MemberRole>()
                .unwrap_err()
                .contains("voter")
        );
    }
}
