//! `iroh-raft check consistency` as an operator runs it against three node processes: exit 0 when
//! the replicas agree, exit 1 naming the replica whose data was changed behind raft's back, and
//! exit 1 naming a member that cannot be reached.

use std::time::Duration;

use iroh_raft::{Client, format_node_address};

use crate::support::{cli, cluster, eventually, put};

/// Changes one value of the state machine's keyspace in a stopped node's database. After a
/// SIGKILL the last commits may not be on disk (the node re-applies them from its log); a key that
/// is on disk was written at or before the applied mark on disk, so replaying the log never
/// rewrites it. With no key on disk yet, a key no entry writes is added instead.
fn corrupt_one_value(node_dir: &std::path::Path) {
    let db = fjall::Database::builder(node_dir.join("storage").join("fjall"))
        .open()
        .expect("open the stopped node's database");
    let data = db
        .keyspace("sm.kv.data", fjall::KeyspaceCreateOptions::default)
        .expect("the kv keyspace");
    let key = match data.iter().next() {
        Some(pair) => pair.key().expect("read a key").to_vec(),
        None => b"written behind raft's back".to_vec(),
    };
    data.insert(&key, b"changed").expect("change the value");
    db.persist(fjall::PersistMode::SyncAll).expect("persist");
}

/// Whether the node at `addr` has applied `index`.
async fn applied(addr: iroh::EndpointAddr, index: u64) -> bool {
    let Ok(client) = Client::connect_with_key(crate::support::admin_key(), addr).await else {
        return false;
    };
    let done = client
        .status()
        .await
        .is_ok_and(|s| s.applied >= Some(index));
    client.close().await;
    done
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_consistency_exits_0_when_replicas_agree_and_1_naming_the_odd_one() {
    tokio::time::timeout(Duration::from_secs(300), async {
        let root = tempfile::tempdir().expect("temp dir");
        let mut nodes = cluster(root.path(), &[]).await;
        let address = format_node_address(&nodes[0].addr);
        let writer = Client::connect_with_key(crate::support::admin_key(), nodes[0].addr.clone())
            .await
            .expect("connect");
        let mut last = 0;
        for i in 0..5 {
            last = writer
                .write(put(&format!("k{i}"), "v"))
                .await
                .expect("write")
                .0;
        }
        let mut ids = Vec::new();
        for node in &nodes {
            eventually(Duration::from_secs(30), "every node to apply", || {
                applied(node.addr.clone(), last)
            })
            .await;
            let status = Client::connect_with_key(crate::support::admin_key(), node.addr.clone())
                .await
                .expect("connect");
            ids.push(status.status().await.expect("status").node_id);
            status.close().await;
        }

        let agreed = cli(&address, &["check", "consistency"]);
        assert_eq!(agreed.status.code(), Some(0), "{agreed:?}");
        let table = String::from_utf8_lossy(&agreed.stdout);
        let rows: Vec<&str> = table.lines().skip(1).collect();
        assert_eq!(rows.len(), 3, "{table}");
        let hash = rows[0].split_whitespace().nth(2).expect("a hash");
        assert_eq!(hash.len(), 64);
        assert!(rows.iter().all(|row| row.contains(hash)), "{table}");
        let json = cli(&address, &["check", "consistency", "-o", "json"]);
        let report: serde_json::Value = serde_json::from_slice(&json.stdout).expect("JSON");
        assert_eq!(report["consistent"], true, "{report}");

        // The third node, changed behind raft's back while it was down.
        let mut third = nodes.pop().expect("third");
        third.kill();
        corrupt_one_value(&third.dir);
        let third = third.restart();
        nodes.push(third);
        let addr = nodes[2].addr.clone();
        eventually(
            Duration::from_secs(30),
            "the third node to catch up",
            || applied(addr.clone(), last),
        )
        .await;
        let differs = cli(&address, &["check", "consistency"]);
        assert_eq!(differs.status.code(), Some(1), "{differs:?}");
        let message = String::from_utf8_lossy(&differs.stderr);
        let expected = format!("node(s) [{}] differ from the majority", ids[2]);
        assert!(message.contains(&expected), "{message}");
        assert!(String::from_utf8_lossy(&differs.stdout).contains("DIFFERS"));

        // With frequent check points the nodes find it themselves: the leader's status lists
        // the changed member and that member's health reports the problem.
        let set = cli(&address, &["config", "set", "check_every=5"]);
        assert!(set.status.success(), "{set:?}");
        let third_address = format_node_address(&nodes[2].addr);
        // The leader may need a while to replace its raft connection to the restarted process.
        let mut found = false;
        let mut seen = String::new();
        let deadline = std::time::Instant::now() + Duration::from_secs(90);
        let mut i = 0;
        while std::time::Instant::now() < deadline {
            i += 1;
            writer
                .write(put(&format!("more{i}"), "v"))
                .await
                .expect("write")
                .1
                .expect("applied");
            let status = cli(&address, &["status"]);
            let health = cli(&third_address, &["health"]);
            let listed = String::from_utf8_lossy(&status.stdout)
                .contains(&format!("DIVERGED node {}", ids[2]));
            let unhealthy = health.status.code() == Some(1)
                && String::from_utf8_lossy(&health.stdout).contains("state diverged");
            if listed && unhealthy {
                found = true;
                break;
            }
            seen = format!("{status:?}\n{health:?}");
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        assert!(found, "status and health report the divergence: {seen}");

        // A member that cannot be reached is named, and the check fails.
        nodes[1].kill();
        let unreachable = cli(&address, &["check", "consistency"]);
        assert_eq!(unreachable.status.code(), Some(1), "{unreachable:?}");
        let message = String::from_utf8_lossy(&unreachable.stderr);
        let expected = format!("node(s) [{}] gave no hash", ids[1]);
        assert!(message.contains(&expected), "{message}");
        writer.close().await;
    })
    .await
    .expect("the test ends in time");
}
