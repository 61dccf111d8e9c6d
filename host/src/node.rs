//! A running node: its identity and data directory, the iroh endpoint with its protocols, the
//! raft instance over fjall storage and the state-machine plugin.
//!
//! Start it one of three ways ([`Start`]): create a cluster (`--init`), join one with a ticket
//! (`--join`), or come back from its data directory (no flags).

mod access;
mod announcer;
mod backup_schedule;
mod backups;
mod config;
mod consistency_check;
mod deadlines;
mod disk_space;
mod error;
mod event_source;
mod forward;
mod gate;
mod identity;
mod init;
mod inspect;
mod join;
mod joins;
mod leadership;
mod log_ops;
mod maintenance;
mod members;
mod metrics_source;
mod offline_restore;
mod plugin_ops;
mod raft_core;
mod removal;
mod service;
mod startup;
mod streams;

use std::sync::Arc;

use iroh::protocol::Router;
use iroh::{Endpoint, EndpointAddr};
use openraft::Raft;
use openraft::async_runtime::WatchReceiver;

pub use config::{InitialPolicy, NodeConfig};
pub use error::NodeError;
pub use identity::ClusterIdentity;
pub use offline_restore::{OfflineRestore, RESTORE_UNFINISHED, restore_offline};

use self::service::NodeService;
use crate::net::Admission;
use crate::proto::{JoinTicket, NodeStatus, TypeConfig};
use crate::raft::{SharedRaft, StateMachineStore};

type C = TypeConfig;

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

/// A running node.
pub struct Node {
    raft: SharedRaft<StateMachineStore>,
    router: Router,
    identity: ClusterIdentity,
    service: Arc<NodeService>,
    /// The node's own background work (events, maintenance, promotions).
    tasks: Vec<tokio::task::JoinHandle<()>>,
    state_machine: StateMachineStore,
    metrics_http: Option<std::net::SocketAddr>,
    /// The addresses peers and clients dial (the bound ones; each interface's for `0.0.0.0`).
    advertised: Vec<std::net::SocketAddr>,
    link_faults: crate::net::LinkFaults,
    /// The data directory: a fatal error looks at the disk holding it (`node/disk_space.rs`).
    data_dir: std::path::PathBuf,
}

impl Node {
    /// Starts a node: decides how from `start` and the data directory, binds the endpoint,
    /// establishes the cluster identity, opens storage and starts raft, serves the protocols and
    /// starts the background tasks (see `node/startup.rs` for each step).
    pub async fn start(config: NodeConfig, start: Start) -> Result<Self, NodeError> {
        let dir = config.data_dir.clone();
        std::fs::create_dir_all(&dir).map_err(|e| NodeError::DataDir {
            path: dir.clone(),
            reason: e.to_string(),
        })?;
        let plan = startup::plan(start, ClusterIdentity::load(&dir)?, &dir)?;
        let initialize = plan == startup::Plan::Init;
        let (endpoint, me) = startup::bind(&dir, &config).await?;
        let admission = Admission::default();
        let identity = startup::identity(plan, &dir, &endpoint, &me, &admission).await?;
        let storage = startup::storage(&dir, &config, &identity, &endpoint).await?;
        let serving = startup::serve(
            &dir, &config, &identity, &endpoint, &storage, admission, &me,
        )?;
        let removal = serving.removal.clone();
        let (raft, state_machine) = (storage.raft.clone(), storage.state_machine.clone());
        let mut tasks = startup::tasks(&config, storage, &serving);
        if let Some(membership_index) = removal.at() {
            tracing::warn!(
                node_id = identity.node_id,
                membership_index,
                "this node was removed from its cluster: it answers status and health only"
            );
            announcer::stop_raft(&raft).await;
        }
        let metrics_http = match config.metrics_http {
            Some(addr) => {
                let service = serving.service.clone();
                let exposition: crate::net::Exposition =
                    Arc::new(move || service.prometheus().map_err(|e| e.to_string()));
                let (bound, task) = crate::net::serve_metrics_http(addr, exposition).await?;
                tracing::info!(%bound, "serving GET /metrics over HTTP (not access-controlled)");
                tasks.push(task);
                Some(bound)
            }
            None => None,
        };
        let advertised = me.addrs.clone();
        if initialize {
            init::initialize(&raft.get(), identity.node_id, me, &config).await?;
        }
        serving.service.authorizer.preload().await;
        tracing::info!(node_id = identity.node_id, addr = ?advertised, "node started");
        Ok(Self {
            raft,
            router: serving.router,
            identity,
            service: serving.service,
            tasks,
            state_machine,
            metrics_http,
            advertised,
            link_faults: config.link_faults.clone(),
            data_dir: dir,
        })
    }

    /// The faults injected into the raft messages this node sends (its configuration's
    /// `link_faults`): a test cuts, slows or pauses links through them while the node runs.
    pub fn link_faults(&self) -> &crate::net::LinkFaults {
        &self.link_faults
    }

    /// Subscribes to this node's events.
    pub fn subscribe(&self) -> crate::events::Subscription {
        self.service.state_machine.events().subscribe()
    }

    /// This node's raft id.
    pub fn node_id(&self) -> u64 {
        self.identity.node_id
    }

    /// Where clients and peers reach this node: its bound address, or each interface's address
    /// when it is bound to `0.0.0.0`.
    pub fn addr(&self) -> EndpointAddr {
        self.advertised
            .iter()
            .fold(EndpointAddr::new(self.endpoint().id()), |addr, socket| {
                addr.with_ip_addr(*socket)
            })
    }

    /// Where `GET /metrics` is served over HTTP, if [`NodeConfig::metrics_http`] asked for it.
    pub fn metrics_http_addr(&self) -> Option<std::net::SocketAddr> {
        self.metrics_http
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
            addrs: self.advertised.clone(),
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

    /// Resolves once this node's raft core has stopped on a fatal error (a storage error, or a
    /// panic inside raft) rather than through [`Self::shutdown`] or a core replacement. The node
    /// cannot serve any more: exit non-zero so that a supervisor restarts it; it recovers from its
    /// data directory.
    pub async fn failed(&self) -> NodeError {
        loop {
            let mut metrics = self.raft.get().metrics();
            loop {
                let state = metrics.borrow_watched().running_state.clone();
                match state {
                    Ok(()) => {}
                    // Shut down on purpose, or replaced: look at the core in use now.
                    Err(openraft::errors::Fatal::Stopped) => break,
                    Err(fatal) => {
                        let reason = fatal.to_string();
                        let free = disk_space::free_bytes(&self.data_dir);
                        let hint = disk_space::hint(&reason, free, &self.data_dir);
                        return NodeError::Fatal {
                            reason: format!("{reason}{hint}"),
                        };
                    }
                }
                if metrics.changed().await.is_err() {
                    break;
                }
            }
            if self.raft.is_stopping() {
                return std::future::pending().await;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    /// Shuts raft down, then stops serving and closes the endpoint; everything acknowledged is
    /// already on disk. Raft goes first so that it stops replicating before the endpoint closes.
    pub async fn shutdown(self) -> Result<(), NodeError> {
        mark_stopped();
        self.raft.stop();
        for task in &self.tasks {
            task.abort();
        }
        let stopped = self.raft.get().shutdown().await;
        self.service.leader.close().await;
        let closed = self.router.shutdown().await;
        stopped.map_err(|e| NodeError::raft("stopping raft", e))?;
        closed.map_err(|e| NodeError::raft("stopping the protocols", e))
    }
}

/// When a node of this process last shut down (its endpoint may take a moment to let go of
/// its port, so a node started on the same port right after retries its bind for a while).
static LAST_STOP: std::sync::Mutex<Option<std::time::Instant>> = std::sync::Mutex::new(None);

fn mark_stopped() {
    *LAST_STOP.lock().unwrap_or_else(|p| p.into_inner()) = Some(std::time::Instant::now());
}

/// Whether a node of this process shut down within the last 10 s.
pub(crate) fn recently_stopped() -> bool {
    LAST_STOP
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .is_some_and(|at| at.elapsed() < std::time::Duration::from_secs(10))
}
