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
use crate::proto::{ApplyResponse, PluginRegistry, RestoreEntry, RestoreOutcome, TypeConfig};
use crate::raft::RaftStorageError;
use crate::raft::apply::activate::{Activator, ActiveMachine};
use crate::raft::apply::applied_state::AppliedState;
use crate::raft::apply::state_hash::{StateHasher, hash_state};
use crate::raft::snapshot::format::{SnapshotHeader, SnapshotReader};

/// Why `image` does not hash to `expected`, if it does not.
pub(crate) fn check_sha256(image: &[u8], expected: &[u8; 32]) -> Result<(), String> {
    let found = sha256(image);
    if &found != expected {
        return Err(format!(
            "the image hashes to {}, but the backup recorded {}: it was damaged or changed \
             after it was written",
            sha256_hex(&found),
            sha256_hex(expected)
        ));
    }
    Ok(())
}

/// What the leader checks before it proposes a restore, cheaply: the image hashes to what the
/// backup recorded, its header reads, and it is the data of the state machine `running` (the
/// sha256 of the active one). The replicas then verify everything as they load it.
pub(crate) fn precheck_image(
    image: &[u8],
    expected_sha256: &[u8; 32],
    running: &[u8; 32],
    registry: &PluginRegistry,
) -> Result<SnapshotHeader, String> {
    check_sha256(image, expected_sha256)?;
    let (_, header) = SnapshotReader::open(image)
        .map_err(|error| format!("the image is not a readable snapshot ({error})"))?;
    same_state_machine(&header, running, registry)?;
    Ok(header)
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

/// What a restore entry did, and the state hash right after it (computed while loading).
pub(crate) struct Restored {
    pub(crate) response: ApplyResponse,
    /// `Some` when the data was replaced.
    pub(crate) hash: Option<[u8; 32]>,
}

impl Activator<'_> {
    /// Applies a `Restore` entry at `log_id`. `next` holds the state up to the entry before, all
    /// of it committed. The image is read once: its pairs load into a fresh data generation while
    /// its checksum, its own state hash and the state hash after the restore are computed; only
    /// if everything holds do the new data and `next` (advanced to the entry) commit, and the
    /// applying and query instances are created afresh over them. Otherwise the partial
    /// generation is dropped and nothing changed.
    pub(crate) fn restore(
        &self,
        machine: &mut ActiveMachine,
        next: &mut AppliedState,
        log_id: LogIdOf<TypeConfig>,
        entry: &RestoreEntry,
    ) -> Result<Restored, RaftStorageError> {
        let started = std::time::Instant::now();
        let refuse = |reason: String| {
            tracing::warn!(
                index = log_id.index,
                backup = entry.backup_id,
                "restore refused: {reason}"
            );
            Ok(Restored {
                response: ApplyResponse::Failed(format!(
                    "backup {} was not restored: {reason}; nothing was changed",
                    entry.backup_id
                )),
                hash: None,
            })
        };
        if let Err(reason) = check_sha256(&entry.image, &entry.sha256) {
            return refuse(reason);
        }
        let damaged = |error: crate::raft::SnapshotFormatError| {
            format!("the image is not a readable snapshot ({error})")
        };
        let (mut reader, header) = match SnapshotReader::open(&entry.image[..]) {
            Ok(opened) => opened,
            Err(error) => return refuse(damaged(error)),
        };
        if let Err(reason) = same_state_machine(&header, &next.plugin_sha256, &next.plugins) {
            return refuse(reason);
        }
        let backup_index = header.last_log_id.map_or(0, |id| id.index);
        let after = AppliedState {
            last_applied: Some(log_id),
            ..next.clone()
        };
        let mut image_hash = StateHasher::new(&applied_state_of(&header))?;
        let mut after_hash = StateHasher::new(&after)?;
        // What came before is committed; the instance holds no writes. Load the pairs.
        let mut import = self.store.begin_import()?;
        loop {
            match reader.next_pair() {
                Ok(Some((key, value))) => {
                    image_hash.pair(&key, &value);
                    after_hash.pair(&key, &value);
                    import.put(key, value)?;
                }
                Ok(None) => break,
                // Dropping the import drops what it loaded.
                Err(error) => return refuse(damaged(error)),
            }
        }
        let image_hash = image_hash.finish();
        if let Some(expected) = entry.state_hash
            && image_hash != expected
        {
            return refuse(format!(
                "the image's state hash is {}, but the backup recorded {}",
                sha256_hex(&image_hash),
                sha256_hex(&expected)
            ));
        }
        let pairs = import.pairs();
        // Held across the flip so that no query pairs the old instance with the new data.
        let mut query = self.reader.lock().unwrap_or_else(|p| p.into_inner());
        import.finish(&after.to_mark()?)?;
        *next = after;
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
            pairs,
            took_ms = started.elapsed().as_millis() as u64,
            "restored a backup"
        );
        Ok(Restored {
            response: ApplyResponse::Restored(RestoreOutcome {
                backup_id: entry.backup_id.clone(),
                index: log_id.index,
                backup_index,
                pairs,
            }),
            hash: Some(after_hash.finish()),
        })
    }
}

/// `Ok` if `header` holds the data of the state machine `running` (whose registry is
/// `registry`), else why not.
pub(crate) fn same_state_machine(
    header: &SnapshotHeader,
    running: &[u8; 32],
    registry: &PluginRegistry,
) -> Result<(), String> {
    if &header.plugin_sha256 == running {
        return Ok(());
    }
    let version = |registry: &PluginRegistry, sha: &[u8; 32]| {
        registry
            .active(crate::proto::PluginKind::StateMachine)
            .filter(|record| &record.sha256 == sha)
            .map(|record| format!(" (version {:?})", record.version))
            .unwrap_or_default()
    };
    Err(format!(
        "it holds the data of state machine {}{}, but {}{} is active; deploy the backup's state \
         machine first (`iroh-raft backup inspect` names it), then restore",
        &sha256_hex(&header.plugin_sha256)[..16],
        version(&header.plugins, &header.plugin_sha256),
        &sha256_hex(running)[..16],
        version(registry, running),
    ))
}

#[cfg(test)]
mod tests {
    use openraft::StoredMembership;
    use openraft::vote::RaftLeaderIdExt;

    use super::*;
    use crate::raft::snapshot::format::SnapshotWriter;

    type LeaderId = openraft::type_config::alias::LeaderIdOf<TypeConfig>;

    fn image(pairs: &[(&[u8], &[u8])]) -> Vec<u8> {
        let header = SnapshotHeader {
            last_log_id: Some(LogIdOf::<TypeConfig>::new(LeaderId::new_committed(1, 1), 7)),
            last_membership: StoredMembership::default(),
            plugin: "kv".into(),
            plugin_sha256: [4; 32],
            config: Default::default(),
            plugins: Default::default(),
            sessions: Default::default(),
        };
        let mut writer = SnapshotWriter::new(Vec::new(), &header, &[]).unwrap();
        for (key, value) in pairs {
            writer.pair(key, value).unwrap();
        }
        writer.finish().unwrap().0
    }

    #[test]
    fn the_leader_refuses_a_damaged_image_or_another_state_machine_s_data_before_proposing() {
        let good = image(&[(b"a", b"1"), (b"b", b"2")]);
        let sha = sha256(&good);
        let registry = PluginRegistry::default();
        let header = precheck_image(&good, &sha, &[4; 32], &registry).unwrap();
        assert_eq!(header.last_log_id.map(|id| id.index), Some(7));

        // Other bytes under the recorded hash.
        let other = image(&[(b"a", b"1"), (b"b", b"3")]);
        let error = precheck_image(&other, &sha, &[4; 32], &registry).unwrap_err();
        assert!(error.contains("damaged or changed"), "{error}");
        // Bytes that hash right but are no snapshot (a handler that stored garbage and its hash).
        let garbage = b"not a snapshot".to_vec();
        let error = precheck_image(&garbage, &sha256(&garbage), &[4; 32], &registry).unwrap_err();
        assert!(error.contains("not a readable snapshot"), "{error}");
        // The data of another state machine than the one running.
        let error = precheck_image(&good, &sha, &[5; 32], &registry).unwrap_err();
        assert!(
            error.contains("deploy the backup's state machine first"),
            "{error}"
        );
        assert!(error.contains(&sha256_hex(&[4; 32])[..16]), "{error}");
        // The image's own state hash is what `inspect` and the replicas compute.
        let hash = image_state_hash(&good).unwrap();
        assert_ne!(hash, image_state_hash(&other).unwrap());
    }
}
