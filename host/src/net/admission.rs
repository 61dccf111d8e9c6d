//! [`Admission`]: which peers may speak `iroh-raft/0` to this node.
//!
//! Once the node knows a membership (it has applied or been sent one), exactly the keys in it.
//! Before that — a node that has just joined by ticket or waits as a standby, before the leader's
//! first append — the keys it was admitted ahead of it (the members the join answer named). So a
//! removed member loses access on every node, however that node joined.

use std::collections::BTreeSet;
use std::sync::{Arc, RwLock};

use openraft::Raft;
use openraft::async_runtime::WatchReceiver;
use openraft::storage::RaftStateMachine;
use openraft::type_config::alias::{LogIdOf, StoredMembershipOf};

use crate::proto::TypeConfig;

type C = TypeConfig;

/// Which peers may speak raft to this node. Clones share the admitted keys.
#[derive(Clone, Default, Debug)]
pub struct Admission {
    ahead: Arc<RwLock<BTreeSet<[u8; 32]>>>,
}

impl Admission {
    /// Admits `key` while this node knows no membership (the cluster it is joining).
    pub fn admit(&self, key: [u8; 32]) {
        self.ahead
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key);
    }

    /// Whether `key` may connect, given the membership `raft` reports now.
    pub(crate) fn admits<SM: RaftStateMachine<C>>(
        &self,
        raft: &Raft<C, SM>,
        key: &[u8; 32],
    ) -> bool {
        let metrics = raft.metrics();
        let metrics = metrics.borrow_watched();
        let ahead = self.ahead.read().unwrap_or_else(|p| p.into_inner());
        admits(&metrics.membership_config, &ahead, key)
    }
}

/// The log id of the membership `raft` reports now (`None`: it knows none yet, or its core was
/// just replaced and has not reported one): what an open connection is judged again on.
pub(crate) fn membership_id<SM: RaftStateMachine<C>>(raft: &Raft<C, SM>) -> Option<LogIdOf<C>> {
    *raft.metrics().borrow_watched().membership_config.log_id()
}

/// The admission rule: the membership's keys once there is a membership, the keys admitted
/// ahead of it before.
fn admits(membership: &StoredMembershipOf<C>, ahead: &BTreeSet<[u8; 32]>, key: &[u8; 32]) -> bool {
    if membership.log_id().is_none() {
        return ahead.contains(key);
    }
    membership
        .membership()
        .nodes()
        .any(|(_, member)| &member.endpoint_key == key)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use openraft::Membership;
    use openraft::type_config::alias::LeaderIdOf;
    use openraft::vote::RaftLeaderIdExt;

    use super::*;
    use crate::proto::Member;

    fn membership(at: Option<u64>, keys: &[u8]) -> StoredMembershipOf<C> {
        let nodes: BTreeMap<u64, Member> = keys
            .iter()
            .map(|k| {
                let member = Member {
                    endpoint_key: [*k; 32],
                    addrs: Vec::new(),
                    observer: false,
                };
                (u64::from(*k), member)
            })
            .collect();
        let voters = nodes.keys().copied().collect::<BTreeSet<_>>();
        let log_id = at.map(|index| LogIdOf::<C>::new(LeaderIdOf::<C>::new_committed(1, 1), index));
        StoredMembershipOf::<C>::new(
            log_id,
            Membership::new(vec![voters], nodes).expect("membership"),
        )
    }

    #[test]
    fn bug_keys_admitted_at_join_kept_raft_access_after_their_removal_now_the_membership_decides() {
        let ahead = BTreeSet::from([[1; 32], [2; 32]]);
        // Joining: no membership yet, the cluster's members are let in.
        let none = StoredMembershipOf::<C>::default();
        assert!(admits(&none, &ahead, &[1; 32]));
        assert!(!admits(&none, &ahead, &[9; 32]), "a stranger is not");
        // Member 2 was removed: the membership decides, the join's keys no longer count.
        let after = membership(Some(40), &[1, 3]);
        assert!(admits(&after, &ahead, &[1; 32]));
        assert!(admits(&after, &ahead, &[3; 32]), "a member added since");
        assert!(!admits(&after, &ahead, &[2; 32]), "the removed member");
    }
}
