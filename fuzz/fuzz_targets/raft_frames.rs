//! `iroh-raft/0`: the raft RPCs a peer sends and their replies, and the log payload every replica
//! decodes from its log.
#![no_main]

use iroh_raft::proto::LogPayload;
use iroh_raft::proto::raft_rpc::{RaftReply, RaftRequest};
use iroh_raft_fuzz::frame_round_trip;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    frame_round_trip::<RaftRequest>(data);
    frame_round_trip::<RaftReply>(data);
    frame_round_trip::<LogPayload>(data);
});
