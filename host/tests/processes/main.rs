//! Multi-process tests: real `iroh-raft node` processes on loopback, killed with SIGKILL and
//! restarted from their data directories.

mod cli;
mod kill;
mod manage_cli;
mod support;
