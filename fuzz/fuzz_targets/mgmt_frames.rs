//! `iroh-raft-mgmt/0`: what a client sends a node (requests, forwarded requests, upload chunks,
//! watch requests) and what a node answers (replies, events, watch changes).
#![no_main]

use iroh_raft::proto::{ClientFrame, ServerFrame, WatchChange, WatchEnd, WatchRequest, WatchStart};
use iroh_raft_fuzz::frame_round_trip;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    frame_round_trip::<ClientFrame>(data);
    frame_round_trip::<ServerFrame>(data);
    frame_round_trip::<WatchRequest>(data);
    frame_round_trip::<WatchStart>(data);
    frame_round_trip::<WatchChange>(data);
    frame_round_trip::<WatchEnd>(data);
});
