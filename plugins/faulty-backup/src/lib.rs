//! A test backup handler that misbehaves as the metadata `fault` of a backup asks (`backup create
//! --meta fault=...`): `trap` panics (a trap), `loop` spins until its fuel runs out, `escape`
//! tries to write `../../etc/passwd` and reports what the host said. It stores nothing. Used by
//! the backup tests; never a default.
#![no_std]

extern crate alloc;

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use iroh_raft_plugin_api::{BackupHandler, BackupInfo, blob};

struct FaultyBackup;

impl BackupHandler for FaultyBackup {
    fn create_begin(info: &BackupInfo) -> Result<(), String> {
        let fault = info
            .metadata
            .iter()
            .find(|(key, _)| key == "fault")
            .map(|(_, value)| value.as_str());
        match fault {
            Some("trap") => panic!("asked to trap"),
            Some("loop") => {
                let mut spins = 0u64;
                loop {
                    spins = core::hint::black_box(spins.wrapping_add(1));
                }
            }
            Some("escape") => match blob::append("../../etc/passwd", b"owned\n") {
                Ok(()) => Err("the host let me write ../../etc/passwd".into()),
                Err(host) => Err(format!("the host refused ../../etc/passwd: {host}")),
            },
            _ => Err("faulty-backup stores nothing".into()),
        }
    }

    fn create_chunk(_id: &str, _chunk: &[u8]) -> Result<(), String> {
        Err("faulty-backup stores nothing".into())
    }

    fn create_finish(_id: &str) -> Result<(), String> {
        Err("faulty-backup stores nothing".into())
    }

    fn list() -> Result<Vec<BackupInfo>, String> {
        Ok(Vec::new())
    }

    fn read_chunk(id: &str, _offset: u64, _max: u32) -> Result<Vec<u8>, String> {
        Err(format!("no backup {id}"))
    }

    fn info(id: &str) -> Result<BackupInfo, String> {
        Err(format!("no backup {id}"))
    }

    fn remove(_id: &str) -> Result<(), String> {
        Ok(())
    }
}

iroh_raft_plugin_api::export_backup!(FaultyBackup);
