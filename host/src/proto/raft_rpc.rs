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
