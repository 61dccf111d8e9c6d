//! Cluster events: what a node observed, published on one in-process bus and streamed to every
//! management subscriber in order.
//!
//! Publishing never waits: each subscriber has a bounded queue, and one that falls behind loses the
//! oldest events and is told how many with [`ClusterEvent::Lagged`]. A subscriber therefore never
//! slows the node down.

use tokio::sync::broadcast;

use crate::proto::{ClusterEvent, Member, MemberRole};

/// How many events a subscriber may fall behind before it starts losing them.
pub const SUBSCRIBER_QUEUE: usize = 1024;

/// Each member's role in `membership`: voters, then non-voters told apart by the observer flag.
pub(crate) fn roles(
    membership: &openraft::Membership<u64, Member>,
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

/// Milliseconds since the Unix epoch, now (0 if the clock is before it).
pub fn unix_millis_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The node's event bus: every event is stamped with the time it was published. Clones publish to
/// the same subscribers.
#[derive(Debug, Clone)]
pub struct EventBus {
    sender: broadcast::Sender<(u64, ClusterEvent)>,
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
        let _ = self.sender.send((unix_millis_now(), event));
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
    receiver: broadcast::Receiver<(u64, ClusterEvent)>,
}

impl Subscription {
    /// The next event, or [`ClusterEvent::Lagged`] if this subscriber fell behind; `None` once the
    /// bus is gone.
    pub async fn next(&mut self) -> Option<ClusterEvent> {
        self.next_stamped().await.map(|(_, event)| event)
    }

    /// Like [`Self::next`], with when the event was published, in milliseconds since the Unix
    /// epoch (for `Lagged`: when the loss was noticed).
    pub async fn next_stamped(&mut self) -> Option<(u64, ClusterEvent)> {
        match self.receiver.recv().await {
            Ok(stamped) => Some(stamped),
            Err(broadcast::error::RecvError::Lagged(missed)) => {
                Some((unix_millis_now(), ClusterEvent::Lagged { missed }))
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
        let before = unix_millis_now();
        let (at, lagged) = slow.next_stamped().await.unwrap();
        assert_eq!(lagged, ClusterEvent::Lagged { missed: 6 });
        assert!(at >= before && at <= unix_millis_now());
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
