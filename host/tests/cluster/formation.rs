//! A cluster formed through a ticket serves writes through every node and linearizable reads.

use iroh_raft::proto::{Consistency, JoinTicket};
use iroh_raft::{Node, Start};

use crate::support::{client, cluster, config, get, put, value};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_form_through_a_ticket_and_serve_writes_through_every_node() {
    let nodes = tokio::time::timeout(std::time::Duration::from_secs(120), cluster(3))
        .await
        .expect("cluster forms in time");
    tracing::info!("writing through every node");
    for (i, node) in nodes.iter().enumerate() {
        let client = client(node).await;
        let (index, outcome) = client
            .write(put(&format!("k{i}"), &format!("v{i}")))
            .await
            .expect("write");
        assert!(index > 0);
        outcome.expect("the kv plugin accepts a put");
    }
    tracing::info!("reading every key linearizably from every node");
    for node in &nodes {
        let client = client(node).await;
        for i in 0..nodes.len() {
            let answer = client
                .read(get(&format!("k{i}")), Consistency::Linearizable)
                .await
                .expect("read")
                .expect("query ok");
            assert_eq!(value(&answer), Some(format!("v{i}").into_bytes()));
        }
    }
    let status = nodes[2].node.status();
    assert_eq!(status.voters.len(), 3);
    assert!(status.leader.is_some());
    for node in nodes {
        node.node.shutdown().await.expect("clean shutdown");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_join_secret_is_refused_with_a_clear_error() {
    let first = crate::support::start(Start::Init).await;
    let mut ticket: JoinTicket = first.node.ticket();
    ticket.secret[0] ^= 1;
    let dir = tempfile::tempdir().expect("temp dir");
    let error = Node::start(config(dir.path()), Start::Join(ticket))
        .await
        .err()
        .expect("refused");
    assert!(error.to_string().contains("wrong join secret"), "{error}");
    first.node.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_restarts_from_its_data_dir_with_no_flags() {
    let first = crate::support::start(Start::Init).await;
    let bind = first.node.endpoint().bound_sockets()[0];
    client(&first)
        .await
        .write(put("kept", "yes"))
        .await
        .expect("write")
        .1
        .expect("ok");
    let dir = first.dir;
    first.node.shutdown().await.expect("shutdown");
    tracing::info!("restarting from the data directory");
    let mut config = config(dir.path());
    config.bind = bind;
    let node = Node::start(config.clone(), Start::Restart)
        .await
        .expect("restart");
    let again = crate::support::TestNode { node, dir };
    crate::support::wait_for(
        std::time::Duration::from_secs(30),
        "a leader after restart",
        || again.node.status().leader.is_some(),
    )
    .await;
    let answer = client(&again)
        .await
        .read(get("kept"), Consistency::Linearizable)
        .await
        .expect("read")
        .expect("ok");
    assert_eq!(value(&answer), Some(b"yes".to_vec()));
    // Starting it with --init again is refused: it already holds a member.
    let error = Node::start(config, Start::Init)
        .await
        .err()
        .expect("refused");
    assert!(
        error.to_string().contains("already holds a cluster member"),
        "{error}"
    );
    again.node.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leadership_transfers_over_the_raft_protocol() {
    let nodes = crate::support::cluster(3).await;
    let leader = nodes[0].node.status().leader.expect("a leader");
    let target = nodes
        .iter()
        .map(|n| n.node.node_id())
        .find(|id| *id != leader)
        .expect("a follower");
    tracing::info!(leader, target, "transferring leadership");
    let current = nodes
        .iter()
        .find(|n| n.node.node_id() == leader)
        .expect("leader node");
    current
        .node
        .raft()
        .trigger()
        .transfer_leader(target)
        .await
        .expect("transfer");
    crate::support::wait_for(
        std::time::Duration::from_secs(30),
        "the target to lead",
        || nodes.iter().all(|n| n.node.status().leader == Some(target)),
    )
    .await;
    // The new leader serves writes.
    let on_target = nodes
        .iter()
        .find(|n| n.node.node_id() == target)
        .expect("target node");
    client(on_target)
        .await
        .write(put("after-transfer", "yes"))
        .await
        .expect("write")
        .1
        .expect("ok");
    for node in nodes {
        node.node.shutdown().await.expect("shutdown");
    }
}
