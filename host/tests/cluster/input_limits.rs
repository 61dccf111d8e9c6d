//! No input can stop the cluster (regression tests for issue "No input can stop the cluster").
//!
//! Tried as a new user would: `kv put` with a 70,000-byte key stopped every node for good. fjall
//! panicked on the key inside the apply task, the panic became a fatal storage error, every
//! replica's raft core stopped, and since the entry was committed every restart applied it again
//! and stopped again. Now the host refuses the key at the `kv` boundary, the entry fails with the
//! limit's name on every replica, and the cluster serves on, restarts included.

use std::time::Duration;

use bytes::Bytes;
use iroh_raft::proto::{ClusterConfig, Consistency, Operation, Reply, RequestError};
use iroh_raft::{ClientError, Node, Start};
use iroh_raft_kv_types::Command;

use crate::support::{TestNode, client, cluster, config, configuration, get, put, value, wait_for};

const LONG: Duration = Duration::from_secs(120);

fn put_bytes(key: &[u8], value: &[u8]) -> Bytes {
    Bytes::from(postcard::to_allocvec(&Command::Put { key, value }).expect("encode"))
}

/// Stops every node and starts each again from its data directory on the same address.
async fn restart_all(nodes: Vec<TestNode>) -> Vec<TestNode> {
    let mut stopped = Vec::new();
    for node in nodes {
        let bind = node.node.endpoint().bound_sockets()[0];
        node.node.shutdown().await.expect("clean shutdown");
        stopped.push((node.dir, bind));
    }
    let mut started = Vec::new();
    for (dir, bind) in stopped {
        let mut config = config(dir.path());
        config.bind = bind;
        let node = Node::start(config, Start::Restart)
            .await
            .expect("a node restarts over a log holding the refused entry");
        started.push(TestNode { node, dir });
    }
    started
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bug_a_70000_byte_key_stopped_every_node_now_the_entry_fails_and_the_cluster_serves() {
    let nodes = tokio::time::timeout(LONG, cluster(3))
        .await
        .expect("cluster forms in time");
    let writer = client(&nodes[1]).await;
    tracing::info!("writing a 70,000-byte key through a follower");
    let long_key = vec![b'a'; 70_000];
    let (index, outcome) = writer
        .write(put_bytes(&long_key, b"x"))
        .await
        .expect("the write is answered");
    let message = outcome.expect_err("the entry fails");
    assert!(
        message.contains("70000 bytes") && message.contains("max_key_bytes of 4096"),
        "{message}"
    );
    tracing::info!(index, "the cluster keeps serving writes and reads");
    writer
        .write(put("after", "yes"))
        .await
        .expect("write after")
        .1
        .expect("ok");
    for node in &nodes {
        wait_for(
            LONG,
            "every replica to apply past the refused entry",
            || {
                node.node
                    .status()
                    .applied
                    .is_some_and(|applied| applied > index)
            },
        )
        .await;
    }

    tracing::info!("restarting every node: the log re-applies without stopping");
    let nodes = restart_all(nodes).await;
    wait_for(LONG, "a leader after the restart", || {
        nodes.iter().all(|n| n.node.status().leader.is_some())
    })
    .await;
    for node in &nodes {
        let answer = client(node)
            .await
            .read(get("after"), Consistency::Linearizable)
            .await
            .expect("read")
            .expect("ok");
        assert_eq!(value(&answer), Some(b"yes".to_vec()));
    }
    client(&nodes[0])
        .await
        .write(put("later", "1"))
        .await
        .expect("write after the restart")
        .1
        .expect("ok");
    for node in nodes {
        node.node.shutdown().await.expect("shutdown");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_over_max_command_bytes_is_refused_before_the_log() {
    let nodes = tokio::time::timeout(LONG, cluster(3))
        .await
        .expect("cluster forms in time");
    let c = client(&nodes[2]).await;
    let current = configuration(&c).await;
    let lowered = ClusterConfig {
        max_command_bytes: 1000,
        ..current
    };
    c.request(Operation::UpdateConfiguration { config: lowered })
        .await
        .expect("config set max_command_bytes=1000");
    let applied = |n: &TestNode| n.node.status().applied;
    wait_for(LONG, "every replica to apply the configuration", || {
        nodes.iter().all(|n| applied(n) == applied(&nodes[0]))
    })
    .await;
    let last = applied(&nodes[0]);
    match c.write(put("big", &"x".repeat(2000))).await {
        Err(ClientError::Request(RequestError::CommandTooLarge { max: 1000, len })) => {
            assert!(len > 2000)
        }
        other => panic!("expected the command to be refused, got {other:?}"),
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    for node in &nodes {
        assert_eq!(applied(node), last, "nothing reached the log");
    }
    c.write(put("small", "ok"))
        .await
        .expect("a small write")
        .1
        .expect("ok");
    for node in nodes {
        node.node.shutdown().await.expect("shutdown");
    }
}

fn with_memory(config: &ClusterConfig, memory_bytes: usize) -> ClusterConfig {
    let mut lowered = config.clone();
    lowered.limits.memory_bytes = memory_bytes;
    lowered
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bug_a_memory_budget_below_the_plugins_initial_memory_would_stop_every_replica() {
    let nodes = tokio::time::timeout(LONG, cluster(3))
        .await
        .expect("cluster forms in time");
    let c = client(&nodes[1]).await;
    let current = configuration(&c).await;
    tracing::info!("config set plugin_memory_bytes=1 MiB: below what the kv plugin starts with");
    match c
        .request(Operation::UpdateConfiguration {
            config: with_memory(&current, 1 << 20),
        })
        .await
    {
        Err(ClientError::Request(RequestError::Refused(reason))) => {
            assert!(
                reason.contains("cannot run under these budgets"),
                "{reason}"
            )
        }
        other => panic!("expected the update to be refused, got {other:?}"),
    }

    tracing::info!("the same entry, proposed past the leader's check, is refused on every replica");
    let leader = nodes
        .iter()
        .find(|n| n.node.status().leader == Some(n.node.node_id()))
        .expect("a leader");
    let bad = ClusterConfig {
        version: current.version + 1,
        ..with_memory(&current, 1 << 20)
    };
    let response = leader
        .node
        .raft()
        .client_write(iroh_raft::proto::LogPayload::Config(bad))
        .await
        .expect("the entry commits");
    match response.data {
        iroh_raft::proto::ApplyResponse::Failed(reason) => {
            assert!(
                reason.contains("cannot run under configuration version"),
                "{reason}"
            )
        }
        other => panic!("expected the entry to be refused, got {other:?}"),
    }
    for node in &nodes {
        wait_for(LONG, "every replica to apply the refused entry", || {
            node.node.status().applied >= Some(response.log_id.index)
        })
        .await;
        let seen = client(node)
            .await
            .request(Operation::GetConfiguration)
            .await
            .expect("config");
        assert_eq!(seen, Reply::Configuration(current.clone()));
        client(node)
            .await
            .write(put("still", "serving"))
            .await
            .expect("write")
            .1
            .expect("ok");
    }
    for node in nodes {
        node.node.shutdown().await.expect("shutdown");
    }
}
