//! Integration tests of the raft storage layer: openraft's storage conformance suite against the
//! fjall log store and the kv plugin's state machine, restarts, snapshot transfer between stores,
//! damaged data on disk, a torn journal tail, group commit, exact state hashes at check points, and a one-node
//! openraft cluster on top of it all.

mod damage;
mod group_commit;
mod install;
mod one_node;
mod restart;
mod state_hash;
mod suite;
mod support;
mod torn_tail;
