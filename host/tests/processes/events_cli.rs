//! `iroh-raft events` when its node dies (issue 12): it used to stay silent (no error, no exit,
//! no reconnect). Now it moves to another member and names the new leader and the gap, or, with
//! `--no-follow`, exits 1 with the reason. Every event line carries its time.

use std::sync::mpsc;
use std::time::{Duration, Instant};

use iroh_raft::format_node_address;

use crate::support::{admin_key, cli, cluster, follow_events as events, leader_of};

const LIMIT: Duration = Duration::from_secs(180);

/// Changes the configuration until the subscriber prints a line: the subscription is open.
fn first_line(leader: &str, lines: &mpsc::Receiver<String>) -> serde_json::Value {
    for attempt in 0..50 {
        let set = cli(
            leader,
            &[
                "config",
                "set",
                &format!("keep_after_snapshot={}", 2000 + attempt),
            ],
        );
        assert!(set.status.success(), "{set:?}");
        if let Ok(line) = lines.recv_timeout(Duration::from_millis(300)) {
            return serde_json::from_str(&line).expect("a JSON event line");
        }
    }
    panic!("the subscriber printed nothing");
}

async fn node_id_of(nodes: &[crate::support::NodeProcess], index: usize) -> u64 {
    let probe = iroh_raft::Client::connect_with_key(admin_key(), nodes[index].addr.clone())
        .await
        .expect("connect");
    probe.status().await.expect("status").node_id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bug_events_stayed_silent_when_its_node_was_killed_now_it_follows_another_member() {
    tokio::time::timeout(LIMIT, async {
        let root = tempfile::tempdir().expect("temp dir");
        let mut nodes = cluster(root.path(), &[]).await;
        let leader = leader_of(&nodes, 0).await;
        let leader_id = node_id_of(&nodes, leader).await;
        let leader_address = format_node_address(&nodes[leader].addr);
        let (mut child, lines) = events(&leader_address, &[]);
        let first = first_line(&leader_address, &lines);
        assert_eq!(first["event"], "configuration-changed", "{first}");
        assert!(
            first["at"].as_str().is_some_and(|at| at.ends_with('Z')),
            "{first}"
        );
        assert!(first["at_unix_ms"].as_u64().is_some(), "{first}");

        nodes[leader].kill();
        let killed = Instant::now();
        let resubscribed = loop {
            let left = Duration::from_secs(40).saturating_sub(killed.elapsed());
            let line = lines
                .recv_timeout(left)
                .expect("the subscriber moved to another member in time");
            let value: serde_json::Value = serde_json::from_str(&line).expect("JSON");
            if value["event"] == "resubscribed" {
                break value;
            }
        };
        crate::json_shape::Shapes::documented().assert("event-resubscribed", &resubscribed);
        let new_leader = resubscribed["leader"].as_u64();
        assert!(
            new_leader.is_some_and(|l| l != leader_id),
            "the line names the new leader, not node {leader_id}: {resubscribed}"
        );
        assert!(resubscribed["missed_from"].as_str().is_some());
        assert!(
            child.try_wait().expect("poll").is_none(),
            "it keeps running"
        );
        child.kill().expect("stop events");
        child.wait().expect("reap");
    })
    .await
    .expect("the test finished in time");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_with_no_follow_exits_1_naming_the_loss() {
    tokio::time::timeout(LIMIT, async {
        let root = tempfile::tempdir().expect("temp dir");
        let mut nodes = cluster(root.path(), &[]).await;
        let leader = leader_of(&nodes, 0).await;
        let follower = (leader + 1) % 3;
        let leader_address = format_node_address(&nodes[leader].addr);
        let (mut child, lines) = events(
            &format_node_address(&nodes[follower].addr),
            &["--no-follow"],
        );
        first_line(&leader_address, &lines);
        nodes[follower].kill();
        let killed = Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().expect("poll") {
                break status;
            }
            assert!(
                killed.elapsed() < Duration::from_secs(30),
                "events --no-follow kept running after its node died"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        assert_eq!(status.code(), Some(1));
        let mut stderr = String::new();
        std::io::Read::read_to_string(&mut child.stderr.take().expect("stderr"), &mut stderr)
            .expect("stderr");
        assert!(stderr.contains("lost the subscription"), "{stderr}");
    })
    .await
    .expect("the test finished in time");
}
