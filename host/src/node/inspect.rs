//! Decisions and views computed from a snapshot of raft's metrics, free of I/O: member roles and
//! health, the cluster status, a node's health, which learner to promote, which voter may take
//! leadership. The service feeds them [`View`]s; the tests feed them hand-made ones.

use std::collections::BTreeMap;
use std::time::Duration;

use openraft::ServerState;
use openraft::async_runtime::WatchReceiver;

use crate::proto::{
    ClusterStatus, HealthStatus, Member, MemberHealth, MemberRole, MemberStatus, RaftRole,
    TypeConfig,
};

/// A member is promoted (or may take leadership) once it is at most this many entries behind.
pub(crate) const CAUGHT_UP_LAG: u64 = 50;

/// What the decisions need to know, copied out of raft's metrics at one instant.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct View {
    pub(crate) node_id: u64,
    pub(crate) state: Option<RaftRole>,
    pub(crate) term: u64,
    pub(crate) leader: Option<u64>,
    pub(crate) last_log: Option<u64>,
    pub(crate) committed: Option<u64>,
    /// What the cluster has committed as far as this node knows (may lead `committed`).
    pub(crate) cluster_committed: Option<u64>,
    pub(crate) applied: Option<u64>,
    pub(crate) snapshot: Option<u64>,
    pub(crate) purged: Option<u64>,
    /// Every member with its address, voters and non-voters.
    pub(crate) members: BTreeMap<u64, Member>,
    pub(crate) voters: Vec<u64>,
    /// Whether a membership change is half done (joint consensus).
    pub(crate) joint: bool,
    /// The log index of the membership in effect (`None` before any).
    pub(crate) membership_index: Option<u64>,
    /// On a leader: the last index each member holds.
    pub(crate) matched: Option<BTreeMap<u64, Option<u64>>>,
    /// On a leader: time since each member last acknowledged it.
    pub(crate) last_ack: Option<BTreeMap<u64, Option<Duration>>>,
    pub(crate) millis_since_quorum_ack: Option<u64>,
    pub(crate) running: bool,
}

impl View {
    /// Copies what matters out of `raft`'s current metrics.
    pub(crate) fn of<SM: openraft::storage::RaftStateMachine<TypeConfig>>(
        raft: &openraft::Raft<TypeConfig, SM>,
    ) -> Self {
        let metrics = raft.metrics();
        let m = metrics.borrow_watched();
        let membership = m.membership_config.membership();
        Self {
            node_id: m.id,
            state: Some(match m.state {
                ServerState::Leader => RaftRole::Leader,
                ServerState::Follower => RaftRole::Follower,
                ServerState::Candidate => RaftRole::Candidate,
                ServerState::Learner => RaftRole::Learner,
                ServerState::Shutdown => RaftRole::Shutdown,
            }),
            term: m.current_term,
            leader: m.current_leader,
            last_log: m.last_log_index,
            committed: m.local_committed.as_ref().map(|id| id.index),
            cluster_committed: m.cluster_committed.as_ref().map(|id| id.index),
            applied: m.last_applied.as_ref().map(|id| id.index),
            snapshot: m.snapshot.as_ref().map(|id| id.index),
            purged: m.purged.as_ref().map(|id| id.index),
            members: membership
                .nodes()
                .map(|(id, member)| (*id, member.clone()))
                .collect(),
            voters: membership.voter_ids().collect(),
            joint: membership.get_joint_config().len() > 1,
            membership_index: m.membership_config.log_id().as_ref().map(|id| id.index),
            matched: m.replication.as_ref().map(|replication| {
                replication
                    .iter()
                    .map(|(id, log_id)| (*id, log_id.as_ref().map(|l| l.index)))
                    .collect()
            }),
            last_ack: m.heartbeat.as_ref().map(|heartbeat| {
                heartbeat
                    .iter()
                    .map(|(id, at)| (*id, at.as_ref().map(|at| openraft::Instant::elapsed(&**at))))
                    .collect()
            }),
            millis_since_quorum_ack: m
                .last_quorum_acked
                .as_ref()
                .map(|at| openraft::Instant::elapsed(&**at).as_millis() as u64),
            running: m.running_state.is_ok(),
        }
    }

    pub(crate) fn is_leader(&self) -> bool {
        self.state == Some(RaftRole::Leader)
    }

    /// A member's role, `None` for a non-member.
    pub(crate) fn role(&self, node_id: u64) -> Option<MemberRole> {
        let member = self.members.get(&node_id)?;
        Some(MemberRole::of(self.voters.contains(&node_id), member))
    }

    /// Entries `node_id` is behind the leader's last log index (leader only).
    pub(crate) fn lag(&self, node_id: u64) -> Option<u64> {
        if node_id == self.node_id {
            return self.is_leader().then_some(0);
        }
        let matched = self.matched.as_ref()?.get(&node_id)?;
        let last = self.last_log.unwrap_or(0);
        Some(last.saturating_sub(matched.unwrap_or(0)))
    }

    /// Whether the leader hears from `node_id`, a member for whom `unreachable_after` passed
    /// without an acknowledgement being unreachable.
    pub(crate) fn health(&self, node_id: u64, unreachable_after: Duration) -> MemberHealth {
        if !self.is_leader() {
            return MemberHealth::Unknown;
        }
        if node_id == self.node_id {
            return MemberHealth::Healthy;
        }
        match self.last_ack.as_ref().and_then(|acks| acks.get(&node_id)) {
            Some(Some(age)) if *age <= unreachable_after => MemberHealth::Healthy,
            Some(_) => MemberHealth::Unreachable,
            None => MemberHealth::Unknown,
        }
    }
}

/// The cluster status the leader reports.
pub(crate) fn cluster_status(
    view: &View,
    cluster_id: [u8; 16],
    config_version: u64,
    unreachable_after: Duration,
) -> ClusterStatus {
    let mut members: Vec<MemberStatus> = view
        .members
        .iter()
        .filter_map(|(id, member)| {
            Some(MemberStatus {
                node_id: *id,
                member: member.clone(),
                role: view.role(*id)?,
                health: view.health(*id, unreachable_after),
                matched: if *id == view.node_id {
                    view.last_log
                } else {
                    view.matched.as_ref()?.get(id).copied().flatten()
                },
                lag: view.lag(*id),
                last_ack_ms: view
                    .last_ack
                    .as_ref()
                    .and_then(|acks| acks.get(id).copied().flatten())
                    .map(|age| age.as_millis() as u64),
            })
        })
        .collect();
    members.sort_by_key(|m| (m.role != MemberRole::Voter, m.node_id));
    let healthy_voters = view
        .voters
        .iter()
        .filter(|id| view.health(**id, unreachable_after) == MemberHealth::Healthy)
        .count();
    ClusterStatus {
        cluster_id,
        node_id: view.node_id,
        leader: view.leader,
        term: view.term,
        raft_state: view.state.unwrap_or(RaftRole::Shutdown),
        last_log: view.last_log,
        committed: view.committed,
        applied: view.applied,
        healthy: view.is_leader() && healthy_voters * 2 > view.voters.len(),
        config_version,
        members,
        diverged: Vec::new(),
    }
}

/// Whether the node is in touch with a leader: it follows a known leader whose last append
/// reached it `leader_heard` ago, within `quorum_timeout`, or it leads and a quorum acknowledged
/// it within `quorum_timeout` (or it is the only voter). A cut-off follower still names its
/// leader (its pre-votes fail, so its vote stays), and a cut-off leader keeps its role: only the
/// times tell.
pub(crate) fn in_touch_with_leader(
    view: &View,
    leader_heard: Option<Duration>,
    quorum_timeout: Duration,
) -> bool {
    if !view.running {
        return false;
    }
    if !view.is_leader() {
        return view.leader.is_some() && leader_heard.is_some_and(|ago| ago <= quorum_timeout);
    }
    let alone = view.voters.len() == 1 && view.voters.contains(&view.node_id);
    alone
        || view
            .millis_since_quorum_ack
            .is_some_and(|ms| ms <= quorum_timeout.as_millis() as u64)
}

/// A node's health: what is wrong, in words an operator can act on.
pub(crate) fn health(view: &View, uptime: Duration, quorum_timeout: Duration) -> HealthStatus {
    let mut problems = Vec::new();
    if !view.running {
        problems.push("raft has stopped on this node after a fatal error; restart it".to_string());
    }
    if view.leader.is_none() {
        problems.push("no leader is known: an election is under way or quorum is lost".into());
    }
    if !view.members.contains_key(&view.node_id) && view.leader.is_some() {
        problems.push("this node is not a member of the cluster it follows".into());
    }
    // The only voter is a quorum by itself: it needs no one's acknowledgement.
    let alone = view.voters.len() == 1 && view.voters.contains(&view.node_id);
    if let Some(ms) = view.millis_since_quorum_ack
        && view.is_leader()
        && !alone
        && ms > quorum_timeout.as_millis() as u64
    {
        problems.push(format!(
            "no quorum has acknowledged this leader for {ms} ms: members may be down"
        ));
    }
    if view.is_leader() {
        // Members that stopped answering, and what that does to the quorum.
        problems.extend(
            cluster_status(view, [0; 16], 0, quorum_timeout)
                .problems()
                .into_iter()
                // Said above, or by the consistency record.
                .filter(|p| !p.starts_with("no leader") && !p.contains("diverged")),
        );
    }
    let behind = view
        .committed
        .unwrap_or(0)
        .saturating_sub(view.applied.unwrap_or(0));
    if behind > 10_000 {
        problems.push(format!(
            "applying is {behind} entries behind the commit index"
        ));
    }
    HealthStatus {
        node_id: view.node_id,
        healthy: problems.is_empty(),
        raft_state: view.state.unwrap_or(RaftRole::Shutdown),
        leader: view.leader,
        term: view.term,
        committed: view.committed,
        applied: view.applied,
        problems,
        uptime,
    }
}

/// The learners the leader should promote now: caught up (they acknowledged entries, and lag
/// little), not observers, and no membership change half done.
pub(crate) fn promotable(view: &View) -> Vec<u64> {
    if !view.is_leader() || view.joint {
        return Vec::new();
    }
    let acknowledged = |id: &u64| {
        view.matched
            .as_ref()
            .and_then(|matched| matched.get(id))
            .is_some_and(Option::is_some)
    };
    view.members
        .keys()
        .copied()
        .filter(|id| view.role(*id) == Some(MemberRole::Learner))
        .filter(acknowledged)
        .filter(|id| view.lag(*id).is_some_and(|lag| lag <= CAUGHT_UP_LAG))
        .collect()
}

/// The voter leadership may go to: `requested` if it is a fresh voter, or the most caught-up
/// healthy voter other than the leader. The error says why not.
pub(crate) fn transfer_target(
    view: &View,
    requested: Option<u64>,
    unreachable_after: Duration,
) -> Result<u64, String> {
    let fresh = |id: u64| -> Result<u64, String> {
        match view.role(id) {
            None => return Err(format!("node {id} is not a member")),
            Some(MemberRole::Voter) => {}
            Some(role) => {
                return Err(format!(
                    "node {id} is {} {role}, not a voter; only a voter can lead",
                    if role == MemberRole::Observer {
                        "an"
                    } else {
                        "a"
                    }
                ));
            }
        }
        if view.health(id, unreachable_after) != MemberHealth::Healthy {
            return Err(format!(
                "node {id} has not answered the leader recently; it may be down"
            ));
        }
        match view.lag(id) {
            Some(lag) if lag <= CAUGHT_UP_LAG => Ok(id),
            Some(lag) => Err(format!(
                "node {id} is lagging {lag} entries behind the leader (at most {CAUGHT_UP_LAG} allowed); wait for it to catch up"
            )),
            None => Err(format!("the leader does not know how far node {id} is")),
        }
    };
    match requested {
        Some(id) if id == view.node_id => Err(format!("node {id} already leads")),
        Some(id) => fresh(id),
        None => view
            .voters
            .iter()
            .copied()
            .filter(|id| *id != view.node_id)
            .filter_map(|id| fresh(id).ok())
            .min_by_key(|id| (view.lag(*id), *id))
            .ok_or_else(|| "no other voter is caught up and healthy to take over".to_string()),
    }
}

#[cfg(test)]
#[path = "inspect_tests.rs"]
mod tests;
