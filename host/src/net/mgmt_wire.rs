//! The messages of `iroh-raft-mgmt/0`: a client sends [`ClientFrame`]s on a stream and gets exactly
//! one [`ServerFrame`] per request, with the request's id echoed. This is the data path (writes,
//! reads) and the status an operator needs to find the leader.

use std::fmt;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::RequestId;
use crate::plugin::{PluginKind, PluginRecord, PluginRegistry};
use crate::raft::{Member, PluginOutcome};

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
