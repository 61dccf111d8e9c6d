//! The manifests the bundled backup handlers keep: backup `ID`'s description (the host's
//! [`BackupInfo`], as JSON) is written to `ID<pending>` when the backup starts and copied to
//! `ID<sealed>` once its data is complete, so a backup without a sealed manifest is unfinished
//! and never listed. Each handler picks its own suffixes, so handlers share a directory without
//! seeing each other's backups.
#![no_std]

extern crate alloc;

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use iroh_raft_plugin_api::{BackupInfo, blob};

/// One handler's manifest names.
pub struct Manifests {
    /// Appended to the id for a sealed manifest.
    pub sealed: &'static str,
    /// Appended to the id for the manifest of a backup being written.
    pub pending: &'static str,
}

/// Whether blob `name` exists.
pub fn exists(name: &str) -> Result<bool, String> {
    Ok(blob::list(name)?.iter().any(|found| found == name))
}

fn read(name: &str) -> Result<BackupInfo, String> {
    let bytes = blob::read_all(name)?;
    serde_json::from_slice(&bytes).map_err(|e| format!("manifest {name} is damaged: {e}"))
}

impl Manifests {
    /// Starts backup `info.id`: refuses an id that exists, removes what an earlier attempt left
    /// (`data`, the backup's own files) and writes the pending manifest.
    pub fn begin(&self, info: &BackupInfo, data: &[String]) -> Result<(), String> {
        if exists(&format!("{}{}", info.id, self.sealed))? {
            return Err(format!("backup {} exists already", info.id));
        }
        for name in data {
            blob::remove(name)?;
        }
        let pending = format!("{}{}", info.id, self.pending);
        blob::remove(&pending)?;
        let json = serde_json::to_vec(info).map_err(|e| e.to_string())?;
        blob::append(&pending, &json)
    }

    /// The description of backup `id`, which is being written.
    pub fn pending(&self, id: &str) -> Result<BackupInfo, String> {
        read(&format!("{id}{}", self.pending))
    }

    /// Seals backup `id`, whose data is complete.
    pub fn seal(&self, info: &BackupInfo) -> Result<(), String> {
        let json = serde_json::to_vec(info).map_err(|e| e.to_string())?;
        blob::append(&format!("{}{}", info.id, self.sealed), &json)?;
        blob::remove(&format!("{}{}", info.id, self.pending))
    }

    /// Every sealed backup.
    pub fn list(&self) -> Result<Vec<BackupInfo>, String> {
        let mut all = Vec::new();
        for name in blob::list("")? {
            if name.ends_with(self.sealed) {
                all.push(read(&name)?);
            }
        }
        Ok(all)
    }

    /// Deletes backup `id`: its sealed manifest first (so it is no longer listed), then `data`
    /// and any pending manifest.
    pub fn remove(&self, id: &str, data: &[String]) -> Result<(), String> {
        blob::remove(&format!("{id}{}", self.sealed))?;
        for name in data {
            blob::remove(name)?;
        }
        blob::remove(&format!("{id}{}", self.pending))
    }

    /// Sealed backup `id`.
    pub fn info(&self, id: &str) -> Result<BackupInfo, String> {
        let name = format!("{id}{}", self.sealed);
        if !exists(&name)? {
            return Err(format!("no backup {id}"));
        }
        read(&name)
    }
}
