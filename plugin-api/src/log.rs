//! Logging through the host's `tracing`. Lines are tagged with the plugin's name on the host side.

#[cfg(feature = "state-machine")]
use crate::bindings::state_machine::iroh_raft::plugin::log as host;

#[cfg(all(feature = "policy", not(feature = "state-machine")))]
use crate::bindings::policy::iroh_raft::plugin::log as host;

#[cfg(all(
    feature = "backup",
    not(any(feature = "state-machine", feature = "policy"))
))]
use crate::bindings::backup::iroh_raft::plugin::log as host;

pub use host::Level;

/// Emits one log line at `level`.
pub fn log(level: Level, message: &str) {
    host::log(level, message);
}

/// Emits one `info` line.
pub fn info(message: &str) {
    log(Level::Info, message);
}

/// Emits one `warn` line.
pub fn warn(message: &str) {
    log(Level::Warn, message);
}

/// Emits one `debug` line.
pub fn debug(message: &str) {
    log(Level::Debug, message);
}
