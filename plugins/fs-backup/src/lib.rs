//! The bundled backup handler: backup `ID` is two files in the backup directory, `ID.snap` (the
//! snapshot bytes, exactly as the host streamed them) and `ID.json` (its manifest: index, size,
//! sha256 and metadata, as JSON). The manifest is written last, so a backup without one is
//! unfinished and never listed. `ID.snap` is the image `iroh-raft restore --from` reads.
#![no_std]

extern crate alloc;

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use iroh_raft_backup_manifest::Manifests;
use iroh_raft_plugin_api::{BackupHandler, BackupInfo, blob};

const MANIFESTS: Manifests = Manifests {
    sealed: ".json",
    pending: ".pending",
};

fn image(id: &str) -> String {
    format!("{id}.snap")
}

/// Whether blob `name` holds exactly `size` bytes.
fn holds(name: &str, size: u64) -> Result<bool, String> {
    if size == 0 {
        return Ok(blob::read(name, 0, 1)?.is_empty());
    }
    Ok(blob::read(name, size - 1, 2)?.len() == 1)
}

struct FsBackup;

impl BackupHandler for FsBackup {
    fn create_begin(info: &BackupInfo) -> Result<(), String> {
        MANIFESTS.begin(info, &[image(&info.id)])
    }

    fn create_chunk(id: &str, chunk: &[u8]) -> Result<(), String> {
        blob::append(&image(id), chunk)
    }

    fn create_finish(id: &str) -> Result<(), String> {
        let info = MANIFESTS.pending(id)?;
        if !holds(&image(id), info.size)? {
            return Err(format!(
                "backup {id} holds another size than the {} bytes announced",
                info.size
            ));
        }
        MANIFESTS.seal(&info)
    }

    fn list() -> Result<Vec<BackupInfo>, String> {
        MANIFESTS.list()
    }

    fn read_chunk(id: &str, offset: u64, max: u32) -> Result<Vec<u8>, String> {
        MANIFESTS.info(id)?;
        blob::read(&image(id), offset, max)
    }

    fn info(id: &str) -> Result<BackupInfo, String> {
        MANIFESTS.info(id)
    }

    fn remove(id: &str) -> Result<(), String> {
        MANIFESTS.remove(id, &[image(id)])
    }
}

iroh_raft_plugin_api::export_backup!(FsBackup);
