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
    // Each node draws its message losses from a seed of its own, derived from `IROH_RAFT_SEED`
    // when it is set, so a run's losses replay with it.
    static NODES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let base = std::env::var("IROH_RAFT_SEED")
        .ok()
        .and_then(|seed| seed.parse::<u64>().ok())
        .unwrap_or(1);
    let number = NODES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    config.link_faults =
        iroh_raft::net::LinkFaults::seeded(base ^ number.wrapping_mul(0x9e37_79b9_7f4a_7c15));
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
    start_with(start, |_| {}).await
}

/// Starts a node with [`config`] changed by `configure`.
pub(crate) async fn start_with(start: Start, configure: fn(&mut NodeConfig)) -> TestNode {
    init_tracing();
    let dir = tempfile::tempdir().expect("temp dir");
    let mut config = config(dir.path());
    configure(&mut config);
    let node = Node::start(config, start).await.expect("node starts");
    TestNode { node, dir }
}

/// Forms a cluster of `size` voters: one `--init`, the rest join with its ticket.
pub(crate) async fn cluster(size: usize) -> Vec<TestNode> {
    cluster_with(size, |_| {}).await
}

/// As [`cluster`], every node's configuration changed by `configure`.
pub(crate) async fn cluster_with(size: usize, configure: fn(&mut NodeConfig)) -> Vec<TestNode> {
    tracing::info!(size, "forming a cluster");
    let first = start_with(Start::Init, configure).await;
    let ticket = first.node.ticket();
    let mut nodes = vec![first];
    for _ in 1..size {
        nodes.push(start_with(Start::Join(ticket.clone()), configure).await);
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

/// Answers announces on `iroh-raft-discovery/0` as a standby node waiting to be added: what
/// `member add` asks a node before it adds it.
#[derive(Debug)]
struct AnswersAs(iroh_raft::proto::Announce);

impl iroh_raft::net::DiscoveryService for AnswersAs {
    fn join(
        &self,
        _request: &iroh_raft::proto::JoinRequest,
        _key: [u8; 32],
    ) -> iroh_raft::proto::JoinReply {
        iroh_raft::proto::JoinReply::Refused("a test endpoint, not a member".into())
    }

    fn announce(
        &self,
        _announce: &iroh_raft::proto::Announce,
        _key: [u8; 32],
    ) -> iroh_raft::proto::AnnounceReply {
        iroh_raft::proto::AnnounceReply {
            receiver: self.0.clone(),
            leader: None,
            sender: iroh_raft::proto::PeerStanding::Unknown,
        }
    }

    async fn query_cluster(
        &self,
        _cluster_id: Option<[u8; 16]>,
        _caller: iroh::EndpointId,
    ) -> iroh_raft::proto::DiscoveryReply {
        iroh_raft::proto::DiscoveryReply::Refused("a test endpoint knows no cluster".into())
    }
}

/// A bare endpoint (no raft node behind it) that says it waits to join `node`'s cluster as
/// `node_id`, so that `member add` takes it; the router stops when this is dropped.
pub(crate) struct FakeStandby {
    pub(crate) endpoint: iroh::Endpoint,
    _router: iroh::protocol::Router,
}

pub(crate) async fn fake_standby(node: &TestNode, node_id: u64) -> FakeStandby {
    let endpoint = iroh_raft::net::bind_endpoint(
        iroh::SecretKey::generate(),
        "127.0.0.1:0".parse().expect("addr"),
        vec![iroh_raft::proto::alpn::DISCOVERY.to_vec()],
    )
    .await
    .expect("bind");
    let announce = iroh_raft::proto::Announce {
        node_id,
        cluster_id: node.node.status().cluster_id,
        role: iroh_raft::proto::AnnouncedRole::Standby,
        version: String::new(),
        endpoints: endpoint.bound_sockets(),
    };
    let router = iroh::protocol::Router::builder(endpoint.clone())
        .accept(
            iroh_raft::proto::alpn::DISCOVERY,
            iroh_raft::net::DiscoveryServer::new(AnswersAs(announce)),
        )
        .spawn();
    FakeStandby {
        endpoint,
        _router: router,
    }
}

/// The member record of `standby`, as `member add` takes it.
pub(crate) fn member_of(standby: &FakeStandby, observer: bool) -> iroh_raft::proto::Member {
    iroh_raft::proto::Member {
        endpoint_key: *standby.endpoint.id().as_bytes(),
        addrs: standby.endpoint.bound_sockets(),
        observer,
    }
}
