//! `iroh-raft bench`: a closed-loop load generator against a running cluster. Each client sends
//! one request, waits for the answer, sends the next; the report gives throughput and latency
//! percentiles. The statistics are a pure function of the recorded latencies. `deploy` measures
//! plugin deploys under that load.

pub mod deploy;

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use iroh::EndpointAddr;
use iroh_raft_kv_types::{Command, Query};
use serde::Serialize;

use crate::proto::Consistency;
use crate::{Client, ClientError};

/// What to measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BenchMode {
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
pub struct BenchConfig {
    /// Concurrent closed-loop clients.
    pub clients: usize,
    /// How long to run.
    pub duration: Duration,
    /// Size of each written value.
    pub value_size: usize,
    /// Distinct keys used.
    pub keys: u64,
    /// Writes or reads.
    pub mode: BenchMode,
}

/// The result of a run; latencies in microseconds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BenchReport {
    /// Requests answered successfully.
    pub ops: u64,
    /// Requests that failed.
    pub errors: u64,
    /// Wall time of the measured phase, in seconds.
    pub seconds: f64,
    /// Successful requests per second.
    pub ops_per_sec: f64,
    /// Median latency.
    pub p50_us: f64,
    /// 90th percentile.
    pub p90_us: f64,
    /// 99th percentile.
    pub p99_us: f64,
    /// Worst latency.
    pub max_us: f64,
}

/// Summarizes recorded latencies (nearest-rank percentiles).
pub fn summarize(latencies: &mut [Duration], errors: u64, elapsed: Duration) -> BenchReport {
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
    }
}

fn key(n: u64) -> String {
    format!("bench-{n:010}")
}

/// Runs the benchmark against the node at `target`.
pub async fn run(target: EndpointAddr, config: BenchConfig) -> Result<BenchReport, ClientError> {
    let client = Arc::new(Client::connect(target).await?);
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
            // A per-worker xorshift sequence: deterministic keys, no shared state.
            let mut state = 0x9e37_79b9_7f4a_7c15u64 ^ (worker + 1);
            while Instant::now() < deadline {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let n = state % config.keys.max(1);
                let sent = Instant::now();
                let ok = match config.mode {
                    BenchMode::Write => {
                        let name = key(n);
                        let command = Command::Put {
                            key: name.as_bytes(),
                            value: &value,
                        };
                        match postcard::to_allocvec(&command) {
                            Ok(bytes) => {
                                matches!(client.write(Bytes::from(bytes)).await, Ok((_, Ok(_))))
                            }
                            Err(_) => false,
                        }
                    }
                    BenchMode::ClusterStatus => client
                        .request(crate::proto::Operation::GetClusterStatus)
                        .await
                        .is_ok(),
                    BenchMode::Health => client
                        .request(crate::proto::Operation::GetHealthStatus)
                        .await
                        .is_ok(),
                    BenchMode::Read(consistency) => {
                        let n = n % config.keys.clamp(1, 1_000);
                        let name = key(n);
                        match postcard::to_allocvec(&Query::Get {
                            key: name.as_bytes(),
                        }) {
                            Ok(bytes) => matches!(
                                client.read(Bytes::from(bytes), consistency).await,
                                Ok(Ok(_))
                            ),
                            Err(_) => false,
                        }
                    }
                };
                if ok {
                    latencies.push(sent.elapsed());
                } else {
                    errors += 1;
                }
            }
            (latencies, errors)
        }));
    }
    let mut latencies = Vec::new();
    let mut errors = 0;
    for task in tasks {
        let (mut l, e) = task
            .await
            .map_err(|e| ClientError::Unexpected(e.to_string()))?;
        latencies.append(&mut l);
        errors += e;
    }
    let elapsed = start.elapsed();
    client.close().await;
    Ok(summarize(&mut latencies, errors, elapsed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_nearest_rank() {
        let mut latencies: Vec<Duration> = (1..=100).map(Duration::from_micros).collect();
        latencies.reverse();
        let report = summarize(&mut latencies, 3, Duration::from_secs(2));
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
        let report = summarize(&mut [], 0, Duration::ZERO);
        assert_eq!(
            (report.ops, report.ops_per_sec, report.max_us),
            (0, 0.0, 0.0)
        );
    }
}
