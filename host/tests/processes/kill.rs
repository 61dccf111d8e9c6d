//! SIGKILL followers and leaders during writes; a node restarted after its peers purged their logs
//! recovers through a snapshot.

use std::time::Duration;

use iroh_raft::Client;
use iroh_raft::proto::Consistency;

use crate::support::{cluster, eventually, get, leader_of, put};

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

async fn applied(client: &Client) -> u64 {
    client
        .status()
        .await
        .ok()
        .and_then(|s| s.applied)
        .unwrap_or(0)
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
    let restarted = nodes[follower].restart();
    let target = applied(&writer).await;
    let view = Client::connect_with_key(crate::support::admin_key(), restarted.addr.clone())
        .await
        .expect("connect");
    eventually(
        Duration::from_secs(60),
        "the follower to catch up",
        || async { applied(&view).await >= target },
    )
    .await;
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
    let mut nodes = cluster(
        root.path(),
        &["--snapshot-every", "50", "--keep-after-snapshot", "5"],
    )
    .await;
    let leader = leader_of(&nodes, 0).await;
    let follower = (leader + 2) % 3;
    nodes[follower].kill();
    let writer = Client::connect_with_key(crate::support::admin_key(), nodes[leader].addr.clone())
        .await
        .expect("connect");
    let acked = write_keys(&writer, "c", 0..400).await;
    assert_eq!(acked.len(), 400);
    tracing::info!("the others have snapshotted and purged; restarting the follower");
    let restarted = nodes[follower].restart();
    let target = applied(&writer).await;
    let view = Client::connect_with_key(crate::support::admin_key(), restarted.addr.clone())
        .await
        .expect("connect");
    eventually(
        Duration::from_secs(60),
        "the follower to catch up",
        || async { applied(&view).await >= target },
    )
    .await;
    let stale = |key: String| {
        let view = &view;
        async move {
            let query = bytes::Bytes::from(
                postcard::to_allocvec(&iroh_raft_kv_types::Query::Get {
                    key: key.as_bytes(),
                })
                .expect("encode"),
            );
            view.read(query, Consistency::Stale)
                .await
                .expect("read")
                .expect("ok")
        }
    };
    // A stale read is answered by the follower itself, from the state the snapshot installed.
    let answer = stale("c00000".into()).await;
    assert_eq!(
        postcard::from_bytes::<iroh_raft_kv_types::QueryResponse>(&answer).expect("decode"),
        iroh_raft_kv_types::QueryResponse::Value(Some(b"c00000".to_vec()))
    );
    assert_eq!(get(&view, "c00399").await.as_deref(), Some(&b"c00399"[..]));
    nodes[follower] = restarted;
}
