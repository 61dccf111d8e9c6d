//! The messages of `iroh-raft/0`. Each RPC is one bi-stream: a [`RaftRequest`] frame, then the
//! reply frames. `StreamAppend` keeps its stream open: append-entries frames flow one way and
//! their results come back in order (pipelined replication). `Snapshot` is followed by chunk
//! frames and an empty chunk that ends it.

use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, StreamAppendResult,
    TransferLeaderRequest, TransferLeaderResponse, VoteRequest, VoteResponse,
};
use openraft::type_config::alias::{SnapshotMetaOf, VoteOf};
use serde::{Deserialize, Serialize};

use super::TypeConfig;

type C = TypeConfig;

/// The first frame of a raft stream.
#[derive(Debug, Serialize, Deserialize)]
#[serde(bound = "")]
pub enum RaftRequest {
    /// A candidate asks for this member's vote.
    Vote(VoteRequest<C>),
    /// A would-be candidate asks whether it could win (pre-vote).
    PreVote(VoteRequest<C>),
    /// One append-entries batch (or a heartbeat).
    AppendEntries(AppendEntriesRequest<C>),
    /// The leader hands leadership to this member.
    TransferLeader(TransferLeaderRequest<C>),
    /// Opens a pipelined append stream: `AppendEntriesRequest` frames follow.
    StreamAppend,
    /// Opens a snapshot transfer: chunk frames (`Vec<u8>` bodies) follow, an empty one last.
    Snapshot {
        /// The sender's vote.
        vote: VoteOf<C>,
        /// What the snapshot holds.
        meta: SnapshotMetaOf<C>,
    },
}

/// A reply frame.
#[derive(Debug, Serialize, Deserialize)]
#[serde(bound = "")]
pub enum RaftReply {
    /// The answer to `Vote` or `PreVote`.
    Vote(VoteResponse<C>),
    /// The answer to `AppendEntries`.
    AppendEntries(AppendEntriesResponse<C>),
    /// The answer to `TransferLeader`.
    TransferLeader(TransferLeaderResponse<C>),
    /// One result of a pipelined append stream, in request order.
    StreamAppend(StreamAppendResult<C>),
    /// The answer to a finished snapshot transfer.
    Snapshot(SnapshotResponse<C>),
    /// The receiver could not serve the request; the text says why.
    Refused(String),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::{decode_body, encode_frame};
    use proptest::prelude::*;

    proptest! {
        /// Any bytes a peer sends on `iroh-raft/0` decode to a request or a reply that encodes
        /// back to the same bytes, or are an error; never a panic (the fuzz target `raft_frames`
        /// runs the same property far longer).
        #[test]
        fn garbage_never_panics_and_what_decodes_round_trips(
            bytes in proptest::collection::vec(any::<u8>(), 0..1024)
        ) {
            if let Ok(request) = decode_body::<RaftRequest>(&bytes) {
                let encoded = encode_frame(&request).unwrap();
                let again = decode_body::<RaftRequest>(&encoded[4..]).unwrap();
                prop_assert_eq!(encode_frame(&again).unwrap(), encoded);
            }
            if let Ok(reply) = decode_body::<RaftReply>(&bytes) {
                let encoded = encode_frame(&reply).unwrap();
                let again = decode_body::<RaftReply>(&encoded[4..]).unwrap();
                prop_assert_eq!(encode_frame(&again).unwrap(), encoded);
            }
        }
    }
}
