//! Applying a `Restore` entry: every replica replaces its state machine's data with the backup
//! image the entry carries, at the entry's index.
//!
//! The verdict depends on the entry and the state before it alone, so every replica reaches the
//! same one: the image must hash to the sha256 the backup recorded, read back as a whole snapshot
//! stream (framing, key order, its own checksum), hold the state hash the backup recorded, and be
//! the data of the state machine that is active now (another plugin's data would not make sense
//! to it). A refusal fails the entry with the reason and changes nothing. Accepted, the pairs load
//! into a fresh data generation that becomes live in one durable batch together with the new
//! applied state. Only the data is restored: membership, configuration, plugins and client
//! sessions stay as the cluster has them.

use std::sync::Arc;

use openraft::type_config::alias::LogIdOf;

use crate::hash::{sha256, sha256_hex};
use crate::proto::{ApplyResponse, RestoreEntry, RestoreOutcome, TypeConfig};
use crate::raft::RaftStorageError;
use crate::raft::apply::activate::{Activator, ActiveMachine};
use crate::raft::apply::applied_state::AppliedState;
use crate::raft::apply::state_hash::hash_state;
use crate::raft::snapshot::format::{SnapshotHeader, SnapshotReader};

/// What an image says of itself once it verified.
pub(crate) struct CheckedImage {
    pub(crate) header: SnapshotHeader,
    pub(crate) pairs: u64,
}

/// Verifies `image` as the backup with `sha256` and `state_hash` recorded it: `Ok(Err(reason))`
/// for an image that does not hold what the backup says.
pub(crate) fn check_image(
    image: &[u8],
    expected_sha256: &[u8; 32],
    expected_state_hash: Option<&[u8; 32]>,
) -> Result<CheckedImage, String> {
    let found = sha256(image);
    if &found != expected_sha256 {
        return Err(format!(
            "the image hashes to {}, but the backup recorded {}: it was damaged or changed \
             after it was written",
            sha256_hex(&found),
            sha256_hex(expected_sha256)
        ));
    }
    let damaged = |error: crate::raft::SnapshotFormatError| {
        format!("the image is not a readable snapshot ({error})")
    };
    let (reader, header) = SnapshotReader::open(image).map_err(damaged)?;
    let (pairs, _) = reader.verify().map_err(damaged)?;
    if let Some(expected) = expected_state_hash {
        let found = image_state_hash(image).map_err(|e| e.to_string())?;
        if &found != expected {
            return Err(format!(
                "the image's state hash is {}, but the backup recorded {}",
                sha256_hex(&found),
                sha256_hex(expected)
            ));
        }
    }
    Ok(CheckedImage { header, pairs })
}

/// The state hash at the index `image` holds the state at: what `GetStateHash` answered there.
pub(crate) fn image_state_hash(image: &[u8]) -> Result<[u8; 32], RaftStorageError> {
    let (mut reader, header) = SnapshotReader::open(image)?;
    let state = applied_state_of(&header);
    let pairs = std::iter::from_fn(|| {
        reader
            .next_pair()
            .map_err(RaftStorageError::from)
            .transpose()
    });
    hash_state(&state, pairs)
}

/// The applied state a snapshot header describes.
pub(crate) fn applied_state_of(header: &SnapshotHeader) -> AppliedState {
    AppliedState {
        last_applied: header.last_log_id,
        last_membership: header.last_membership.clone(),
        plugin_sha256: header.plugin_sha256,
        config: header.config.clone(),
        plugins: header.plugins.clone(),
        sessions: header.sessions.clone(),
    }
}

impl Activator<'_> {
    /// Applies a `Restore` entry at `log_id`. `next` holds the state up to the entry before, all
    /// of it committed. On success the new data and `next` (advanced to the entry) are committed,
    /// and the applying and query instances are created afresh over them.
    pub(crate) fn restore(
        &self,
        machine: &mut ActiveMachine,
        next: &mut AppliedState,
        log_id: LogIdOf<TypeConfig>,
        entry: &RestoreEntry,
    ) -> Result<ApplyResponse, RaftStorageError> {
        let refuse = |reason: String| {
            tracing::warn!(
                index = log_id.index,
                backup = entry.backup_id,
                "restore refused: {reason}"
            );
            Ok(ApplyResponse::Failed(format!(
                "backup {} was not restored: {reason}; nothing was changed",
                entry.backup_id
            )))
        };
        let checked = match check_image(&entry.image, &entry.sha256, entry.state_hash.as_ref()) {
            Ok(checked) => checked,
            Err(reason) => return refuse(reason),
        };
        let header = &checked.header;
        if header.plugin_sha256 != next.plugin_sha256 {
            let version = |registry: &crate::proto::PluginRegistry, sha: &[u8; 32]| {
                registry
                    .active(crate::proto::PluginKind::StateMachine)
                    .filter(|record| &record.sha256 == sha)
                    .map(|record| format!(" (version {:?})", record.version))
                    .unwrap_or_default()
            };
            return refuse(format!(
                "it holds the data of state machine {}{}, but {}{} is active; deploy the \
                 backup's state machine first (`iroh-raft backup inspect` names it), then restore",
                &sha256_hex(&header.plugin_sha256)[..16],
                version(&header.plugins, &header.plugin_sha256),
                &sha256_hex(&next.plugin_sha256)[..16],
                version(&next.plugins, &next.plugin_sha256),
            ));
        }
        let backup_index = header.last_log_id.map_or(0, |id| id.index);

        // What came before is committed; the instance holds no writes. Load the pairs.
        let mut import = self.store.begin_import()?;
        let (mut reader, _) =
            SnapshotReader::open(&entry.image[..]).map_err(RaftStorageError::from)?;
        while let Some((key, value)) = reader.next_pair().map_err(RaftStorageError::from)? {
            import.put(key, value)?;
        }
        next.last_applied = Some(log_id);
        // Held across the flip so that no query pairs the old instance with the new data.
        let mut query = self.reader.lock().unwrap_or_else(|p| p.into_inner());
        import.finish(&next.to_mark()?)?;
        let limits = next.limits(self.limits);
        let applier = machine
            .plugin
            .applier(Arc::new(self.store.clone()), limits)?;
        *query = machine.plugin.reader(Arc::new(self.store.clone()), limits);
        drop(query);
        machine.applier = applier;
        tracing::info!(
            index = log_id.index,
            backup = entry.backup_id,
            backup_index,
            pairs = checked.pairs,
            "restored a backup"
        );
        Ok(ApplyResponse::Restored(RestoreOutcome {
            backup_id: entry.backup_id.clone(),
            index: log_id.index,
            backup_index,
            pairs: checked.pairs,
        }))
    }
}
