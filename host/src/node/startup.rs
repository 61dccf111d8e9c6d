//! The steps [`Node::start`](super::Node::start) takes, in order: decide from the flags and the data
//! directory how to start ([`plan`]), bind the endpoint, establish the cluster identity (create,
//! join or reload it), open storage and start the raft core, serve the protocols, start the
//! background tasks. On `--init` the node then initializes the new cluster (`init.rs`).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use iroh::Endpoint;
use iroh::protocol::Router;

use super::access::Authorizer;
use super::announcer::{self, Identity};
use super::backup_schedule;
use super::forward::LeaderLink;
use super::gate::Gate;
use super::joins::JoinService;
use super::raft_core::CoreFactory;
use super::removal::Removal;
use super::service::NodeService;
use super::{
    ClusterIdentity, NodeConfig, NodeError, Start, consistency_check, event_source, join,
    maintenance, members,
};
use crate::metrics::{ManagementCounters, NetworkCounters};
use crate::net::{
    Admission, Counted, DiscoveryServer, ManagementServer, MetricsServer, RaftServer,
    advertised_addrs, bind_endpoint, interface_addrs, load_or_create_secret_key,
};
use crate::plugin::PluginEngine;
use crate::proto::{ClusterConfig, JoinTicket, Member, alpn};
use crate::raft::{RaftStorage, SharedRaft, StateMachineStore};

/// How the node comes to hold a cluster identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Plan {
    /// Create a new cluster and initialize raft.
    Init,
    /// Ask the ticket's cluster to be let in: as a new member, or (`standby`) to wait as that id.
    Join {
        ticket: JoinTicket,
        standby: Option<u64>,
    },
    /// Come back as the member the data directory records.
    Restart(ClusterIdentity),
}

/// How to start, from the flags and what the data directory `dir` already holds; pure.
pub(crate) fn plan(
    start: Start,
    existing: Option<ClusterIdentity>,
    dir: &Path,
) -> Result<Plan, NodeError> {
    match (start, existing) {
        (Start::Init | Start::Join(_) | Start::Standby { .. }, Some(_)) => {
            Err(NodeError::AlreadyMember(dir.to_path_buf()))
        }
        (Start::Restart, None) => Err(NodeError::NotMember(dir.to_path_buf())),
        (Start::Restart, Some(identity)) => Ok(Plan::Restart(identity)),
        (Start::Init, None) => Ok(Plan::Init),
        (Start::Join(ticket), None) => Ok(Plan::Join {
            ticket,
            standby: None,
        }),
        (Start::Standby { ticket, node_id }, None) => Ok(Plan::Join {
            ticket,
            standby: Some(node_id),
        }),
    }
}

/// Binds the node's endpoint with its persisted key, retrying for a few seconds while the address
/// is still held (a previous instance of this node releasing its socket).
pub(crate) async fn bind(dir: &Path, config: &NodeConfig) -> Result<(Endpoint, Member), NodeError> {
    let secret_key = load_or_create_secret_key(&dir.join("secret.key"))?;
    let alpns = vec![
        alpn::RAFT.to_vec(),
        alpn::MANAGEMENT.to_vec(),
        alpn::METRICS.to_vec(),
        alpn::DISCOVERY.to_vec(),
    ];
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let endpoint = loop {
        match bind_endpoint(secret_key.clone(), config.bind, alpns.clone()).await {
            Ok(endpoint) => break endpoint,
            // A node of this process that stopped a moment ago may still be letting go of the
            // port: wait for it. Otherwise the address is someone else's: say so at once.
            Err(error) if super::recently_stopped() && std::time::Instant::now() < deadline => {
                tracing::debug!("{error}; retrying");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(error) => return Err(in_use(config.bind).unwrap_or(error.into())),
        }
    };
    let me = Member {
        endpoint_key: *endpoint.id().as_bytes(),
        addrs: advertised_addrs(&endpoint.bound_sockets(), &interface_addrs()),
        observer: false,
    };
    Ok((endpoint, me))
}

/// A clear error if `addr` is taken by another socket (the endpoint's own error says less).
fn in_use(addr: std::net::SocketAddr) -> Option<NodeError> {
    match std::net::UdpSocket::bind(addr) {
        Err(error) if error.kind() == std::io::ErrorKind::AddrInUse => {
            Some(NodeError::AddressInUse { addr })
        }
        _ => None,
    }
}

/// The cluster identity `plan` leads to (joining asks a member over the network), stored in
/// `dir`; the raft keys admitted meanwhile go into `admission`.
pub(crate) async fn identity(
    plan: Plan,
    dir: &Path,
    endpoint: &Endpoint,
    me: &Member,
    admission: &Admission,
) -> Result<ClusterIdentity, NodeError> {
    let identity = match plan {
        Plan::Restart(identity) => {
            for key in &identity.join_peers {
                admission.admit(*key);
            }
            identity
        }
        Plan::Init => ClusterIdentity::new_cluster(),
        Plan::Join { ticket, standby } => {
            join::join(endpoint, &ticket, me.addrs.clone(), standby, admission).await?
        }
    };
    identity.store(dir)?;
    Ok(identity)
}

/// Storage and the raft core over it.
pub(crate) struct Storage {
    pub(crate) storage: RaftStorage,
    pub(crate) state_machine: StateMachineStore,
    pub(crate) factory: CoreFactory,
    pub(crate) raft: SharedRaft<StateMachineStore>,
    /// The configuration the core started with: the replicated one, or the flags before there is one.
    pub(crate) cluster_config: ClusterConfig,
    pub(crate) storage_dir: PathBuf,
    /// Connections and bytes per protocol, raft RPCs per peer: the raft client counts here.
    pub(crate) network: Arc<NetworkCounters>,
}

/// Opens the node's storage with its initial state machine as the default and starts a raft core.
pub(crate) async fn storage(
    dir: &Path,
    config: &NodeConfig,
    identity: &ClusterIdentity,
    endpoint: &Endpoint,
) -> Result<Storage, NodeError> {
    let engine = PluginEngine::new(Some(&dir.join("compiled")))?;
    let plugin = engine.load_state_machine("kv", &config.initial_state_machine)?;
    let storage_dir = dir.join("storage");
    let storage = RaftStorage::open(&storage_dir, plugin, config.limits)?;
    let state_machine = storage.state_machine();
    // The replicated configuration, once there is one, decides; the flags seed a new cluster.
    let applied_config = state_machine.config().borrow().clone();
    let cluster_config = if applied_config.version > 0 {
        applied_config
    } else {
        config.cluster_config()
    };
    let network = Arc::new(NetworkCounters::default());
    let factory = CoreFactory {
        node_id: identity.node_id,
        endpoint: endpoint.clone(),
        log: storage.log_store(),
        state_machine: state_machine.clone(),
        network: network.clone(),
        connections: Default::default(),
        faults: config.link_faults.clone(),
    };
    let raft = SharedRaft::new(factory.start(&cluster_config).await?);
    Ok(Storage {
        storage,
        state_machine,
        factory,
        raft,
        cluster_config,
        storage_dir,
        network,
    })
}

/// What serving left running: the router with the four protocols and the management service.
pub(crate) struct Serving {
    pub(crate) router: Router,
    pub(crate) service: Arc<NodeService>,
    pub(crate) membership: Arc<tokio::sync::Mutex<()>>,
    pub(crate) management_frame: Arc<AtomicUsize>,
    pub(crate) raft_frame: Arc<AtomicUsize>,
    /// Who this node announces itself as.
    pub(crate) announced: Identity,
    pub(crate) removal: Arc<Removal>,
}

/// Serves `iroh-raft/0`, `iroh-raft-mgmt/0`, `iroh-raft-metrics/0` and `iroh-raft-discovery/0`
/// on `endpoint`, each counted per ALPN.
pub(crate) fn serve(
    dir: &Path,
    config: &NodeConfig,
    identity: &ClusterIdentity,
    endpoint: &Endpoint,
    storage: &Storage,
    admission: Admission,
    me: &Member,
) -> Result<Serving, NodeError> {
    let removal = Arc::new(Removal::load(dir).map_err(|e| NodeError::DataDir {
        path: dir.to_path_buf(),
        reason: e.to_string(),
    })?);
    let shared = &storage.raft;
    let membership = Arc::new(tokio::sync::Mutex::new(()));
    let management_frame = Arc::new(AtomicUsize::new(
        storage.cluster_config.max_management_frame as usize,
    ));
    // The leader's append batches are bounded by the replicated `max_raft_frame`.
    let raft_frame = storage.storage.log_store().append_budget().max_frame();
    raft_frame.store(
        storage.cluster_config.max_raft_frame as usize,
        Ordering::Relaxed,
    );
    let counters = Arc::new(ManagementCounters::default());
    let announced = Identity {
        node_id: identity.node_id,
        key: me.endpoint_key,
        cluster_id: identity.cluster_id,
        endpoints: me.addrs.clone(),
    };
    let service = Arc::new(NodeService {
        raft: shared.clone(),
        state_machine: storage.state_machine.clone(),
        log: storage.storage.log_store(),
        cluster_id: identity.cluster_id,
        node_id: identity.node_id,
        reader: storage.state_machine.shared_reader(),
        endpoint: endpoint.clone(),
        leader: LeaderLink::new(
            endpoint.clone(),
            identity.node_id,
            shared.clone(),
            counters.clone(),
        ),
        membership: membership.clone(),
        counters,
        network: storage.network.clone(),
        raft_recorder: Arc::default(),
        started: std::time::Instant::now(),
        storage_dir: storage.storage_dir.clone(),
        max_frame: management_frame.clone(),
        local_config: config.cluster_config(),
        consistency: Arc::default(),
        authorizer: Authorizer::new(storage.state_machine.clone()),
        gate: Gate::new(removal.clone()),
        identity: announced.clone(),
        backup_dir: config.backup_dir.clone(),
        join_secret: identity.secret,
    });
    let discovery = DiscoveryServer::new(JoinService {
        raft: shared.clone(),
        node_id: identity.node_id,
        cluster_id: identity.cluster_id,
        secret: identity.secret,
        handed_out: Arc::default(),
        membership_changes: membership.clone(),
        identity: announced.clone(),
        removal: removal.clone(),
        service: service.clone(),
    });
    let raft_server = RaftServer::shared(
        shared.clone(),
        admission,
        dir.join("incoming"),
        config.link_faults.clone(),
    );
    let router = Router::builder(endpoint.clone())
        .accept(
            alpn::RAFT,
            Counted::new(raft_server, storage.network.clone()),
        )
        .accept(
            alpn::MANAGEMENT,
            Counted::new(
                ManagementServer::new(service.clone()),
                storage.network.clone(),
            ),
        )
        .accept(
            alpn::METRICS,
            Counted::new(MetricsServer::new(service.clone()), storage.network.clone()),
        )
        .accept(
            alpn::DISCOVERY,
            Counted::new(discovery, storage.network.clone()),
        )
        .spawn();
    Ok(Serving {
        router,
        service,
        membership,
        management_frame,
        raft_frame,
        announced,
        removal,
    })
}

/// Starts the node's background work: events from raft's metrics, the consistency check at every
/// check point, maintenance (heartbeats, snapshots, purges, frame limits, election timeouts) and
/// the leader's promotion of learners.
pub(crate) fn tasks(
    config: &NodeConfig,
    storage: Storage,
    serving: &Serving,
) -> Vec<tokio::task::JoinHandle<()>> {
    let Storage {
        state_machine,
        factory,
        raft,
        ..
    } = storage;
    let events = state_machine.events().clone();
    vec![
        tokio::spawn(event_source::run(
            raft.clone(),
            state_machine.clone(),
            state_machine.events().clone(),
        )),
        tokio::spawn(consistency_check::run(
            raft.clone(),
            state_machine.clone(),
            serving.router.endpoint().clone(),
            serving.service.consistency.clone(),
        )),
        tokio::spawn(maintenance::run(
            raft.clone(),
            factory,
            state_machine,
            serving.management_frame.clone(),
            serving.raft_frame.clone(),
            config.cluster_config(),
        )),
        tokio::spawn(backup_schedule::run(serving.service.clone())),
        tokio::spawn(crate::metrics::watch_elections(
            raft.clone(),
            serving.service.raft_recorder.clone(),
        )),
        tokio::spawn(announcer::run(
            raft.clone(),
            serving.router.endpoint().clone(),
            serving.announced.clone(),
            serving.removal.clone(),
            events,
            serving.service.state_machine.state().watch_hub().clone(),
        )),
        tokio::spawn(members::promote_learners(raft, serving.membership.clone())),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ticket() -> JoinTicket {
        JoinTicket {
            cluster_id: [1; 16],
            endpoint_key: [2; 32],
            addrs: Vec::new(),
            secret: [3; 32],
        }
    }

    #[test]
    fn a_data_dir_with_a_member_only_restarts() {
        let dir = Path::new("/data");
        let identity = ClusterIdentity::new_cluster();
        for start in [
            Start::Init,
            Start::Join(ticket()),
            Start::Standby {
                ticket: ticket(),
                node_id: 4,
            },
        ] {
            assert!(matches!(
                plan(start, Some(identity.clone()), dir),
                Err(NodeError::AlreadyMember(_))
            ));
        }
        assert_eq!(
            plan(Start::Restart, Some(identity.clone()), dir).unwrap(),
            Plan::Restart(identity)
        );
    }

    #[test]
    fn an_empty_data_dir_inits_or_joins() {
        let dir = Path::new("/data");
        assert!(matches!(
            plan(Start::Restart, None, dir),
            Err(NodeError::NotMember(_))
        ));
        assert_eq!(plan(Start::Init, None, dir).unwrap(), Plan::Init);
        assert_eq!(
            plan(Start::Join(ticket()), None, dir).unwrap(),
            Plan::Join {
                ticket: ticket(),
                standby: None
            }
        );
        assert_eq!(
            plan(
                Start::Standby {
                    ticket: ticket(),
                    node_id: 4
                },
                None,
                dir
            )
            .unwrap(),
            Plan::Join {
                ticket: ticket(),
                standby: Some(4)
            }
        );
    }
}
