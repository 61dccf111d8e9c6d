//! Starting nodes in temporary directories and waiting for the cluster to settle.

use std::time::{Duration, Instant};

use bytes::Bytes;
use iroh_raft::{Client, Node, NodeConfig, Start};
use iroh_raft_kv_types::{Command, Query, QueryResponse};

/// Padding a component to a size: the deploy bench's, shared so there is one definition.
#[path = "../../src/bin/iroh-raft/padding.rs"]
pub(crate) mod padding;

pub(crate) struct TestNode {
    pub(crate) node: Node,
    pub(crate) dir: tempfile::TempDir,
}

/// The identity the tests speak as: every test cluster makes it a root identity, so the bundled
/// `rbac` policy grants it `Admin`.
pub(crate) fn admin_key() -> iroh::SecretKey {
    iroh::SecretKey::from_bytes(&[0xad; 32])
}

pub(crate) fn config(dir: &std::path::Path) -> NodeConfig {
    let mut config = NodeConfig::new(dir, "127.0.0.1:0".parse().expect("addr"));
    config.root_identities = vec![admin_key().public()];
    // Quick elections for tests on a loaded two-core machine.
    config.heartbeat = Duration::from_millis(50);
    config.election_timeout = (Duration::from_millis(300), Duration::from_millis(600));
    config
}

/// Logs go to the test output, filtered by `RUST_LOG`.
pub(crate) fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

pub(crate) async fn start(start: Start) -> TestNode {
    init_tracing();
    let dir = tempfile::tempdir().expect("temp dir");
    let node = Node::start(config(dir.path()), start)
        .await
        .expect("node starts");
    TestNode { node, dir }
}

/// Forms a cluster of `size` voters: one `--init`, the rest join with its ticket.
pub(crate) async fn cluster(size: usize) -> Vec<TestNode> {
    tracing::info!(size, "forming a cluster");
    let first = start(Start::Init).await;
    let ticket = first.node.ticket();
    let mut nodes = vec![first];
    for _ in 1..size {
        nodes.push(start(Start::Join(ticket.clone())).await);
    }
    wait_for(Duration::from_secs(60), "every node to be a voter", || {
        nodes.iter().all(|n| n.node.status().voters.len() == size)
    })
    .await;
    // Every node has applied the cluster's first entries (its initial state machine among them),
    // so what a test sees next is its own doing.
    wait_for(
        Duration::from_secs(60),
        "every node to apply the same index",
        || {
            let applied = nodes[0].node.status().applied;
            nodes.iter().all(|n| n.node.status().applied == applied)
        },
    )
    .await;
    nodes
}

pub(crate) async fn wait_for(timeout: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub(crate) fn put(key: &str, value: &str) -> Bytes {
    Bytes::from(
        postcard::to_allocvec(&Command::Put {
            key: key.as_bytes(),
            value: value.as_bytes(),
        })
        .expect("encode"),
    )
}

pub(crate) fn get(key: &str) -> Bytes {
    Bytes::from(
        postcard::to_allocvec(&Query::Get {
            key: key.as_bytes(),
        })
        .expect("encode"),
    )
}

pub(crate) fn value(answer: &Bytes) -> Option<Vec<u8>> {
    match postcard::from_bytes::<QueryResponse>(answer).expect("decode") {
        QueryResponse::Value(value) => value,
        other => panic!("expected a value, got {other:?}"),
    }
}

/// A client of `node` speaking as the admin.
pub(crate) async fn client(node: &TestNode) -> Client {
    Client::connect_with_key(admin_key(), node.node.addr())
        .await
        .expect("client connects")
}

/// A client of `node` with a fresh key no policy knows.
pub(crate) async fn stranger(node: &TestNode) -> Client {
    Client::connect(node.node.addr())
        .await
        .expect("client connects")
}

/// The configuration in effect, as `c`'s node answers it.
pub(crate) async fn configuration(c: &Client) -> iroh_raft::proto::ClusterConfig {
    match c
        .request(iroh_raft::proto::Operation::GetConfiguration)
        .await
        .expect("config")
    {
        iroh_raft::proto::Reply::Configuration(config) => config,
        other => panic!("expected the configuration, got {other:?}"),
    }
}

/// Sets `config` through `c`, reading the version again if another update or an election got in
/// the way.
pub(crate) async fn retry_config(c: &Client, config: iroh_raft::proto::ClusterConfig) {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut wanted = config;
    loop {
        match c
            .request(iroh_raft::proto::Operation::UpdateConfiguration {
                config: wanted.clone(),
            })
            .await
        {
            Ok(_) => return,
            Err(error) => {
                assert!(Instant::now() < deadline, "config set failed: {error}");
                tracing::debug!("config set again after: {error}");
                tokio::time::sleep(Duration::from_millis(200)).await;
                wanted.version = configuration(c).await.version;
            }
        }
    }
}
