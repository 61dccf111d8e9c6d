//! What a node answers about the cluster: raft role, member status and health, the leader's view
//! of the cluster, and what a membership or leadership change did.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{Divergence, Member, MemberRole};

/// What a node is doing in raft.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RaftRole {
    /// It leads.
    Leader,
    /// A voter following the leader.
    Follower,
    /// A voter asking for votes.
    Candidate,
    /// A non-voter receiving the log.
    Learner,
    /// Raft has stopped on this node.
    Shutdown,
}

impl RaftRole {
    /// The name used in messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Leader => "leader",
            Self::Follower => "follower",
            Self::Candidate => "candidate",
            Self::Learner => "learner",
            Self::Shutdown => "shutdown",
        }
    }
}

/// Whether the leader hears from a member.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum MemberHealth {
    /// It acknowledged the leader recently.
    Healthy,
    /// It has not acknowledged the leader for longer than an election timeout.
    Unreachable,
    /// The answering node does not lead, so it cannot tell.
    Unknown,
}

impl MemberHealth {
    /// The name used in messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Healthy => "healthy",
            Self::Unreachable => "unreachable",
            Self::Unknown => "unknown",
        }
    }
}

/// One member as the leader sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberStatus {
    /// Its raft id.
    pub node_id: u64,
    /// How to reach it.
    pub member: Member,
    /// Its role.
    pub role: MemberRole,
    /// Whether it answers the leader.
    pub health: MemberHealth,
    /// The last log index the leader knows it holds.
    pub matched: Option<u64>,
    /// How many entries it is behind the leader's last log index.
    pub lag: Option<u64>,
    /// Milliseconds since it last acknowledged the leader.
    pub last_ack_ms: Option<u64>,
}

/// The cluster as its leader sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterStatus {
    /// The cluster id.
    pub cluster_id: [u8; 16],
    /// The node that answered (the leader, unless none is known).
    pub node_id: u64,
    /// The leader.
    pub leader: Option<u64>,
    /// The current term.
    pub term: u64,
    /// What the answering node is doing.
    pub raft_state: RaftRole,
    /// The last log index of the answering node.
    pub last_log: Option<u64>,
    /// The committed index.
    pub committed: Option<u64>,
    /// The applied index of the answering node.
    pub applied: Option<u64>,
    /// Whether a quorum of voters answers the leader.
    pub healthy: bool,
    /// The version of the cluster configuration in effect.
    pub config_version: u64,
    /// Every member, voters first.
    pub members: Vec<MemberStatus>,
    /// Members whose state hash differed from the majority's at the answering node's latest
    /// consistency check of them (empty: none found); `iroh-raft check consistency` checks now.
    pub diverged: Vec<Divergence>,
}

impl ClusterStatus {
    /// What is wrong with the cluster as this status shows it, in words an operator can act on:
    /// no leader, no quorum, a quorum one failure from being lost, members that do not answer,
    /// replicas whose state diverged. Empty when all is well.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.leader.is_none() {
            problems.push("no leader is known: an election is under way or quorum is lost".into());
        }
        let voters: Vec<&MemberStatus> = self
            .members
            .iter()
            .filter(|m| m.role == MemberRole::Voter)
            .collect();
        let answering = voters
            .iter()
            .filter(|m| m.health == MemberHealth::Healthy)
            .count();
        let quorum = voters.len() / 2 + 1;
        for m in &self.members {
            if m.health == MemberHealth::Unreachable {
                problems.push(format!(
                    "{} {} does not answer the leader{}",
                    m.role,
                    m.node_id,
                    m.last_ack_ms
                        .map_or(String::new(), |ms| format!(" (last heard {ms} ms ago)"))
                ));
            }
        }
        if self.leader.is_some() && answering < quorum {
            problems.push(format!(
                "quorum lost: {answering} of {} voters answer, {quorum} are needed",
                voters.len()
            ));
        } else if self.leader.is_some() && answering == quorum && answering < voters.len() {
            problems.push(format!(
                "quorum at risk: {answering} of {} voters answer and {quorum} are needed; one more \
                 failure stops writes",
                voters.len()
            ));
        }
        for d in &self.diverged {
            problems.push(format!(
                "node {} diverged from the majority at index {}",
                d.node_id, d.index
            ));
        }
        problems
    }
}

/// One node's health.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthStatus {
    /// The node.
    pub node_id: u64,
    /// No problems.
    pub healthy: bool,
    /// What it is doing in raft.
    pub raft_state: RaftRole,
    /// The leader it knows of.
    pub leader: Option<u64>,
    /// The current term.
    pub term: u64,
    /// The committed index it knows of.
    pub committed: Option<u64>,
    /// The index it has applied.
    pub applied: Option<u64>,
    /// What is wrong, in words an operator can act on; empty when healthy.
    pub problems: Vec<String>,
    /// How long the node has run.
    pub uptime: Duration,
}

/// What a membership operation did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberOperationResponse {
    /// The member.
    pub node_id: u64,
    /// Its role now; `None` once removed.
    pub role: Option<MemberRole>,
    /// The log index of the last membership entry the operation wrote (`None`: nothing to do).
    pub log_index: Option<u64>,
    /// What happened, in words.
    pub message: String,
}

/// What a leadership change did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeadershipResponse {
    /// The leader before.
    pub previous_leader: u64,
    /// The leader now.
    pub new_leader: u64,
    /// The new leader's term.
    pub term: u64,
    /// From the request to the new leader being in office.
    pub transfer_duration: Duration,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(node_id: u64, role: MemberRole, health: MemberHealth) -> MemberStatus {
        MemberStatus {
            node_id,
            member: Member::default(),
            role,
            health,
            matched: None,
            lag: None,
            last_ack_ms: Some(4000),
        }
    }

    fn status(members: Vec<MemberStatus>) -> ClusterStatus {
        ClusterStatus {
            cluster_id: [0; 16],
            node_id: 1,
            leader: Some(1),
            term: 2,
            raft_state: RaftRole::Leader,
            last_log: None,
            committed: None,
            applied: None,
            healthy: true,
            config_version: 1,
            members,
            diverged: Vec::new(),
        }
    }

    #[test]
    fn a_member_down_is_named_and_the_quorum_risk_said() {
        use MemberHealth::*;
        use MemberRole::*;
        assert!(
            status(vec![
                member(1, Voter, Healthy),
                member(2, Voter, Healthy),
                member(3, Voter, Healthy)
            ])
            .problems()
            .is_empty()
        );
        let problems = status(vec![
            member(1, Voter, Healthy),
            member(2, Voter, Healthy),
            member(3, Voter, Unreachable),
        ])
        .problems();
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(
            problems[0].contains("voter 3 does not answer"),
            "{problems:?}"
        );
        assert!(
            problems[1].contains("quorum at risk: 2 of 3"),
            "{problems:?}"
        );
        let lost = status(vec![
            member(1, Voter, Healthy),
            member(2, Voter, Unreachable),
            member(3, Voter, Unreachable),
        ])
        .problems();
        assert!(
            lost.iter().any(|p| p.contains("quorum lost: 1 of 3")),
            "{lost:?}"
        );
        // A learner down does not put the quorum at risk.
        let learner = status(vec![
            member(1, Voter, Healthy),
            member(2, Voter, Healthy),
            member(3, Voter, Healthy),
            member(4, Learner, Unreachable),
        ])
        .problems();
        assert_eq!(learner.len(), 1, "{learner:?}");
        let mut no_leader = status(vec![member(1, Voter, Unknown)]);
        no_leader.leader = None;
        assert!(no_leader.problems()[0].contains("no leader"));
    }
}
