//! Members announce themselves to each other on `iroh-raft-discovery/0` once a second. What this
//! node learns from the answers: whether it is still a member (a removed node stops, see
//! `removal.rs`). The same announce tells an operator's `member add` who a node is before it is
//! added (`members.rs`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use iroh::Endpoint;

use super::inspect::View;
use super::removal::{self, OwnMembership, Removal};
use crate::events::EventBus;
use crate::net::discovery_exchange;
use crate::proto::{
    Announce, AnnounceReply, AnnouncedRole, ClusterEvent, DiscoveryReply, DiscoveryRequest, Member,
    MemberRole,
};
use crate::raft::{SharedRaft, StateMachineStore};
use crate::watch::WatchHub;

/// How often members announce themselves.
pub(crate) const ANNOUNCE_EVERY: Duration = Duration::from_secs(1);

/// How long one announce may take.
pub(crate) const ANNOUNCE_TIMEOUT: Duration = Duration::from_secs(3);

/// What the node whose key is `my_key` is, as it announces it.
pub(crate) fn announced_role(view: &View, my_key: &[u8; 32], removed: bool) -> AnnouncedRole {
    if removed {
        return AnnouncedRole::Removed;
    }
    if !removal::names(view, my_key) {
        return AnnouncedRole::Standby;
    }
    match view.role(view.node_id) {
        Some(MemberRole::Voter) => AnnouncedRole::Voter,
        Some(MemberRole::Learner) => AnnouncedRole::Learner,
        Some(MemberRole::Observer) => AnnouncedRole::Observer,
        None => AnnouncedRole::Standby,
    }
}

/// Who this node is, for announces and their answers.
#[derive(Debug, Clone)]
pub(crate) struct Identity {
    pub(crate) node_id: u64,
    pub(crate) key: [u8; 32],
    pub(crate) cluster_id: [u8; 16],
    pub(crate) endpoints: Vec<SocketAddr>,
}

impl Identity {
    /// This node's announce, as `view` and `removal` describe it.
    pub(crate) fn announce(&self, view: &View, removal: &Removal) -> Announce {
        Announce {
            node_id: self.node_id,
            cluster_id: self.cluster_id,
            role: announced_role(view, &self.key, removal.at().is_some()),
            version: env!("CARGO_PKG_VERSION").to_string(),
            endpoints: self.endpoints.clone(),
        }
    }
}

/// Announces `announce` to `target`; its answer, or what went wrong in words.
pub(crate) async fn announce_to(
    endpoint: &Endpoint,
    target: &Member,
    announce: &Announce,
) -> Result<AnnounceReply, String> {
    let request = DiscoveryRequest::Announce(announce.clone());
    match discovery_exchange(endpoint, target, &request, ANNOUNCE_TIMEOUT).await? {
        DiscoveryReply::Announced(reply) => Ok(reply),
        DiscoveryReply::Refused(reason) => Err(reason),
        DiscoveryReply::Error(error) => Err(error.to_string()),
        DiscoveryReply::Bootstrap(_) | DiscoveryReply::ClusterInfo(_) => {
            Err(format!("{target} answered an announce with something else"))
        }
    }
}

/// Announces this node to every other member once per [`ANNOUNCE_EVERY`], and stops the node's
/// raft core if it finds that it was removed. Ends when the node stops or is removed.
pub(crate) async fn run(
    shared: SharedRaft<StateMachineStore>,
    endpoint: Endpoint,
    identity: Identity,
    removal: Arc<Removal>,
    events: EventBus,
    watches: Arc<WatchHub>,
) {
    let mut named_me_at = None;
    loop {
        tokio::time::sleep(ANNOUNCE_EVERY).await;
        if shared.is_stopping() || removal.at().is_some() {
            return;
        }
        let view = View::of(&shared.get());
        let own = OwnMembership::of(&view, &identity.key);
        let mut removed_at = own.and_then(|own| removal::removed_by_transition(named_me_at, own));
        named_me_at = removal::named_me_at(named_me_at, own);
        if removed_at.is_none() {
            let announce = identity.announce(&view, &removal);
            let mut asks = tokio::task::JoinSet::new();
            for (id, member) in &view.members {
                if *id == identity.node_id {
                    continue;
                }
                let (endpoint, member, announce) =
                    (endpoint.clone(), member.clone(), announce.clone());
                asks.spawn(async move { announce_to(&endpoint, &member, &announce).await });
            }
            while let Some(answer) = asks.join_next().await {
                match answer {
                    Ok(Ok(reply)) if reply.receiver.cluster_id == identity.cluster_id => {
                        removed_at =
                            removed_at.or(removal::removed_by_peer(named_me_at, reply.sender));
                    }
                    Ok(Ok(reply)) => tracing::debug!(
                        peer = reply.receiver.node_id,
                        "a member in the membership answered for another cluster"
                    ),
                    Ok(Err(problem)) => tracing::debug!("announce not answered: {problem}"),
                    Err(_) => {}
                }
            }
        }
        let Some(at) = removed_at else {
            continue;
        };
        if let Err(error) = removal.record(at) {
            tracing::error!(
                "cannot record this node's removal in its data directory ({error}); it stops \
                 serving now, and after a restart learns of the removal from its peers again"
            );
        }
        tracing::warn!(
            node_id = identity.node_id,
            membership_index = at,
            "this node was removed from the cluster; it stops serving"
        );
        events.publish(ClusterEvent::MemberRemoved {
            node_id: identity.node_id,
        });
        watches.removed();
        stop_raft(&shared).await;
        return;
    }
}

/// Stops the raft core of a removed node for good (it must not campaign or take entries).
pub(crate) async fn stop_raft(shared: &SharedRaft<StateMachineStore>) {
    shared.stop();
    if let Err(error) = shared.get().shutdown().await {
        tracing::warn!("stopping the raft core of a removed node: {error}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_announces_its_role_in_its_own_membership() {
        let mut view = View {
            node_id: 2,
            ..View::default()
        };
        let key = [2; 32];
        assert_eq!(announced_role(&view, &key, false), AnnouncedRole::Standby);
        let member = Member {
            endpoint_key: key,
            ..Member::default()
        };
        view.members.insert(2, member);
        assert_eq!(announced_role(&view, &key, false), AnnouncedRole::Learner);
        view.voters.push(2);
        assert_eq!(announced_role(&view, &key, false), AnnouncedRole::Voter);
        assert_eq!(announced_role(&view, &key, true), AnnouncedRole::Removed);
        // Another node's key under this id (ids are reused): not this node.
        assert_eq!(
            announced_role(&view, &[9; 32], false),
            AnnouncedRole::Standby
        );
    }
}
