//! Membership on the leader: adding members as learners, voters or observers, removing them (the
//! leader too: it hands over first), changing roles, and promoting caught-up learners.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use iroh::EndpointId;
use openraft::ChangeMembers;
use openraft::async_runtime::WatchReceiver;

use super::inspect::{self, View};
use super::service::{NodeService, raft_failure};
use crate::proto::{Member, MemberOperationResponse, MemberRole, Operation, Reply, RequestError};
use crate::raft::{SharedRaft, StateMachineStore};

impl NodeService {
    /// Changes the membership; `retain` keeps removed voters as learners.
    async fn change(
        &self,
        change: ChangeMembers<u64, Member>,
        retain: bool,
    ) -> Result<u64, RequestError> {
        let response = self
            .raft()
            .change_membership(change, retain)
            .await
            .map_err(|error| raft_failure("the membership change", error))?;
        Ok(response.log_id.index)
    }

    pub(crate) async fn add_member(
        &self,
        node_id: u64,
        mut member: Member,
        role: MemberRole,
    ) -> Result<Reply, RequestError> {
        let _turn = self.membership.lock().await;
        let view = View::of(&self.raft());
        if let Some(existing) = view.role(node_id) {
            return Err(RequestError::MemberExists(format!(
                "node {node_id} is already a member ({existing}); `iroh-raft member role` changes its role"
            )));
        }
        if let Some((other, _)) = view
            .members
            .iter()
            .find(|(_, m)| m.endpoint_key == member.endpoint_key)
        {
            return Err(RequestError::MemberExists(format!(
                "that endpoint is already member {other}"
            )));
        }
        member.observer = role == MemberRole::Observer;
        let index = self
            .raft()
            .add_learner(node_id, member, false)
            .await
            .map_err(|error| raft_failure("adding the learner", error))?
            .log_id
            .index;
        if role != MemberRole::Voter {
            return Ok(Reply::Member(MemberOperationResponse {
                node_id,
                role: Some(role),
                log_index: Some(index),
                message: match role {
                    MemberRole::Learner => format!(
                        "node {node_id} added as a learner; it becomes a voter once caught up"
                    ),
                    _ => format!("node {node_id} added as an observer; it is never promoted"),
                },
            }));
        }
        // The promoter makes it a voter once it has caught up; wait for that.
        drop(_turn);
        let index = self.until_voter(node_id).await?;
        Ok(Reply::Member(MemberOperationResponse {
            node_id,
            role: Some(MemberRole::Voter),
            log_index: Some(index),
            message: format!("node {node_id} caught up and is a voter"),
        }))
    }

    /// Waits until `node_id` votes; the index of the membership that made it so.
    async fn until_voter(&self, node_id: u64) -> Result<u64, RequestError> {
        let mut metrics = self.raft().metrics();
        loop {
            let view = View::of(&self.raft());
            match view.role(node_id) {
                // Both steps of the change are done, not just the joint one.
                Some(MemberRole::Voter) if !view.joint => {
                    let index = metrics
                        .borrow_watched()
                        .membership_config
                        .log_id()
                        .map_or(0, |id| id.index);
                    return Ok(index);
                }
                Some(_) => {}
                None => {
                    return Err(RequestError::MemberLeft { node_id });
                }
            }
            if !view.is_leader() {
                return Err(RequestError::PromotionInterrupted { node_id });
            }
            if metrics.changed().await.is_err() {
                return Err(RequestError::RaftStopped {
                    reason: "it stopped while the new member caught up".into(),
                });
            }
        }
    }

    /// Removes `node_id` for `caller` (who the new leader judges again when this leader removes
    /// itself).
    pub(crate) async fn remove_member(
        &self,
        node_id: u64,
        caller: EndpointId,
    ) -> Result<Reply, RequestError> {
        let view = View::of(&self.raft());
        let role = view
            .role(node_id)
            .ok_or(RequestError::UnknownMember { node_id })?;
        if role == MemberRole::Voter && view.voters.len() == 1 {
            return Err(RequestError::Refused(format!(
                "node {node_id} is the only voter; a cluster needs one"
            )));
        }
        if node_id == self.node_id {
            // The leader goes last: hand over, then let the new leader remove this node.
            let handed = self.transfer_leadership(None).await?;
            tracing::info!(?handed, "handed leadership over to be removed");
            return self
                .leader
                // The new leader judges it again, as the caller who asked.
                .route(
                    &View::of(&self.raft()),
                    caller,
                    &Operation::RemoveMember { node_id },
                )
                .await
                .unwrap_or(Err(RequestError::NoLeader));
        }
        let _turn = self.membership.lock().await;
        let index = match role {
            MemberRole::Voter => {
                self.change(
                    ChangeMembers::RemoveVoters(BTreeSet::from([node_id])),
                    false,
                )
                .await?
            }
            _ => {
                self.change(ChangeMembers::RemoveNodes(BTreeSet::from([node_id])), false)
                    .await?
            }
        };
        Ok(Reply::Member(MemberOperationResponse {
            node_id,
            role: None,
            log_index: Some(index),
            message: format!("node {node_id} removed"),
        }))
    }

    pub(crate) async fn update_member_role(
        &self,
        node_id: u64,
        role: MemberRole,
    ) -> Result<Reply, RequestError> {
        let _turn = self.membership.lock().await;
        let view = View::of(&self.raft());
        let current = view
            .role(node_id)
            .ok_or(RequestError::UnknownMember { node_id })?;
        let mut member = view.members[&node_id].clone();
        let done = |log_index: Option<u64>, message: String| {
            Ok(Reply::Member(MemberOperationResponse {
                node_id,
                role: Some(role),
                log_index,
                message,
            }))
        };
        if current == role {
            return done(None, format!("node {node_id} is already a {role}"));
        }
        let set_observer = |member: &mut Member, observer: bool| {
            member.observer = observer;
            ChangeMembers::SetNodes(BTreeMap::from([(node_id, member.clone())]))
        };
        match (current, role) {
            (_, MemberRole::Voter) => {
                if current == MemberRole::Observer {
                    self.change(set_observer(&mut member, false), true).await?;
                }
                let index = self
                    .change(ChangeMembers::AddVoterIds(BTreeSet::from([node_id])), true)
                    .await?;
                done(Some(index), format!("node {node_id} promoted to voter"))
            }
            (MemberRole::Voter, MemberRole::Learner) => Err(RequestError::Refused(format!(
                "a learner is promoted back to voter as soon as it is caught up; to keep node \
                 {node_id} from voting, make it an observer"
            ))),
            (MemberRole::Voter, MemberRole::Observer) => {
                if node_id == self.node_id {
                    return Err(RequestError::Refused(format!(
                        "node {node_id} leads; hand leadership over first (`iroh-raft leader transfer`)"
                    )));
                }
                if view.voters.len() == 1 {
                    return Err(RequestError::Refused(format!(
                        "node {node_id} is the only voter; a cluster needs one"
                    )));
                }
                // Flag first, so the promoter never sees it as a learner to promote.
                self.change(set_observer(&mut member, true), true).await?;
                let index = self
                    .change(ChangeMembers::RemoveVoters(BTreeSet::from([node_id])), true)
                    .await?;
                done(Some(index), format!("node {node_id} demoted to observer"))
            }
            (_, MemberRole::Observer) => {
                let index = self.change(set_observer(&mut member, true), true).await?;
                done(
                    Some(index),
                    format!("node {node_id} is an observer; it will not be promoted"),
                )
            }
            (_, MemberRole::Learner) => {
                let index = self.change(set_observer(&mut member, false), true).await?;
                done(
                    Some(index),
                    format!("node {node_id} is a learner; it becomes a voter once caught up"),
                )
            }
        }
    }
}

/// How often the leader looks for learners to promote.
const PROMOTION_CHECK: Duration = Duration::from_millis(100);

/// On the leader: promotes every learner (not observer) that has caught up, one change at a time.
pub(crate) async fn promote_learners(
    shared: SharedRaft<StateMachineStore>,
    membership: std::sync::Arc<tokio::sync::Mutex<()>>,
) {
    loop {
        tokio::time::sleep(PROMOTION_CHECK).await;
        if shared.is_stopping() {
            return;
        }
        // The current core (the node may have replaced the one of the last round).
        let raft = shared.get();
        let view = View::of(&raft);
        if !view.running {
            continue;
        }
        for node_id in inspect::promotable(&view) {
            let _turn = membership.lock().await;
            // Re-check under the lock: an operator may have changed the role meanwhile.
            if !inspect::promotable(&View::of(&raft)).contains(&node_id) {
                continue;
            }
            match raft
                .change_membership(ChangeMembers::AddVoterIds(BTreeSet::from([node_id])), true)
                .await
            {
                Ok(_) => tracing::info!(node_id, "learner caught up; promoted to voter"),
                Err(error) => tracing::debug!(node_id, "promotion did not happen: {error}"),
            }
        }
    }
}
