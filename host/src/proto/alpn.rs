//! The protocol names (ALPNs) a node serves, each versioned, and each frame size limit.

/// Raft RPCs between members: append-entries, vote, pre-vote, snapshots, transfer-leader.
pub const RAFT: &[u8] = b"iroh-raft/0";
/// Operators and applications: status, membership, writes and reads, deploys.
pub const MANAGEMENT: &[u8] = b"iroh-raft-mgmt/0";
/// Metric snapshots and subscriptions.
pub const METRICS: &[u8] = b"iroh-raft-metrics/0";
/// Joining: holders of a join ticket ask to be added.
pub const DISCOVERY: &[u8] = b"iroh-raft-discovery/0";

/// Default largest raft frame a leader sends: an append-entries batch or a snapshot chunk (the
/// replicated `max_raft_frame`).
pub const MAX_RAFT_FRAME: usize = 64 << 20;
/// Largest raft frame a member accepts, whatever the configuration: `max_raft_frame` may not be
/// set above it. A receiver does not use its own `max_raft_frame`, because a follower that has
/// not yet applied a raise would refuse the very batches that carry it.
pub const RAFT_FRAME_CEILING: usize = 1 << 30;
/// Largest management frame (a plugin deploy streams in chunks of at most this).
pub const MAX_MANAGEMENT_FRAME: usize = 16 << 20;
/// Largest discovery frame: join requests are small.
pub const MAX_DISCOVERY_FRAME: usize = 64 << 10;
/// Largest request frame a node accepts on the metrics protocol: requests name a few categories.
pub const MAX_METRICS_REQUEST: usize = 4 << 10;
/// Largest reply frame a metrics client accepts (a snapshot with many peers and keyspaces).
pub const MAX_METRICS_REPLY: usize = 4 << 20;
/// The four protocols a node serves, as labels for their figures.
pub const ALL: [&[u8]; 4] = [RAFT, MANAGEMENT, METRICS, DISCOVERY];
