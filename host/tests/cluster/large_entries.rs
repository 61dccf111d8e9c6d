//! Replication that no mix of entry sizes can stall (issue "No input can stop the cluster").
//!
//! openraft bounds an append-entries batch only by its entry count, so six 15 MiB writes made one
//! 90 MiB frame, over the 64 MiB raft frame: no follower could take it, and the leader sent it
//! again and again. The log reader now bounds each batch in bytes by `max_raft_frame`, and a
//! leader never sends a batch of several entries over it.

use std::time::Duration;

use bytes::Bytes;
use iroh_raft::proto::{ClusterConfig, Operation, PluginKind, RequestError};
use iroh_raft::{ClientError, Node, Start, bundled};
use iroh_raft_kv_types::Command;

use crate::support::{TestNode, client, cluster, config, configuration, wait_for};

const LONG: Duration = Duration::from_secs(180);
const MIB: usize = 1 << 20;

fn put_bytes(key: &[u8], value: &[u8]) -> Bytes {
    Bytes::from(postcard::to_allocvec(&Command::Put { key, value }).expect("encode"))
}

/// Writes `count` values of `size` bytes at once, through `node`. On a loaded two-core machine a
/// debug build may not finish 90 MiB within the client's retry window: a write whose outcome is
/// unknown is logged, and what the tests check is that replication completes (the small write after
/// them reaches every follower).
async fn concurrent_writes(node: &TestNode, count: usize, size: usize) {
    let mut writes = Vec::new();
    for i in 0..count {
        let c = client(node).await;
        writes.push(tokio::spawn(async move {
            let value = vec![b'a' + i as u8; size];
            match c
                .write(put_bytes(format!("big-{i}").as_bytes(), &value))
                .await
            {
                Ok((_, outcome)) => {
                    outcome.expect("a large write succeeds");
                }
                Err(error) => tracing::warn!(i, "a large write's outcome is unknown: {error}"),
            }
        }));
    }
    for write in writes {
        write.await.expect("writer");
    }
}

/// Waits until every node has applied `index`.
async fn caught_up(nodes: &[TestNode], index: u64, what: &str) {
    wait_for(LONG, what, || {
        nodes
            .iter()
            .all(|n| n.node.status().applied.is_some_and(|a| a >= index))
    })
    .await;
}

async fn small_write(node: &TestNode) -> u64 {
    let (index, outcome) = client(node)
        .await
        .write(put_bytes(b"small", b"after"))
        .await
        .expect("a small write");
    outcome.expect("ok");
    index
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bug_six_concurrent_15_mib_writes_made_a_frame_no_follower_would_take() {
    let nodes = tokio::time::timeout(LONG, cluster(3))
        .await
        .expect("cluster forms in time");
    tracing::info!("six concurrent 15 MiB writes");
    concurrent_writes(&nodes[0], 6, 15 * MIB).await;
    let small = small_write(&nodes[1]).await;
    caught_up(
        &nodes,
        small,
        "every follower to reach the leader's last write",
    )
    .await;
    for node in nodes {
        node.node.shutdown().await.expect("shutdown");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lowered_max_raft_frame_replicates_entries_that_fill_it_one_per_batch() {
    let nodes = tokio::time::timeout(LONG, cluster(3))
        .await
        .expect("cluster forms in time");
    let c = client(&nodes[0]).await;
    let current = configuration(&c).await;
    tracing::info!("a frame too small for a deploy is refused with the reason");
    let refused = c
        .request(Operation::UpdateConfiguration {
            config: ClusterConfig {
                max_raft_frame: 8 * MIB as u64,
                ..current.clone()
            },
        })
        .await;
    match refused {
        Err(ClientError::Request(RequestError::InvalidConfig { field, reason })) => {
            assert_eq!(field, "max_raft_frame");
            assert!(reason.contains("must exceed"), "{reason}");
        }
        other => panic!("expected the configuration to be refused, got {other:?}"),
    }
    tracing::info!("config set max_raft_frame=17 MiB; then three 10 MiB writes at once");
    c.request(Operation::UpdateConfiguration {
        config: ClusterConfig {
            max_raft_frame: 17 * MIB as u64,
            ..current
        },
    })
    .await
    .expect("max_raft_frame lowered");
    concurrent_writes(&nodes[0], 3, 10 * MIB).await;
    let small = small_write(&nodes[2]).await;
    caught_up(&nodes, small, "every follower to reach the small write").await;
    for node in nodes {
        node.node.shutdown().await.expect("shutdown");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_behind_five_15_mib_deploys_catches_up() {
    let mut nodes = tokio::time::timeout(LONG, cluster(3))
        .await
        .expect("cluster forms in time");
    let behind = nodes.pop().expect("third node");
    let bind = behind.node.endpoint().bound_sockets()[0];
    tracing::info!("stopping node 3, then five 15 MiB deploys: 75 MiB it has not seen");
    behind.node.shutdown().await.expect("shutdown");
    let deployer = client(&nodes[0]).await;
    for seed in 1..=5 {
        let wasm = Bytes::from(crate::support::padding::padded_component(
            bundled::ALLOW_ALL,
            15 * MIB,
            seed,
        ));
        deployer
            .deploy_plugin(
                PluginKind::Policy,
                wasm,
                &format!("padded-{seed}"),
                Bytes::new(),
                &mut |_, _| {},
            )
            .await
            .expect("a 15 MiB deploy is accepted");
    }
    let last = small_write(&nodes[0]).await;
    tracing::info!(last, "restarting node 3");
    let mut restarted = config(behind.dir.path());
    restarted.bind = bind;
    let node = Node::start(restarted, Start::Restart)
        .await
        .expect("node 3 restarts");
    nodes.push(TestNode {
        node,
        dir: behind.dir,
    });
    caught_up(&nodes, last, "node 3 to take the five deploys").await;
    for node in nodes {
        node.node.shutdown().await.expect("shutdown");
    }
}
