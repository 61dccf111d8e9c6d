//! Membership on the leader: adding members as learners, voters or observers, removing them (the
//! leader too: it hands over first), changing roles, and promoting caught-up learners.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use iroh::EndpointId;
use openraft::ChangeMembers;
use openraft::async_runtime::WatchReceiver;

use super::announcer;
use super::inspect::{self, View};
use super::service::{NodeService, raft_failure};
use crate::proto::{
    Announce, AnnouncedRole, Member, MemberOperationResponse, MemberRole, Operation, Reply,
    RequestError,
};
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
        // Ask the node who it is before it enters the membership: a wrong id or a node that does
        // not answer is refused now, not found out after it was added.
        let me = self.identity.announce(&view, &self.gate.removal);
        let answer = announcer::announce_to(&self.endpoint, &member, &me)
            .await
            .map_err(|problem| {
                RequestError::Refused(format!(
                    "node {node_id} did not answer at {member}: {problem}. Start it first \
                     (`iroh-raft node --join TICKET --standby-as {node_id}`) and check the address"
                ))
            })?;
        check_candidate(node_id, &self.cluster_id, &answer.receiver)
            .map_err(RequestError::Refused)?;
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
        // The promoter makes it a voter once it has caught up; wait for that, and take the
        // learner out again if it does not catch up in time.
        drop(_turn);
        let index = match tokio::time::timeout(CATCH_UP_TIMEOUT, self.until_voter(node_id)).await {
            Ok(result) => result?,
            Err(_) => return Err(self.roll_back_learner(node_id).await),
        };
        Ok(Reply::Member(MemberOperationResponse {
            node_id,
            role: Some(MemberRole::Voter),
            log_index: Some(index),
            message: format!("node {node_id} caught up and is a voter"),
        }))
    }

    /// Takes out a learner that did not catch up within [`CATCH_UP_TIMEOUT`]; the error to answer.
    async fn roll_back_learner(&self, node_id: u64) -> RequestError {
        let _turn = self.membership.lock().await;
        let view = View::of(&self.raft());
        let lag = view.lag(node_id);
        if view.role(node_id) == Some(MemberRole::Voter) {
            // Promoted just now: it caught up after all.
            return RequestError::Refused(format!(
                "node {node_id} became a voter just as the wait for it ended; `iroh-raft status` shows it"
            ));
        }
        let behind = lag.map_or_else(
            || "it never answered".to_string(),
            |lag| format!("{lag} entries behind"),
        );
        match self
            .change(ChangeMembers::RemoveNodes(BTreeSet::from([node_id])), false)
            .await
        {
            Ok(_) => RequestError::Refused(format!(
                "node {node_id} did not catch up within {CATCH_UP_TIMEOUT:?} ({behind}), so it was \
                 taken out of the membership again (it now counts itself removed): check that the \
                 leader can reach it, wipe its data directory, start it again with \
                 `--standby-as {node_id}` and add it again"
            )),
            Err(error) => RequestError::Refused(format!(
                "node {node_id} did not catch up within {CATCH_UP_TIMEOUT:?} ({behind}), and taking \
                 it out again failed: {error}; remove it with `iroh-raft member remove {node_id}`"
            )),
        }
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
            return done(
                None,
                format!("node {node_id} is already {}", role.with_article()),
            );
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

/// How long `member add` waits for a new voter to catch up before it takes it out again.
const CATCH_UP_TIMEOUT: Duration = Duration::from_secs(60);

/// Whether the node that answered `answer` may be added as `node_id` to cluster `cluster_id`: the
/// reason if not.
pub(crate) fn check_candidate(
    node_id: u64,
    cluster_id: &[u8; 16],
    answer: &Announce,
) -> Result<(), String> {
    if &answer.cluster_id != cluster_id {
        return Err(format!(
            "the node at that address belongs to another cluster (as node {}); start it with a \
             ticket of this cluster (`--join TICKET --standby-as {node_id}`)",
            answer.node_id
        ));
    }
    match answer.role {
        AnnouncedRole::Standby if answer.node_id == node_id => Ok(()),
        AnnouncedRole::Standby => Err(format!(
            "the node at that address waits to be added as node {}, not {node_id}: run \
             `iroh-raft member add {} ...`, or restart it with `--standby-as {node_id}`",
            answer.node_id, answer.node_id
        )),
        AnnouncedRole::Removed => Err(format!(
            "the node at that address was removed from this cluster (as node {}); wipe its data \
             directory and start it again with `--join TICKET --standby-as {node_id}`",
            answer.node_id
        )),
        role => Err(format!(
            "the node at that address already is {} (node {}) by its own account; a node \
             this cluster no longer lists must be wiped and started again with `--standby-as`",
            match role {
                AnnouncedRole::Observer => "an observer".to_string(),
                other => format!("a {other}"),
            },
            answer.node_id
        )),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(node_id: u64, role: AnnouncedRole) -> Announce {
        Announce {
            node_id,
            cluster_id: [1; 16],
            role,
            version: String::new(),
            endpoints: Vec::new(),
        }
    }

    #[test]
    fn only_a_standby_waiting_as_that_id_in_this_cluster_is_added() {
        assert!(check_candidate(5, &[1; 16], &answer(5, AnnouncedRole::Standby)).is_ok());
        let wrong_id =
            check_candidate(6, &[1; 16], &answer(5, AnnouncedRole::Standby)).unwrap_err();
        assert!(wrong_id.contains("as node 5, not 6"), "{wrong_id}");
        let other = check_candidate(5, &[2; 16], &answer(5, AnnouncedRole::Standby)).unwrap_err();
        assert!(other.contains("another cluster"), "{other}");
        let removed = check_candidate(5, &[1; 16], &answer(5, AnnouncedRole::Removed)).unwrap_err();
        assert!(removed.contains("removed"), "{removed}");
        let voter = check_candidate(5, &[1; 16], &answer(5, AnnouncedRole::Voter)).unwrap_err();
        assert!(voter.contains("already is a voter"), "{voter}");
    }
}
