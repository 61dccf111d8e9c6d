//! Backups through wasm backup handlers over real iroh: a backup taken while writes go on holds
//! exactly the state every replica had at its index; an online restore replaces every replica's
//! data at one index (a node that was down catches up to it); damaged, truncated, missing and
//! hostile backups are refused and change nothing; the handler is swapped at run time and the old
//! backups stay restorable through the handler that wrote them.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use iroh_raft::proto::{BackupInfo, Consistency, PluginKind, RequestError};
use iroh_raft::{ClientError, IrohRaftManagementClient, Node, NodeConfig, Start, bundled};

use crate::support::{TestNode, client, cluster_with, config, get, put, value, wait_for};

const LIMIT: Duration = Duration::from_secs(240);

/// Every node keeps backups in `backups/` inside its data directory.
fn with_backup_dir(config: &mut NodeConfig) {
    let dir = config.data_dir.join("backups");
    std::fs::create_dir_all(&dir).expect("create the backup directory");
    config.backup_dir = Some(dir);
}

fn backup_dir(node: &TestNode) -> std::path::PathBuf {
    node.dir.path().join("backups")
}

async fn manage(node: &TestNode) -> IrohRaftManagementClient {
    IrohRaftManagementClient::connect_with_key(crate::support::admin_key(), vec![node.node.addr()])
        .await
        .expect("management client connects")
}

async fn deploy(node: &TestNode, wasm: &'static [u8], config: &str) {
    client(node)
        .await
        .deploy_plugin(
            PluginKind::Backup,
            Bytes::from_static(wasm),
            "",
            Bytes::copy_from_slice(config.as_bytes()),
            &mut |_, _| {},
        )
        .await
        .expect("deploy the backup handler");
}

/// `key`'s value as `node` has applied it (a stale read: exactly this replica's data).
async fn local_value(node: &TestNode, key: &str) -> Option<Vec<u8>> {
    let answer = client(node)
        .await
        .read(get(key), Consistency::Stale)
        .await
        .expect("read")
        .expect("the query succeeds");
    value(&answer)
}

async fn write(node: &TestNode, key: &str, value: &str) -> u64 {
    let (index, outcome) = client(node)
        .await
        .write(put(key, value))
        .await
        .expect("write");
    outcome.expect("applied");
    index
}

async fn finish(manage: IrohRaftManagementClient, nodes: Vec<TestNode>) {
    manage.close().await;
    for node in nodes {
        node.node.shutdown().await.expect("shutdown");
    }
}

fn leader_of(nodes: &[TestNode]) -> usize {
    let leader = nodes[0].node.status().leader.expect("a leader");
    nodes
        .iter()
        .position(|n| n.node.node_id() == leader)
        .expect("the leader is one of the nodes")
}

fn backup_error(error: ClientError) -> String {
    match error {
        ClientError::Request(RequestError::Backup { reason, .. }) => reason,
        ClientError::Request(other) => other.to_string(),
        other => panic!("expected the cluster's refusal, got {other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_taken_during_writes_holds_exactly_the_state_every_replica_had_at_its_index() {
    tokio::time::timeout(LIMIT, async {
        let nodes = cluster_with(3, with_backup_dir).await;
        let manage = manage(&nodes[0]).await;
        let mut settings = manage.get_configuration().await.expect("config");
        // Check points close together: every replica keeps its state at them.
        settings.check_every = 20;
        manage
            .update_configuration(settings)
            .await
            .expect("check every 20 entries");
        deploy(&nodes[0], bundled::FS_BACKUP, "").await;

        let stop = Arc::new(AtomicBool::new(false));
        let written = Arc::new(AtomicU64::new(0));
        let writer = {
            let (stop, written) = (stop.clone(), written.clone());
            let c = client(&nodes[1]).await;
            tokio::spawn(async move {
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let (_, outcome) = c
                        .write(put(&format!("k{}", i % 50), &format!("v{i}")))
                        .await
                        .expect("write");
                    outcome.expect("applied");
                    i += 1;
                    written.store(i, Ordering::Relaxed);
                }
            })
        };
        wait_for(Duration::from_secs(60), "writes to flow", || {
            written.load(Ordering::Relaxed) >= 100
        })
        .await;
        let before = written.load(Ordering::Relaxed);
        let info: BackupInfo = manage
            .create_backup(None, vec![("test".into(), "during writes".into())])
            .await
            .expect("create a backup");
        let during = written.load(Ordering::Relaxed) - before;
        stop.store(true, Ordering::Relaxed);
        writer.await.expect("writer");
        tracing::info!(?info, during, "backup taken");
        assert!(during > 0, "the writes went on while the backup was taken");
        assert_eq!(
            info.metadata,
            [("test".to_string(), "during writes".to_string())]
        );
        let state_hash = info.state_hash.expect("the backup records its state hash");

        // Every replica held exactly the backed-up state at the backup's index.
        for node in &nodes {
            let hash = manage
                .state_hash(&node.node.addr(), info.index)
                .await
                .unwrap_or_else(|e| {
                    panic!("node {}'s hash at {}: {e}", node.node.node_id(), info.index)
                });
            assert_eq!(hash.hash, state_hash, "node {}", node.node.node_id());
        }
        // The stored image is the state: it verifies and hashes to the recorded state hash.
        let leader = &nodes[leader_of(&nodes)];
        assert_eq!(
            info.node_id,
            Some(leader.node.node_id()),
            "taken on the leader"
        );
        let image = std::fs::read(backup_dir(leader).join(format!("{}.snap", info.id)))
            .expect("fs-backup stored the image");
        assert_eq!(image.len() as u64, info.size);
        assert_eq!(iroh_raft::sha256(&image), info.sha256);
        let summary = iroh_raft::inspect_image(&image).expect("the image verifies");
        assert_eq!(summary.index, info.index);
        assert_eq!(summary.state_hash, hex::encode(state_hash));
        // Listed with the host's facts.
        let listed = manage.list_backups(None).await.expect("list");
        assert_eq!(listed, vec![info]);
        finish(manage, nodes).await;
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_online_restore_replaces_every_replica_s_data_and_a_node_down_during_it_catches_up() {
    tokio::time::timeout(LIMIT, async {
        let mut nodes = cluster_with(3, with_backup_dir).await;
        deploy(&nodes[0], bundled::FS_BACKUP, "").await;
        for i in 0..20 {
            write(&nodes[0], &format!("a{i}"), "old").await;
        }
        let manage = manage(&nodes[0]).await;
        let backup = manage
            .create_backup(None, Vec::new())
            .await
            .expect("backup");

        // Changes after the backup: they must be gone after the restore.
        write(&nodes[0], "a0", "new").await;
        for i in 0..10 {
            write(&nodes[0], &format!("b{i}"), "after").await;
        }
        // A follower is down while the restore happens.
        let leader = leader_of(&nodes);
        let down = (0..3).find(|&i| i != leader).expect("a follower");
        let stopped = nodes.remove(down);
        let bind = stopped.node.endpoint().bound_sockets()[0];
        stopped.node.shutdown().await.expect("stop a follower");

        let restored = manage.restore_backup(&backup.id).await.expect("restore");
        assert_eq!(restored.backup_id, backup.id);
        assert_eq!(restored.backup_index, backup.index);
        assert_eq!(restored.pairs, 20);
        for node in &nodes {
            wait_for(Duration::from_secs(30), "the restore to apply", || {
                node.node.status().applied.unwrap_or(0) >= restored.index
            })
            .await;
            assert_eq!(local_value(node, "a0").await.as_deref(), Some(&b"old"[..]));
            assert_eq!(local_value(node, "b0").await, None);
        }
        let hashes: Vec<[u8; 32]> = {
            let mut hashes = Vec::new();
            for node in &nodes {
                hashes.push(
                    manage
                        .state_hash(&node.node.addr(), restored.index)
                        .await
                        .expect("hash at the restore")
                        .hash,
                );
            }
            hashes
        };
        assert_eq!(hashes[0], hashes[1], "the replicas agree after the restore");

        // Writes go on after it.
        let last = write(&nodes[0], "c0", "later").await;

        // The follower that was down comes back and catches up to the restored state.
        let mut restart = config(stopped.dir.path());
        with_backup_dir(&mut restart);
        restart.bind = bind;
        let node = Node::start(restart, Start::Restart).await.expect("restart");
        let back = TestNode {
            node,
            dir: stopped.dir,
        };
        wait_for(
            Duration::from_secs(60),
            "the restarted follower to catch up",
            || back.node.status().applied.unwrap_or(0) >= last,
        )
        .await;
        assert_eq!(local_value(&back, "a0").await.as_deref(), Some(&b"old"[..]));
        assert_eq!(local_value(&back, "b0").await, None);
        assert_eq!(
            local_value(&back, "c0").await.as_deref(),
            Some(&b"later"[..])
        );
        nodes.push(back);
        let report = manage.check_consistency().await.expect("check");
        assert!(report.consistent(), "{report:?}");
        finish(manage, nodes).await;
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damaged_truncated_missing_and_hostile_backups_are_refused_and_change_nothing() {
    tokio::time::timeout(LIMIT, async {
        let nodes = cluster_with(1, with_backup_dir).await;
        let node = &nodes[0];
        let manage = manage(node).await;
        let dir = backup_dir(node);

        // No handler yet.
        let error = manage.create_backup(None, Vec::new()).await.unwrap_err();
        assert!(
            matches!(error, ClientError::Request(RequestError::NoBackupHandler)),
            "{error}"
        );
        deploy(node, bundled::FS_BACKUP, "").await;
        write(node, "k", "backed up").await;
        let flipped = manage.create_backup(None, Vec::new()).await.expect("backup 1");
        let truncated = manage.create_backup(None, Vec::new()).await.expect("backup 2");
        write(node, "k", "current").await;

        // A flipped byte in a stored backup.
        let path = dir.join(format!("{}.snap", flipped.id));
        let mut bytes = std::fs::read(&path).expect("read the image");
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0x01;
        std::fs::write(&path, &bytes).expect("flip a byte");
        let reason = backup_error(manage.restore_backup(&flipped.id).await.unwrap_err());
        assert!(reason.contains("damaged or changed"), "{reason}");

        // A truncated one.
        let path = dir.join(format!("{}.snap", truncated.id));
        let bytes = std::fs::read(&path).expect("read the image");
        std::fs::write(&path, &bytes[..bytes.len() / 2]).expect("truncate");
        let reason = backup_error(manage.restore_backup(&truncated.id).await.unwrap_err());
        assert!(reason.contains("truncated"), "{reason}");

        // A handler that kept the bytes but recorded another state hash: the leader proposes it
        // (the sha256 holds), every replica refuses it as it loads, and nothing changes.
        let forged = manage.create_backup(None, Vec::new()).await.expect("backup 3");
        write(node, "k", "newest").await;
        let manifest = dir.join(format!("{}.json", forged.id));
        let text = std::fs::read_to_string(&manifest).expect("read the manifest");
        let recorded = hex::encode(forged.state_hash.expect("recorded"));
        assert!(text.contains(&recorded));
        std::fs::write(&manifest, text.replace(&recorded, &"ab".repeat(32))).expect("forge it");
        let reason = backup_error(manage.restore_backup(&forged.id).await.unwrap_err());
        assert!(reason.contains("state hash"), "{reason}");
        assert!(reason.contains("nothing was changed"), "{reason}");
        assert_eq!(local_value(node, "k").await.as_deref(), Some(&b"newest"[..]));

        // One that does not exist, and an id that could name a path.
        let reason = backup_error(manage.restore_backup("backup-none").await.unwrap_err());
        assert!(reason.contains("knows backup backup-none"), "{reason}");
        let error = manage.restore_backup("../../etc/passwd").await.unwrap_err();
        assert!(
            matches!(&error, ClientError::Request(RequestError::Malformed(m)) if m.contains("backup id")),
            "{error}"
        );
        assert_eq!(local_value(node, "k").await.as_deref(), Some(&b"newest"[..]));

        // The backup directory replaced by a file, then missing.
        std::fs::rename(&dir, node.dir.path().join("moved")).expect("move the directory");
        std::fs::write(&dir, b"not a directory").expect("a file in its place");
        let reason = backup_error(manage.create_backup(None, Vec::new()).await.unwrap_err());
        assert!(reason.contains("is not a directory"), "{reason}");
        std::fs::remove_file(&dir).expect("remove the file");
        let reason = backup_error(manage.create_backup(None, Vec::new()).await.unwrap_err());
        assert!(reason.contains("does not exist"), "{reason}");
        std::fs::rename(node.dir.path().join("moved"), &dir).expect("put it back");

        // A handler that traps, one that loops, one that reaches for ../../etc/passwd.
        deploy(node, bundled::FAULTY_BACKUP, "").await;
        let passwd = std::fs::read("/etc/passwd").ok();
        for (fault, expected) in [
            ("trap", "trapped"),
            ("loop", "ran out of fuel"),
            ("escape", "the host refused ../../etc/passwd"),
        ] {
            let error = manage
                .create_backup(None, vec![("fault".into(), fault.into())])
                .await
                .unwrap_err();
            let reason = backup_error(error);
            assert!(reason.contains(expected), "{fault}: {reason}");
        }
        assert_eq!(std::fs::read("/etc/passwd").ok(), passwd, "/etc/passwd is untouched");
        assert!(!node.dir.path().join("etc").exists());

        // Nothing changed: the data, and the backups that were there.
        assert_eq!(local_value(node, "k").await.as_deref(), Some(&b"newest"[..]));
        let listed: Vec<String> = manage
            .list_backups(None)
            .await
            .expect("list")
            .into_iter()
            .map(|info| info.id)
            .collect();
        assert_eq!(
            listed,
            vec![flipped.id.clone(), truncated.id.clone(), forged.id.clone()]
        );
        finish(manage, nodes).await;
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_handler_is_swapped_at_run_time_and_old_backups_stay_restorable_by_their_handler() {
    tokio::time::timeout(LIMIT, async {
        let nodes = cluster_with(1, with_backup_dir).await;
        let node = &nodes[0];
        let manage = manage(node).await;
        let dir = backup_dir(node);
        deploy(node, bundled::FS_BACKUP, "").await;
        for i in 0..200 {
            write(
                node,
                &format!("key-{i:04}"),
                &"a compressible value ".repeat(8),
            )
            .await;
        }
        // Bug (found in review): the records `info` returns were lowered over the call's own
        // arena, so much metadata could come back garbled. The most a backup may carry:
        let metadata: Vec<(String, String)> = (0..iroh_raft::proto::MAX_METADATA_PAIRS)
            .map(|n| (format!("key-{n:02}"), format!("{n:02}").repeat(500)))
            .collect();
        let plain = manage
            .create_backup(None, metadata.clone())
            .await
            .expect("fs backup");
        assert_eq!(plain.handler, Some(iroh_raft::sha256(bundled::FS_BACKUP)));
        assert_eq!(plain.metadata, metadata);

        deploy(node, bundled::LZ4_BACKUP, "").await;
        write(node, "key-0000", "changed").await;
        let packed = manage
            .create_backup(None, Vec::new())
            .await
            .expect("lz4 backup");
        assert_eq!(packed.handler, Some(iroh_raft::sha256(bundled::LZ4_BACKUP)));
        let stored = std::fs::metadata(dir.join(format!("{}.lz4", packed.id)))
            .expect("lz4-backup stored the image")
            .len();
        assert!(!dir.join(format!("{}.snap", packed.id)).exists());
        tracing::info!(raw = packed.size, stored, "compressed");
        assert!(stored < packed.size, "{stored} of {} bytes", packed.size);

        // Both are listed, each with the handler that wrote it.
        let listed = manage.list_backups(None).await.expect("list");
        assert_eq!(
            listed
                .iter()
                .map(|i| (&i.id, i.handler))
                .collect::<Vec<_>>(),
            vec![(&plain.id, plain.handler), (&packed.id, packed.handler)]
        );
        // The old one restores through fs-backup, still held as a rollback target.
        manage
            .restore_backup(&plain.id)
            .await
            .expect("restore the fs backup");
        assert_eq!(
            local_value(node, "key-0000").await.as_deref(),
            Some("a compressible value ".repeat(8).as_bytes())
        );
        manage
            .restore_backup(&packed.id)
            .await
            .expect("restore the lz4 backup");
        assert_eq!(
            local_value(node, "key-0000").await.as_deref(),
            Some(&b"changed"[..])
        );

        // Once the handler that wrote it is gone (pushed out of the rollback targets), its
        // backups are refused with the reason.
        for config in ["a", "b", "c", "d", "e"] {
            deploy(node, bundled::LZ4_BACKUP, config).await;
        }
        let reason = backup_error(manage.restore_backup(&plain.id).await.unwrap_err());
        assert!(reason.contains("knows backup"), "{reason}");
        assert!(reason.contains("deploy it again"), "{reason}");
        finish(manage, nodes).await;
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduled_backups_are_taken_by_the_leader_and_only_the_newest_scheduled_ones_kept() {
    tokio::time::timeout(LIMIT, async {
        let nodes = cluster_with(1, with_backup_dir).await;
        let node = &nodes[0];
        let manage = manage(node).await;
        deploy(node, bundled::FS_BACKUP, "").await;
        let mut events = node.node.subscribe();
        let by_hand = manage
            .create_backup(None, Vec::new())
            .await
            .expect("by hand");
        assert!(!by_hand.scheduled);
        let event = tokio::time::timeout(Duration::from_secs(5), async {
            loop {
                if let iroh_raft::proto::ClusterEvent::BackupCreated { backup_id, .. } =
                    events.next().await.expect("an event")
                {
                    return backup_id;
                }
            }
        })
        .await
        .expect("BackupCreated arrives");
        assert_eq!(event, by_hand.id);

        let mut settings = manage.get_configuration().await.expect("config");
        settings.backup_every_entries = 10;
        settings.backup_keep = 2;
        manage
            .update_configuration(settings)
            .await
            .expect("a schedule");
        let mut seen = Vec::new();
        for round in 0..3 {
            for i in 0..12 {
                write(node, &format!("r{round}-{i}"), "v").await;
            }
            let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
            let after = seen.last().map(|last: &BackupInfo| last.index);
            let newest = loop {
                let listed = manage.list_backups(None).await.expect("list");
                if let Some(newest) = listed
                    .iter()
                    .filter(|info| info.scheduled && after.is_none_or(|after| info.index > after))
                    .max_by_key(|info| info.index)
                {
                    break newest.clone();
                }
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "no new scheduled backup after round {round}: {listed:?}"
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            };
            seen.push(newest);
        }
        // The oldest scheduled backup went; the one taken by hand stays.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let listed = manage.list_backups(None).await.expect("list");
            let scheduled: Vec<&String> = listed
                .iter()
                .filter(|info| info.scheduled)
                .map(|info| &info.id)
                .collect();
            let kept = listed.iter().any(|info| info.id == by_hand.id);
            if scheduled.len() <= 2 && !scheduled.contains(&&seen[0].id) {
                assert!(kept, "the backup taken by hand was kept: {listed:?}");
                assert!(scheduled.contains(&&seen[2].id), "{listed:?}");
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "old scheduled backups were not pruned: {listed:?}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        // Deleting by hand.
        manage
            .delete_backup(None, &by_hand.id)
            .await
            .expect("delete");
        let listed = manage.list_backups(None).await.expect("list");
        assert!(listed.iter().all(|info| info.id != by_hand.id));
        assert!(
            !backup_dir(node)
                .join(format!("{}.snap", by_hand.id))
                .exists()
        );
        finish(manage, nodes).await;
    })
    .await
    .expect("test timed out");
}
