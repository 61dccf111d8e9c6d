//! `iroh-raft-metrics/0`: requests and the snapshots answered.
#![no_main]

use iroh_raft::proto::{MetricsReply, MetricsRequest};
use iroh_raft_fuzz::frame_round_trip;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    frame_round_trip::<MetricsRequest>(data);
    frame_round_trip::<MetricsReply>(data);
});
