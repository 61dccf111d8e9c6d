//! `iroh-raft node`: runs a node (new cluster, joining one, standing by, or restarting from its
//! data directory) until Ctrl-C or SIGTERM, or until its raft core stops on a fatal error (then it
//! exits 1 with the reason).

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Args;
use iroh_raft::{InitialPolicy, Node, NodeConfig, Start, format_node_address};

#[derive(Args)]
pub(crate) struct NodeArgs {
    /// Where the node keeps its identity, log, state and snapshots.
    #[arg(long, default_value = "iroh-raft-data")]
    data_dir: PathBuf,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:7001")]
    bind: SocketAddr,
    /// Create a new cluster with this node as its first member.
    #[arg(long, conflicts_with = "join")]
    init: bool,
    /// Join the cluster this ticket names.
    #[arg(long, value_name = "TICKET")]
    join: Option<String>,
    /// With --join: do not ask to be added; wait until an operator runs
    /// `iroh-raft member add ID ADDRESS` with this id and the address this node prints.
    #[arg(long, value_name = "ID", requires = "join")]
    standby_as: Option<u64>,
    /// Take a snapshot (and purge the log behind it) every this many applied entries.
    #[arg(long, default_value_t = 100_000)]
    snapshot_every: u64,
    /// Log entries kept behind the last snapshot, for slow followers.
    #[arg(long, default_value_t = 5_000)]
    keep_after_snapshot: u64,
    /// With --init: the access policy the new cluster starts with. `rbac` (the default) makes
    /// the root identities (you, `--root` keys and this node) `Admin` and denies everyone else;
    /// `allow-all` lets every caller do everything (development only: every node warns).
    #[arg(long, value_enum, default_value_t = PolicyChoice::Rbac, requires = "init")]
    policy: PolicyChoice,
    /// With --init: another break-glass identity (an endpoint id, as `iroh-raft whoami` prints
    /// it); repeatable. Root identities may always deploy a new policy and read status.
    #[arg(long = "root", value_name = "ENDPOINT_ID", requires = "init")]
    roots: Vec<iroh::EndpointId>,
    /// With --init: the key of the user creating the cluster, who becomes a root identity
    /// (default: your key in `~/.config/iroh-raft/key`, created if missing).
    #[arg(long, env = "IROH_RAFT_KEY", value_name = "FILE")]
    key: Option<PathBuf>,
    /// Serve `GET /metrics` (Prometheus text exposition) over plain HTTP on this address, e.g.
    /// 127.0.0.1:9100. Off by default. Not access-controlled (like etcd's
    /// --listen-metrics-urls): anyone who reaches the address reads every figure, so bind it to
    /// loopback or a network only your scraper is on. At most 32 connections at once; one that
    /// sends no request head within 10 s is closed, and every one after 120 s.
    #[arg(long, value_name = "ADDR")]
    metrics_http: Option<std::net::SocketAddr>,
    /// The directory this node's backup handler keeps backups in (`iroh-raft backup create`
    /// on this node writes there; `backup restore` on the leader reads there). The handler
    /// reaches nothing outside it. Without it, backups are refused on this node.
    #[arg(long, value_name = "DIR")]
    backup_dir: Option<PathBuf>,
}

/// The bundled policies a new cluster can start with.
#[derive(Clone, Copy, clap::ValueEnum, PartialEq, Eq)]
enum PolicyChoice {
    /// Role-based: the root identities are `Admin`, everyone else is denied.
    Rbac,
    /// Everyone may do everything (development only).
    AllowAll,
}

/// `iroh-raft node`.
pub(crate) async fn run(args: NodeArgs) -> anyhow::Result<()> {
    let NodeArgs {
        data_dir,
        bind,
        init,
        join,
        standby_as,
        snapshot_every,
        keep_after_snapshot,
        policy,
        roots,
        key,
        metrics_http,
        backup_dir,
    } = args;
    anyhow::ensure!(
        !data_dir.join(iroh_raft::RESTORE_UNFINISHED).exists(),
        "an offline restore into {} did not finish; run `iroh-raft restore` again (it starts \
         over) or remove the directory",
        data_dir.display()
    );
    let mut config = NodeConfig::new(&data_dir, bind);
    config.metrics_http = metrics_http;
    config.backup_dir = backup_dir;
    config.snapshot_every = snapshot_every;
    config.keep_after_snapshot = keep_after_snapshot;
    if init {
        let user = iroh_raft::load_user_key(key.as_deref())?.public();
        config.root_identities = std::iter::once(user).chain(roots).collect();
        config.initial_policy = match policy {
            PolicyChoice::Rbac => InitialPolicy::Rbac,
            PolicyChoice::AllowAll => InitialPolicy::AllowAll,
        };
    }
    let start = match (init, join, standby_as) {
        (true, _, _) => Start::Init,
        (false, Some(ticket), Some(node_id)) => Start::Standby {
            ticket: ticket.parse()?,
            node_id,
        },
        (false, Some(ticket), None) => Start::Join(ticket.parse()?),
        (false, None, _) => Start::Restart,
    };
    let node = Node::start(config, start).await?;
    println!("node {} running", node.node_id());
    println!("address: {}", format_node_address(&node.addr()));
    if let Some(addr) = node.metrics_http_addr() {
        println!("metrics: http://{addr}/metrics (not access-controlled)");
    }
    if let Some(node_id) = standby_as {
        println!(
            "waiting to be added: run `iroh-raft member add {node_id} {}` against the cluster",
            format_node_address(&node.addr())
        );
    }
    if init {
        println!(
            "root identities (Admin under the bundled rbac policy): {}",
            config_roots(&node)
        );
        println!("join ticket (give it to `iroh-raft node --join`):");
        println!("{}", node.ticket());
    }
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let failed = tokio::select! {
        _ = tokio::signal::ctrl_c() => None,
        _ = terminate.recv() => None,
        // A dead raft core cannot serve: exit non-zero so that a supervisor restarts the node.
        error = node.failed() => Some(error),
    };
    if let Some(error) = failed {
        let _ = node.shutdown().await;
        return Err(error.into());
    }
    eprintln!("shutting down");
    node.shutdown().await?;
    Ok(())
}

/// The cluster's root identities as the node applied them, short form.
fn config_roots(node: &Node) -> String {
    node.state_machine()
        .config()
        .borrow()
        .root_identities
        .iter()
        .map(hex::encode)
        .collect::<Vec<_>>()
        .join(", ")
}
