//! Tests across network namespaces: each node a host of its own, so a partition is real
//! (`netns.rs`). Needs root and iproute2 (`ip netns`).
//!
//! A test binary of its own, because cargo runs test binaries one after another: the interfaces
//! these tests add to the test's namespace and remove again look like a network change to every
//! iroh endpoint there, and a loopback test running beside them lost its connections in CI.

mod checked;
// The checked workload and its checker, shared with the `cluster` binary; these tests use a part.
#[allow(dead_code)]
#[path = "../cluster/checked_workload.rs"]
mod checked_workload;
#[path = "../cluster/linearizability.rs"]
mod linearizability;
mod netns;
mod partition;
// Shared with the `processes` binary, which uses all of it; these tests use a part.
#[allow(dead_code)]
#[path = "../processes/support.rs"]
mod support;
