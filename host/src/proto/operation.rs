//! What a client asks on `iroh-raft-mgmt/0`: the [`Operation`]s, how fresh a read must be, and a
//! plugin deploy as the client sends it.

use std::fmt;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::{
    ClusterConfig, Member, MemberRole, MetricsCategory, PluginKind, SessionTag, WatchRequest,
};

/// How fresh a read must be.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Consistency {
    /// Sees every write acknowledged before the read began (read-index through the leader).
    #[default]
    Linearizable,
    /// Served by the leader while its lease holds: no round trip, assumes bounded clock drift.
    Lease,
    /// Served by whichever node is asked, from what it has applied: may be behind.
    Stale,
}

impl fmt::Display for Consistency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Linearizable => "linearizable",
            Self::Lease => "lease",
            Self::Stale => "stale",
        })
    }
}

impl std::str::FromStr for Consistency {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "linearizable" => Ok(Self::Linearizable),
            "lease" => Ok(Self::Lease),
            "stale" => Ok(Self::Stale),
            other => Err(format!(
                "unknown consistency `{other}`: expected linearizable, lease or stale"
            )),
        }
    }
}

/// What a client asks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Operation {
    /// Propose a state-machine command; answered once it is applied.
    Write {
        /// The command, handed to the plugin unchanged.
        command: Bytes,
        /// The client's session, so a retried write applies once (`None`: no such promise).
        session: Option<SessionTag>,
    },
    /// Ask the state machine.
    Read {
        /// The query, handed to the plugin unchanged.
        query: Bytes,
        /// How fresh the answer must be.
        consistency: Consistency,
    },
    /// Who leads, who is a member, how far this node has applied.
    Status,
    /// The cluster as the leader sees it: members with role, health and replication lag.
    GetClusterStatus,
    /// Adds a member (the node at `member` must be running, waiting to be added).
    AddMember {
        /// The raft id it gets.
        node_id: u64,
        /// Its endpoint key and addresses.
        member: Member,
        /// Voter (added as a learner, promoted once caught up), learner or observer.
        role: MemberRole,
    },
    /// Removes a member; removing the leader hands leadership to another voter first.
    RemoveMember {
        /// The member.
        node_id: u64,
    },
    /// Promotes or demotes a member.
    UpdateMemberRole {
        /// The member.
        node_id: u64,
        /// Its new role.
        role: MemberRole,
    },
    /// Hands leadership to `target_node`, or to the most caught-up voter.
    TransferLeadership {
        /// A caught-up voter, or `None` to let the leader pick.
        target_node: Option<u64>,
    },
    /// The leader hands leadership to the most caught-up voter.
    StepDown,
    /// The cluster configuration in effect on the answering node.
    GetConfiguration,
    /// Replaces the cluster configuration; `config.version` must be the version in effect.
    UpdateConfiguration {
        /// The new settings.
        config: ClusterConfig,
    },
    /// The answering node's health.
    GetHealthStatus,
    /// The answering node's figures (every category when the list is empty).
    GetMetrics {
        /// Which categories.
        categories: Vec<MetricsCategory>,
    },
    /// Where the answering node's log stands.
    GetLogInfo,
    /// Purges the answering node's log up to `index`, which its snapshot must cover.
    CompactLog {
        /// The last index to purge.
        index: u64,
    },
    /// Entries `start..end` of the answering node's log.
    GetLogEntries {
        /// The first index.
        start: u64,
        /// One past the last index.
        end: u64,
    },
    /// Makes the answering node take a snapshot now; answered once it is done.
    TriggerSnapshot,
    /// The answering node's current snapshot.
    GetSnapshotInfo,
    /// The answering node takes a backup of its state (at least every write committed before
    /// the request) and stores it through the active backup handler, in its `--backup-dir`.
    CreateBackup {
        /// Operator metadata stored with it (keys must not start with `iroh-raft.`).
        metadata: Vec<(String, String)>,
    },
    /// The leader reads the backup through its backup handler, checks it, and replicates it
    /// through the log: every replica replaces its state machine's data at the same index.
    RestoreBackup {
        /// The backup.
        backup_id: String,
    },
    /// The backups in the answering node's backup directory, through the active backup handler.
    ListBackups,
    /// Turns this stream into an event subscription: after the `Subscribed` reply, the node sends
    /// an `Event` frame per event until the client closes the stream.
    Subscribe,
    /// Deploy a plugin through the log. The request frame carries `wasm` empty and `size` set; the
    /// bytes follow on the same stream as [`ClientFrame::Chunk`](super::ClientFrame::Chunk)s (see `net/plugin_upload.rs`).
    PluginDeploy(DeployRequest),
    /// The active plugin of each kind, with hash, version, activation index and history.
    PluginList,
    /// Reactivate the previous plugin of `kind`, through the log.
    PluginRollback {
        /// Which kind.
        kind: PluginKind,
    },
    // Variants below were added after the ones above; new ones go last, so that every encoding
    // above stays as it was.
    /// The answering node's state hash at applied index `at_index` (a capture point it holds; if
    /// it has not reached the index yet it waits a few seconds for it), or with `None` the
    /// capture points it holds, so that a caller can pick one every member has.
    GetStateHash {
        /// The applied index to hash at, or `None` to list the capture points.
        at_index: Option<u64>,
    },
    /// Up to `max` bytes (at most 1 MiB) of backup `backup_id`'s image from `offset`, through
    /// the answering node's backup handler (`backup export`).
    ReadBackup {
        /// The backup.
        backup_id: String,
        /// Where to start.
        offset: u64,
        /// How many bytes at most.
        max: u32,
    },
    /// Deletes backup `backup_id` from the answering node's backup directory, through the handler
    /// that knows it.
    DeleteBackup {
        /// The backup.
        backup_id: String,
    },
    /// A join ticket through the answering node (it carries the cluster's join secret, so it is
    /// judged as `member.add`).
    GetJoinTicket,
    /// Turns this stream into a watch: after the `Watching` reply, the node sends every change
    /// its state machine makes to the keys asked for, as `Changes` frames in log order, until
    /// the client closes the stream or a `WatchEnded` frame says why it stopped.
    Watch(WatchRequest),
}

/// A plugin deploy as a client asks for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeployRequest {
    /// Which world the plugin implements.
    pub kind: PluginKind,
    /// The operator's version string ("" for none).
    pub version: String,
    /// Configuration to deploy with it (at most [`MAX_PLUGIN_CONFIG`] bytes).
    pub config: Bytes,
    /// sha256 of the `.wasm` bytes; the node checks the upload against it.
    pub sha256: [u8; 32],
    /// Size of the `.wasm` bytes (at most [`MAX_PLUGIN_BYTES`](super::MAX_PLUGIN_BYTES)).
    pub size: u64,
    /// The bytes: empty on the wire (they follow as chunks), filled in by the receiving node.
    pub wasm: Bytes,
}

/// The largest configuration a plugin may be deployed with.
pub const MAX_PLUGIN_CONFIG: usize = 64 << 10;
