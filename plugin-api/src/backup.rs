//! The [`BackupHandler`] trait, the [`blob`] store it writes to, and the glue that exports it.

use alloc::string::String;
use alloc::vec::Vec;

use crate::bindings::backup::exports::iroh_raft::plugin::archive;

/// One backup as the host describes it (serde-serializable, so that a handler can keep it as
/// its manifest). `size` and `sha256` are computed by the host over the snapshot bytes; the host
/// checks the bytes against them on every read back, so damaged data is refused.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BackupInfo {
    /// The backup's id, chosen by the host (letters, digits, `-` and `_`).
    pub id: String,
    /// The applied log index the snapshot was taken at.
    pub index: u64,
    /// The snapshot's size in bytes.
    pub size: u64,
    /// Hex sha256 of the snapshot bytes.
    pub sha256: String,
    /// What the host and the operator recorded with the backup (creation time, state hash, the
    /// handler, the operator's own metadata). A handler stores it and gives it back unchanged.
    pub metadata: Vec<(String, String)>,
}

/// A backup handler: it stores the snapshot streams the host hands it and gives them back. It
/// keeps nothing between calls (every call runs on a fresh heap); what it needs to remember goes
/// to the [`blob`] store.
pub trait BackupHandler {
    /// Starts storing backup `info.id`; `info.size` and `info.sha256` are final values.
    fn create_begin(info: &BackupInfo) -> Result<(), String>;
    /// Stores the next chunk of backup `id`'s snapshot stream.
    fn create_chunk(id: &str, chunk: &[u8]) -> Result<(), String>;
    /// Seals backup `id` after its last chunk: only now may [`BackupHandler::list`] name it.
    fn create_finish(id: &str) -> Result<(), String>;
    /// Every sealed backup.
    fn list() -> Result<Vec<BackupInfo>, String>;
    /// Up to `max` bytes of backup `id`'s snapshot stream from `offset`; fewer means the end.
    fn read_chunk(id: &str, offset: u64, max: u32) -> Result<Vec<u8>, String>;
    /// One sealed backup.
    fn info(id: &str) -> Result<BackupInfo, String>;
    /// Deletes backup `id` so that it is no longer listed (then its data); a missing backup is
    /// not an error.
    fn remove(id: &str) -> Result<(), String>;
}

/// The host's blob store: plain files directly inside the one directory the operator named
/// (`node --backup-dir`). A name is a plain file name of letters, digits, `.`, `_` and `-`, not
/// starting with `.`; the host refuses anything else.
pub mod blob {
    use alloc::string::String;
    use alloc::vec::Vec;

    use crate::bindings::backup::iroh_raft::plugin::blob_store as host;

    /// Appends `data` to blob `name`, creating it if needed.
    pub fn append(name: &str, data: &[u8]) -> Result<(), String> {
        host::append(name, data)
    }

    /// Up to `max` bytes of blob `name` from `offset`; fewer means the end.
    pub fn read(name: &str, offset: u64, max: u32) -> Result<Vec<u8>, String> {
        host::read(name, offset, max)
    }

    /// The whole of blob `name`, read in 1 MiB pieces.
    pub fn read_all(name: &str) -> Result<Vec<u8>, String> {
        const PIECE: u32 = 1 << 20;
        let mut all = Vec::new();
        loop {
            let piece = host::read(name, all.len() as u64, PIECE)?;
            let done = piece.len() < PIECE as usize;
            all.extend_from_slice(&piece);
            if done {
                return Ok(all);
            }
        }
    }

    /// Names of the blobs whose name starts with `prefix`, in byte order.
    pub fn list(prefix: &str) -> Result<Vec<String>, String> {
        host::list(prefix)
    }

    /// Removes blob `name`; removing a missing blob is not an error.
    pub fn remove(name: &str) -> Result<(), String> {
        host::remove(name)
    }
}

fn from_wit(info: archive::BackupInfo) -> BackupInfo {
    BackupInfo {
        id: info.id,
        index: info.index,
        size: info.size,
        sha256: info.sha256,
        metadata: info.metadata,
    }
}

fn to_wit(info: BackupInfo) -> archive::BackupInfo {
    archive::BackupInfo {
        id: info.id,
        index: info.index,
        size: info.size,
        sha256: info.sha256,
        metadata: info.metadata,
    }
}

/// Runs one export call of the handler on a fresh heap.
fn body<T>(call: impl FnOnce() -> T) -> T {
    crate::heap::enter_body();
    let out = call();
    crate::heap::leave();
    out
}

/// `create-begin`.
pub fn create_begin<B: BackupHandler>(info: archive::BackupInfo) -> Result<(), String> {
    body(|| B::create_begin(&from_wit(info)))
}

/// `create-chunk`.
pub fn create_chunk<B: BackupHandler>(id: String, chunk: Vec<u8>) -> Result<(), String> {
    body(|| B::create_chunk(&id, &chunk))
}

/// `create-finish`.
pub fn create_finish<B: BackupHandler>(id: String) -> Result<(), String> {
    body(|| B::create_finish(&id))
}

/// `list`. Lowering its result allocates (the array of records), so the window restarts above
/// what the call allocated rather than over it.
pub fn list<B: BackupHandler>() -> Result<Vec<archive::BackupInfo>, String> {
    crate::heap::enter_body();
    let all = B::list().map(|all| all.into_iter().map(to_wit).collect());
    crate::heap::leave_above();
    all
}

/// `read-chunk`. The bytes are shrunk to their length inside the call: lowering a `Vec` with
/// spare capacity reallocates it, and after the call that would land in the window, over the
/// arena the bytes are copied from.
pub fn read_chunk<B: BackupHandler>(id: String, offset: u64, max: u32) -> Result<Vec<u8>, String> {
    body(|| {
        B::read_chunk(&id, offset, max).map(|mut bytes| {
            bytes.shrink_to_fit();
            bytes
        })
    })
}

/// `info`. Lowering its record allocates (the metadata list), so, as for `list`, the window
/// restarts above what the call allocated.
pub fn info<B: BackupHandler>(id: String) -> Result<archive::BackupInfo, String> {
    crate::heap::enter_body();
    let info = B::info(&id).map(to_wit);
    crate::heap::leave_above();
    info
}

/// `remove`.
pub fn remove<B: BackupHandler>(id: String) -> Result<(), String> {
    body(|| B::remove(&id))
}
