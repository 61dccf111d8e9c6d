//! A torn tail (issue 15's storage faults): a crash in the middle of writing the journal's last
//! record leaves its bytes cut short. Reopened, the log is every entry before that record, intact,
//! with no error, and the store appends on from there.

use std::path::{Path, PathBuf};

use iroh_raft::storage::RaftStorage;
use openraft::storage::{RaftLogReader, RaftLogStorage};

use crate::support::{append, bounded, kv_log, open};

/// The journal files fjall writes under `dir`, newest (highest number) last.
fn journals(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(at) = pending.pop() {
        for entry in std::fs::read_dir(&at).expect("read dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == "jnl") {
                found.push(path);
            }
        }
    }
    found.sort_by_key(|p| {
        p.file_stem()
            .and_then(|s| s.to_str())
            .and_then(|s| s.parse::<u64>().ok())
    });
    found
}

/// Writes `entries` to a new store under `dir`, one append (one journal record) each, so the
/// last record is the last entry's; then closes it.
async fn write_one_by_one(
    dir: &Path,
    entries: &[openraft::type_config::alias::EntryOf<crate::support::C>],
) {
    let (mut log, _sm) = open(dir);
    for entry in entries {
        append(&mut log, vec![entry.clone()]).await;
    }
}

/// Cuts `bytes` off the end of what the newest journal holds. fjall preallocates a journal file
/// (zeros past the last record), so the end is the last byte that is not zero.
fn tear(dir: &Path, bytes: u64) {
    let database = RaftStorage::database_dir(dir);
    let journal = journals(&database)
        .pop()
        .unwrap_or_else(|| panic!("no journal file under {}", database.display()));
    let content = std::fs::read(&journal).expect("read the journal");
    let end = content
        .iter()
        .rposition(|b| *b != 0)
        .expect("the journal holds records") as u64
        + 1;
    std::fs::OpenOptions::new()
        .write(true)
        .open(&journal)
        .expect("open the journal")
        .set_len(end - bytes)
        .expect("tear the tail");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_torn_journal_tail_recovers_to_the_last_complete_entry() {
    bounded(60, async {
        let entries = kv_log(20); // indexes 1..=21
        for cut in [1, 4, 9, 30] {
            let dir = tempfile::tempdir().expect("temp dir");
            write_one_by_one(dir.path(), &entries).await;
            tear(dir.path(), cut);

            let (mut log, sm) = open(dir.path());
            let state = log.get_log_state().await.expect("the torn log opens");
            let last = state.last_log_id.expect("entries survive").index;
            assert_eq!(
                last,
                entries.len() as u64 - 1,
                "{cut} bytes torn off: the log should end just before the torn record"
            );
            let kept = log
                .try_get_log_entries(0..100)
                .await
                .expect("the surviving entries read back");
            assert_eq!(
                kept,
                entries[..last as usize].to_vec(),
                "a surviving entry changed"
            );

            // The store goes on: the lost entry is appended again, and all of it reads back
            // after another reopen.
            append(&mut log, entries[last as usize..].to_vec()).await;
            drop((log, sm));
            let (mut log, _sm) = open(dir.path());
            assert_eq!(
                log.try_get_log_entries(0..100).await.expect("entries"),
                entries,
                "{cut} bytes torn off: after the repair and a reopen"
            );
        }
    })
    .await;
}
