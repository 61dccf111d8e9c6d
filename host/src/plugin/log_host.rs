//! The `log` host interface: plugin log lines go to `tracing`, tagged with the plugin's name. Each
//! world has its own generated `Level`; they all end in [`emit`].

use super::bindings::iroh_raft::plugin::log::{Host, Level};
use super::host_state::HostState;

/// A plugin's log line at `level`, tagged with `plugin`.
pub(crate) fn emit(plugin: &str, level: tracing::Level, message: &str) {
    match level {
        tracing::Level::TRACE => tracing::trace!(target: "iroh_raft::plugin", plugin, "{message}"),
        tracing::Level::DEBUG => tracing::debug!(target: "iroh_raft::plugin", plugin, "{message}"),
        tracing::Level::INFO => tracing::info!(target: "iroh_raft::plugin", plugin, "{message}"),
        tracing::Level::WARN => tracing::warn!(target: "iroh_raft::plugin", plugin, "{message}"),
        tracing::Level::ERROR => tracing::error!(target: "iroh_raft::plugin", plugin, "{message}"),
    }
}

impl Host for HostState {
    fn log(&mut self, level: Level, message: String) -> wasmtime::Result<()> {
        let level = match level {
            Level::Trace => tracing::Level::TRACE,
            Level::Debug => tracing::Level::DEBUG,
            Level::Info => tracing::Level::INFO,
            Level::Warn => tracing::Level::WARN,
            Level::Error => tracing::Level::ERROR,
        };
        emit(&self.plugin, level, &message);
        Ok(())
    }
}
