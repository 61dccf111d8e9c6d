//! The `log` host interface: plugin log lines go to `tracing`, tagged with the plugin's name.

use super::bindings::iroh_raft::plugin::log::{Host, Level};
use super::host_state::HostState;

impl Host for HostState {
    fn log(&mut self, level: Level, message: String) -> wasmtime::Result<()> {
        let plugin = &*self.plugin;
        match level {
            Level::Trace => tracing::trace!(target: "iroh_raft::plugin", plugin, "{message}"),
            Level::Debug => tracing::debug!(target: "iroh_raft::plugin", plugin, "{message}"),
            Level::Info => tracing::info!(target: "iroh_raft::plugin", plugin, "{message}"),
            Level::Warn => tracing::warn!(target: "iroh_raft::plugin", plugin, "{message}"),
            Level::Error => tracing::error!(target: "iroh_raft::plugin", plugin, "{message}"),
        }
        Ok(())
    }
}
