//! [`write_image`]: the snapshot stream of one view of the state — its header (applied state and
//! plugin registry), the plugins that registry references, and every pair — as both the raft
//! snapshot builder and a backup write it. Also [`Counted`], which hashes and counts what passes
//! through it, so that a backup knows its size and sha256 before it is handed to a handler.

use std::io::{self, Write};

use bytes::Bytes;
use sha2::{Digest, Sha256};

use crate::hash::sha256_hex;
use crate::plugin::CompiledStateMachine;
use crate::raft::RaftStorageError;
use crate::raft::apply::applied_state::AppliedState;
use crate::raft::snapshot::format::{SnapshotHeader, SnapshotWriter};
use crate::store::{PluginBlobs, StateExport};

/// What was written.
pub(crate) struct ImageFacts {
    pub(crate) header: SnapshotHeader,
    pub(crate) pairs: u64,
    /// The snapshot format's own checksum (of every byte before it).
    pub(crate) checksum: [u8; 32],
}

/// Writes the snapshot stream of `export` to `out`. `default` is the bundled state machine: it
/// names the keyspace and supplies its own bytes.
pub(crate) fn write_image<W: Write>(
    export: &StateExport,
    default: &CompiledStateMachine,
    blobs: &PluginBlobs,
    out: W,
) -> Result<(W, ImageFacts), RaftStorageError> {
    let applied = match export.applied() {
        Some(mark) => AppliedState::from_mark(mark)?,
        None => AppliedState::empty(default.info().sha256),
    };
    // The plugins the registry references, read at the same instant as the data.
    let mut plugins: Vec<Bytes> = Vec::new();
    for hash in applied.plugins.referenced() {
        let wasm = if hash == default.info().sha256 {
            default.wasm().clone()
        } else {
            blobs
                .get_in(export.snapshot(), &hash)?
                .ok_or_else(|| RaftStorageError::Corrupt {
                    subject: "plugin blobs",
                    reason: format!("plugin {} has no stored bytes", sha256_hex(&hash)),
                })?
        };
        plugins.push(wasm);
    }
    let header = SnapshotHeader {
        last_log_id: applied.last_applied,
        last_membership: applied.last_membership,
        plugin: default.name().to_string(),
        plugin_sha256: applied.plugin_sha256,
        config: applied.config,
        plugins: applied.plugins,
        sessions: applied.sessions,
    };
    let mut writer = SnapshotWriter::new(out, &header, &plugins)?;
    let mut pairs = 0u64;
    for pair in export.pairs() {
        let (key, value) = pair?;
        writer.pair(&key, &value)?;
        pairs += 1;
    }
    let (out, checksum) = writer.finish()?;
    Ok((
        out,
        ImageFacts {
            header,
            pairs,
            checksum,
        },
    ))
}

/// A writer that counts and hashes every byte on its way to `W`.
pub(crate) struct Counted<W> {
    inner: W,
    hasher: Sha256,
    len: u64,
}

impl<W: Write> Counted<W> {
    pub(crate) fn new(inner: W) -> Self {
        Self {
            inner,
            hasher: Sha256::new(),
            len: 0,
        }
    }

    /// The writer, how many bytes went through and their sha256.
    pub(crate) fn finish(self) -> (W, u64, [u8; 32]) {
        (self.inner, self.len, self.hasher.finalize().into())
    }
}

impl<W: Write> Write for Counted<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let written = self.inner.write(buf)?;
        self.hasher.update(&buf[..written]);
        self.len += written as u64;
        Ok(written)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// A backup image written to a temporary file in the snapshot directory (removed when dropped).
pub(crate) struct ImageFile {
    pub(crate) temp: crate::raft::snapshot::store::TempSnapshot,
    pub(crate) facts: ImageFacts,
    /// The file's size and sha256.
    pub(crate) size: u64,
    pub(crate) sha256: [u8; 32],
}

/// Writes the image of `export` to a new temporary file of `snapshots`, synced.
pub(crate) fn image_file(
    snapshots: &crate::raft::snapshot::store::SnapshotStore,
    export: &StateExport,
    default: &CompiledStateMachine,
    blobs: &PluginBlobs,
) -> Result<ImageFile, RaftStorageError> {
    let temp = snapshots.create_temp("backup")?;
    let out = Counted::new(io::BufWriter::new(&temp.file));
    let (out, facts) = write_image(export, default, blobs, out)?;
    let (out, size, sha256) = out.finish();
    out.into_inner()
        .map_err(|e| RaftStorageError::io("write", &temp.path)(e.into_error()))?;
    temp.file
        .sync_all()
        .map_err(RaftStorageError::io("sync", &temp.path))?;
    Ok(ImageFile {
        temp,
        facts,
        size,
        sha256,
    })
}
