//! `iroh-raft demo`: a three-node cluster on loopback with the bundled kv plugin, formed through a
//! join ticket, a short write and read workload, then a clean stop (or, with `--serve`, serving
//! until Ctrl-C). Data lives in a temporary directory that is removed afterwards.

use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::Args;
use iroh_raft::proto::Consistency;
use iroh_raft::{Client, ClientError, Node, NodeConfig, NodeError, Start};
use iroh_raft_kv_types::{Command, Query, QueryResponse};

use crate::args::{Output, print_json};

#[derive(Args)]
pub(crate) struct DemoArgs {
    /// How many writes (and reads) to run.
    #[arg(long, default_value_t = 300)]
    writes: u64,
    /// Keep the cluster running after the workload, printing its addresses, until Ctrl-C
    /// (for the examples and the CLI tour).
    #[arg(long)]
    serve: bool,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t)]
    output: Output,
    /// Your identity: the demo cluster makes it a root identity and `Admin` under the bundled
    /// rbac policy, so the CLI (which speaks as the same key) may do everything; anyone else's
    /// key is refused. Default: your key in `~/.config/iroh-raft/key`.
    #[arg(long, env = "IROH_RAFT_KEY", value_name = "FILE")]
    key: Option<std::path::PathBuf>,
}

/// `iroh-raft demo`: runs the demo behind a progress bar and prints its report.
pub(crate) async fn run(args: DemoArgs) -> anyhow::Result<()> {
    let DemoArgs {
        writes,
        serve,
        output,
        key,
    } = args;
    let key = match (iroh_raft::load_user_key(key.as_deref()), serve) {
        (Ok(key), _) => key,
        // The short demo only talks to itself: a throw-away identity does.
        (Err(error), false) => {
            eprintln!("note: using a throw-away identity for the demo ({error})");
            iroh::SecretKey::generate()
        }
        (Err(error), true) => return Err(error.into()),
    };
    let bar = indicatif::ProgressBar::new(writes);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{spinner} {msg} [{bar:30}] {pos}/{len}")
            .map_err(|e| anyhow::anyhow!("{e}"))?,
    );
    let report = demo(
        key,
        writes,
        |phase, done, total| {
            bar.set_message(phase.to_string());
            bar.set_length(total);
            bar.set_position(done);
        },
        |report| {
            if serve {
                bar.finish_and_clear();
                println!("The demo cluster is serving; Ctrl-C stops it.");
                for (n, address) in report.addresses.iter().enumerate() {
                    println!("  node {}: {address}", n + 1);
                }
                println!("  ticket: {}", report.ticket);
                println!(
                    "Try: IROH_RAFT_NODE={} iroh-raft status",
                    report.addresses[0]
                );
                println!(
                    "Your key ({}) is Admin here; any other key is refused.",
                    report.admin
                );
            }
        },
        async {
            if serve {
                let _ = tokio::signal::ctrl_c().await;
            }
        },
    )
    .await?;
    bar.finish_and_clear();
    if output == Output::Json {
        return print_json(&report);
    }
    println!("A three-node iroh-raft cluster on loopback, formed with a join ticket:");
    for (id, member) in &report.members {
        let leader = if Some(*id) == report.leader {
            "  (leader)"
        } else {
            ""
        };
        println!("  node {id}  {member}{leader}");
    }
    println!(
        "{} writes through all three nodes: {:.0} writes/s (one client per node, sequential)",
        report.writes, report.writes_per_sec
    );
    println!(
        "{} linearizable reads from another node: {:.0} reads/s",
        report.reads, report.reads_per_sec
    );
    println!("All nodes stopped cleanly.");
    Ok(())
}

/// What the demo saw.
#[derive(Debug, Clone, serde::Serialize)]
struct DemoReport {
    /// (node id, endpoint address) of every voter.
    members: Vec<(u64, String)>,
    /// The leader's id.
    leader: Option<u64>,
    /// Writes done, spread over all three nodes.
    writes: u64,
    /// Write throughput, one client per node, sequential.
    writes_per_sec: f64,
    /// Linearizable reads done.
    reads: u64,
    /// Read throughput.
    reads_per_sec: f64,
    /// Every node's address for `--node` (`<endpoint-id>@<ip:port>`), in node order.
    addresses: Vec<String>,
    /// A ticket naming the cluster (to join it, or to connect a client).
    ticket: String,
    /// The endpoint id the demo made `Admin` (yours).
    admin: String,
}

/// Why the demo failed.
#[derive(Debug, thiserror::Error)]
enum DemoError {
    /// A node did not start.
    #[error(transparent)]
    Node(#[from] NodeError),
    /// A request failed.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// Something else, described.
    #[error("{0}")]
    Other(String),
}

fn encode<T: serde::Serialize>(value: &T) -> Result<Bytes, DemoError> {
    postcard::to_allocvec(value)
        .map(Bytes::from)
        .map_err(|e| DemoError::Other(e.to_string()))
}

/// Runs the demo: `writes` writes and as many reads; `progress(phase, done, total)` reports.
async fn demo(
    key: iroh::SecretKey,
    writes: u64,
    mut progress: impl FnMut(&str, u64, u64),
    announce: impl FnOnce(&DemoReport),
    hold: impl std::future::Future<Output = ()>,
) -> Result<DemoReport, DemoError> {
    let root = tempfile::tempdir()
        .map_err(|e| DemoError::Other(format!("cannot create a temp dir: {e}")))?;
    let config = |n: usize| {
        let mut config = NodeConfig::new(
            root.path().join(format!("node{n}")),
            ([127, 0, 0, 1], 0).into(),
        );
        config.root_identities = vec![key.public()];
        config
    };
    progress("starting node 1 (--init)", 0, 3);
    let first = Node::start(config(1), Start::Init).await?;
    let ticket = first.ticket();
    let mut nodes = vec![first];
    for n in 2..=3 {
        progress(&format!("starting node {n} (--join)"), n as u64 - 1, 3);
        nodes.push(Node::start(config(n), Start::Join(ticket.clone())).await?);
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while !nodes.iter().all(|n| n.status().voters.len() == 3) {
        if Instant::now() > deadline {
            return Err(DemoError::Other(
                "the cluster did not form within 60 s".into(),
            ));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    progress("cluster formed", 3, 3);

    let mut clients = Vec::new();
    for node in &nodes {
        clients.push(Client::connect_with_key(key.clone(), node.addr()).await?);
    }
    let value = [b'v'; 64];
    let started = Instant::now();
    for n in 0..writes {
        let key = format!("demo/{n:06}");
        let client = &clients[n as usize % clients.len()];
        client
            .write(encode(&Command::Put {
                key: key.as_bytes(),
                value: &value,
            })?)
            .await?
            .1
            .map_err(DemoError::Other)?;
        progress("writing through all three nodes", n + 1, writes);
    }
    let writes_per_sec = writes as f64 / started.elapsed().as_secs_f64();
    let started = Instant::now();
    for n in 0..writes {
        let key = format!("demo/{n:06}");
        let client = &clients[(n as usize + 1) % clients.len()];
        let answer = client
            .read(
                encode(&Query::Get {
                    key: key.as_bytes(),
                })?,
                Consistency::Linearizable,
            )
            .await?
            .map_err(DemoError::Other)?;
        match postcard::from_bytes::<QueryResponse>(&answer) {
            Ok(QueryResponse::Value(Some(found))) if found == value => {}
            other => {
                return Err(DemoError::Other(format!(
                    "read back {key}: unexpected {other:?}"
                )));
            }
        }
        progress("reading back linearizably from another node", n + 1, writes);
    }
    let reads_per_sec = writes as f64 / started.elapsed().as_secs_f64();

    let status = nodes[0].status();
    let report = DemoReport {
        members: status
            .voters
            .iter()
            .map(|(id, member)| (*id, member.to_string()))
            .collect(),
        leader: status.leader,
        writes,
        writes_per_sec,
        reads: writes,
        reads_per_sec,
        addresses: nodes
            .iter()
            .map(|node| iroh_raft::format_node_address(&node.addr()))
            .collect(),
        ticket: ticket.to_string(),
        admin: key.public().to_string(),
    };
    for client in clients {
        client.close().await;
    }
    // Serving: the cluster stays up for other programs until `hold` resolves.
    announce(&report);
    hold.await;
    for node in nodes {
        node.shutdown().await?;
    }
    Ok(report)
}
