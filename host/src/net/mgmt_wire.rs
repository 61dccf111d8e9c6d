//! The messages of `iroh-raft-mgmt/0`: a client sends [`ClientFrame`]s on a stream and gets exactly
//! one [`ServerFrame`] per request, with the request's id echoed. This is the data path (writes,
//! reads) and the status an operator needs to find the leader.

use std::fmt;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::RequestId;
use super::mgmt_types::{
    ClusterStatus, HealthStatus, LeadershipResponse, LogEntryInfo, LogInfo,
    MemberOperationResponse, SnapshotInfo,
};
use crate::events::{ClusterEvent, MemberRole};
use crate::metrics::{MetricsCategory, MetricsSnapshot};
use crate::plugin::{PluginKind, PluginRecord, PluginRegistry};
use crate::raft::{ClusterConfig, Member, PluginOutcome};

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
    /// Creates a backup through the backup plugin.
    CreateBackup {
        /// Operator metadata stored with it.
        metadata: Bytes,
    },
    /// Restores a backup through the backup plugin.
    RestoreBackup {
        /// The backup.
        backup_id: String,
    },
    /// Lists backups through the backup plugin.
    ListBackups,
    /// Turns this stream into an event subscription: after the `Subscribed` reply, the node sends
    /// an `Event` frame per event until the client closes the stream.
    Subscribe,
    /// Deploy a plugin through the log. The request frame carries `wasm` empty and `size` set; the
    /// bytes follow on the same stream as [`ClientFrame::Chunk`]s (see `plugin_upload.rs`).
    PluginDeploy(DeployRequest),
    /// The active plugin of each kind, with hash, version, activation index and history.
    PluginList,
    /// Reactivate the previous plugin of `kind`, through the log.
    PluginRollback {
        /// Which kind.
        kind: PluginKind,
    },
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
    /// Size of the `.wasm` bytes (at most [`crate::MAX_PLUGIN_BYTES`]).
    pub size: u64,
    /// The bytes: empty on the wire (they follow as chunks), filled in by the receiving node.
    pub wasm: Bytes,
}

/// The largest configuration a plugin may be deployed with.
pub const MAX_PLUGIN_CONFIG: usize = 64 << 10;

/// A frame from a client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClientFrame {
    /// One request.
    Request {
        /// Echoed in the reply.
        id: RequestId,
        /// What is asked.
        operation: Operation,
    },
    /// A liveness and health probe, answered by the node itself without touching raft.
    HealthCheck {
        /// Echoed in the answer.
        id: RequestId,
    },
    /// The next piece of an upload that request `id` announced (a plugin deploy's bytes).
    Chunk {
        /// The request the bytes belong to.
        id: RequestId,
        /// The bytes, at most [`UPLOAD_CHUNK`] of them.
        data: Bytes,
    },
}

/// The size of the chunks a client streams an upload in.
pub const UPLOAD_CHUNK: usize = 256 << 10;

/// A successful reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Reply {
    /// The write was committed at `index` and applied; `outcome` is the plugin's response or its
    /// error (a committed entry the plugin refused is still committed, on every replica alike).
    Written {
        /// The log index of the entry.
        index: u64,
        /// The plugin's response bytes, or why it failed.
        outcome: Result<Bytes, String>,
    },
    /// The query's answer, or the plugin's error.
    Read {
        /// The plugin's answer, or why it failed.
        outcome: Result<Bytes, String>,
    },
    /// The node's view of the cluster.
    Status(NodeStatus),
    /// The cluster as the leader sees it.
    ClusterStatus(ClusterStatus),
    /// What a membership operation did.
    Member(MemberOperationResponse),
    /// What a leadership change did.
    Leadership(LeadershipResponse),
    /// The cluster configuration (after an update: the new one).
    Configuration(ClusterConfig),
    /// A node's health.
    Health(HealthStatus),
    /// A node's figures.
    Metrics(Box<MetricsSnapshot>),
    /// Where a node's log stands.
    LogInfo(LogInfo),
    /// The log was purged up to `purged`.
    LogCompacted {
        /// The last purged index.
        purged: u64,
    },
    /// Log entries, in order.
    LogEntries(Vec<LogEntryInfo>),
    /// A node's current snapshot.
    Snapshot(SnapshotInfo),
    /// The subscription is open; events follow.
    Subscribed,
    /// A deploy or rollback took effect on every replica at its index, or changed nothing.
    Plugin(PluginOutcome),
    /// The plugins as this node has applied them.
    Plugins {
        /// Active plugins, rollback targets and history per kind.
        registry: PluginRegistry,
        /// The bundled state machine the cluster runs while none was deployed.
        bundled: Option<PluginRecord>,
    },
}

/// One node's view of the cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeStatus {
    /// The cluster id.
    pub cluster_id: [u8; 16],
    /// This node's raft id.
    pub node_id: u64,
    /// The leader it knows of.
    pub leader: Option<u64>,
    /// The current term.
    pub term: u64,
    /// Voters and learners with their addresses.
    pub voters: Vec<(u64, Member)>,
    /// Non-voting members.
    pub learners: Vec<(u64, Member)>,
    /// The last log index this node has applied.
    pub applied: Option<u64>,
}

/// Why a request failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[non_exhaustive]
pub enum RequestError {
    /// No leader is known right now (an election is under way); retry shortly.
    #[error("the cluster has no leader right now (an election is under way); retry shortly")]
    NoLeader,
    /// The request could not be decoded.
    #[error("malformed request: {0}")]
    Malformed(String),
    /// The request was larger than the protocol allows.
    #[error("request of {len} bytes exceeds the limit of {max} bytes")]
    TooLarge {
        /// Its size.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The node could not serve it; the text says why and what to do.
    #[error("{0}")]
    Unavailable(String),
    /// No member has this id.
    #[error(
        "node {node_id} is not a member of this cluster (`iroh-raft member list` shows the members)"
    )]
    UnknownMember {
        /// The id asked for.
        node_id: u64,
    },
    /// The id or key is taken.
    #[error("{0}")]
    MemberExists(String),
    /// The request is well formed but cannot be done; the text says why and what to do instead.
    #[error("{0}")]
    Refused(String),
    /// A leadership transfer was refused.
    #[error("leadership transfer refused: {0}")]
    TransferRefused(String),
    /// The configuration is invalid.
    #[error("invalid configuration: `{field}` {reason}")]
    InvalidConfig {
        /// The offending field.
        field: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The configuration changed since the client read it.
    #[error("the configuration is at version {current}, not {expected}: read it again and retry")]
    ConfigConflict {
        /// The version the update was based on.
        expected: u64,
        /// The version in effect.
        current: u64,
    },
    /// A log range that cannot be served.
    #[error("log range {start}..{end}: {reason}")]
    LogRange {
        /// The first index asked for.
        start: u64,
        /// One past the last index asked for.
        end: u64,
        /// Why it cannot be served.
        reason: String,
    },
    /// Log compaction beyond what the snapshot covers.
    #[error(
        "cannot compact the log up to {index}: the snapshot covers up to {snapshot:?}; entries after it are still needed (take a snapshot first: `iroh-raft snapshot trigger`)"
    )]
    CompactBeyondSnapshot {
        /// The index asked for.
        index: u64,
        /// What the snapshot covers.
        snapshot: Option<u64>,
    },
    /// No snapshot exists yet.
    #[error("this node has no snapshot yet (`iroh-raft snapshot trigger` takes one)")]
    NoSnapshot,
    /// Backups need a backup plugin.
    #[error(
        "no backup handler is deployed: deploy one with `iroh-raft plugin deploy --kind backup FILE.wasm`"
    )]
    NoBackupHandler,
    /// A plugin deploy or rollback was refused (the old plugin stays active); the text says why.
    #[error("refused: {0}")]
    PluginRefused(String),
}

/// A frame from the node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ServerFrame {
    /// The answer to request `id`.
    Response {
        /// The request's id.
        id: RequestId,
        /// The reply, or why there is none.
        result: Result<Reply, RequestError>,
    },
    /// An event of the subscription opened by request `id`.
    Event {
        /// The `Subscribe` request's id.
        id: RequestId,
        /// What happened.
        event: ClusterEvent,
    },
    /// The answer to a health check.
    HealthCheck {
        /// The check's id.
        id: RequestId,
        /// The node's health.
        health: HealthStatus,
    },
    /// A frame that could not be tied to a request (it did not decode); the stream closes after it.
    Error(RequestError),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::{decode_body, encode_frame};
    use proptest::prelude::*;

    fn operation() -> impl Strategy<Value = Operation> {
        let bytes = proptest::collection::vec(any::<u8>(), 0..64).prop_map(Bytes::from);
        prop_oneof![
            bytes
                .clone()
                .prop_map(|command| Operation::Write { command }),
            (bytes.clone(), 0..3u8).prop_map(|(query, c)| Operation::Read {
                query,
                consistency: [
                    Consistency::Linearizable,
                    Consistency::Lease,
                    Consistency::Stale
                ][c as usize],
            }),
            Just(Operation::Status),
            Just(Operation::PluginList),
            (0..3usize).prop_map(|k| Operation::PluginRollback {
                kind: PluginKind::ALL[k]
            }),
            (
                0..3usize,
                "[a-z0-9.]{0,8}",
                any::<[u8; 32]>(),
                any::<u64>(),
                bytes.clone()
            )
                .prop_map(
                    |(k, version, sha256, size, config)| Operation::PluginDeploy(DeployRequest {
                        kind: PluginKind::ALL[k],
                        version,
                        config,
                        sha256,
                        size,
                        wasm: Bytes::new(),
                    })
                ),
        ]
    }

    proptest! {
        #[test]
        fn client_frames_round_trip(id in any::<[u8; 16]>(), operation in operation()) {
            let frame = ClientFrame::Request { id, operation };
            let bytes = encode_frame(&frame).unwrap();
            prop_assert_eq!(decode_body::<ClientFrame>(&bytes[4..]).unwrap(), frame);
        }

        #[test]
        fn chunk_frames_round_trip(id in any::<[u8; 16]>(), data in proptest::collection::vec(any::<u8>(), 0..64)) {
            let frame = ClientFrame::Chunk { id, data: Bytes::from(data) };
            let bytes = encode_frame(&frame).unwrap();
            prop_assert_eq!(decode_body::<ClientFrame>(&bytes[4..]).unwrap(), frame);
        }

        #[test]
        fn plugin_replies_round_trip(id in any::<[u8; 16]>(), sha256 in any::<[u8; 32]>(), index in any::<u64>(), version in "[a-z0-9.]{0,8}") {
            for result in [
                Ok(Reply::Plugin(PluginOutcome::Activated {
                    kind: PluginKind::StateMachine, sha256, version: version.clone(), index, from_version: String::new(),
                })),
                Ok(Reply::Plugin(PluginOutcome::Unchanged {
                    kind: PluginKind::Policy, sha256, version: version.clone(), since: index,
                })),
                Ok(Reply::Plugins { registry: PluginRegistry::default(), bundled: None }),
                Err(RequestError::PluginRefused(version.clone())),
            ] {
                let frame = ServerFrame::Response { id, result };
                let bytes = encode_frame(&frame).unwrap();
                prop_assert_eq!(decode_body::<ServerFrame>(&bytes[4..]).unwrap(), frame);
            }
        }

        #[test]
        fn server_frames_round_trip(id in any::<[u8; 16]>(), index in any::<u64>(), ok in any::<bool>()) {
            let outcome = if ok { Ok(Bytes::from_static(b"r")) } else { Err("no".to_string()) };
            let frame = ServerFrame::Response { id, result: Ok(Reply::Written { index, outcome }) };
            let bytes = encode_frame(&frame).unwrap();
            prop_assert_eq!(decode_body::<ServerFrame>(&bytes[4..]).unwrap(), frame);
        }

        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = decode_body::<ClientFrame>(&bytes);
            let _ = decode_body::<ServerFrame>(&bytes);
        }
    }

    #[test]
    fn consistency_parses_its_own_names() {
        for c in [
            Consistency::Linearizable,
            Consistency::Lease,
            Consistency::Stale,
        ] {
            assert_eq!(c.to_string().parse::<Consistency>().unwrap(), c);
        }
        assert!(
            "eventual"
                .parse::<Consistency>()
                .unwrap_err()
                .contains("linearizable")
        );
    }
}
