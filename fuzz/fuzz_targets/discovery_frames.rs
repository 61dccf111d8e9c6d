//! `iroh-raft-discovery/0`: announces, cluster queries and joins, and their replies.
#![no_main]

use iroh_raft::proto::{DiscoveryReply, DiscoveryRequest};
use iroh_raft_fuzz::frame_round_trip;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    frame_round_trip::<DiscoveryRequest>(data);
    frame_round_trip::<DiscoveryReply>(data);
});
