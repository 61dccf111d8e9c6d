//! Backups through the command line, as an operator takes them: `backup create|list|inspect|
//! export` with `-o json` against a 3-node cluster of processes, then `iroh-raft restore` seeding
//! a new 3-node cluster from the exported file, which serves the backed-up data and agrees with
//! itself.

use std::time::Duration;

use iroh_raft::{Client, format_node_address};

use crate::support::{admin_key, cli, cluster, free_port, get, spawn, wait_for_voters};

const LIMIT: Duration = Duration::from_secs(300);

fn json(output: &std::process::Output) -> serde_json::Value {
    assert!(
        output.status.success(),
        "the command failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}",
            String::from_utf8_lossy(&output.stdout)
        )
    })
}

fn ok(output: &std::process::Output) -> String {
    assert!(
        output.status.success(),
        "the command failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_offline_restore_seeds_a_new_three_node_cluster_that_serves_the_backed_up_data() {
    tokio::time::timeout(LIMIT, async {
        let root = tempfile::tempdir().expect("temp dir");
        let backups = root.path().join("backups");
        std::fs::create_dir_all(&backups).expect("backup dir");
        let backups_arg = backups.display().to_string();
        let nodes = cluster(root.path(), &["--backup-dir", &backups_arg]).await;
        let node = format_node_address(&nodes[0].addr);

        let wasm = root.path().join("fs-backup.wasm");
        let wasm_arg = wasm.display().to_string();
        ok(&cli(&node, &["plugin", "export", "fs-backup", &wasm_arg]));
        ok(&cli(
            &node,
            &["plugin", "deploy", "--kind", "backup", &wasm_arg],
        ));
        for i in 0..20 {
            ok(&cli(
                &node,
                &["kv", "put", &format!("key-{i:02}"), &format!("value {i}")],
            ));
        }
        let created = json(&cli(
            &node,
            &["backup", "create", "--meta", "reason=drill", "-o", "json"],
        ));
        let id = created["id"].as_str().expect("an id").to_string();
        assert_eq!(created["pairs"], 20);
        assert_eq!(created["metadata"]["reason"], "drill");
        assert_eq!(created["state_hash"].as_str().map(str::len), Some(64));
        assert!(
            created["created"]
                .as_str()
                .is_some_and(|at| at.ends_with('Z'))
        );
        let listed = json(&cli(&node, &["backup", "list", "-o", "json"]));
        assert_eq!(listed[0]["id"], id.as_str());
        // A second one, deleted again through the CLI; a ReadBackup asking for far more than a
        // chunk is answered with at most one (the rest comes in later pieces).
        let extra = json(&cli(&node, &["backup", "create", "-o", "json"]));
        let extra_id = extra["id"].as_str().expect("an id").to_string();
        let deleted = json(&cli(&node, &["backup", "delete", &extra_id, "-o", "json"]));
        assert_eq!(deleted["deleted"], extra_id.as_str());
        let listed = json(&cli(&node, &["backup", "list", "-o", "json"]));
        assert_eq!(listed.as_array().map(Vec::len), Some(1), "{listed}");
        let manage = iroh_raft::IrohRaftManagementClient::connect_with_key(
            admin_key(),
            vec![nodes[0].addr.clone()],
        )
        .await
        .expect("manage");
        let piece = manage
            .read_backup(None, &id, 0, u32::MAX)
            .await
            .expect("a piece");
        assert_eq!(
            piece.len(),
            (1 << 20).min(created["size"].as_u64().expect("size") as usize)
        );
        manage.close().await;
        let inspected = json(&cli(&node, &["backup", "inspect", &id, "-o", "json"]));
        assert_eq!(inspected["image"]["pairs"], 20);
        assert_eq!(inspected["image"]["state_hash"], created["state_hash"]);
        assert_eq!(
            inspected["image"]["voters"].as_array().map(Vec::len),
            Some(3)
        );

        let file = root.path().join("drill.snap");
        let file_arg = file.display().to_string();
        ok(&cli(&node, &["backup", "export", &id, "--to", &file_arg]));
        let offline = json(&cli(
            &node,
            &["backup", "inspect", "--file", &file_arg, "-o", "json"],
        ));
        assert_eq!(offline["image"], inspected["image"]);
        // A restore of a backup that is not there exits 1 and says so.
        let missing = cli(&node, &["backup", "restore", "backup-nope"]);
        assert_eq!(missing.status.code(), Some(1));
        assert!(
            String::from_utf8_lossy(&missing.stderr).contains("knows backup backup-nope"),
            "{}",
            String::from_utf8_lossy(&missing.stderr)
        );
        drop(nodes);

        // A new cluster from the file.
        let bind = free_port();
        let data = root.path().join("restored-1");
        let restored = json(&cli(
            &node,
            &[
                "restore",
                "--from",
                &file_arg,
                "--data-dir",
                &data.display().to_string(),
                "--bind",
                &bind.to_string(),
                "-o",
                "json",
            ],
        ));
        assert_eq!(restored["image"]["pairs"], 20);
        let ticket = restored["ticket"].as_str().expect("a ticket").to_string();
        let first = spawn(&data, bind, &[]);
        let mut new_nodes = vec![first];
        for n in 2..=3 {
            new_nodes.push(spawn(
                &root.path().join(format!("restored-{n}")),
                free_port(),
                &["--join".to_string(), ticket.clone()],
            ));
        }
        wait_for_voters(&new_nodes[0], 3).await;
        for (position, node) in new_nodes.iter().enumerate() {
            let client = Client::connect_with_key(admin_key(), node.addr.clone())
                .await
                .expect("connect");
            for i in [0, 7, 19] {
                assert_eq!(
                    get(&client, &format!("key-{i:02}")).await.as_deref(),
                    Some(format!("value {i}").as_bytes()),
                    "node {position}"
                );
            }
        }
        let new_node = format_node_address(&new_nodes[0].addr);
        ok(&cli(&new_node, &["kv", "put", "after", "restore"]));
        let check = cli(&new_node, &["check", "consistency"]);
        assert!(
            check.status.success(),
            "{}{}",
            String::from_utf8_lossy(&check.stdout),
            String::from_utf8_lossy(&check.stderr)
        );
        // A second restore into the same directory is refused.
        let again = cli(
            &new_node,
            &[
                "restore",
                "--from",
                &file_arg,
                "--data-dir",
                &data.display().to_string(),
            ],
        );
        assert_eq!(again.status.code(), Some(1));
        assert!(String::from_utf8_lossy(&again.stderr).contains("already holds a node"));

        // A restore that died half-way leaves a marker: `node` refuses the directory, and the
        // next `restore` there starts over.
        let died = root.path().join("died");
        std::fs::create_dir_all(died.join("storage")).expect("a half-made directory");
        std::fs::write(died.join("restore-unfinished"), b"").expect("the marker");
        let refused = cli(
            &new_node,
            &[
                "node",
                "--data-dir",
                &died.display().to_string(),
                "--bind",
                &free_port().to_string(),
            ],
        );
        assert_eq!(refused.status.code(), Some(1));
        assert!(
            String::from_utf8_lossy(&refused.stderr).contains("did not finish"),
            "{}",
            String::from_utf8_lossy(&refused.stderr)
        );
        let redone = json(&cli(
            &new_node,
            &[
                "restore",
                "--from",
                &file_arg,
                "--data-dir",
                &died.display().to_string(),
                "--bind",
                &free_port().to_string(),
                "-o",
                "json",
            ],
        ));
        assert_eq!(redone["image"]["pairs"], 20);
        assert!(!died.join("restore-unfinished").exists());
    })
    .await
    .expect("test timed out");
}
