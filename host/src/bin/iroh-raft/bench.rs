//! `iroh-raft bench`: a closed-loop load generator against a running cluster. Each client sends
//! one request, waits for the answer, sends the next; the report gives throughput and latency
//! percentiles. The statistics are a pure function of the recorded latencies. `deploy` measures
//! plugin deploys under that load.

mod deploy;

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::bail;
use bytes::Bytes;
use clap::Args;
use iroh::EndpointAddr;
use iroh_raft::proto::{Consistency, Operation};
use iroh_raft::{Client, ClientError};
use iroh_raft_kv_types::{Command, Query};
use serde::Serialize;

use crate::args::{Output, Target, print_json};

#[derive(Args)]
pub(crate) struct BenchArgs {
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
}

/// `iroh-raft bench`: parses the mode, runs it, prints the report.
pub(crate) async fn run(args: BenchArgs) -> anyhow::Result<()> {
    let BenchArgs {
        target,
        clients,
        duration,
        value_size,
        keys,
        mode,
        consistency,
        plugin_sizes,
        rounds,
    } = args;
    let mode = match mode.as_str() {
        "write" => BenchMode::Write,
        "read" => BenchMode::Read(consistency),
        "status" => BenchMode::ClusterStatus,
        "health" => BenchMode::Health,
        "deploy" => {
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
    let report = bench(target.secret_key()?, target.node()?, config).await?;
    if target.output == Output::Json {
        print_json(&report)?;
    } else {
        println!(
            "{} ops in {:.1} s: {:.0} ops/s, {} errors",
            report.ops, report.seconds, report.ops_per_sec, report.errors
        );
        println!(
            "latency p50 {:.0} us  p90 {:.0} us  p99 {:.0} us  max {:.0} us",
            report.p50_us, report.p90_us, report.p99_us, report.max_us
        );
        if let Some(error) = &report.first_error {
            println!("first error: {error}");
        }
    }
    // Nothing succeeded: the figures mean nothing, and a script must see it.
    if report.ops == 0 && report.errors > 0 {
        bail!(
            "every one of the {} requests failed; the first: {}",
            report.errors,
            report.first_error.as_deref().unwrap_or("unknown")
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
    /// How long to run.
    duration: Duration,
    /// Size of each written value.
    value_size: usize,
    /// Distinct keys used.
    keys: u64,
    /// Writes or reads.
    mode: BenchMode,
}

/// The result of a run; latencies in microseconds.
#[derive(Debug, Clone, PartialEq, Serialize)]
struct BenchReport {
    /// Requests answered successfully.
    ops: u64,
    /// Requests that failed.
    errors: u64,
    /// Wall time of the measured phase, in seconds.
    seconds: f64,
    /// Successful requests per second.
    ops_per_sec: f64,
    /// Median latency.
    p50_us: f64,
    /// 90th percentile.
    p90_us: f64,
    /// 99th percentile.
    p99_us: f64,
    /// Worst latency.
    max_us: f64,
    /// The first failure, in words (`None` if nothing failed).
    first_error: Option<String>,
}

/// Summarizes recorded latencies (nearest-rank percentiles).
fn summarize(
    latencies: &mut [Duration],
    errors: u64,
    first_error: Option<String>,
    elapsed: Duration,
) -> BenchReport {
    latencies.sort_unstable();
    let micros = |d: Duration| d.as_secs_f64() * 1e6;
    let rank = |p: f64| -> f64 {
        if latencies.is_empty() {
            return 0.0;
        }
        let index = ((p * latencies.len() as f64).ceil() as usize).clamp(1, latencies.len()) - 1;
        micros(latencies[index])
    };
    let seconds = elapsed.as_secs_f64();
    BenchReport {
        ops: latencies.len() as u64,
        errors,
        seconds,
        ops_per_sec: if seconds > 0.0 {
            latencies.len() as f64 / seconds
        } else {
            0.0
        },
        p50_us: rank(0.50),
        p90_us: rank(0.90),
        p99_us: rank(0.99),
        max_us: latencies.last().map_or(0.0, |d| micros(*d)),
        first_error,
    }
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
    let client = Arc::new(Client::connect_with_key(identity, target).await?);
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
    let start = Instant::now();
    let deadline = start + config.duration;
    let mut tasks = Vec::with_capacity(config.clients);
    for worker in 0..config.clients as u64 {
        let client = client.clone();
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
    client.close().await;
    Ok(summarize(&mut latencies, errors, first_error, elapsed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_nearest_rank() {
        let mut latencies: Vec<Duration> = (1..=100).map(Duration::from_micros).collect();
        latencies.reverse();
        let report = summarize(&mut latencies, 3, None, Duration::from_secs(2));
        assert_eq!(report.ops, 100);
        assert_eq!(report.errors, 3);
        assert_eq!(report.ops_per_sec, 50.0);
        assert_eq!(
            (report.p50_us, report.p90_us, report.p99_us, report.max_us),
            (50.0, 90.0, 99.0, 100.0)
        );
    }

    #[test]
    fn an_empty_run_reports_zeros() {
        let report = summarize(&mut [], 0, None, Duration::ZERO);
        assert_eq!(
            (report.ops, report.ops_per_sec, report.max_us),
            (0, 0.0, 0.0)
        );
    }
}
