//! Errors of the raft storage layer. Every one is fatal: openraft receives it as an `io::Error`
//! (the storage traits' error type in 0.10), wraps it in a `StorageError` naming what it was doing,
//! and shuts the raft core down; the node restarts and recovers from disk.

use std::io;
use std::path::PathBuf;
use std::sync::Arc;

use crate::plugin::RuntimeError;
use crate::store::StoreError;

/// A failure of the raft log store, the state machine or the snapshot store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RaftStorageError {
    /// fjall refused an operation.
    #[error("raft storage failed to {verb} {subject}: {source}")]
    Fjall {
        /// What was being done, e.g. "append".
        verb: &'static str,
        /// What it was done to, e.g. "raft log".
        subject: &'static str,
        /// fjall's error.
        #[source]
        source: fjall::Error,
    },
    /// Another process has the database open.
    #[error(
        "data directory {} is in use by another iroh-raft process{}; stop it, or give this one \
         another --data-dir",
        dir.display(),
        pid.map_or(String::new(), |pid| format!(" (pid {pid})"))
    )]
    Locked {
        /// The data directory.
        dir: PathBuf,
        /// The process that holds it, if it is still running.
        pid: Option<u32>,
    },
    /// The group-commit fsync failed; every append waiting on it gets this error.
    #[error("raft storage failed to fsync the raft log: {source}")]
    Sync {
        /// fjall's error, shared by every waiting append.
        #[source]
        source: Arc<fjall::Error>,
    },
    /// A value could not be encoded.
    #[error("cannot encode {subject}: {source}")]
    Encode {
        /// What was being encoded.
        subject: &'static str,
        /// postcard's error.
        #[source]
        source: postcard::Error,
    },
    /// Stored bytes did not decode.
    #[error("stored {subject} is corrupt: {reason}")]
    Corrupt {
        /// What failed to decode.
        subject: &'static str,
        /// Why.
        reason: String,
    },
    /// A snapshot did not parse or failed its checksum.
    #[error("invalid snapshot: {source}")]
    Snapshot {
        /// What is wrong with it.
        #[source]
        source: SnapshotFormatError,
    },
    /// The snapshot on disk did not parse.
    #[error("snapshot file {} is unusable: {source}; move it away to let the node rebuild one", path.display())]
    SnapshotFile {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        #[source]
        source: SnapshotFormatError,
    },
    /// The metadata openraft gave with a snapshot disagrees with the snapshot's own header.
    #[error("snapshot metadata says {expected} but the snapshot file holds {found}")]
    MetaMismatch {
        /// The metadata openraft passed.
        expected: String,
        /// What the file's header says.
        found: String,
    },
    /// A snapshot was taken under another state-machine plugin than the one this node runs.
    #[error(
        "the snapshot was taken with state-machine plugin {snapshot} but this node runs {running}; \
         start the node with the plugin the cluster uses"
    )]
    PluginMismatch {
        /// sha256 (hex) of the snapshot's plugin.
        snapshot: String,
        /// sha256 (hex) of this node's plugin.
        running: String,
    },
    /// A file operation on the snapshot directory failed.
    #[error("failed to {verb} {}: {source}", path.display())]
    Io {
        /// What was being done, e.g. "create".
        verb: &'static str,
        /// The path.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The state machine's keyspace failed.
    #[error(transparent)]
    State(#[from] StoreError),
    /// The plugin runtime could not run a call (storage failure or instantiation).
    #[error(transparent)]
    Plugin(#[from] RuntimeError),
    /// The group-commit thread is gone (it only stops when the store is dropped).
    #[error("the raft log's group-commit thread has stopped; restart the node")]
    GroupCommitStopped,
    /// A blocking storage task panicked or was cancelled.
    #[error("a storage task failed: {0}")]
    Task(String),
    /// A plugin the applied state names active no longer loads (the host's plugin runtime
    /// changed under it).
    #[error(
        "the active state-machine plugin {sha256} does not load: {reason}; run a build of \
         iroh-raft that accepts it"
    )]
    PluginLoad {
        /// Its sha256 (hex).
        sha256: String,
        /// Why it was refused.
        reason: String,
    },
    /// A plugin the log activates, which the leader compiled before proposing it, does not
    /// compile here: running the previous one beside the peers would diverge.
    #[error(
        "this node cannot compile plugin {sha256}, which the log activates and the leader \
         accepted: {reason}; it stops rather than run another plugin than its peers. Run the same \
         iroh-raft build as the other members, then restart it"
    )]
    PluginUnrunnable {
        /// Its sha256 (hex).
        sha256: String,
        /// What the engine reported.
        reason: String,
    },
}

impl RaftStorageError {
    pub(crate) fn fjall(
        verb: &'static str,
        subject: &'static str,
    ) -> impl FnOnce(fjall::Error) -> Self {
        move |source| Self::Fjall {
            verb,
            subject,
            source,
        }
    }

    pub(crate) fn io(
        verb: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(io::Error) -> Self {
        let path = path.into();
        move |source| Self::Io { verb, path, source }
    }
}

impl From<tokio::task::JoinError> for RaftStorageError {
    fn from(error: tokio::task::JoinError) -> Self {
        Self::Task(error.to_string())
    }
}

impl From<RaftStorageError> for io::Error {
    fn from(error: RaftStorageError) -> Self {
        let kind = match &error {
            RaftStorageError::Corrupt { .. }
            | RaftStorageError::Snapshot { .. }
            | RaftStorageError::SnapshotFile { .. }
            | RaftStorageError::MetaMismatch { .. } => io::ErrorKind::InvalidData,
            RaftStorageError::Io { source, .. } => source.kind(),
            _ => io::ErrorKind::Other,
        };
        io::Error::new(kind, error)
    }
}

/// Why a snapshot stream is not a valid iroh-raft snapshot.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SnapshotFormatError {
    /// Reading or writing the stream failed.
    #[error("snapshot I/O failed: {0}")]
    Io(#[source] io::Error),
    /// The stream ended before the trailer.
    #[error("the snapshot is truncated")]
    Truncated,
    /// The stream does not start with the snapshot magic.
    #[error("not an iroh-raft snapshot (wrong magic bytes)")]
    BadMagic,
    /// The stream is a snapshot of another format version.
    #[error(
        "snapshot format version {found} is not supported (this build reads version {supported})"
    )]
    UnsupportedVersion {
        /// The version in the stream.
        found: u8,
        /// The version this build reads.
        supported: u8,
    },
    /// The header length is over the limit.
    #[error("snapshot header of {len} bytes exceeds the limit of {max}")]
    HeaderTooLarge {
        /// The declared length.
        len: u32,
        /// The limit.
        max: u32,
    },
    /// The header did not decode.
    #[error("malformed snapshot header: {reason}")]
    Header {
        /// What postcard reported.
        reason: String,
    },
    /// A frame starts with an unknown tag.
    #[error("unknown snapshot frame tag {tag:#04x}")]
    UnknownFrame {
        /// The tag.
        tag: u8,
    },
    /// An empty key, which fjall cannot store (it panics on one).
    #[error("snapshot key at position {position} is empty; a key has at least one byte")]
    EmptyKey {
        /// The pair's position.
        position: u64,
    },
    /// A key is longer than fjall allows.
    #[error("snapshot key of {len} bytes exceeds the limit of {max}")]
    KeyTooLarge {
        /// The declared length.
        len: u32,
        /// The limit.
        max: u32,
    },
    /// A value is longer than a snapshot frame can carry.
    #[error("snapshot value of {len} bytes exceeds the limit of {max}")]
    ValueTooLarge {
        /// The value's length.
        len: u64,
        /// The limit.
        max: u32,
    },
    /// Keys are not strictly ascending.
    #[error("snapshot pair {position} is not in ascending key order")]
    OutOfOrder {
        /// The pair's position (0-based).
        position: u64,
    },
    /// The trailer's pair count disagrees with the pairs read.
    #[error("snapshot trailer counts {expected} pairs but {found} were read")]
    PairCount {
        /// The trailer's count.
        expected: u64,
        /// The pairs read.
        found: u64,
    },
    /// The checksum does not match the content.
    #[error("snapshot checksum mismatch: the snapshot is corrupt")]
    Checksum,
    /// Bytes follow the trailer.
    #[error("bytes follow the end of the snapshot")]
    TrailingBytes,
    /// The plugin section does not match the header's registry.
    #[error("snapshot plugins: {reason}")]
    Plugins {
        /// What is wrong.
        reason: String,
    },
}

impl From<io::Error> for SnapshotFormatError {
    fn from(error: io::Error) -> Self {
        if error.kind() == io::ErrorKind::UnexpectedEof {
            Self::Truncated
        } else {
            Self::Io(error)
        }
    }
}

impl From<SnapshotFormatError> for RaftStorageError {
    fn from(source: SnapshotFormatError) -> Self {
        Self::Snapshot { source }
    }
}
