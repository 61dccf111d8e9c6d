//! Installing a snapshot: the stream is verified while its pairs load into a fresh data generation
//! and, unless it already is the current snapshot, copied into the snapshot directory; only once
//! the checksum matched does the copy become current and the generation flip live. A bad snapshot
//! therefore changes nothing.

use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Seek, SeekFrom, Write};

use openraft::type_config::alias::SnapshotMetaOf;

use crate::hash::sha256_hex;
use crate::proto::{PluginKind, TypeConfig};
use crate::raft::RaftStorageError;
use crate::raft::apply::applied_state::AppliedState;
use crate::raft::snapshot::format::SnapshotReader;
use crate::raft::snapshot::store::SnapshotStore;
use crate::store::{FjallStateStore, PluginBlobs};

/// Verifies and installs the snapshot in `file` (from its start), which openraft describes as
/// `meta`, storing the plugins it carries in `blobs`. Returns the state the data now has; the
/// caller then runs the state-machine plugin its registry names (`default_sha256`, the bundled
/// one, if it names none).
pub(crate) fn install(
    store: &FjallStateStore,
    snapshots: &SnapshotStore,
    blobs: &PluginBlobs,
    meta: &SnapshotMetaOf<TypeConfig>,
    mut file: File,
    default_sha256: [u8; 32],
) -> Result<AppliedState, RaftStorageError> {
    let rewind = |file: &mut File| {
        file.seek(SeekFrom::Start(0))
            .map_err(|source| RaftStorageError::Snapshot {
                source: source.into(),
            })
    };
    rewind(&mut file)?;
    let (_, header) = SnapshotReader::open(BufReader::new(&file))?;
    if !header.matches(meta) {
        return Err(RaftStorageError::MetaMismatch {
            expected: meta.to_string(),
            found: header.meta().to_string(),
        });
    }
    // A snapshot taken before any deploy names no plugin: the data is the bundled plugin's.
    if header.plugins.active(PluginKind::StateMachine).is_none()
        && header.plugin_sha256 != default_sha256
    {
        return Err(RaftStorageError::PluginMismatch {
            snapshot: sha256_hex(&header.plugin_sha256),
            running: sha256_hex(&default_sha256),
        });
    }
    rewind(&mut file)?;

    // Restoring from our own current snapshot (at startup) needs no second copy of it.
    let copy = match snapshots.current_header() {
        Some(current) if current == header => None,
        _ => Some(snapshots.create_temp("install")?),
    };
    let mut import = store.begin_import()?;
    let tee = Tee {
        input: BufReader::new(&file),
        copy: copy.as_ref().map(|temp| BufWriter::new(&temp.file)),
    };
    let (mut reader, _) = SnapshotReader::open(tee)?;
    while let Some((key, value)) = reader.next_pair()? {
        import.put(key, value)?;
    }
    // The checksum matched: the pairs are the snapshot's.
    let checksum = reader.digest().map(|digest| hex::encode(&digest[..8]));
    for wasm in reader.plugins() {
        blobs.put(wasm)?;
    }
    if let (Some(temp), Some(out)) = (&copy, reader.into_inner().copy) {
        out.into_inner()
            .map_err(|e| RaftStorageError::io("write", &temp.path)(e.into_error()))?;
        temp.file
            .sync_all()
            .map_err(RaftStorageError::io("sync", &temp.path))?;
    }
    if let Some(temp) = copy {
        snapshots.publish(temp, &header)?;
    }
    let state = AppliedState {
        last_applied: header.last_log_id,
        last_membership: header.last_membership,
        plugin_sha256: header.plugin_sha256,
        config: header.config,
        plugins: header.plugins,
        sessions: header.sessions,
    };
    let pairs = import.pairs();
    import.finish(&state.to_mark()?)?;
    tracing::info!(last_applied = ?state.last_applied, pairs, ?checksum, "installed a snapshot");
    Ok(state)
}

/// Reads from `input`, writing every byte read to `copy` too.
struct Tee<R, W> {
    input: R,
    copy: Option<W>,
}

impl<R: Read, W: Write> Read for Tee<R, W> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let read = self.input.read(buf)?;
        if let Some(copy) = &mut self.copy {
            copy.write_all(&buf[..read])?;
        }
        Ok(read)
    }
}
