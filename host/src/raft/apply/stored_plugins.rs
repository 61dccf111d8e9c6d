//! The plugin bytes a [`StateMachineStore`] holds besides the active state machine's: the access
//! policy the node's authorizer runs, the backup handlers, and backup images of its state.

use bytes::Bytes;

use crate::hash::sha256_hex;
use crate::proto::{PluginKind, PluginRecord};
use crate::raft::RaftStorageError;
use crate::raft::apply::state_machine_store::StateMachineStore;
use crate::raft::snapshot::image::{ImageFile, image_file};
use crate::store::StateExport;

impl StateMachineStore {
    /// The active access policy: its record (with the configuration deployed with it) and its
    /// `.wasm` bytes; `None` if no policy was ever deployed.
    pub fn active_policy(&self) -> Result<Option<(PluginRecord, Bytes)>, RaftStorageError> {
        Ok(self
            .plugins_of(PluginKind::Policy)?
            .into_iter()
            .next()
            .filter(|(record, _)| {
                self.published().registry.active(PluginKind::Policy) == Some(record)
            }))
    }

    /// The plugins of `kind` whose bytes this node holds: the active one first, then the earlier
    /// ones a rollback can return to, the most recent first.
    pub(crate) fn plugins_of(
        &self,
        kind: PluginKind,
    ) -> Result<Vec<(PluginRecord, Bytes)>, RaftStorageError> {
        let registry = self.published().registry;
        let Some(plugins) = registry.kind(kind) else {
            return Ok(Vec::new());
        };
        let mut held = Vec::new();
        for record in plugins.active.iter().chain(plugins.previous.iter().rev()) {
            let wasm =
                self.blobs
                    .get(&record.sha256)?
                    .ok_or_else(|| RaftStorageError::Corrupt {
                        subject: "plugin blobs",
                        reason: format!(
                            "the {kind} plugin {} has no stored bytes",
                            sha256_hex(&record.sha256)
                        ),
                    })?;
            held.push((record.clone(), wasm));
        }
        Ok(held)
    }

    /// Writes a backup image of `view` (a capture of this state machine) to a temporary file.
    pub(crate) fn backup_image(&self, view: &StateExport) -> Result<ImageFile, RaftStorageError> {
        image_file(&self.snapshots, view, &self.default, &self.blobs)
    }
}
