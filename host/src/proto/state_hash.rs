//! What `GetStateHash` answers: a member's state hash at one applied index ([`StateHash`]), or the
//! indexes it can hash ([`CapturePoints`]), and what a consistency check found ([`Divergence`]).
//!
//! How the hash is computed (what goes in, in which order) is in `raft/apply/state_hash.rs` and
//! `ARCHITECTURE.md`; this file only carries the figures.

use serde::{Deserialize, Serialize};

/// One member's state hash at an applied index: equal on every replica whose state machine
/// keyspace and replicated applied state are the same after applying the same log prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateHash {
    /// The member that hashed its state.
    pub node_id: u64,
    /// The applied index the state is from.
    pub index: u64,
    /// sha256 over the applied state and every key and value (see `ARCHITECTURE.md`).
    pub hash: [u8; 32],
}

/// The applied indexes at which a member kept a view of its state (its capture points), so a
/// caller can pick one every member holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CapturePoints {
    /// The member.
    pub node_id: u64,
    /// Its applied index now (`None`: nothing applied yet).
    pub applied: Option<u64>,
    /// The indexes it can hash, ascending: the last few check points (multiples of
    /// `check_every`) and the end of its most recent apply.
    pub indexes: Vec<u64>,
}

/// A member whose state hash differed from the one a majority of the members agreed on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Divergence {
    /// The member that differs.
    pub node_id: u64,
    /// The check point compared.
    pub index: u64,
    /// Its hash there.
    pub hash: [u8; 32],
    /// The hash the majority agrees on.
    pub majority: [u8; 32],
}
