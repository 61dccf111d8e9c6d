//! [`StateStore`] on fjall: one data keyspace per state machine plus a metadata keyspace holding
//! the applied marker, both written by one atomic fjall batch.
//!
//! The data keyspace has generations so that a snapshot can replace it atomically (fjall has no
//! range delete): an install loads a fresh generation ([`StateImport`]) and then flips the
//! `generation` pointer and the applied marker in one batch. Generation 0 is `sm.<name>.data`,
//! generation n is `sm.<name>.data.<n>`; any other generation found at open is the leftover of an
//! interrupted install and is dropped. Each generation has its watch history beside it
//! (`change_history.rs`); every commit writes and prunes it and then hands the changes to the
//! node's [`WatchHub`].

use std::sync::{Arc, PoisonError, RwLock};

use fjall::{Database, Keyspace, PersistMode, Readable};
use sha2::{Digest, Sha256};

use super::change_history::{
    PRUNE_PER_COMMIT, changes_keyspace_name, read_records, stage_oldest, stage_prune,
    stage_records, stored_oldest,
};
use super::fjall_read::{SnapshotView, scan_key_range, scan_range};
use super::{
    AppliedMark, EntryChanges, Pairs, StateExport, StateImport, StateRead, StateStore, StoreError,
    WriteSet,
};
use crate::proto::{ClusterConfig, RequestError, WatchRequest};
use crate::watch::{HistoryRead, QUEUE_MAX_BYTES, QUEUE_MAX_CHANGES, WatchFeed, WatchHub};

const APPLIED_KEY: &[u8] = b"applied";
const GENERATION_KEY: &[u8] = b"generation";

/// A state machine's keyspace in a fjall database.
#[derive(Clone)]
pub struct FjallStateStore {
    db: Database,
    name: Arc<str>,
    /// The live data generation; shared by every clone, replaced by [`StateImport::finish`].
    data: Arc<RwLock<DataGeneration>>,
    meta: Keyspace,
    durability: Option<PersistMode>,
    /// The watches on this keyspace.
    hub: Arc<WatchHub>,
}

/// One generation of the data keyspace, with its watch history.
#[derive(Clone)]
pub(crate) struct DataGeneration {
    pub(crate) number: u64,
    pub(crate) keyspace: Keyspace,
    pub(crate) changes: Keyspace,
}

/// The name of generation `number` of the data keyspace of `name`.
fn data_keyspace_name(name: &str, number: u64) -> String {
    if number == 0 {
        format!("sm.{name}.data")
    } else {
        format!("sm.{name}.data.{number}")
    }
}

/// The generation a keyspace called `keyspace` holds for the state machine `name`, if it is one.
fn generation_of(name: &str, keyspace: &str) -> Option<u64> {
    let base_data = format!("sm.{name}.data");
    let base_changes = format!("sm.{name}.changes");
    let rest = keyspace
        .strip_prefix(&base_data)
        .or_else(|| keyspace.strip_prefix(&base_changes))?;
    if rest.is_empty() {
        return Some(0);
    }
    let digits = rest.strip_prefix('.')?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

fn open_keyspace(db: &Database, name: &str) -> Result<Keyspace, StoreError> {
    db.keyspace(name, crate::store::keyspace_options)
        .map_err(StoreError::fjall("open", "state machine keyspace"))
}

impl FjallStateStore {
    /// Opens (or creates) the keyspaces of the state machine called `name` in `db`.
    ///
    /// `durability` is how commits reach the disk: `None` leaves them in fjall's journal buffer
    /// (safe when a durable raft log can replay them), `Some(SyncAll)` fsyncs every commit.
    pub fn open(
        db: &Database,
        name: &str,
        durability: Option<PersistMode>,
    ) -> Result<Self, StoreError> {
        let meta = open_keyspace(db, &format!("sm.{name}.meta"))?;
        let number = match meta
            .get(GENERATION_KEY)
            .map_err(StoreError::fjall("read", "data generation"))?
        {
            None => 0,
            Some(bytes) => decode_generation(&bytes)?,
        };
        let data_name = data_keyspace_name(name, number);
        if number != 0 && !db.keyspace_exists(&data_name) {
            return Err(StoreError::Corrupt {
                subject: "data generation",
                reason: format!("the live generation's keyspace `{data_name}` is missing"),
            });
        }
        let keyspace = open_keyspace(db, &data_name)?;
        let changes = open_keyspace(db, &changes_keyspace_name(name, number))?;
        let applied = match meta
            .get(APPLIED_KEY)
            .map_err(StoreError::fjall("read", "applied marker"))?
        {
            None => 0,
            Some(bytes) => decode_mark(&bytes)?.index,
        };
        // A history that never said where it begins (a new one) begins after what is applied.
        let oldest = match stored_oldest(&changes)? {
            Some(oldest) => oldest,
            None => {
                let oldest = applied.saturating_add(1);
                let mut batch = db.batch().durability(durability);
                stage_oldest(&mut batch, &changes, oldest);
                batch
                    .commit()
                    .map_err(StoreError::fjall("commit", "watch history horizon"))?;
                oldest
            }
        };
        let retain = ClusterConfig::default().watch_history;
        let store = Self {
            db: db.clone(),
            name: name.into(),
            data: Arc::new(RwLock::new(DataGeneration {
                number,
                keyspace,
                changes,
            })),
            meta,
            durability,
            hub: Arc::new(WatchHub::new(applied, oldest, retain)),
        };
        for stale in store.generations()? {
            if stale != number {
                tracing::info!(
                    state_machine = name,
                    generation = stale,
                    "dropping a data generation left by an interrupted snapshot install"
                );
                store.drop_generation(stale)?;
            }
        }
        Ok(store)
    }

    /// The number of the live data generation.
    pub fn generation(&self) -> u64 {
        self.live().number
    }

    /// A consistent export of the committed state: every pair and the applied marker, as of now.
    /// Later commits (and installs) do not affect it.
    pub(crate) fn export(&self) -> Result<StateExport, StoreError> {
        // Under the lock, so that the handle and the snapshot belong to the same generation.
        let (generation, snapshot) = {
            let live = self.data.read().unwrap_or_else(PoisonError::into_inner);
            (live.clone(), self.db.snapshot())
        };
        let applied = match snapshot
            .get(&self.meta, APPLIED_KEY)
            .map_err(StoreError::fjall("read", "applied marker"))?
        {
            None => None,
            Some(bytes) => Some(decode_mark(&bytes)?),
        };
        Ok(StateExport::new(snapshot, generation.keyspace, applied))
    }

    /// Starts loading a replacement for the whole keyspace into a fresh generation. Nothing is
    /// visible until [`StateImport::finish`].
    pub(crate) fn begin_import(&self) -> Result<StateImport, StoreError> {
        let live = self.generation();
        let number = self
            .generations()?
            .into_iter()
            .chain([live])
            .max()
            .unwrap_or(live)
            .checked_add(1)
            .ok_or(StoreError::Corrupt {
                subject: "data generation",
                reason: "generation counter exhausted".into(),
            })?;
        let keyspace = open_keyspace(&self.db, &data_keyspace_name(&self.name, number))?;
        let changes = open_keyspace(&self.db, &changes_keyspace_name(&self.name, number))?;
        Ok(StateImport::new(
            self.clone(),
            DataGeneration {
                number,
                keyspace,
                changes,
            },
        ))
    }

    /// Makes `next` the live generation and records `applied`, in one durable batch, then drops
    /// the old generation.
    pub(crate) fn flip(
        &self,
        next: DataGeneration,
        applied: &AppliedMark,
    ) -> Result<(), StoreError> {
        let mark = encode_mark(applied)?;
        let old = {
            let mut live = self.data.write().unwrap_or_else(PoisonError::into_inner);
            // Durable at once: the raft log before this point may be purged, so nothing could
            // replay the install after a crash.
            let mut batch = self.db.batch().durability(Some(PersistMode::SyncAll));
            batch.insert(&self.meta, GENERATION_KEY, next.number.to_be_bytes());
            batch.insert(&self.meta, APPLIED_KEY, mark);
            // The new data's history begins after it.
            stage_oldest(&mut batch, &next.changes, applied.index.saturating_add(1));
            batch
                .commit()
                .map_err(StoreError::fjall("commit", "data generation switch"))?;
            self.hub.replaced(applied.index);
            std::mem::replace(&mut *live, next)
        };
        self.db
            .delete_keyspace(old.keyspace)
            .map_err(StoreError::fjall("drop", "old data generation"))?;
        self.db
            .delete_keyspace(old.changes)
            .map_err(StoreError::fjall("drop", "old watch history"))
    }

    /// The watches on this keyspace.
    pub(crate) fn watch_hub(&self) -> &Arc<WatchHub> {
        &self.hub
    }

    /// Opens a watch for `request`; refused when the history no longer holds its index.
    pub(crate) fn watch(&self, request: WatchRequest) -> Result<WatchFeed, RequestError> {
        let registration = self
            .hub
            .register(request, QUEUE_MAX_CHANGES, QUEUE_MAX_BYTES)?;
        Ok(WatchFeed::new(
            registration,
            self.hub.clone(),
            Arc::new(self.clone()),
        ))
    }

    /// Drops data generation `number` (never the live one).
    pub(crate) fn drop_generation(&self, number: u64) -> Result<(), StoreError> {
        if number == self.generation() {
            return Ok(());
        }
        for name in [
            data_keyspace_name(&self.name, number),
            changes_keyspace_name(&self.name, number),
        ] {
            if !self.db.keyspace_exists(&name) {
                continue;
            }
            let keyspace = open_keyspace(&self.db, &name)?;
            self.db
                .delete_keyspace(keyspace)
                .map_err(StoreError::fjall("drop", "stale data generation"))?;
        }
        Ok(())
    }

    /// The generations of this state machine's data keyspace that exist in the database.
    fn generations(&self) -> Result<Vec<u64>, StoreError> {
        Ok(self
            .db
            .list_keyspace_names()
            .iter()
            .filter_map(|keyspace| generation_of(&self.name, keyspace))
            .collect())
    }

    pub(crate) fn database(&self) -> &Database {
        &self.db
    }

    pub(crate) fn durability(&self) -> Option<PersistMode> {
        self.durability
    }

    fn live(&self) -> DataGeneration {
        self.data
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

fn decode_generation(bytes: &[u8]) -> Result<u64, StoreError> {
    let bytes: [u8; 8] = bytes.try_into().map_err(|_| StoreError::Corrupt {
        subject: "data generation",
        reason: format!("{} bytes instead of 8", bytes.len()),
    })?;
    Ok(u64::from_be_bytes(bytes))
}

fn encode_mark(applied: &AppliedMark) -> Result<Vec<u8>, StoreError> {
    postcard::to_allocvec(applied).map_err(|e| StoreError::Corrupt {
        subject: "applied marker",
        reason: e.to_string(),
    })
}

fn decode_mark(bytes: &[u8]) -> Result<AppliedMark, StoreError> {
    postcard::from_bytes(bytes).map_err(|e| StoreError::Corrupt {
        subject: "applied marker",
        reason: e.to_string(),
    })
}

impl StateRead for FjallStateStore {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .live()
            .keyspace
            .get(key)
            .map_err(StoreError::fjall("read", "state machine data"))?
            .map(|v| v.to_vec()))
    }

    fn scan(&self, start: &[u8], end: Option<&[u8]>, limit: usize) -> Result<Pairs, StoreError> {
        let live = self.live();
        scan_range(start, end, limit, |bounds| {
            live.keyspace.range::<&[u8], _>(bounds)
        })
    }

    fn scan_keys(
        &self,
        start: &[u8],
        end: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<Vec<u8>>, StoreError> {
        let live = self.live();
        scan_key_range(start, end, limit, |bounds| {
            live.keyspace.range::<&[u8], _>(bounds)
        })
    }
}

impl StateStore for FjallStateStore {
    fn commit(
        &self,
        writes: WriteSet,
        changes: Vec<EntryChanges>,
        applied: &AppliedMark,
    ) -> Result<(), StoreError> {
        let mark = encode_mark(applied)?;
        // Held across the commit so that an install cannot flip generations under it.
        let live = self.data.read().unwrap_or_else(PoisonError::into_inner);
        let mut batch = self.db.batch().durability(self.durability);
        for (key, value) in writes.iter() {
            match value {
                Some(value) => batch.insert(&live.keyspace, key, value),
                None => batch.remove(&live.keyspace, key),
            }
        }
        batch.insert(&self.meta, APPLIED_KEY, mark);
        let oldest = self.hub.oldest();
        let target = self.hub.horizon_after(applied.index);
        let horizon = if target > oldest {
            let limit = PRUNE_PER_COMMIT + changes.len();
            stage_prune(&mut batch, &live.changes, (oldest, target), limit)?
        } else {
            oldest
        };
        // What this commit adds below the new horizon would never be read, nor pruned.
        let kept = changes.partition_point(|entry| entry.index < horizon);
        stage_records(&mut batch, &live.changes, &changes[kept..])?;
        // Raised before the records go, so that a watch reading them learns it missed some.
        self.hub.raise_oldest(horizon);
        batch
            .commit()
            .map_err(StoreError::fjall("commit", "state machine batch"))?;
        self.hub.publish(applied.index, &changes);
        Ok(())
    }

    fn applied(&self) -> Result<Option<AppliedMark>, StoreError> {
        let Some(bytes) = self
            .meta
            .get(APPLIED_KEY)
            .map_err(StoreError::fjall("read", "applied marker"))?
        else {
            return Ok(None);
        };
        decode_mark(&bytes).map(Some)
    }

    fn read_view(&self) -> Box<dyn StateRead> {
        let live = self.data.read().unwrap_or_else(PoisonError::into_inner);
        Box::new(SnapshotView {
            snapshot: self.db.snapshot(),
            data: live.keyspace.clone(),
        })
    }

    fn content_hash(&self) -> Result<[u8; 32], StoreError> {
        let (data, snapshot) = {
            let live = self.data.read().unwrap_or_else(PoisonError::into_inner);
            (live.keyspace.clone(), self.db.snapshot())
        };
        let mut hasher = Sha256::new();
        for guard in snapshot.iter(&data) {
            let (k, v) = guard
                .into_inner()
                .map_err(StoreError::fjall("hash", "state machine data"))?;
            for part in [&k[..], &v[..]] {
                hasher.update((part.len() as u64).to_be_bytes());
                hasher.update(part);
            }
        }
        Ok(hasher.finalize().into())
    }
}

impl HistoryRead for FjallStateStore {
    fn read_changes(
        &self,
        from: u64,
        to: u64,
        max_bytes: usize,
    ) -> Result<(Vec<EntryChanges>, u64), StoreError> {
        read_records(&self.live().changes, from, to, max_bytes)
    }
}

#[cfg(test)]
#[path = "fjall_state_tests.rs"]
mod tests;
