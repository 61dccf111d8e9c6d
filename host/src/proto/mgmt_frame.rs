//! The frames of `iroh-raft-mgmt/0`: a client sends [`ClientFrame`]s on a stream and gets exactly
//! one [`ServerFrame`] per request, with the request's id echoed.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::{
    ClusterEvent, HealthStatus, Operation, Reply, RequestError, RequestId, WatchChange, WatchEnd,
};

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
    /// A request a member forwards to the leader on behalf of the client that sent it. Only a
    /// member of the cluster may send one (the node it reached judged it already, as `caller`);
    /// from anyone else it is refused. A forwarded deploy's bytes follow as chunks, as for a
    /// `Request`.
    Forwarded {
        /// Echoed in the reply.
        id: RequestId,
        /// The endpoint id of the client the member is vouching for.
        caller: [u8; 32],
        /// What it asked.
        operation: Operation,
    },
}

/// The size of the chunks a client streams an upload in.
pub const UPLOAD_CHUNK: usize = 256 << 10;

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
        /// When the node published it, in milliseconds since the Unix epoch (the node's clock).
        at_unix_ms: u64,
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
    // Variants below were added after the ones above; new ones go last.
    /// Changes to the keys the `Watch` request `id` asked for, in log order.
    Changes {
        /// The `Watch` request's id.
        id: RequestId,
        /// The changes, each tagged with the index that made it.
        changes: Vec<WatchChange>,
    },
    /// The watch opened by request `id` ended: every change before the index it names was sent.
    /// The stream closes after it.
    WatchEnded {
        /// The `Watch` request's id.
        id: RequestId,
        /// Why.
        end: WatchEnd,
    },
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use crate::proto::*;
    use proptest::prelude::*;

    fn operation() -> impl Strategy<Value = Operation> {
        let bytes = proptest::collection::vec(any::<u8>(), 0..64).prop_map(Bytes::from);
        prop_oneof![
            bytes.clone().prop_map(|command| Operation::Write {
                command,
                session: None
            }),
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
            proptest::option::of(any::<u64>())
                .prop_map(|at_index| Operation::GetStateHash { at_index }),
            proptest::collection::vec(("[a-z]{0,4}", "[ -~]{0,8}"), 0..3)
                .prop_map(|metadata| Operation::CreateBackup { metadata }),
            ("[a-z0-9-]{0,12}", any::<u64>(), any::<u32>()).prop_map(|(backup_id, offset, max)| {
                Operation::ReadBackup {
                    backup_id,
                    offset,
                    max,
                }
            }),
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
        fn state_hash_frames_round_trip(id in any::<[u8; 16]>(), index in any::<u64>(), hash in any::<[u8; 32]>(), held in proptest::collection::vec(any::<u64>(), 0..5)) {
            for result in [
                Ok(Reply::StateHash(StateHash { node_id: 2, index, hash })),
                Ok(Reply::CapturePoints(CapturePoints { node_id: 3, applied: Some(index), indexes: held.clone() })),
                Err(RequestError::NoStateCapture { index, held: held.clone(), applied: None }),
            ] {
                let frame = ServerFrame::Response { id, result };
                let bytes = encode_frame(&frame).unwrap();
                prop_assert_eq!(decode_body::<ServerFrame>(&bytes[4..]).unwrap(), frame);
            }
            let frame = ServerFrame::Event { id, event: ClusterEvent::DivergenceDetected { index, local: hash, majority: [0; 32] }, at_unix_ms: index };
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
