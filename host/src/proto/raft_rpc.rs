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
pub(crate) enum RaftRequest {
    Vote(VoteRequest<C>),
    PreVote(VoteRequest<C>),
    AppendEntries(AppendEntriesRequest<C>),
    TransferLeader(TransferLeaderRequest<C>),
    /// Opens a pipelined append stream: `AppendEntriesRequest` frames follow.
    StreamAppend,
    /// Opens a snapshot transfer: chunk frames (`Vec<u8>` bodies) follow, an empty one last.
    Snapshot {
        vote: VoteOf<C>,
        meta: SnapshotMetaOf<C>,
    },
}

/// A reply frame.
#[derive(Debug, Serialize, Deserialize)]
#[serde(bound = "")]
pub(crate) enum RaftReply {
    Vote(VoteResponse<C>),
    AppendEntries(AppendEntriesResponse<C>),
    TransferLeader(TransferLeaderResponse<C>),
    StreamAppend(StreamAppendResult<C>),
    Snapshot(SnapshotResponse<C>),
    /// The receiver could not serve the request; the text says why.
    Refused(String),
}
