//! Damaged bytes on disk — in the log, the raft metadata, the applied marker or the snapshot
//! file — surface as errors from the storage API, never as panics or silently wrong answers.

use std::path::Path;

use fjall::{Database, KeyspaceCreateOptions, PersistMode};
use iroh_raft::RaftStorageError;
use iroh_raft::proto::PluginLimits;
use iroh_raft::storage::RaftStorage;
use openraft::storage::{RaftLogReader, RaftLogStorage};
use proptest::prelude::*;

use crate::support::{C, append, blank_entry, bounded, kv_log, kv_plugin, open};

/// Writes `value` under `key` in `keyspace` of the database under `dir`, with every store closed.
fn poke(dir: &Path, keyspace: &str, key: &[u8], value: &[u8]) {
    let db = Database::builder(RaftStorage::database_dir(dir))
        .open()
        .expect("open database");
    let keyspace = db
        .keyspace(keyspace, KeyspaceCreateOptions::default)
        .expect("keyspace");
    keyspace.insert(key, value).expect("insert");
    db.persist(PersistMode::SyncAll).expect("persist");
}

/// A store with a short log, closed again.
async fn populated() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    let (mut log, _sm) = open(dir.path());
    append(&mut log, kv_log(4)).await;
    dir
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damaged_log_entries_are_errors() {
    bounded(60, async {
        for (what, key, value) in [
            (
                "garbage value",
                3u64.to_be_bytes().to_vec(),
                b"\x01garbage".to_vec(),
            ),
            (
                "unknown format",
                3u64.to_be_bytes().to_vec(),
                b"\x07".to_vec(),
            ),
            ("empty value", 3u64.to_be_bytes().to_vec(), Vec::new()),
            ("short key", vec![0, 3], b"\x01".to_vec()),
        ] {
            let dir = populated().await;
            poke(dir.path(), "raft.log", &key, &value);
            let (mut log, _sm) = open(dir.path());
            assert!(log.try_get_log_entries(..).await.is_err(), "{what}");
        }

        tracing::info!("an entry stored under another index");
        let dir = populated().await;
        let misplaced = {
            let (mut log, _sm) = open(dir.path());
            let mut reader = log.get_log_reader().await;
            let entries = reader.try_get_log_entries(2..3).await.expect("read");
            postcard_value(&entries[0])
        };
        poke(dir.path(), "raft.log", &9u64.to_be_bytes(), &misplaced);
        let (mut log, _sm) = open(dir.path());
        let error = log.get_log_state().await.expect_err("misplaced last entry");
        assert_eq!(error.kind(), std::io::ErrorKind::InvalidData);
    })
    .await;
}

/// The stored form of an entry, as the log store writes it (format byte + postcard).
fn postcard_value(entry: &openraft::type_config::alias::EntryOf<C>) -> Vec<u8> {
    postcard::to_extend(entry, vec![1u8]).expect("encode")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damaged_raft_metadata_is_an_error() {
    bounded(60, async {
        for key in [&b"vote"[..], b"committed", b"last_purged"] {
            let dir = populated().await;
            poke(dir.path(), "raft.meta", key, b"\x01\xff\xff\xff");
            let (mut log, _sm) = open(dir.path());
            let failed = match key {
                b"vote" => log.read_vote().await.is_err(),
                b"committed" => log.read_committed().await.is_err(),
                _ => log.get_log_state().await.is_err(),
            };
            assert!(failed, "{}", String::from_utf8_lossy(key));
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_applied_marker_or_snapshot_file_stops_the_open() {
    bounded(60, async {
        let dir = populated().await;
        poke(dir.path(), "sm.kv.meta", b"applied", b"\x05\x03abc");
        let error = RaftStorage::open(dir.path(), kv_plugin(), PluginLimits::default())
            .err()
            .expect("a damaged applied marker");
        assert!(matches!(error, RaftStorageError::Corrupt { .. }), "{error}");

        let dir = populated().await;
        let snapshot = RaftStorage::snapshot_dir(dir.path()).join("current.snap");
        std::fs::write(&snapshot, b"not a snapshot").expect("write");
        let error = RaftStorage::open(dir.path(), kv_plugin(), PluginLimits::default())
            .err()
            .expect("a damaged snapshot");
        assert!(
            matches!(error, RaftStorageError::SnapshotFile { .. }),
            "{error}"
        );
        assert!(error.to_string().contains("current.snap"), "{error}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leftover_temp_snapshots_are_removed_at_open() {
    bounded(60, async {
        let dir = populated().await;
        let leftover = RaftStorage::snapshot_dir(dir.path()).join("build-0.tmp");
        std::fs::write(&leftover, b"half a snapshot").expect("write");
        let (_log, _sm) = open(dir.path());
        assert!(!leftover.exists());
    })
    .await;
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Whatever bytes sit where the vote belongs, reading it returns, never panics; anything not
    /// in this build's format is an error.
    #[test]
    fn any_stored_vote_bytes_are_read_safely(value in proptest::collection::vec(any::<u8>(), 0..64)) {
        let dir = tempfile::tempdir().expect("temp dir");
        poke(dir.path(), "raft.meta", b"vote", &value);
        let read = runtime().block_on(bounded(30, async {
            let (mut log, _sm) = open(dir.path());
            log.read_vote().await
        }));
        if value.first() != Some(&1) {
            prop_assert!(read.is_err());
        }
    }

    /// Entries of any shape and size read back exactly as appended, across a reopen.
    #[test]
    fn appended_entries_read_back_exactly(
        payloads in proptest::collection::vec(proptest::option::of(proptest::collection::vec(any::<u8>(), 0..2048)), 1..24),
        term in 1u64..1000,
    ) {
        let dir = tempfile::tempdir().expect("temp dir");
        let entries: Vec<_> = payloads
            .into_iter()
            .enumerate()
            .map(|(i, payload)| match payload {
                Some(bytes) => crate::support::command_entry(term, 1 + i as u64, bytes.into()),
                None => blank_entry(term, 1 + i as u64),
            })
            .collect();
        let rt = runtime();
        rt.block_on(bounded(30, async {
            let (mut log, _sm) = open(dir.path());
            append(&mut log, entries.clone()).await;
        }));
        let read = rt.block_on(bounded(30, async {
            let (mut log, _sm) = open(dir.path());
            log.try_get_log_entries(..).await.expect("read")
        }));
        prop_assert_eq!(read, entries);
    }
}
