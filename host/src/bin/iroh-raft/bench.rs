//! `iroh-raft bench`: a closed-loop load generator against a running cluster. Each client sends
//! one request, waits for the answer, sends the next; the report gives throughput, latency
//! percentiles and the servers' CPU per operation (every member's process CPU, read before and
//! after). The statistics are a pure function of the recorded latencies. `--clients 1,16,64`
//! sweeps. `deploy` measures plugin deploys under that load.

mod deploy;
mod report;
mod server_cpu;
mod watch;

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::bail;
use bytes::Bytes;
use clap::Args;
use iroh::EndpointAddr;
use iroh_raft::proto::{Consistency, Operation};
use iroh_raft::{Client, ClientError};
use iroh_raft_kv_types::{Command, Query};

use crate::args::{Output, Target, print_json};
use report::{BenchReport, charge_cpu, print_report, summarize};

#[derive(Args)]
pub(crate) struct BenchArgs {
    #[command(flatten)]
    target: Target,
    /// Concurrent clients; several, comma-separated (`1,16,64`), run one after another.
    #[arg(long, value_delimiter = ',', default_value = "16")]
    clients: Vec<usize>,
    /// Connections the clients share (at most one per client), as etcd's benchmark does:
    /// `--clients 1000 --connections 100`.
    #[arg(long, default_value_t = 1)]
    connections: usize,
    /// Seconds to run.
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// Bytes per written value.
    #[arg(long, default_value_t = 256)]
    value_size: usize,
    /// Distinct keys.
    #[arg(long, default_value_t = 100_000)]
    keys: u64,
    /// write, read, status (GetClusterStatus), health (GetHealthStatus), deploy (plugin
    /// deploys to active-everywhere, under write load), or watch (writes without watchers, with
    /// `--watchers` idle ones, with one stuck watcher, and without again).
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
    /// Watch mode: idle watches open during the second phase.
    #[arg(long, default_value_t = 100)]
    watchers: usize,
}

/// `iroh-raft bench`: parses the mode, runs it, prints the report.
pub(crate) async fn run(args: BenchArgs) -> anyhow::Result<()> {
    let BenchArgs {
        target,
        clients,
        connections,
        duration,
        value_size,
        keys,
        mode,
        consistency,
        plugin_sizes,
        rounds,
        watchers,
    } = args;
    let mode_name = mode.clone();
    let mode = match mode.as_str() {
        "write" | "watch" => BenchMode::Write,
        "read" => BenchMode::Read(consistency),
        "status" => BenchMode::ClusterStatus,
        "health" => BenchMode::Health,
        "deploy" => {
            let [clients] = clients[..] else {
                bail!("deploy mode takes one --clients value");
            };
            let config = deploy::DeployBenchConfig {
                clients,
                sizes: plugin_sizes,
                rounds,
                value_size,
            };
            let report = deploy::run(target.secret_key()?, target.node()?, config).await?;
            if target.output == Output::Json {
                return print_json(&report);
            }
            deploy::print(&report);
            return Ok(());
        }
        other => {
            bail!("unknown mode `{other}`: expected write, read, status, health, deploy or watch")
        }
    };
    anyhow::ensure!(
        clients.iter().all(|&c| c > 0) && connections > 0,
        "--clients and --connections must be at least 1"
    );
    let configure = |clients: usize| BenchConfig {
        clients,
        connections: connections.min(clients),
        duration: Duration::from_secs(duration),
        value_size,
        keys,
        mode,
    };
    if mode_name == "watch" {
        let [clients] = clients[..] else {
            bail!("watch mode takes one --clients value");
        };
        let config = configure(clients);
        let report = watch::run(target.secret_key()?, target.node()?, config, watchers).await?;
        if target.output == Output::Json {
            return print_json(&report);
        }
        watch::print(&report);
        return Ok(());
    }
    let mut reports = Vec::new();
    for &clients in &clients {
        let config = configure(clients);
        let report = bench(target.secret_key()?, target.node()?, config).await?;
        if target.output == Output::Text {
            print_report(&report);
        }
        reports.push(report);
    }
    if target.output == Output::Json {
        match &reports[..] {
            [one] => print_json(one)?,
            all => print_json(&all)?,
        }
    }
    // A run where nothing succeeded: the figures mean nothing, and a script must see it.
    if let Some(failed) = reports.iter().find(|r| r.ops == 0 && r.errors > 0) {
        bail!(
            "every one of the {} requests failed; the first: {}",
            failed.errors,
            failed.first_error.as_deref().unwrap_or("unknown")
        );
    }
    Ok(())
}

/// What to measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BenchMode {
    /// kv puts.
    Write,
    /// kv gets at a consistency.
    Read(Consistency),
    /// `GetClusterStatus` requests (answered by the leader).
    ClusterStatus,
    /// `GetHealthStatus` requests.
    Health,
}

/// A benchmark run.
#[derive(Debug, Clone)]
struct BenchConfig {
    /// Concurrent closed-loop clients.
    clients: usize,
    /// Connections they share, round robin (1 to `clients`).
    connections: usize,
    /// How long to run.
    duration: Duration,
    /// Size of each written value.
    value_size: usize,
    /// Distinct keys used.
    keys: u64,
    /// Writes or reads.
    mode: BenchMode,
}

fn key(n: u64) -> String {
    format!("bench-{n:010}")
}

/// Runs the benchmark against the node at `target`.
async fn bench(
    identity: iroh::SecretKey,
    target: EndpointAddr,
    config: BenchConfig,
) -> Result<BenchReport, ClientError> {
    let mut clients = Vec::with_capacity(config.connections);
    for _ in 0..config.connections {
        let connected = Client::connect_with_key(identity.clone(), target.clone()).await?;
        clients.push(Arc::new(connected));
    }
    let client = clients[0].clone();
    let value = vec![b'x'; config.value_size];
    if let BenchMode::Read(_) = config.mode {
        // Reads need something to find.
        for n in 0..config.keys.min(1_000) {
            let name = key(n);
            let command = Command::Put {
                key: name.as_bytes(),
                value: &value,
            };
            let bytes = Bytes::from(
                postcard::to_allocvec(&command)
                    .map_err(|e| ClientError::Unexpected(e.to_string()))?,
            );
            client
                .write(bytes)
                .await?
                .1
                .map_err(ClientError::Unexpected)?;
        }
    }
    let servers = server_cpu::ServerCpu::of_cluster(&client, identity).await;
    let cpu_before = match &servers {
        Ok(servers) => servers.read_us().await,
        Err(why) => Err(why.clone()),
    };
    let start = Instant::now();
    let deadline = start + config.duration;
    let mut tasks = Vec::with_capacity(config.clients);
    for worker in 0..config.clients as u64 {
        let client = clients[worker as usize % clients.len()].clone();
        let value = value.clone();
        let config = config.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut errors = 0u64;
            let mut first_error: Option<String> = None;
            // A per-worker xorshift sequence: deterministic keys, no shared state.
            let mut state = 0x9e37_79b9_7f4a_7c15u64 ^ (worker + 1);
            while Instant::now() < deadline {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let n = state % config.keys.max(1);
                let sent = Instant::now();
                let outcome: Result<(), String> = match config.mode {
                    BenchMode::Write => {
                        let name = key(n);
                        let command = Command::Put {
                            key: name.as_bytes(),
                            value: &value,
                        };
                        match postcard::to_allocvec(&command) {
                            Ok(bytes) => match client.write(Bytes::from(bytes)).await {
                                Ok((_, Ok(_))) => Ok(()),
                                Ok((index, Err(refused))) => Err(format!(
                                    "the state machine refused the put (index {index}): {refused}"
                                )),
                                Err(error) => Err(error.to_string()),
                            },
                            Err(error) => Err(error.to_string()),
                        }
                    }
                    BenchMode::ClusterStatus => client
                        .request(Operation::GetClusterStatus)
                        .await
                        .map(drop)
                        .map_err(|e| e.to_string()),
                    BenchMode::Health => client
                        .request(Operation::GetHealthStatus)
                        .await
                        .map(drop)
                        .map_err(|e| e.to_string()),
                    BenchMode::Read(consistency) => {
                        let n = n % config.keys.clamp(1, 1_000);
                        let name = key(n);
                        match postcard::to_allocvec(&Query::Get {
                            key: name.as_bytes(),
                        }) {
                            Ok(bytes) => match client.read(Bytes::from(bytes), consistency).await {
                                Ok(Ok(_)) => Ok(()),
                                Ok(Err(refused)) => {
                                    Err(format!("the state machine refused the get: {refused}"))
                                }
                                Err(error) => Err(error.to_string()),
                            },
                            Err(error) => Err(error.to_string()),
                        }
                    }
                };
                match outcome {
                    Ok(()) => latencies.push(sent.elapsed()),
                    Err(error) => {
                        errors += 1;
                        first_error.get_or_insert(error);
                    }
                }
            }
            (latencies, errors, first_error)
        }));
    }
    let mut latencies = Vec::new();
    let mut errors = 0;
    let mut first_error = None;
    for task in tasks {
        let (mut l, e, first) = task
            .await
            .map_err(|e| ClientError::Unexpected(e.to_string()))?;
        latencies.append(&mut l);
        errors += e;
        first_error = first_error.or(first);
    }
    let elapsed = start.elapsed();
    let mut report = summarize(&mut latencies, errors, first_error, elapsed);
    report.clients = config.clients;
    report.connections = clients.len();
    let spent = match (&servers, cpu_before) {
        (Ok(servers), Ok(before)) => servers
            .read_us()
            .await
            .and_then(|after| servers.spent_us(&before, &after)),
        (_, Err(why)) => Err(why),
        (Err(why), _) => Err(why.clone()),
    };
    charge_cpu(
        &mut report,
        servers.as_ref().map_or(0, |s| s.members()),
        spent,
    );
    for client in clients {
        client.close().await;
    }
    Ok(report)
}
