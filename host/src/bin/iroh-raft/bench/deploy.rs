//! `iroh-raft bench --mode deploy`: how long a plugin deploy takes to be active on every member,
//! under a closed-loop write load, and how many writes fail meanwhile.
//!
//! Each round deploys a distinct component of the requested size (the bundled key-value plugin
//! padded with a custom section, so every round is a real activation with a new hash and a cache
//! miss, seeded from the clock) and polls every member's `plugin list` until all report it
//! active. The write load runs
//! throughout; the report gives the write latency outside deploy windows as the same-run baseline
//! for the latency inside them.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use iroh::EndpointAddr;
use iroh_raft::proto::PluginKind;
use iroh_raft::{Client, ClientError, bundled, sha256};
use iroh_raft_kv_types::Command;
use serde::Serialize;

use crate::padding::padded_component;

/// A deploy benchmark run.
#[derive(Debug, Clone)]
pub(crate) struct DeployBenchConfig {
    /// Closed-loop writers running throughout.
    pub(crate) clients: usize,
    /// Plugin sizes to deploy, in bytes.
    pub(crate) sizes: Vec<usize>,
    /// Deploys per size.
    pub(crate) rounds: usize,
    /// Bytes per written value.
    pub(crate) value_size: usize,
}

/// The figures for one plugin size; times in milliseconds.
#[derive(Debug, Clone, PartialEq, Serialize)]
struct DeploySizeReport {
    /// The plugin size in bytes.
    size: usize,
    /// Deploys measured.
    rounds: usize,
    /// Median time from sending the deploy to its acknowledgement (active on the leader).
    ack_p50_ms: f64,
    /// Median time from sending the deploy to active on every member.
    all_active_p50_ms: f64,
    /// Worst time to active on every member.
    all_active_max_ms: f64,
}

/// The result of a run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct DeployBenchReport {
    /// The padding seed of the first deploy (each deploy adds one): a run's components are new
    /// to every compile cache.
    first_seed: u64,
    /// Members polled.
    members: usize,
    /// Per plugin size.
    sizes: Vec<DeploySizeReport>,
    /// Writes acknowledged during the whole run.
    writes: u64,
    /// Writes that failed during the whole run (deploy windows included): no reply, or an error
    /// reply from the node.
    failed_writes: u64,
    /// Writes committed but refused by the plugin (a kv put never is, unless the state machine
    /// running is not kv-compatible).
    refused_writes: u64,
    /// Writes that completed inside a deploy window.
    writes_during_deploys: u64,
    /// Median write latency outside deploy windows (the same-run baseline), in microseconds.
    write_p50_baseline_us: f64,
    /// Median write latency of writes that overlapped a deploy window, in microseconds.
    write_p50_during_deploy_us: f64,
    /// `write_p50_during_deploy_us / write_p50_baseline_us`.
    write_p50_ratio: f64,
}

/// Polls `member` until it reports `sha` as its active state machine.
async fn wait_active(member: &Client, sha: &[u8; 32]) -> Result<(), ClientError> {
    loop {
        let (registry, _) = member.plugins().await?;
        if registry
            .active(PluginKind::StateMachine)
            .is_some_and(|active| active.sha256 == *sha)
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values
        .get(values.len().saturating_sub(1) / 2)
        .copied()
        .unwrap_or(0.0)
}

/// Runs the deploy benchmark against the cluster of the node at `target`. Leaves the cluster
/// running the bundled key-value plugin again (deployed last).
pub(crate) async fn run(
    key: iroh::SecretKey,
    target: EndpointAddr,
    config: DeployBenchConfig,
) -> Result<DeployBenchReport, ClientError> {
    let client = Arc::new(Client::connect_with_key(key.clone(), target).await?);
    let status = client.status().await?;
    let mut members = Vec::new();
    for (_, member) in status.voters.iter().chain(&status.learners) {
        let addr = member
            .endpoint_addr()
            .map_err(|e| ClientError::Connect(e.to_string()))?;
        members.push(Client::connect_with_key(key.clone(), addr).await?);
    }

    // The writers speak the kv protocol: make sure kv is what runs.
    client
        .deploy_plugin(
            PluginKind::StateMachine,
            Bytes::from_static(bundled::KV),
            "",
            Bytes::new(),
            &mut |_, _| {},
        )
        .await?;

    let stop = Arc::new(AtomicBool::new(false));
    let value = vec![b'x'; config.value_size];
    let mut writers = Vec::new();
    for worker in 0..config.clients {
        let (client, stop, value) = (client.clone(), stop.clone(), value.clone());
        writers.push(tokio::spawn(async move {
            // (sent, latency) of each acknowledged write; failures, and writes the plugin refused.
            let mut done: Vec<(Instant, Duration)> = Vec::new();
            let (mut failed, mut refused) = (0u64, 0u64);
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let key = format!("deploy-bench-{worker}-{}", n % 1000);
                n += 1;
                let command = Command::Put {
                    key: key.as_bytes(),
                    value: &value,
                };
                let Ok(bytes) = postcard::to_allocvec(&command) else {
                    failed += 1;
                    continue;
                };
                let sent = Instant::now();
                match client.write(Bytes::from(bytes)).await {
                    Ok((_, Ok(_))) => done.push((sent, sent.elapsed())),
                    Ok((_, Err(_))) => refused += 1,
                    Err(_) => failed += 1,
                }
            }
            (done, failed, refused)
        }));
    }

    // Let the load settle before the first deploy.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut windows: Vec<(Instant, Instant)> = Vec::new();
    let mut sizes = Vec::new();
    // Distinct from every earlier run's, so no member finds a component in its compile cache.
    let first_seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let mut seed = first_seed;
    for &size in &config.sizes {
        let (mut acks, mut actives) = (Vec::new(), Vec::new());
        for _ in 0..config.rounds {
            seed += 1;
            let wasm = Bytes::from(padded_component(bundled::KV, size, seed));
            let sha = sha256(&wasm);
            let started = Instant::now();
            client
                .deploy_plugin(
                    PluginKind::StateMachine,
                    wasm,
                    &format!("bench-{seed}"),
                    Bytes::new(),
                    &mut |_, _| {},
                )
                .await?;
            acks.push(started.elapsed().as_secs_f64() * 1e3);
            for member in &members {
                wait_active(member, &sha).await?;
            }
            let ended = Instant::now();
            actives.push((ended - started).as_secs_f64() * 1e3);
            windows.push((started, ended));
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        let all_active_max_ms = actives.iter().copied().fold(0.0, f64::max);
        sizes.push(DeploySizeReport {
            size,
            rounds: config.rounds,
            ack_p50_ms: median(&mut acks),
            all_active_p50_ms: median(&mut actives),
            all_active_max_ms,
        });
    }
    // Back to the bundled plugin, the state the cluster started in.
    client
        .deploy_plugin(
            PluginKind::StateMachine,
            Bytes::from_static(bundled::KV),
            "",
            Bytes::new(),
            &mut |_, _| {},
        )
        .await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);

    let (mut baseline, mut during) = (Vec::new(), Vec::new());
    let (mut failed_writes, mut refused_writes) = (0, 0);
    for writer in writers {
        let (done, failed, refused) = writer
            .await
            .map_err(|e| ClientError::Unexpected(e.to_string()))?;
        failed_writes += failed;
        refused_writes += refused;
        for (sent, latency) in done {
            let finished = sent + latency;
            let overlaps = windows
                .iter()
                .any(|(start, end)| sent <= *end && finished >= *start);
            let micros = latency.as_secs_f64() * 1e6;
            if overlaps {
                during.push(micros);
            } else {
                baseline.push(micros);
            }
        }
    }
    for member in &members {
        member.close().await;
    }
    client.close().await;
    let writes = (baseline.len() + during.len()) as u64;
    let writes_during_deploys = during.len() as u64;
    let write_p50_baseline_us = median(&mut baseline);
    let write_p50_during_deploy_us = median(&mut during);
    Ok(DeployBenchReport {
        first_seed,
        members: members.len(),
        sizes,
        writes,
        failed_writes,
        refused_writes,
        writes_during_deploys,
        write_p50_baseline_us,
        write_p50_during_deploy_us,
        write_p50_ratio: if write_p50_baseline_us > 0.0 {
            write_p50_during_deploy_us / write_p50_baseline_us
        } else {
            0.0
        },
    })
}

/// Prints a report as text.
pub(crate) fn print(report: &DeployBenchReport) {
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
        report.writes, report.failed_writes, report.refused_writes, report.writes_during_deploys
    );
    println!(
        "write p50: {:.0} us outside deploys, {:.0} us during (ratio {:.2})",
        report.write_p50_baseline_us, report.write_p50_during_deploy_us, report.write_p50_ratio
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use iroh_raft::PluginEngine;

    #[test]
    fn padding_makes_a_valid_component_of_the_exact_size_and_a_new_hash() {
        let engine = PluginEngine::new(None).unwrap();
        for size in [0, 100_000, 300_000] {
            let a = padded_component(bundled::KV, size, 1);
            let b = padded_component(bundled::KV, size, 2);
            assert_eq!(a.len(), size.max(bundled::KV.len() + 1 + 5 + 1 + 23 + 8));
            assert_ne!(sha256(&a), sha256(&b));
            engine
                .load_state_machine("kv", &a)
                .expect("a padded component is still the kv plugin");
        }
    }

    #[test]
    fn the_median_of_nothing_is_zero() {
        assert_eq!(median(&mut []), 0.0);
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
    }
}
