//! The recorded changes of past entries, for `watch`: one record per entry that changed
//! something, in a keyspace of its own beside each data generation (`sm.<name>.changes[.<n>]`), so
//! that a snapshot install or a restore, which replaces the generation, drops its history with
//! it. Records are written in the data's commit batch; the history is pruned in the same batches,
//! back to the `watch_history` horizon, whose index is stored under `h`.

use std::ops::Bound;

use fjall::{Keyspace, OwnedWriteBatch};

use super::StoreError;
use super::change::{EntryChanges, decode_changes, encode_changes, record_index, record_key};

/// Where the oldest index the history holds is stored.
const OLDEST_KEY: &[u8] = b"h";

/// The most records one commit prunes beyond as many as it adds: a horizon raised a long way
/// moves over several commits rather than in one large batch, and a commit of many entries (a
/// follower catching up) never outgrows the pruning.
pub(crate) const PRUNE_PER_COMMIT: usize = 4096;

/// The name of the changes keyspace of generation `number` of the state machine `name`.
pub(crate) fn changes_keyspace_name(name: &str, number: u64) -> String {
    if number == 0 {
        format!("sm.{name}.changes")
    } else {
        format!("sm.{name}.changes.{number}")
    }
}

/// The oldest index the history in `changes` holds, if it says.
pub(crate) fn stored_oldest(changes: &Keyspace) -> Result<Option<u64>, StoreError> {
    let Some(bytes) = changes
        .get(OLDEST_KEY)
        .map_err(StoreError::fjall("read", "watch history horizon"))?
    else {
        return Ok(None);
    };
    let bytes: [u8; 8] = bytes[..].try_into().map_err(|_| StoreError::Corrupt {
        subject: "watch history horizon",
        reason: format!("{} bytes instead of 8", bytes.len()),
    })?;
    Ok(Some(u64::from_be_bytes(bytes)))
}

/// Stages `oldest` as the history's horizon.
pub(crate) fn stage_oldest(batch: &mut OwnedWriteBatch, changes: &Keyspace, oldest: u64) {
    batch.insert(changes, OLDEST_KEY, oldest.to_be_bytes());
}

/// Stages the records of `entries`.
pub(crate) fn stage_records(
    batch: &mut OwnedWriteBatch,
    changes: &Keyspace,
    entries: &[EntryChanges],
) -> Result<(), StoreError> {
    for entry in entries {
        batch.insert(
            changes,
            record_key(entry.index),
            encode_changes(&entry.changes)?,
        );
    }
    Ok(())
}

/// Stages removing the records in `[oldest, target)`, at most `limit` of them, and the new
/// horizon; returns it (`target`, or short of it when more remain).
pub(crate) fn stage_prune(
    batch: &mut OwnedWriteBatch,
    changes: &Keyspace,
    (oldest, target): (u64, u64),
    limit: usize,
) -> Result<u64, StoreError> {
    if target <= oldest {
        return Ok(oldest);
    }
    let (from, to) = (record_key(oldest), record_key(target));
    let mut horizon = target;
    let range = changes.range::<&[u8], _>((Bound::Included(&from[..]), Bound::Excluded(&to[..])));
    for (pruned, guard) in range.enumerate() {
        let key = guard
            .key()
            .map_err(StoreError::fjall("scan", "watch history"))?;
        if pruned == limit {
            horizon = record_index(&key)?;
            break;
        }
        batch.remove(changes, key.to_vec());
    }
    stage_oldest(batch, changes, horizon);
    Ok(horizon)
}

/// The records of the entries in `[from, to]`, up to about `max_bytes` (at least one), and the
/// index to read on from.
pub(crate) fn read_records(
    changes: &Keyspace,
    from: u64,
    to: u64,
    max_bytes: usize,
) -> Result<(Vec<EntryChanges>, u64), StoreError> {
    let mut records = Vec::new();
    let mut bytes = 0;
    let (start, end) = (record_key(from), record_key(to));
    for guard in changes.range::<&[u8], _>((Bound::Included(&start[..]), Bound::Included(&end[..])))
    {
        let (key, value) = guard
            .into_inner()
            .map_err(StoreError::fjall("read", "watch history"))?;
        let index = record_index(&key)?;
        if !records.is_empty() && bytes + value.len() > max_bytes {
            return Ok((records, index));
        }
        bytes += value.len();
        records.push(EntryChanges {
            index,
            changes: decode_changes(&value)?,
        });
    }
    Ok((records, to.saturating_add(1)))
}
