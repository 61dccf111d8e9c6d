//! Multi-process tests: real `iroh-raft node` processes on loopback, killed with SIGKILL and
//! restarted from their data directories (under the checked workload too), frozen with SIGSTOP, disks that fill up or lose unsynced writes, plugin deploys and the consistency check through the CLI, the Prometheus exposition, `top` under a pty, backups and an offline restore.

mod access_cli;
mod backup_cli;
mod checked;
// The checked workload and its checker, shared with the `cluster` binary; these tests use a part.
#[allow(dead_code)]
#[path = "../cluster/checked_workload.rs"]
mod checked_workload;
mod cli;
mod consistency_cli;
mod deploy;
mod disk_faults;
mod events_cli;
mod exactly_once;
mod fatal;
mod json_cli;
mod json_shape;
mod kill;
#[path = "../cluster/linearizability.rs"]
mod linearizability;
mod manage_cli;
mod membership_cli;
mod metrics_cli;
mod operator_cli;
mod seed_cli;
mod support;
mod top_cli;
mod watch_cli;
