//! [`ClusterEvent`]: what a node observed, as streamed to management subscribers.

use serde::{Deserialize, Serialize};

use super::{MemberRole, PluginKind};

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
        /// The applied index it holds the state at.
        index: u64,
        /// The node that took it.
        node_id: u64,
        /// Its size in bytes.
        size: u64,
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
    /// This node's state hash at a check point differs from the one a majority of the members
    /// agree on: its state machine diverged (a bug, a bad disk, or a change behind raft's back).
    /// Stop it and replace its data from a healthy member.
    DivergenceDetected {
        /// The check point (an applied index).
        index: u64,
        /// This node's hash there.
        local: [u8; 32],
        /// The majority's hash there.
        majority: [u8; 32],
    },
    /// This node's access policy refused a request (every denial is published).
    AccessDenied {
        /// The caller's endpoint id.
        caller: [u8; 32],
        /// The operation's name.
        operation: String,
        /// What it acted on ("" for none).
        resource: String,
        /// Why.
        reason: String,
    },
    /// `plugin rollback` reactivated an earlier plugin.
    PluginRolledBack {
        /// Which kind.
        kind: PluginKind,
        /// The sha256 of the plugin active again.
        sha256: [u8; 32],
        /// Its version.
        version: String,
        /// The log index where it took effect.
        index: u64,
    },
    /// A backup replaced the state machine's data (`backup restore`), on every replica at
    /// `index`.
    BackupRestored {
        /// The backup's id.
        backup_id: String,
        /// The log index the restore took effect at.
        index: u64,
    },
}
