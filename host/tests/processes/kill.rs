//! SIGKILL followers and leaders during writes; a node restarted after its peers purged their logs
//! recovers through a snapshot, and one killed while it receives that snapshot recovers too.

use std::time::Duration;

use iroh_raft::Client;

use crate::support::{
    NodeProcess, applied, cluster, eventually, get, held, leader_of, put, receiving_a_snapshot,
    state_hashes_agree,
};

/// Writes `keys` through `client`, returning the keys whose write was acknowledged.
async fn write_keys(client: &Client, prefix: &str, range: std::ops::Range<u32>) -> Vec<String> {
    let mut acked = Vec::new();
    for n in range {
        let key = format!("{prefix}{n:05}");
        if let Ok((_, Ok(_))) = client.write(put(&key, &key)).await {
            acked.push(key);
        }
    }
    acked
}

/// Restarts `node` from its data directory and waits (up to 90 s) until it has applied what
/// `writer`'s node had: the restarted process and a client of it.
async fn restart_and_catch_up(node: &NodeProcess, writer: &Client) -> (NodeProcess, Client) {
    let restarted = node.restart();
    let target = applied(writer).await;
    let view = Client::connect_with_key(crate::support::admin_key(), restarted.addr.clone())
        .await
        .expect("connect");
    eventually(
        Duration::from_secs(90),
        "the follower to catch up",
        || async { applied(&view).await >= target },
    )
    .await;
    (restarted, view)
}

/// Three nodes snapshotting every `snapshot_every` entries (keeping 5 behind), one follower
/// SIGKILLed: the nodes, that follower's index and a client of the leader.
async fn a_follower_stopped(
    root: &std::path::Path,
    snapshot_every: &str,
) -> (Vec<NodeProcess>, usize, Client) {
    let mut nodes = cluster(
        root,
        &[
            "--snapshot-every",
            snapshot_every,
            "--keep-after-snapshot",
            "5",
        ],
    )
    .await;
    let leader = leader_of(&nodes, 0).await;
    let follower = (leader + 1) % 3;
    nodes[follower].kill();
    let writer = Client::connect_with_key(crate::support::admin_key(), nodes[leader].addr.clone())
        .await
        .expect("connect");
    (nodes, follower, writer)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_killed_during_writes_catches_up_after_restart() {
    let root = tempfile::tempdir().expect("temp dir");
    let mut nodes = cluster(root.path(), &[]).await;
    let leader = leader_of(&nodes, 0).await;
    let follower = (leader + 1) % 3;
    let writer = Client::connect_with_key(crate::support::admin_key(), nodes[leader].addr.clone())
        .await
        .expect("connect");
    tracing::info!("writing, then killing follower {follower} mid-stream");
    let mut acked = write_keys(&writer, "a", 0..100).await;
    nodes[follower].kill();
    acked.extend(write_keys(&writer, "a", 100..200).await);
    assert_eq!(
        acked.len(),
        200,
        "two voters keep a quorum: every write is acknowledged"
    );
    tracing::info!("restarting the follower from its data dir");
    let (restarted, view) = restart_and_catch_up(&nodes[follower], &writer).await;
    for key in acked.iter().step_by(17).chain(acked.last()) {
        assert_eq!(get(&view, key).await.as_deref(), Some(key.as_bytes()));
    }
    nodes[follower] = restarted;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_leader_loses_no_acknowledged_write() {
    let root = tempfile::tempdir().expect("temp dir");
    let mut nodes = cluster(root.path(), &[]).await;
    let leader = leader_of(&nodes, 0).await;
    let survivor = (leader + 1) % 3;
    // Write through a follower: its writes are forwarded to whoever leads.
    let writer =
        Client::connect_with_key(crate::support::admin_key(), nodes[survivor].addr.clone())
            .await
            .expect("connect");
    let mut acked = write_keys(&writer, "b", 0..100).await;
    tracing::info!("SIGKILL the leader (node index {leader}) during writes");
    let kill_at = acked.len();
    let writes = {
        let writer = &writer;
        async move { write_keys(writer, "b", 100..300).await }
    };
    let (more, ()) = tokio::join!(writes, async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        nodes[leader].kill();
    });
    acked.extend(more);
    assert!(acked.len() > kill_at, "writes resumed under a new leader");
    let new_leader = leader_of(&nodes, survivor).await;
    assert_ne!(new_leader, leader);
    tracing::info!(acked = acked.len(), "every acknowledged write is readable");
    let reader =
        Client::connect_with_key(crate::support::admin_key(), nodes[survivor].addr.clone())
            .await
            .expect("connect");
    for key in &acked {
        assert_eq!(
            get(&reader, key).await.as_deref(),
            Some(key.as_bytes()),
            "acknowledged write {key} is missing"
        );
    }
}

/// Also guards the bug where a follower killed before any log entry reached its disk restarted
/// with an empty membership and refused every member forever (join peers are now persisted).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_behind_purged_logs_recovers_through_a_snapshot() {
    let root = tempfile::tempdir().expect("temp dir");
    let (mut nodes, follower, writer) = a_follower_stopped(root.path(), "50").await;
    let acked = write_keys(&writer, "c", 0..400).await;
    assert_eq!(acked.len(), 400);
    tracing::info!("the others have snapshotted and purged; restarting the follower");
    let (restarted, view) = restart_and_catch_up(&nodes[follower], &writer).await;
    // A stale read is answered by the follower itself, from the state the snapshot installed.
    assert_eq!(
        held(&view, "c00000").await.flatten().as_deref(),
        Some(&b"c00000"[..])
    );
    assert_eq!(get(&view, "c00399").await.as_deref(), Some(&b"c00399"[..]));
    nodes[follower] = restarted;
}

/// A follower SIGKILLed while it writes an incoming snapshot to disk (issue 15): restarted, it
/// throws the partial file away, installs a snapshot afresh and agrees with the others.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_killed_while_installing_a_snapshot_recovers_and_agrees() {
    let root = tempfile::tempdir().expect("temp dir");
    let (mut nodes, follower, writer) = a_follower_stopped(root.path(), "100").await;
    // 48 MiB of state, so that sending the snapshot takes long enough to be interrupted.
    let value = "s".repeat(512 * 1024);
    let mut acked = Vec::new();
    for n in 0..96 {
        let key = format!("big{n:05}");
        let (_, outcome) = writer.write(put(&key, &value)).await.expect("write");
        outcome.expect("the put applies");
        acked.push(key);
    }
    let snapshots = nodes[follower].dir.join("storage").join("snapshots");
    let mut interrupted = false;
    for round in 0..3 {
        // Enough entries for the others to snapshot and purge past the stopped follower.
        acked.extend(write_keys(&writer, &format!("r{round}-"), 0..150).await);
        let mut restarted = nodes[follower].restart();
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while std::time::Instant::now() < deadline && !receiving_a_snapshot(&snapshots) {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        interrupted = receiving_a_snapshot(&snapshots);
        restarted.kill();
        nodes[follower] = restarted;
        if interrupted {
            println!("the follower was killed while receiving a snapshot (round {round})");
            break;
        }
        tracing::info!("the snapshot was in before the kill; the follower falls behind again");
    }
    assert!(
        interrupted,
        "three times the follower was never seen receiving a snapshot"
    );

    let (restarted, view) = restart_and_catch_up(&nodes[follower], &writer).await;
    for key in &acked {
        assert!(
            held(&view, key).await.flatten().is_some(),
            "the follower lacks the acknowledged {key}"
        );
    }
    nodes[follower] = restarted;
    state_hashes_agree(nodes.iter().map(|n| n.addr.clone()).collect()).await;
}
