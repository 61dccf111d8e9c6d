//! A running node: its identity and data directory, the iroh endpoint with its protocols, the
//! raft instance over fjall storage and the state-machine plugin.
//!
//! Start it one of three ways ([`Start`]): create a cluster (`--init`), join one with a ticket
//! (`--join`), or come back from its data directory (no flags).

mod config;
mod deploy;
mod discovery;
mod event_source;
mod identity;
mod inspect;
mod join;
mod leadership;
mod maintenance;
mod members;
mod raft_core;
mod service;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;

use iroh::protocol::Router;
use iroh::{Endpoint, EndpointAddr};
use openraft::Raft;

pub use config::NodeConfig;
pub use identity::ClusterIdentity;

use self::discovery::DiscoveryServer;
use self::service::NodeService;
use crate::net::{
    Admission, JoinTicket, ManagementServer, NetError, NodeStatus, RaftServer, alpn, bind_endpoint,
    load_or_create_secret_key,
};
use crate::raft::{
    ClusterConfig, LogPayload, Member, RaftStorage, SharedRaft, StateMachineStore, TypeConfig,
};
use crate::{PluginEngine, PluginError, bundled};

/// How a node starts.
#[derive(Debug, Clone)]
pub enum Start {
    /// Create a new one-node cluster.
    Init,
    /// Join the cluster a ticket names.
    Join(JoinTicket),
    /// Wait to be added to the ticket's cluster by an operator (`iroh-raft member add`) as
    /// `node_id`.
    Standby {
        /// The cluster to be added to.
        ticket: JoinTicket,
        /// The id the operator will add this node as.
        node_id: u64,
    },
    /// Come back as the member the data directory records.
    Restart,
}

/// Why a node could not start or stop cleanly.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NodeError {
    /// The data directory is unusable.
    #[error("data directory {path}: {reason}")]
    DataDir {
        /// The offending path.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The node already belongs to a cluster.
    #[error(
        "{0} already holds a cluster member; restart it with no --init/--join flag, or pick another --data-dir"
    )]
    AlreadyMember(PathBuf),
    /// The node belongs to no cluster yet.
    #[error(
        "{0} holds no cluster member yet: start with --init to create a cluster or --join TICKET to join one"
    )]
    NotMember(PathBuf),
    /// A member refused the join.
    #[error("the cluster refused to let this node join: {0}")]
    JoinRefused(String),
    /// No member could be reached to join.
    #[error("could not join: {0}")]
    JoinFailed(String),
    /// The raft configuration is invalid.
    #[error("invalid raft configuration: {0}")]
    Config(String),
    /// The network could not be set up.
    #[error(transparent)]
    Net(#[from] NetError),
    /// The state-machine plugin was refused.
    #[error(transparent)]
    Plugin(#[from] PluginError),
    /// Storage failed (fatal: the node stops; it recovers from disk on restart).
    #[error("storage: {0}")]
    Storage(String),
    /// Raft failed.
    #[error("raft: {0}")]
    Raft(String),
}

type C = TypeConfig;

/// Binds the node's endpoint, retrying for a few seconds while the address is still held (a
/// previous instance of this node releasing its socket).
async fn bind_with_retry(
    secret_key: iroh::SecretKey,
    bind: std::net::SocketAddr,
) -> Result<Endpoint, NodeError> {
    let alpns = vec![
        alpn::RAFT.to_vec(),
        alpn::MANAGEMENT.to_vec(),
        alpn::DISCOVERY.to_vec(),
    ];
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        match bind_endpoint(secret_key.clone(), bind, alpns.clone()).await {
            Ok(endpoint) => return Ok(endpoint),
            Err(error) if std::time::Instant::now() < deadline => {
                tracing::debug!("{error}; retrying");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            Err(error) => return Err(error.into()),
        }
    }
}

/// A running node.
pub struct Node {
    raft: SharedRaft<StateMachineStore>,
    router: Router,
    identity: ClusterIdentity,
    service: Arc<NodeService>,
    /// The node's own background work (events, maintenance, promotions).
    tasks: Vec<tokio::task::JoinHandle<()>>,
    state_machine: StateMachineStore,
}

impl Node {
    /// Starts a node.
    pub async fn start(config: NodeConfig, start: Start) -> Result<Self, NodeError> {
        let dir = config.data_dir.clone();
        std::fs::create_dir_all(&dir).map_err(|e| NodeError::DataDir {
            path: dir.clone(),
            reason: e.to_string(),
        })?;
        let existing = ClusterIdentity::load(&dir)?;
        match (&start, &existing) {
            (Start::Init | Start::Join(_) | Start::Standby { .. }, Some(_)) => {
                return Err(NodeError::AlreadyMember(dir));
            }
            (Start::Restart, None) => return Err(NodeError::NotMember(dir)),
            _ => {}
        }
        let secret_key = load_or_create_secret_key(&dir.join("secret.key"))?;
        let endpoint = bind_with_retry(secret_key, config.bind).await?;
        let me = Member {
            endpoint_key: *endpoint.id().as_bytes(),
            addrs: endpoint.bound_sockets(),
            observer: false,
        };
        let admission = Admission::default();
        let (identity, initialize) = match (start, existing) {
            (Start::Init | Start::Join(_) | Start::Standby { .. }, Some(_)) => {
                return Err(NodeError::AlreadyMember(dir));
            }
            (Start::Restart, None) => return Err(NodeError::NotMember(dir)),
            (Start::Restart, Some(identity)) => {
                for key in &identity.join_peers {
                    admission.admit(*key);
                }
                (identity, false)
            }
            (Start::Init, None) => (ClusterIdentity::new_cluster(), true),
            (Start::Join(ticket), None) => (
                join::join(&endpoint, &ticket, me.addrs.clone(), None, &admission).await?,
                false,
            ),
            (Start::Standby { ticket, node_id }, None) => (
                join::join(
                    &endpoint,
                    &ticket,
                    me.addrs.clone(),
                    Some(node_id),
                    &admission,
                )
                .await?,
                false,
            ),
        };
        identity.store(&dir)?;

        let engine = PluginEngine::new(Some(&dir.join("compiled")))?;
        let plugin = engine.load_state_machine("kv", bundled::KV)?;
        let storage_dir = dir.join("storage");
        let storage = RaftStorage::open(&storage_dir, plugin.clone(), config.limits)
            .map_err(|e| NodeError::Storage(e.to_string()))?;
        let state_machine = storage.state_machine();
        // The replicated configuration, once there is one, decides; the flags seed a new cluster.
        let applied_config = state_machine.config().borrow().clone();
        let cluster_config = if applied_config.version > 0 {
            applied_config
        } else {
            config.cluster_config()
        };
        let factory = raft_core::CoreFactory {
            node_id: identity.node_id,
            endpoint: endpoint.clone(),
            log: storage.log_store(),
            state_machine: state_machine.clone(),
        };
        let raft = factory.start(&cluster_config).await?;
        let shared = SharedRaft::new(raft.clone());

        let membership = Arc::new(tokio::sync::Mutex::new(()));
        let management_frame = Arc::new(AtomicUsize::new(
            cluster_config.max_management_frame as usize,
        ));
        let raft_frame = Arc::new(AtomicUsize::new(cluster_config.max_raft_frame as usize));
        let service = Arc::new(NodeService {
            raft: shared.clone(),
            state_machine: state_machine.clone(),
            log: storage.log_store(),
            cluster_id: identity.cluster_id,
            node_id: identity.node_id,
            reader: state_machine.shared_reader(),
            endpoint: endpoint.clone(),
            leader: tokio::sync::Mutex::new(None),
            membership: membership.clone(),
            counters: Arc::default(),
            started: std::time::Instant::now(),
            storage_dir,
            max_frame: management_frame.clone(),
            local_config: config.cluster_config(),
        });
        let discovery = DiscoveryServer {
            raft: shared.clone(),
            node_id: identity.node_id,
            cluster_id: identity.cluster_id,
            secret: identity.secret,
            handed_out: Arc::default(),
            membership_changes: membership.clone(),
        };
        let router = Router::builder(endpoint.clone())
            .accept(
                alpn::RAFT,
                RaftServer::shared(shared.clone(), admission, dir.join("incoming"))
                    .with_max_frame(raft_frame.clone()),
            )
            .accept(alpn::MANAGEMENT, ManagementServer::new(service.clone()))
            .accept(alpn::DISCOVERY, discovery)
            .spawn();
        let tasks = vec![
            tokio::spawn(event_source::run(
                shared.clone(),
                state_machine.clone(),
                state_machine.events().clone(),
            )),
            tokio::spawn(maintenance::run(
                shared.clone(),
                factory,
                state_machine.clone(),
                management_frame,
                raft_frame,
                config.cluster_config(),
            )),
            tokio::spawn(members::promote_learners(shared.clone(), membership)),
        ];
        if initialize {
            raft.initialize(BTreeMap::from([(identity.node_id, me)]))
                .await
                .map_err(|e| NodeError::Raft(e.to_string()))?;
            if config.cluster_config() != ClusterConfig::default() {
                // Seed the new cluster's replicated configuration with this node's flags.
                raft.wait(Some(std::time::Duration::from_secs(10)))
                    .current_leader(identity.node_id, "leading the new cluster")
                    .await
                    .map_err(|e| NodeError::Raft(e.to_string()))?;
                let seed = ClusterConfig {
                    version: 1,
                    ..config.cluster_config()
                };
                raft.client_write(LogPayload::Config(seed))
                    .await
                    .map_err(|e| NodeError::Raft(format!("seeding the configuration: {e}")))?;
            }
        }
        tracing::info!(node_id = identity.node_id, addr = ?endpoint.bound_sockets(), "node started");
        Ok(Self {
            raft: shared,
            router,
            identity,
            service,
            tasks,
            state_machine,
        })
    }

    /// Subscribes to this node's events.
    pub fn subscribe(&self) -> crate::events::Subscription {
        self.service.state_machine.events().subscribe()
    }

    /// This node's raft id.
    pub fn node_id(&self) -> u64 {
        self.identity.node_id
    }

    /// Where clients and peers reach this node.
    pub fn addr(&self) -> EndpointAddr {
        let endpoint = self.endpoint();
        let mut addr = EndpointAddr::new(endpoint.id());
        for socket in endpoint.bound_sockets() {
            addr = addr.with_ip_addr(socket);
        }
        addr
    }

    /// The node's endpoint.
    pub fn endpoint(&self) -> &Endpoint {
        self.router.endpoint()
    }

    /// A ticket that lets another node join through this one.
    pub fn ticket(&self) -> JoinTicket {
        JoinTicket {
            cluster_id: self.identity.cluster_id,
            endpoint_key: *self.endpoint().id().as_bytes(),
            addrs: self.endpoint().bound_sockets(),
            secret: self.identity.secret,
        }
    }

    /// This node's view of the cluster.
    pub fn status(&self) -> NodeStatus {
        self.service.status()
    }

    /// The state machine: the active plugins, the applied data, the event bus.
    pub fn state_machine(&self) -> &StateMachineStore {
        &self.state_machine
    }

    /// The raft core in use now (metrics, membership changes). The node replaces its core when
    /// the replicated election timeouts change, so ask again rather than keep it.
    pub fn raft(&self) -> Raft<C, StateMachineStore> {
        self.raft.get()
    }

    /// Shuts raft down, then stops serving and closes the endpoint; everything acknowledged is
    /// already on disk. Raft goes first so that it stops replicating before the endpoint closes.
    pub async fn shutdown(self) -> Result<(), NodeError> {
        self.raft.stop();
        for task in &self.tasks {
            task.abort();
        }
        let stopped = self.raft.get().shutdown().await;
        if let Some((_, leader)) = self.service.leader.lock().await.take() {
            leader.close().await;
        }
        let closed = self.router.shutdown().await;
        stopped.map_err(|e| NodeError::Raft(format!("stopping raft: {e}")))?;
        closed.map_err(|e| NodeError::Raft(format!("stopping the protocols: {e}")))
    }
}
