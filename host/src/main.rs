//! The `iroh-raft` command line: parses arguments, sets up logging and calls the library.

mod cli_manage;
mod cli_plugin;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use bytes::Bytes;
use clap::{Args, Parser, Subcommand, ValueEnum};
use iroh::EndpointAddr;
use iroh_raft::bench::deploy::DeployBenchConfig;
use iroh_raft::bench::{BenchConfig, BenchMode};
use iroh_raft::proto::{Consistency, PluginKind};
use iroh_raft::{
    Client, Node, NodeConfig, PluginEngine, Start, format_node_address, parse_node_address, sha256,
    sha256_hex,
};
use iroh_raft_kv_types::{Command as KvCommand, Query as KvQuery, QueryResponse, Response};

/// A Raft node whose replicated state machine, access policy and backup handler are WebAssembly
/// components.
#[derive(Parser)]
#[command(name = "iroh-raft", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum, Default, PartialEq, Eq)]
enum Output {
    /// Human-readable text.
    #[default]
    Text,
    /// One JSON document on stdout.
    Json,
}

#[derive(Args)]
struct Target {
    /// The node to talk to: `<endpoint-id>@<ip:port>` (printed by `iroh-raft node`) or a join
    /// ticket.
    #[arg(long, global = true, env = "IROH_RAFT_NODE", value_parser = parse_node_address)]
    node: Option<EndpointAddr>,
    /// Output format.
    #[arg(short, long, global = true, value_enum, default_value_t)]
    output: Output,
}

#[derive(Subcommand)]
enum Command {
    /// Run a node until Ctrl-C or SIGTERM.
    ///
    /// `--init` creates a one-node cluster and prints a join ticket; `--join TICKET` joins the
    /// cluster it names (added as a learner, promoted to voter once caught up); with neither, the
    /// node comes back as the member its data directory records. Bind a fixed port if the node is
    /// to be restarted: peers reach it at the address in the membership.
    Node {
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
    },
    /// Show the cluster as its leader sees it: leader, term, members with role, health and lag.
    Status(Target),
    /// Show a node's health; exits 1 if it reports problems.
    Health(Target),
    /// Show a node's figures: raft, storage, network, plugin, management.
    Metrics {
        #[command(flatten)]
        target: Target,
        /// Only these categories (repeatable): raft, storage, network, plugin, management.
        #[arg(long = "category")]
        categories: Vec<iroh_raft::proto::MetricsCategory>,
    },
    /// List, add, remove members or change their role.
    Member {
        #[command(flatten)]
        target: Target,
        #[command(subcommand)]
        command: cli_manage::MemberCli,
    },
    /// Hand leadership to another voter.
    Leader {
        #[command(flatten)]
        target: Target,
        #[command(subcommand)]
        command: cli_manage::LeaderCli,
    },
    /// Read or change the replicated cluster configuration.
    Config {
        #[command(flatten)]
        target: Target,
        #[command(subcommand)]
        command: cli_manage::ConfigCli,
    },
    /// Inspect or compact the raft log.
    Log {
        #[command(flatten)]
        target: Target,
        #[command(subcommand)]
        command: cli_manage::LogCli,
    },
    /// Take or inspect a snapshot.
    Snapshot {
        #[command(flatten)]
        target: Target,
        #[command(subcommand)]
        command: cli_manage::SnapshotCli,
    },
    /// Follow a node's cluster events until Ctrl-C (one JSON object per line with -o json).
    Events(Target),
    /// Propose a raw state-machine command (hex) and print the plugin's response (hex).
    Write {
        #[command(flatten)]
        target: Target,
        /// The command bytes, hex encoded.
        command: String,
    },
    /// Ask the state machine a raw query (hex) and print its answer (hex).
    Read {
        #[command(flatten)]
        target: Target,
        /// Read consistency: linearizable, lease or stale.
        #[arg(long, default_value = "linearizable")]
        consistency: Consistency,
        /// The query bytes, hex encoded.
        query: String,
    },
    /// Use the bundled key-value state machine.
    Kv {
        #[command(flatten)]
        target: Target,
        #[command(subcommand)]
        command: KvCli,
    },
    /// Start a three-node cluster on loopback, run a short workload, print what happened, stop.
    Demo {
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
    },
    /// Closed-loop load against a running cluster: ops/s and latency percentiles.
    Bench {
        #[command(flatten)]
        target: Target,
        /// Concurrent clients.
        #[arg(long, default_value_t = 16)]
        clients: usize,
        /// Seconds to run.
        #[arg(long, default_value_t = 10)]
        duration: u64,
        /// Bytes per written value.
        #[arg(long, default_value_t = 256)]
        value_size: usize,
        /// Distinct keys.
        #[arg(long, default_value_t = 100_000)]
        keys: u64,
        /// write, read, status (GetClusterStatus), health (GetHealthStatus), or deploy (plugin
        /// deploys to active-everywhere, under write load).
        #[arg(long, default_value = "write")]
        mode: String,
        /// Consistency of reads.
        #[arg(long, default_value = "linearizable")]
        consistency: Consistency,
        /// Deploy mode: plugin sizes in bytes, comma separated.
        #[arg(long, value_delimiter = ',', default_value = "102400,1048576")]
        plugin_sizes: Vec<usize>,
        /// Deploy mode: deploys per size.
        #[arg(long, default_value_t = 5)]
        rounds: usize,
    },
    /// Work with plugin components.
    #[command(subcommand)]
    Plugin(PluginCommand),
}

#[derive(Subcommand)]
enum KvCli {
    /// Set a key.
    Put { key: String, value: String },
    /// Print a key's value (nothing, and exit 0, if it is absent).
    Get { key: String },
    /// Delete a key.
    Delete { key: String },
    /// Set `key` to `new` only if it currently holds `expected` (`--absent`: only if missing).
    Cas {
        key: String,
        /// The value the key must hold now.
        #[arg(long, required_unless_present = "absent")]
        expected: Option<String>,
        /// Require the key to be absent instead.
        #[arg(long)]
        absent: bool,
        /// The new value.
        new: String,
    },
    /// List keys with a prefix (or all), in order.
    Scan {
        /// Only keys starting with this.
        #[arg(long, default_value = "")]
        prefix: String,
        /// At most this many (0: the maximum, 10000).
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
}

#[derive(Subcommand)]
enum PluginCommand {
    /// Check that a .wasm file is a valid plugin of the given kind, without deploying it.
    ///
    /// Exits 0 and prints the component's hash, size and imports if it is; exits 1 with the reason
    /// (not wasm, a core module instead of a component, the wrong world, a forbidden import) if not.
    Validate {
        /// The plugin kind: state-machine, policy or backup.
        #[arg(long)]
        kind: PluginKind,
        /// The component to check.
        file: PathBuf,
    },
    /// List the plugins built into this binary.
    Bundled,
    /// Deploy a plugin to the cluster through the raft log.
    ///
    /// The bytes stream to the node (a follower forwards them to the leader); the leader checks the
    /// component against the world of its kind and replicates it, and every replica activates it
    /// at the same log index, running a state machine's `migrate` in the same atomic batch. A
    /// refused deploy (invalid component, wrong world, `migrate` failed) leaves the previous plugin
    /// active and prints why. Deploying the active plugin again changes nothing.
    Deploy {
        #[command(flatten)]
        target: Target,
        /// The plugin kind: state-machine, policy or backup.
        #[arg(long)]
        kind: PluginKind,
        /// The component (.wasm) to deploy.
        file: PathBuf,
        /// A configuration file deployed with it (a policy reads it through `policy-config`).
        #[arg(long)]
        config: Option<PathBuf>,
        /// A version label; the next plugin's `migrate` receives it as `from-version`.
        #[arg(long, default_value = "")]
        version: String,
    },
    /// Show the active plugin of each kind: hash, version, activation index, rollback targets and
    /// history.
    List(Target),
    /// Reactivate the previous plugin of a kind, through the raft log.
    Rollback {
        #[command(flatten)]
        target: Target,
        /// The plugin kind: state-machine, policy or backup.
        #[arg(long)]
        kind: PluginKind,
    },
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(Cli::parse())) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

impl Target {
    fn node(&self) -> anyhow::Result<EndpointAddr> {
        self.node
            .clone()
            .context("no node given: pass --node ADDRESS (printed by `iroh-raft node`) or set IROH_RAFT_NODE")
    }
}

fn print_json(value: &impl serde::Serialize) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Node {
            data_dir,
            bind,
            init,
            join,
            standby_as,
            snapshot_every,
            keep_after_snapshot,
        } => {
            let mut config = NodeConfig::new(&data_dir, bind);
            config.snapshot_every = snapshot_every;
            config.keep_after_snapshot = keep_after_snapshot;
            run_node(config, init, join, standby_as).await
        }
        Command::Status(target) => cli_manage::status(target).await,
        Command::Health(target) => cli_manage::health(target).await,
        Command::Metrics { target, categories } => cli_manage::metrics(target, categories).await,
        Command::Member { target, command } => cli_manage::member(target, command).await,
        Command::Leader { target, command } => cli_manage::leader(target, command).await,
        Command::Config { target, command } => cli_manage::config(target, command).await,
        Command::Log { target, command } => cli_manage::log(target, command).await,
        Command::Snapshot { target, command } => cli_manage::snapshot(target, command).await,
        Command::Events(target) => cli_manage::events(target).await,
        Command::Write { target, command } => {
            let command = hex::decode(command.trim()).context("the command must be hex")?;
            let client = Client::connect(target.node()?).await?;
            let written = client.write(Bytes::from(command)).await;
            client.close().await;
            let (index, outcome) = written?;
            let response = outcome.map_err(|e| {
                anyhow::anyhow!("committed at index {index}, but the plugin refused it: {e}")
            })?;
            if target.output == Output::Json {
                return print_json(
                    &serde_json::json!({ "index": index, "response": hex::encode(&response) }),
                );
            }
            println!("{}", hex::encode(&response));
            Ok(())
        }
        Command::Read {
            target,
            consistency,
            query,
        } => {
            let query = hex::decode(query.trim()).context("the query must be hex")?;
            let client = Client::connect(target.node()?).await?;
            let answer = client.read(Bytes::from(query), consistency).await;
            client.close().await;
            let answer =
                answer?.map_err(|e| anyhow::anyhow!("the plugin refused the query: {e}"))?;
            if target.output == Output::Json {
                return print_json(&serde_json::json!({ "response": hex::encode(&answer) }));
            }
            println!("{}", hex::encode(&answer));
            Ok(())
        }
        Command::Kv { target, command } => run_kv(target, command).await,
        Command::Demo {
            writes,
            serve,
            output,
        } => {
            let bar = indicatif::ProgressBar::new(writes);
            bar.set_style(
                indicatif::ProgressStyle::with_template("{spinner} {msg} [{bar:30}] {pos}/{len}")
                    .map_err(|e| anyhow::anyhow!("{e}"))?,
            );
            let report = iroh_raft::demo::run(
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
        Command::Bench {
            target,
            clients,
            duration,
            value_size,
            keys,
            mode,
            consistency,
            plugin_sizes,
            rounds,
        } => {
            let mode = match mode.as_str() {
                "write" => BenchMode::Write,
                "read" => BenchMode::Read(consistency),
                "status" => BenchMode::ClusterStatus,
                "health" => BenchMode::Health,
                "deploy" => {
                    let config = DeployBenchConfig {
                        clients,
                        sizes: plugin_sizes,
                        rounds,
                        value_size,
                    };
                    let report = iroh_raft::bench::deploy::run(target.node()?, config).await?;
                    if target.output == Output::Json {
                        return print_json(&report);
                    }
                    for size in &report.sizes {
                        println!(
                            "{:>8} B plugin: active on all {} members p50 {:.0} ms (max {:.0} ms), \
                             leader ack p50 {:.0} ms, {} deploys",
                            size.size,
                            report.members,
                            size.all_active_p50_ms,
                            size.all_active_max_ms,
                            size.ack_p50_ms,
                            size.rounds
                        );
                    }
                    println!(
                        "writes: {} acknowledged, {} failed, {} refused by the plugin; {} overlapped a deploy",
                        report.writes,
                        report.failed_writes,
                        report.refused_writes,
                        report.writes_during_deploys
                    );
                    println!(
                        "write p50: {:.0} us outside deploys, {:.0} us during (ratio {:.2})",
                        report.write_p50_baseline_us,
                        report.write_p50_during_deploy_us,
                        report.write_p50_ratio
                    );
                    return Ok(());
                }
                other => {
                    bail!("unknown mode `{other}`: expected write, read, status, health or deploy")
                }
            };
            let config = BenchConfig {
                clients,
                duration: Duration::from_secs(duration),
                value_size,
                keys,
                mode,
            };
            let report = iroh_raft::bench::run(target.node()?, config).await?;
            if target.output == Output::Json {
                return print_json(&report);
            }
            println!(
                "{} ops in {:.1} s: {:.0} ops/s, {} errors",
                report.ops, report.seconds, report.ops_per_sec, report.errors
            );
            println!(
                "latency p50 {:.0} us  p90 {:.0} us  p99 {:.0} us  max {:.0} us",
                report.p50_us, report.p90_us, report.p99_us, report.max_us
            );
            Ok(())
        }
        Command::Plugin(PluginCommand::Validate { kind, file }) => {
            let wasm =
                std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
            let info = PluginEngine::new(None)?
                .validate(kind, &wasm)
                .with_context(|| format!("{} is not a valid {kind} plugin", file.display()))?;
            println!("{}: valid {kind} plugin", file.display());
            println!("  sha256:    {}", sha256_hex(&info.sha256));
            println!("  size:      {} bytes", info.size);
            println!(
                "  migration: {}",
                if info.has_migration {
                    "exported"
                } else {
                    "none"
                }
            );
            println!("  imports:   {}", info.imports.join(", "));
            Ok(())
        }
        Command::Plugin(PluginCommand::Deploy {
            target,
            kind,
            file,
            config,
            version,
        }) => cli_plugin::deploy(target, kind, &file, config.as_deref(), &version).await,
        Command::Plugin(PluginCommand::List(target)) => cli_plugin::list(target).await,
        Command::Plugin(PluginCommand::Rollback { target, kind }) => {
            cli_plugin::rollback(target, kind).await
        }
        Command::Plugin(PluginCommand::Bundled) => {
            for (name, kind, wasm) in iroh_raft::bundled::ALL {
                println!(
                    "{name:<10} {kind:<14} {:>8} bytes  sha256 {}",
                    wasm.len(),
                    sha256_hex(&sha256(wasm))
                );
            }
            Ok(())
        }
    }
}

async fn run_node(
    config: NodeConfig,
    init: bool,
    join: Option<String>,
    standby_as: Option<u64>,
) -> anyhow::Result<()> {
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
    if let Some(node_id) = standby_as {
        println!(
            "waiting to be added: run `iroh-raft member add {node_id} {}` against the cluster",
            format_node_address(&node.addr())
        );
    }
    if init {
        println!("join ticket (give it to `iroh-raft node --join`):");
        println!("{}", node.ticket());
    }
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
    eprintln!("shutting down");
    node.shutdown().await?;
    Ok(())
}

fn kv_bytes<T: serde::Serialize>(value: &T) -> anyhow::Result<Bytes> {
    Ok(Bytes::from(postcard::to_allocvec(value)?))
}

async fn run_kv(target: Target, command: KvCli) -> anyhow::Result<()> {
    let client = Client::connect(target.node()?).await?;
    let result = kv_command(&client, target.output == Output::Json, command).await;
    client.close().await;
    result
}

async fn kv_command(client: &Client, json: bool, command: KvCli) -> anyhow::Result<()> {
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
    match command {
        KvCli::Get { key } => {
            let answer = client
                .read(
                    kv_bytes(&KvQuery::Get {
                        key: key.as_bytes(),
                    })?,
                    Consistency::Linearizable,
                )
                .await?
                .map_err(|e| anyhow::anyhow!(e))?;
            let QueryResponse::Value(value) = postcard::from_bytes(&answer)? else {
                bail!("the state machine answered a get with something else: is it the kv plugin?");
            };
            match (json, value) {
                (true, value) => print_json(
                    &serde_json::json!({ "key": key, "value": value.as_deref().map(text) }),
                )?,
                (false, Some(value)) => println!("{}", text(&value)),
                (false, None) => {}
            }
        }
        KvCli::Scan { prefix, limit } => {
            let answer = client
                .read(
                    kv_bytes(&KvQuery::Prefix {
                        prefix: prefix.as_bytes(),
                        limit,
                    })?,
                    Consistency::Linearizable,
                )
                .await?
                .map_err(|e| anyhow::anyhow!(e))?;
            let QueryResponse::Pairs { pairs, more } = postcard::from_bytes(&answer)? else {
                bail!(
                    "the state machine answered a scan with something else: is it the kv plugin?"
                );
            };
            if json {
                let pairs: Vec<_> = pairs
                    .iter()
                    .map(|p| serde_json::json!({ "key": text(&p.key), "value": text(&p.value) }))
                    .collect();
                print_json(&serde_json::json!({ "pairs": pairs, "more": more }))?;
            } else {
                for pair in &pairs {
                    println!("{}\t{}", text(&pair.key), text(&pair.value));
                }
                if more {
                    eprintln!("(more keys follow: raise --limit)");
                }
            }
        }
        KvCli::Put { key, value } => {
            kv_write(
                client,
                json,
                KvCommand::Put {
                    key: key.as_bytes(),
                    value: value.as_bytes(),
                },
            )
            .await?
        }
        KvCli::Delete { key } => {
            kv_write(
                client,
                json,
                KvCommand::Delete {
                    key: key.as_bytes(),
                },
            )
            .await?
        }
        KvCli::Cas {
            key,
            expected,
            absent,
            new,
        } => {
            let expected = if absent {
                None
            } else {
                expected.as_deref().map(str::as_bytes)
            };
            let command = KvCommand::Cas {
                key: key.as_bytes(),
                expected,
                new: Some(new.as_bytes()),
            };
            kv_write(client, json, command).await?
        }
    }
    Ok(())
}

async fn kv_write(client: &Client, json: bool, command: KvCommand<'_>) -> anyhow::Result<()> {
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
    let (index, outcome) = client.write(kv_bytes(&command)?).await?;
    let response: Response = postcard::from_bytes(&outcome.map_err(|e| anyhow::anyhow!(e))?)?;
    if json {
        return print_json(
            &serde_json::json!({ "index": index, "response": format!("{response:?}") }),
        );
    }
    match response {
        Response::Written => println!("OK (index {index})"),
        Response::Deleted { existed } => println!(
            "{} (index {index})",
            if existed { "deleted" } else { "absent" }
        ),
        Response::Cas { swapped: true, .. } => println!("swapped (index {index})"),
        Response::Cas {
            swapped: false,
            current,
        } => {
            bail!(
                "not swapped: the key holds {}",
                current.as_deref().map_or("nothing".into(), text)
            )
        }
    }
    Ok(())
}
