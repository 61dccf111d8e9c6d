//! `iroh-raft-metrics/0` on a real three-node cluster: figures read from every node under load
//! agree with what the test did (writes acknowledged, an entry that runs out of fuel, bytes on
//! the wire),
//! a caller the policy refuses is told so, and a subscription streams snapshots. Bad frames on
//! the metrics protocol are in `wire_faults.rs`.

use std::time::{Duration, Instant};

use iroh::SecretKey;
use iroh_raft::proto::{MetricsCategory, MetricsSnapshot, RaftRole, RequestError, op};
use iroh_raft::{ClientError, MetricsClient, Node, Start, bundled};

use crate::support::{TestNode, admin_key, client, config, init_tracing, put, wait_for};

/// Fuel per entry: plenty for a small put (about a thousand units), too little for a put of a
/// 1 MiB value (the host charges about one unit per byte copied in and one per byte put).
const FUEL_PER_ENTRY: u64 = 300_000;

/// A three-node kv cluster that runs its entries under [`FUEL_PER_ENTRY`].
async fn tight_fuel_cluster() -> Vec<TestNode> {
    init_tracing();
    let start = |how: Start| async move {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut config = config(dir.path());
        config.limits.fuel_per_entry = FUEL_PER_ENTRY;
        let node = Node::start(config, how).await.expect("node starts");
        TestNode { node, dir }
    };
    let first = start(Start::Init).await;
    let ticket = first.node.ticket();
    let mut nodes = vec![first];
    for _ in 1..3 {
        nodes.push(start(Start::Join(ticket.clone())).await);
    }
    wait_for(Duration::from_secs(60), "three voters", || {
        nodes.iter().all(|n| n.node.status().voters.len() == 3)
    })
    .await;
    nodes
}

async fn metrics_client(node: &TestNode) -> MetricsClient {
    MetricsClient::connect_with_key(admin_key(), node.node.addr())
        .await
        .expect("metrics client connects")
}

async fn everything(node: &TestNode) -> MetricsSnapshot {
    let client = metrics_client(node).await;
    let snapshot = client.get(Vec::new()).await.expect("metrics");
    client.close().await;
    snapshot
}

fn protocol_bytes(snapshot: &MetricsSnapshot, alpn: &str) -> (u64, u64) {
    let protocol = snapshot
        .network
        .as_ref()
        .expect("network figures")
        .protocols
        .iter()
        .find(|p| p.alpn == alpn)
        .unwrap_or_else(|| panic!("no figures for {alpn}"));
    (protocol.bytes_sent, protocol.bytes_received)
}

fn applied(snapshot: &MetricsSnapshot) -> u64 {
    snapshot.raft.as_ref().expect("raft").applied.unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_node_reports_figures_that_agree_with_what_happened() {
    tokio::time::timeout(Duration::from_secs(240), scenario())
        .await
        .expect("the metrics scenario finishes within 240 s");
}

async fn scenario() {
    let nodes = tight_fuel_cluster().await;
    let writer = client(&nodes[0]).await;

    tracing::info!("phase: writes under load, metrics read from every node meanwhile");
    let load = tokio::spawn(async move {
        let mut last = 0;
        for i in 0..150 {
            let (index, outcome) = writer
                .write(put(&format!("k{i}"), "v"))
                .await
                .expect("write");
            outcome.expect("the put succeeds");
            last = index;
        }
        (writer, last)
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut during = Vec::new();
    for node in &nodes {
        during.push(everything(node).await);
    }
    let (writer, last_acked) = load.await.expect("load task");
    for (node, before) in nodes.iter().zip(&during) {
        let deadline = Instant::now() + Duration::from_secs(20);
        let after = loop {
            let after = everything(node).await;
            if applied(&after) >= last_acked || Instant::now() > deadline {
                break after;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        let id = node.node.node_id();
        assert!(
            applied(&after) >= last_acked,
            "node {id} applied {} < acknowledged {last_acked}",
            applied(&after)
        );
        let (sent_before, received_before) = protocol_bytes(before, "iroh-raft/0");
        let (sent, received) = protocol_bytes(&after, "iroh-raft/0");
        assert!(
            sent_before > 0 && received_before > 0,
            "node {id}: raft bytes {sent_before}/{received_before}"
        );
        assert!(
            sent > sent_before && received > received_before,
            "node {id}: raft bytes grew {sent_before}->{sent}, {received_before}->{received}"
        );
        let (metrics_sent, metrics_received) = protocol_bytes(&after, "iroh-raft-metrics/0");
        assert!(metrics_sent > 0 && metrics_received > 0, "node {id}");
        let storage = after.storage.as_ref().expect("storage");
        assert!(storage.fsync_latency.count > 0, "node {id} fsynced");
        assert!(storage.appends_synced >= storage.fsync_latency.count);
        assert!(storage.database_bytes > 0);
        assert!(storage.keyspaces.iter().any(|k| k.name == "raft.log"));
        let plugin = after.plugin.as_ref().expect("plugin");
        assert!(plugin.apply_latency.count > 0, "node {id} applied batches");
        assert!(
            plugin.entries_applied >= 150,
            "node {id}: {}",
            plugin.entries_applied
        );
        assert_eq!(
            plugin.apply_latency.counts.iter().sum::<u64>(),
            plugin.apply_latency.count
        );
        assert!(
            plugin
                .active
                .iter()
                .any(|a| a.kind == iroh_raft::proto::PluginKind::StateMachine
                    && a.sha256 == iroh_raft::sha256(bundled::KV))
        );
        let raft = after.raft.as_ref().expect("raft");
        assert!(raft.elections >= 1 && raft.leader_changes >= 1, "node {id}");
        if raft.state == RaftRole::Leader {
            assert!(
                raft.proposal_latency.count >= 150,
                "the leader timed its proposals: {}",
                raft.proposal_latency.count
            );
            assert_eq!(raft.followers.len(), 2, "{:?}", raft.followers);
            assert!(raft.followers.iter().all(|f| f.matched.is_some()));
            let peers = &after.network.as_ref().expect("network").peers;
            assert_eq!(peers.len(), 2, "RPC figures per follower: {peers:?}");
            assert!(peers.iter().all(|p| p.latency.count > 0));
        }
    }
    let entry = &nodes[0];
    let management = everything(entry).await.management.expect("management");
    assert!(
        management
            .requests_by_operation
            .iter()
            .any(|(operation, count)| operation == op::DATA_WRITE && *count >= 150),
        "{management:?}"
    );

    tracing::info!("phase: a trapping command is counted on every replica");
    let big = "x".repeat(1 << 20);
    let (_, outcome) = writer.write(put("big", &big)).await.expect("write");
    let error = outcome.expect_err("the put runs out of fuel");
    assert!(error.contains("out of fuel"), "{error}");
    for node in &nodes {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let plugin = everything(node).await.plugin.expect("plugin");
            // The trap is counted inside the apply call and the instance count copied out after
            // it: wait for both, since a read may fall in between.
            if plugin
                .traps
                .iter()
                .any(|(kind, n)| kind == "out_of_fuel" && *n >= 1)
                && plugin.instances_created >= 2
            {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "node {} counted no trap, or no new instance after it: {:?}, {} instances",
                node.node.node_id(),
                plugin.traps,
                plugin.instances_created
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    tracing::info!("phase: a caller the policy refuses is told so on the metrics protocol");
    let stranger = MetricsClient::connect_with_key(SecretKey::generate(), entry.node.addr())
        .await
        .expect("connects");
    match stranger.get(vec![MetricsCategory::Raft]).await {
        Err(ClientError::Request(RequestError::Denied {
            operation, reason, ..
        })) => {
            assert_eq!(operation, op::METRICS_READ);
            assert!(!reason.is_empty());
        }
        other => panic!("expected a denial, got {other:?}"),
    }
    assert!(matches!(
        stranger
            .subscribe(Vec::new(), Duration::from_millis(100))
            .await
            .expect("opens")
            .next()
            .await,
        Err(ClientError::Request(RequestError::Denied { .. }))
    ));
    stranger.close().await;
    let denied = everything(entry)
        .await
        .management
        .expect("management")
        .denied;
    assert!(
        denied
            .iter()
            .any(|(operation, n)| operation == op::METRICS_READ && *n >= 2),
        "{denied:?}"
    );

    tracing::info!("phase: a subscription streams snapshots as writes go on");
    let watcher = metrics_client(&nodes[1]).await;
    // 10 ms is below the floor: the node sends one every 100 ms at most.
    let mut subscription = watcher
        .subscribe(vec![MetricsCategory::Raft], Duration::from_millis(10))
        .await
        .expect("subscribes");
    let more = tokio::spawn(async move {
        for i in 0..40 {
            let command = put(&format!("s{i}"), "v");
            writer.write(command).await.expect("write").1.expect("ok");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    });
    let started = Instant::now();
    let mut seen = Vec::new();
    while seen.len() < 6 {
        let snapshot = subscription
            .next()
            .await
            .expect("a snapshot")
            .expect("the stream goes on");
        assert!(snapshot.storage.is_none(), "only the raft category");
        seen.push(applied(&snapshot));
    }
    let took = started.elapsed();
    more.await.expect("writer");
    assert!(
        took >= Duration::from_millis(450),
        "6 snapshots at ≥100 ms apart took {took:?}"
    );
    assert!(seen.windows(2).all(|w| w[0] <= w[1]), "{seen:?}");
    assert!(seen.last() > seen.first(), "applied index rose: {seen:?}");
    subscription.close();
    watcher.close().await;

    let after = everything(entry).await;
    assert!(applied(&after) >= last_acked);

    for node in nodes {
        node.node.shutdown().await.expect("shutdown");
    }
}
