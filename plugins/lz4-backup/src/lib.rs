//! A backup handler that compresses inside wasm: backup `ID` is `ID.lz4`, a sequence of frames
//! (`u32` LE raw length, `u32` LE compressed length, an LZ4 block), one per chunk the host
//! handed over, and `ID.lz4-manifest` (the host's description as JSON), written last. It exists
//! to show that handlers can be swapped: it shares a directory with `fs-backup` without either
//! seeing the other's files.
#![no_std]

extern crate alloc;

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use iroh_raft_backup_manifest::Manifests;
use iroh_raft_plugin_api::{BackupHandler, BackupInfo, blob};

/// A frame's header: raw length, compressed length.
const HEADER: u64 = 8;
/// The largest raw frame accepted when reading back (the host hands over at most 1 MiB).
const MAX_RAW: u32 = 16 << 20;

const MANIFESTS: Manifests = Manifests {
    sealed: ".lz4-manifest",
    pending: ".lz4-pending",
};

fn data(id: &str) -> String {
    format!("{id}.lz4")
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    let mut word = [0u8; 4];
    word.copy_from_slice(&bytes[at..at + 4]);
    u32::from_le_bytes(word)
}

/// One frame's header, read at `at` in the data blob: `None` at the end.
fn frame_at(name: &str, at: u64) -> Result<Option<(u32, u32)>, String> {
    let header = blob::read(name, at, HEADER as u32)?;
    match header.len() {
        0 => Ok(None),
        8 => Ok(Some((u32_at(&header, 0), u32_at(&header, 4)))),
        _ => Err(format!("{name} ends inside a frame header")),
    }
}

/// The raw bytes of the frame whose header is at `at`.
fn decompress(name: &str, at: u64, raw: u32, packed: u32) -> Result<Vec<u8>, String> {
    if raw > MAX_RAW {
        return Err(format!("{name}: a frame claims {raw} raw bytes"));
    }
    let block = blob::read(name, at + HEADER, packed)?;
    if block.len() != packed as usize {
        return Err(format!("{name} is truncated"));
    }
    let bytes = lz4_flex::block::decompress(&block, raw as usize)
        .map_err(|e| format!("{name} is damaged: {e}"))?;
    if bytes.len() != raw as usize {
        return Err(format!("{name}: a frame decompressed to the wrong length"));
    }
    Ok(bytes)
}

struct Lz4Backup;

impl BackupHandler for Lz4Backup {
    fn create_begin(info: &BackupInfo) -> Result<(), String> {
        MANIFESTS.begin(info, &[data(&info.id)])
    }

    fn create_chunk(id: &str, chunk: &[u8]) -> Result<(), String> {
        let packed = lz4_flex::block::compress(chunk);
        let mut frame = Vec::with_capacity(packed.len() + HEADER as usize);
        frame.extend_from_slice(&(chunk.len() as u32).to_le_bytes());
        frame.extend_from_slice(&(packed.len() as u32).to_le_bytes());
        frame.extend_from_slice(&packed);
        blob::append(&data(id), &frame)
    }

    fn create_finish(id: &str) -> Result<(), String> {
        let info = MANIFESTS.pending(id)?;
        let mut raw_total = 0u64;
        let mut at = 0u64;
        while let Some((raw, packed)) = frame_at(&data(id), at)? {
            raw_total += u64::from(raw);
            at += HEADER + u64::from(packed);
        }
        if raw_total != info.size {
            return Err(format!(
                "backup {id} holds {raw_total} bytes, not the {} announced",
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
        let name = data(id);
        let mut out = Vec::new();
        let (mut raw_at, mut at) = (0u64, 0u64);
        while out.len() < max as usize {
            let Some((raw, packed)) = frame_at(&name, at)? else {
                break;
            };
            let end = raw_at + u64::from(raw);
            let want = offset + out.len() as u64;
            if want < end {
                let bytes = decompress(&name, at, raw, packed)?;
                let from = (want - raw_at) as usize;
                let take = (bytes.len() - from).min(max as usize - out.len());
                out.extend_from_slice(&bytes[from..from + take]);
            }
            raw_at = end;
            at += HEADER + u64::from(packed);
        }
        Ok(out)
    }

    fn info(id: &str) -> Result<BackupInfo, String> {
        MANIFESTS.info(id)
    }

    fn remove(id: &str) -> Result<(), String> {
        MANIFESTS.remove(id, &[data(id)])
    }
}

iroh_raft_plugin_api::export_backup!(Lz4Backup);
