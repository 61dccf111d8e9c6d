//! A snapshot built by one store installs into another: same content hash, same applied state,
//! and the installing store keeps it as its current snapshot. A damaged or mislabelled snapshot
//! is refused and changes nothing.

use std::io::SeekFrom;

use iroh_raft::RaftStorageError;
use iroh_raft::storage::{StateStore, verify_snapshot};
use openraft::storage::{RaftSnapshotBuilder, RaftStateMachine};
use openraft::type_config::alias::SnapshotOf;
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

use crate::support::{C, apply, bounded, command_entry, get, kv_log, log_id, open, put};

async fn leader_snapshot(dir: &std::path::Path, puts: u64) -> SnapshotOf<C, tokio::fs::File> {
    let (_log, mut sm) = open(dir);
    apply(&mut sm, kv_log(puts)).await;
    sm.get_snapshot_builder()
        .await
        .build_snapshot()
        .await
        .expect("build snapshot")
}

async fn file_with(bytes: &[u8]) -> tokio::fs::File {
    let mut file: tokio::fs::File = tempfile::tempfile().expect("temp file").into();
    file.write_all(bytes).await.expect("write");
    file.flush().await.expect("flush");
    file.seek(SeekFrom::Start(0)).await.expect("rewind");
    file
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_moves_a_whole_state_machine_between_stores() {
    bounded(60, async {
        let leader_dir = tempfile::tempdir().expect("temp dir");
        let follower_dir = tempfile::tempdir().expect("temp dir");

        tracing::info!("the leader applies 200 puts and builds a snapshot");
        let (_leader_log, mut leader) = open(leader_dir.path());
        apply(&mut leader, kv_log(200)).await;
        let mut snapshot = leader
            .get_snapshot_builder()
            .await
            .build_snapshot()
            .await
            .expect("build snapshot");
        assert_eq!(snapshot.meta.last_log_id, Some(log_id(1, 201)));
        let meta = verify_snapshot(&mut snapshot.snapshot)
            .await
            .expect("the snapshot verifies");
        assert_eq!(meta, snapshot.meta);

        tracing::info!("the follower holds other data, then installs the snapshot");
        {
            let (_log, mut follower) = open(follower_dir.path());
            apply(
                &mut follower,
                vec![
                    crate::support::membership_entry(1, 1, &[1, 2]),
                    command_entry(1, 2, put("stale", "x")),
                ],
            )
            .await;
            follower
                .install_snapshot(&snapshot.meta, snapshot.snapshot)
                .await
                .expect("install");
            assert_eq!(
                follower.state().content_hash().expect("hash"),
                leader.state().content_hash().expect("hash")
            );
            assert_eq!(
                follower.applied_state().await.expect("applied"),
                leader.applied_state().await.expect("applied")
            );
            assert_eq!(get(&follower, "stale"), None);
            assert_eq!(get(&follower, "k199"), Some(b"v199".to_vec()));
            let current = follower
                .get_current_snapshot()
                .await
                .expect("current")
                .expect("the installed snapshot is current");
            assert_eq!(current.meta, meta);

            tracing::info!("applying continues after the snapshot");
            apply(&mut follower, vec![command_entry(1, 202, put("next", "1"))]).await;
            assert_eq!(get(&follower, "next"), Some(b"1".to_vec()));
        }

        tracing::info!("the install survives a restart");
        let (_log, mut follower) = open(follower_dir.path());
        assert_eq!(
            follower.applied_state().await.expect("applied").0,
            Some(log_id(1, 202))
        );
        assert_eq!(get(&follower, "k0"), Some(b"v0".to_vec()));
        assert_eq!(get(&follower, "stale"), None);
        let current = follower
            .get_current_snapshot()
            .await
            .expect("current")
            .expect("some");
        assert_eq!(current.meta, meta);

        tracing::info!("reinstalling the store's own current snapshot (startup restore) works");
        let fresh_dir = tempfile::tempdir().expect("temp dir");
        let (_log, mut fresh) = open(fresh_dir.path());
        let own = follower
            .get_current_snapshot()
            .await
            .expect("current")
            .expect("some");
        fresh
            .install_snapshot(&own.meta, own.snapshot)
            .await
            .expect("install into a fresh store");
        let own = follower
            .get_current_snapshot()
            .await
            .expect("current")
            .expect("some");
        follower
            .install_snapshot(&own.meta, own.snapshot)
            .await
            .expect("install its own snapshot");
        assert_eq!(
            follower.applied_state().await.expect("applied").0,
            Some(log_id(1, 201))
        );
        assert_eq!(
            fresh.state().content_hash().expect("hash"),
            follower.state().content_hash().expect("hash")
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_snapshot_is_refused_and_changes_nothing() {
    bounded(60, async {
        let leader_dir = tempfile::tempdir().expect("temp dir");
        let mut snapshot = leader_snapshot(leader_dir.path(), 50).await;
        let mut bytes = Vec::new();
        snapshot
            .snapshot
            .read_to_end(&mut bytes)
            .await
            .expect("read snapshot");

        let dir = tempfile::tempdir().expect("temp dir");
        let (_log, mut sm) = open(dir.path());
        apply(&mut sm, kv_log(3)).await;
        let hash = sm.state().content_hash().expect("hash");
        let applied = sm.applied_state().await.expect("applied");

        for (what, damaged) in [
            ("a flipped byte", {
                let mut b = bytes.clone();
                let middle = b.len() / 2;
                b[middle] ^= 0x40;
                b
            }),
            ("a truncated file", bytes[..bytes.len() - 7].to_vec()),
            ("an empty file", Vec::new()),
            ("trailing garbage", {
                let mut b = bytes.clone();
                b.extend_from_slice(b"junk");
                b
            }),
        ] {
            tracing::info!("refusing {what}");
            let mut file = file_with(&damaged).await;
            assert!(verify_snapshot(&mut file).await.is_err(), "{what} verified");
            let error = sm
                .install_snapshot(&snapshot.meta, file)
                .await
                .expect_err(what);
            assert_eq!(
                error.kind(),
                std::io::ErrorKind::InvalidData,
                "{what}: {error}"
            );
            assert_eq!(sm.state().content_hash().expect("hash"), hash, "{what}");
            assert_eq!(
                sm.applied_state().await.expect("applied"),
                applied,
                "{what}"
            );
            assert!(
                sm.get_current_snapshot().await.expect("current").is_none(),
                "{what}"
            );
        }

        tracing::info!("refusing a snapshot whose metadata names another log position");
        let mut wrong_meta = snapshot.meta.clone();
        wrong_meta.last_log_id = Some(log_id(9, 999));
        let error = sm
            .install_snapshot(&wrong_meta, file_with(&bytes).await)
            .await
            .expect_err("metadata mismatch");
        let inner = error
            .get_ref()
            .and_then(|e| e.downcast_ref::<RaftStorageError>())
            .expect("a raft storage error");
        assert!(
            matches!(inner, RaftStorageError::MetaMismatch { .. }),
            "{inner}"
        );
        assert_eq!(sm.state().content_hash().expect("hash"), hash);

        tracing::info!("the intact snapshot still installs");
        sm.install_snapshot(&snapshot.meta, file_with(&bytes).await)
            .await
            .expect("install");
        assert_eq!(get(&sm, "k49"), Some(b"v49".to_vec()));
    })
    .await;
}
