//! What a node does with discovery requests (`iroh-raft-discovery/0`; the protocol handler is
//! `net/discovery_server.rs`). A join: the leader checks the cluster id and secret, picks a node
//! id, answers at once and then, in the background, adds the node as a learner; the leader's
//! promoter makes it a voter once it has caught up. An announce: who this node is and what its
//! membership says of the sender. A cluster query: the members and leader, for a caller the
//! access policy lets read status.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use iroh::EndpointId;
use openraft::Raft;
use openraft::async_runtime::WatchReceiver;
use openraft::storage::RaftStateMachine;

use super::announcer::Identity;
use super::inspect::View;
use super::removal::{self, Removal};
use super::service::NodeService;
use crate::net::DiscoveryService;
use crate::proto::{
    Announce, AnnounceReply, ClusterInfo, DiscoveryReply, JoinReply, JoinRequest, Member,
    Operation, PeerStanding, RequestError, TypeConfig,
};
use crate::raft::SharedRaft;

type C = TypeConfig;

/// The join decision, free of I/O: is the request for this cluster, with the right secret?
pub(crate) fn check_join(
    request: &JoinRequest,
    cluster_id: &[u8; 16],
    secret: &[u8; 32],
) -> Result<(), String> {
    if &request.cluster_id != cluster_id {
        return Err("this ticket is for another cluster".into());
    }
    // Constant-time comparison: the secret is the only credential a joiner has.
    let difference = request
        .secret
        .iter()
        .zip(secret)
        .fold(0u8, |acc, (a, b)| acc | (a ^ b));
    if difference != 0 {
        return Err("wrong join secret: get a fresh ticket from a member (`iroh-raft node --init` prints one)".into());
    }
    Ok(())
}

/// The smallest id above every member and every id already handed out.
pub(crate) fn next_node_id(members: impl Iterator<Item = u64>, handed_out: &BTreeSet<u64>) -> u64 {
    members.chain(handed_out.iter().copied()).max().unwrap_or(0) + 1
}

/// Decides join requests for the discovery protocol.
pub(crate) struct JoinService<SM: RaftStateMachine<C>> {
    pub(crate) raft: SharedRaft<SM>,
    pub(crate) node_id: u64,
    pub(crate) cluster_id: [u8; 16],
    pub(crate) secret: [u8; 32],
    pub(crate) handed_out: Arc<Mutex<BTreeSet<u64>>>,
    /// openraft allows one membership change at a time: joins take turns.
    pub(crate) membership_changes: Arc<tokio::sync::Mutex<()>>,
    /// Who this node is, for answering announces.
    pub(crate) identity: Identity,
    pub(crate) removal: Arc<Removal>,
    /// Judges cluster queries like management requests.
    pub(crate) service: Arc<NodeService>,
}

impl<SM: RaftStateMachine<C>> Clone for JoinService<SM> {
    fn clone(&self) -> Self {
        Self {
            raft: self.raft.clone(),
            node_id: self.node_id,
            cluster_id: self.cluster_id,
            secret: self.secret,
            handed_out: self.handed_out.clone(),
            membership_changes: self.membership_changes.clone(),
            identity: self.identity.clone(),
            removal: self.removal.clone(),
            service: self.service.clone(),
        }
    }
}

impl<SM: RaftStateMachine<C>> std::fmt::Debug for JoinService<SM> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JoinService")
            .field("node_id", &self.node_id)
            .finish_non_exhaustive()
    }
}

impl<SM: RaftStateMachine<C>> DiscoveryService for JoinService<SM> {
    async fn query_cluster(
        &self,
        cluster_id: Option<[u8; 16]>,
        caller: EndpointId,
    ) -> DiscoveryReply {
        if let Err(error) = self
            .service
            .gate
            .admit(
                &self.service.raft,
                self.node_id,
                &Operation::GetClusterStatus,
            )
            .await
        {
            return DiscoveryReply::Error(error);
        }
        if let Err(denied) = self
            .service
            .authorize(&caller, &Operation::GetClusterStatus.access())
            .await
        {
            return DiscoveryReply::Error(denied);
        }
        if let Some(asked) = cluster_id
            && asked != self.cluster_id
        {
            return DiscoveryReply::Error(RequestError::Refused(format!(
                "no cluster {} here: this node is a member of cluster {} (check the ticket or the \
                 cluster id)",
                hex::encode(asked),
                hex::encode(self.cluster_id)
            )));
        }
        let view = View::of(&self.raft.get());
        DiscoveryReply::ClusterInfo(ClusterInfo {
            cluster_id: self.cluster_id,
            members: view.members.into_iter().collect(),
            leader: view.leader,
        })
    }

    fn announce(&self, announce: &Announce, key: [u8; 32]) -> AnnounceReply {
        let view = View::of(&self.raft.get());
        AnnounceReply {
            receiver: self.identity.announce(&view, &self.removal),
            leader: view.leader,
            sender: if announce.cluster_id == self.cluster_id {
                removal::standing_of(&view, &key)
            } else {
                PeerStanding::Unknown
            },
        }
    }

    fn join(&self, request: &JoinRequest, key: [u8; 32]) -> JoinReply {
        if let Err(reason) = check_join(request, &self.cluster_id, &self.secret) {
            return JoinReply::Refused(reason);
        }
        let metrics = self.raft.get().metrics();
        let (leader, members) = {
            let metrics = metrics.borrow_watched();
            let membership = metrics.membership_config.membership();
            let members: Vec<(u64, Member)> =
                membership.nodes().map(|(id, m)| (*id, m.clone())).collect();
            (metrics.current_leader, members)
        };
        match leader {
            None => return JoinReply::NoLeader,
            Some(leader) if leader != self.node_id => {
                return match members.iter().find(|(id, _)| *id == leader) {
                    Some((_, member)) => JoinReply::Redirect(member.clone()),
                    None => JoinReply::NoLeader,
                };
            }
            Some(_) => {}
        }
        // A standby node learns the members and waits for an operator to add it.
        if let Some(node_id) = request.node_id {
            return JoinReply::Accepted { node_id, members };
        }
        // A node that joined before (same key) gets its old id back.
        if let Some((id, _)) = members.iter().find(|(_, m)| m.endpoint_key == key) {
            return JoinReply::Accepted {
                node_id: *id,
                members,
            };
        }
        let node_id = {
            let mut handed_out = self.handed_out.lock().unwrap_or_else(|p| p.into_inner());
            let id = next_node_id(members.iter().map(|(id, _)| *id), &handed_out);
            handed_out.insert(id);
            id
        };
        let member = Member {
            endpoint_key: key,
            addrs: request.addrs.clone(),
            observer: false,
        };
        tokio::spawn(add_learner(
            self.raft.get(),
            self.membership_changes.clone(),
            node_id,
            member,
        ));
        JoinReply::Accepted { node_id, members }
    }
}

/// How long a join may wait for its turn and for the learner to catch up.
const ADD_TIMEOUT: Duration = Duration::from_secs(120);

/// Adds the node as a learner, waits until it has caught up, then makes it a voter. Joins take
/// turns, and a change refused because another is still in flight is retried.
async fn add_learner<SM: RaftStateMachine<C>>(
    raft: Raft<C, SM>,
    turn: Arc<tokio::sync::Mutex<()>>,
    node_id: u64,
    member: Member,
) {
    let _turn = turn.lock().await;
    let deadline = Instant::now() + ADD_TIMEOUT;
    tracing::info!(node_id, %member, "adding a joining node as a learner");
    while let Err(error) = raft.add_learner(node_id, member.clone(), false).await {
        if error.forward_to_leader().is_some() || Instant::now() > deadline {
            tracing::warn!(
                node_id,
                "could not add the joining node as a learner: {error}"
            );
            return;
        }
        tracing::debug!(node_id, "membership change in flight, retrying: {error}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The leader's promoter makes it a voter once it has caught up.
    tracing::info!(node_id, "joined as a learner");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(cluster_id: [u8; 16], secret: [u8; 32]) -> JoinRequest {
        JoinRequest {
            cluster_id,
            secret,
            node_id: None,
            addrs: Vec::new(),
        }
    }

    #[test]
    fn joins_need_the_right_cluster_and_secret() {
        assert!(check_join(&request([1; 16], [2; 32]), &[1; 16], &[2; 32]).is_ok());
        assert!(
            check_join(&request([9; 16], [2; 32]), &[1; 16], &[2; 32])
                .unwrap_err()
                .contains("another cluster")
        );
        let mut wrong = [2; 32];
        wrong[31] = 3;
        assert!(
            check_join(&request([1; 16], wrong), &[1; 16], &[2; 32])
                .unwrap_err()
                .contains("wrong join secret")
        );
    }

    #[test]
    fn node_ids_are_never_reused() {
        let mut handed_out = BTreeSet::new();
        assert_eq!(next_node_id([1].into_iter(), &handed_out), 2);
        handed_out.insert(2);
        assert_eq!(next_node_id([1].into_iter(), &handed_out), 3);
        assert_eq!(next_node_id([1, 7].into_iter(), &handed_out), 8);
    }
}
