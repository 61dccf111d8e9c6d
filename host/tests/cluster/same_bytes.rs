//! The same plugin bytes everywhere (issue "replicas prove they agree"): the bundled plugins' bytes
//! depend on the toolchain that built the node, so two builds ran different state machines side by
//! side. Now `--init` proposes its initial state machine through the log, and every replica runs
//! the bytes the log carries.

use std::time::Duration;

use bytes::Bytes;
use iroh_raft::proto::{Consistency, PluginKind};
use iroh_raft::storage::StateStore;
use iroh_raft::{Node, Start, bundled, sha256};

use crate::support::{TestNode, client, config, get, init_tracing, put, value, wait_for};

const LONG: Duration = Duration::from_secs(60);

async fn start(initial: Bytes, start: Start) -> TestNode {
    init_tracing();
    let dir = tempfile::tempdir().expect("temp dir");
    let mut config = config(dir.path());
    config.initial_state_machine = initial;
    let node = Node::start(config, start).await.expect("node starts");
    TestNode { node, dir }
}

fn running(node: &Node) -> [u8; 32] {
    node.state_machine().plugin().expect("plugin").info().sha256
}

fn active(node: &Node) -> Option<[u8; 32]> {
    let (registry, _) = node.state_machine().plugins().expect("registry");
    registry.active(PluginKind::StateMachine).map(|a| a.sha256)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bug_two_builds_ran_different_bundled_bytes_now_both_run_the_logs() {
    // Node 1 was "built elsewhere": its kv plugin has other bytes (a custom section), the same code.
    let elsewhere = Bytes::from(crate::support::padding::padded_component(
        bundled::KV,
        bundled::KV.len() + 4096,
        99,
    ));
    assert_ne!(sha256(&elsewhere), sha256(bundled::KV));
    let first = start(elsewhere.clone(), Start::Init).await;
    let second = start(
        Bytes::from_static(bundled::KV),
        Start::Join(first.node.ticket()),
    )
    .await;
    let nodes = [first, second];
    wait_for(LONG, "two voters", || {
        nodes.iter().all(|n| n.node.status().voters.len() == 2)
    })
    .await;
    let c = client(&nodes[1]).await;
    let (index, outcome) = c.write(put("k", "v")).await.expect("write");
    outcome.expect("ok");
    wait_for(LONG, "both to apply the write", || {
        nodes
            .iter()
            .all(|n| n.node.status().applied.is_some_and(|a| a >= index))
    })
    .await;
    for node in &nodes {
        assert_eq!(
            running(&node.node),
            sha256(&elsewhere),
            "runs the log's bytes"
        );
        assert_eq!(active(&node.node), Some(sha256(&elsewhere)));
        let local = client(node)
            .await
            .read(get("k"), Consistency::Stale)
            .await
            .expect("read")
            .expect("ok");
        assert_eq!(value(&local), Some(b"v".to_vec()));
    }
    assert_eq!(
        nodes[0]
            .node
            .state_machine()
            .state()
            .content_hash()
            .expect("hash"),
        nodes[1]
            .node
            .state_machine()
            .state()
            .content_hash()
            .expect("hash"),
        "identical state"
    );

    tracing::info!("restarted, the second node still runs the log's bytes, from its blob store");
    let [first, second] = nodes;
    let bind = second.node.endpoint().bound_sockets()[0];
    second.node.shutdown().await.expect("shutdown");
    let mut again = config(second.dir.path());
    again.bind = bind;
    let restarted = Node::start(again, Start::Restart).await.expect("restart");
    assert_eq!(running(&restarted), sha256(&elsewhere));
    restarted.shutdown().await.expect("shutdown");
    first.node.shutdown().await.expect("shutdown");
}
