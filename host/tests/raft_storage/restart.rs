//! Everything written comes back after the stores are dropped and reopened: vote, log, committed
//! and purged positions, applied state, data and the latest snapshot.

use iroh_raft::storage::StateStore;
use openraft::StoredMembership;
use openraft::storage::{RaftLogReader, RaftLogStorage, RaftSnapshotBuilder, RaftStateMachine};

use crate::support::{
    append, apply, bounded, command_entry, get, kv_log, log_id, membership, open, put, vote,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reopened_store_has_everything_back() {
    bounded(60, async {
        let dir = tempfile::tempdir().expect("temp dir");
        let entries = kv_log(10); // indexes 1..=11
        let the_vote = vote(3, 1, true);

        tracing::info!("write: append, vote, apply 1..=8, snapshot, apply 9..=11, purge ..=5");
        let (hash, snapshot_meta) = {
            let (mut log, mut sm) = open(dir.path());
            append(&mut log, entries.clone()).await;
            log.save_vote(&the_vote).await.expect("save vote");
            log.save_committed(Some(log_id(1, 11)))
                .await
                .expect("save committed");
            apply(&mut sm, entries[..8].to_vec()).await;
            let snapshot = sm
                .get_snapshot_builder()
                .await
                .build_snapshot()
                .await
                .expect("build snapshot");
            assert_eq!(snapshot.meta.last_log_id, Some(log_id(1, 8)));
            apply(&mut sm, entries[8..].to_vec()).await;
            log.purge(log_id(1, 5)).await.expect("purge");
            let hash = sm.state().content_hash().expect("hash");
            (hash, snapshot.meta)
        };

        tracing::info!("reopen: everything is back");
        let (mut log, mut sm) = open(dir.path());
        assert_eq!(log.read_vote().await.expect("vote"), Some(the_vote));
        let state = log.get_log_state().await.expect("log state");
        assert_eq!(state.last_purged_log_id, Some(log_id(1, 5)));
        assert_eq!(state.last_log_id, Some(log_id(1, 11)));
        assert_eq!(
            log.try_get_log_entries(0..100).await.expect("entries"),
            entries[5..].to_vec()
        );
        assert_eq!(
            log.read_committed().await.expect("committed"),
            Some(log_id(1, 11))
        );
        let (last_applied, last_membership) = sm.applied_state().await.expect("applied state");
        assert_eq!(last_applied, Some(log_id(1, 11)));
        assert_eq!(
            last_membership,
            StoredMembership::new(Some(log_id(1, 1)), membership(&[1]))
        );
        assert_eq!(sm.state().content_hash().expect("hash"), hash);
        assert_eq!(get(&sm, "k9"), Some(b"v9".to_vec()));
        let current = sm
            .get_current_snapshot()
            .await
            .expect("read current snapshot")
            .expect("a snapshot survives restart");
        assert_eq!(current.meta, snapshot_meta);

        tracing::info!("the reopened store keeps going");
        apply(&mut sm, vec![command_entry(1, 12, put("after", "restart"))]).await;
        assert_eq!(get(&sm, "after"), Some(b"restart".to_vec()));
        assert_eq!(
            sm.applied_state().await.expect("applied state").0,
            Some(log_id(1, 12))
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_build_snapshots_the_state_at_build_time() {
    bounded(60, async {
        let dir = tempfile::tempdir().expect("temp dir");
        let entries = kv_log(4);
        let (_log, mut sm) = open(dir.path());
        apply(&mut sm, entries[..2].to_vec()).await;
        let mut early = sm.get_snapshot_builder().await;
        apply(&mut sm, entries[2..].to_vec()).await;
        let late = sm
            .get_snapshot_builder()
            .await
            .build_snapshot()
            .await
            .expect("build");
        assert_eq!(late.meta.last_log_id, Some(log_id(1, 5)));
        // A builder created earlier still exports the state as of when it builds.
        let again = early.build_snapshot().await.expect("build");
        assert_eq!(again.meta, late.meta);
        let current = sm
            .get_current_snapshot()
            .await
            .expect("current")
            .expect("some");
        assert_eq!(current.meta.last_log_id, Some(log_id(1, 5)));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_state_machine_behind_its_snapshot_is_restored_from_it_at_startup() {
    bounded(60, async {
        let leader_dir = tempfile::tempdir().expect("temp dir");
        let (_log, mut leader) = open(leader_dir.path());
        apply(&mut leader, kv_log(30)).await;
        let built = leader
            .get_snapshot_builder()
            .await
            .build_snapshot()
            .await
            .expect("build");

        tracing::info!("a node whose data is gone but whose snapshot survived");
        let dir = tempfile::tempdir().expect("temp dir");
        let snapshots = iroh_raft::storage::RaftStorage::snapshot_dir(dir.path());
        std::fs::create_dir_all(&snapshots).expect("mkdir");
        std::fs::copy(
            iroh_raft::storage::RaftStorage::snapshot_dir(leader_dir.path()).join("current.snap"),
            snapshots.join("current.snap"),
        )
        .expect("copy snapshot");
        let (mut log, mut sm) = open(dir.path());
        openraft::StorageHelper::new(&mut log, &mut sm)
            .with_id(1)
            .get_initial_state()
            .await
            .expect("initial state");
        let (last_applied, last_membership) = sm.applied_state().await.expect("applied");
        assert_eq!(last_applied, built.meta.last_log_id);
        assert_eq!(last_membership, built.meta.last_membership);
        assert_eq!(get(&sm, "k29"), Some(b"v29".to_vec()));
        assert_eq!(
            sm.state().content_hash().expect("hash"),
            leader.state().content_hash().expect("hash")
        );
    })
    .await;
}
