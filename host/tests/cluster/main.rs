//! Cluster tests over real iroh endpoints on loopback: formation through a join ticket, the data
//! path through every node, admission on the raft protocol, bad frames, restart from disk, plugin
//! deploys through the log, state hashes compared across replicas, the metrics protocol, backups, and checked histories
//! under injected faults.

mod access;
mod backup;
mod checked_workload;
mod deploy;
mod exactly_once;
mod fault_scenarios;
mod formation;
mod input_limits;
mod large_entries;
mod linearizability;
mod linearizable_kv;
mod long_migrate;
mod management;
mod metrics;
mod same_bytes;
mod state_hash;
mod support;
mod watch;
mod wire_faults;
