//! `bench --mode watch`: what watchers cost the writers. The write benchmark runs four times in
//! one run against the same node: with no watcher, with `--watchers N` idle watches open (on
//! prefixes nobody writes), with one watch on the written keys that never reads (it fills its
//! queue and is ended as fallen behind), and with none again. Each phase reports its throughput
//! and percentiles and its p99 against the mean of the two watcher-free phases.

use std::sync::Arc;

use futures_util::StreamExt;
use iroh::EndpointAddr;
use iroh_raft::proto::{WatchEnd, WatchRequest};
use iroh_raft::{Client, ClientError};
use serde::Serialize;

use super::report::BenchReport;
use super::{BenchConfig, bench};

/// Watches per connection: QUIC bounds the streams one connection may have open.
const WATCHES_PER_CONNECTION: usize = 50;

/// One phase of the watch benchmark.
#[derive(Debug, Serialize)]
pub(crate) struct WatchPhase {
    /// `baseline`, `idle-watchers`, `stuck-watcher` or `baseline-again`.
    phase: &'static str,
    /// Watches open during it.
    watchers: usize,
    /// The writers' figures.
    report: BenchReport,
    /// Its p99 divided by the mean p99 of the two phases without watchers.
    p99_vs_baseline: f64,
}

/// The watch benchmark's result.
#[derive(Debug, Serialize)]
pub(crate) struct WatchBenchReport {
    /// The phases, in the order they ran.
    phases: Vec<WatchPhase>,
    /// What became of the stuck watch: `fell-behind` (its queue filled), `let-go` (it took
    /// nothing for the stall limit first) or `still-open` (the phase wrote less than it holds).
    stuck_watcher: &'static str,
}

/// Runs the four phases against `target`.
pub(super) async fn run(
    identity: iroh::SecretKey,
    target: EndpointAddr,
    config: BenchConfig,
    idle: usize,
) -> Result<WatchBenchReport, ClientError> {
    let baseline = bench(identity.clone(), target.clone(), config.clone()).await?;

    // Idle watches: open and waiting, on prefixes no write touches.
    let mut connections = Vec::new();
    let mut waiting = Vec::new();
    let watchers: Vec<usize> = (0..idle).collect();
    for group in watchers.chunks(WATCHES_PER_CONNECTION) {
        let client = Arc::new(Client::connect_with_key(identity.clone(), target.clone()).await?);
        for i in group {
            let watch = client
                .watch(WatchRequest::prefix(format!("idle-{i}/"), None))
                .await?;
            waiting.push(tokio::spawn(async move {
                let mut changes = watch.into_stream();
                while let Some(Ok(_)) = changes.next().await {}
            }));
        }
        connections.push(client);
    }
    let with_idle = bench(identity.clone(), target.clone(), config.clone()).await?;
    for task in waiting {
        task.abort();
    }
    for client in connections.drain(..) {
        client.close().await;
    }

    // One watch on every written key that never reads.
    let stuck_client = Client::connect_with_key(identity.clone(), target.clone()).await?;
    let mut stuck = stuck_client
        .watch(WatchRequest::prefix("bench-", None))
        .await?;
    let with_stuck = bench(identity.clone(), target.clone(), config.clone()).await?;
    let stuck_watcher = outcome(&mut stuck).await;
    drop(stuck);
    stuck_client.close().await;

    let again = bench(identity, target, config).await?;
    let reference = (baseline.p99_us + again.p99_us) / 2.0;
    let ratio = |report: &BenchReport| {
        if reference > 0.0 {
            report.p99_us / reference
        } else {
            0.0
        }
    };
    let phases = vec![
        ("baseline", 0, baseline),
        ("idle-watchers", idle, with_idle),
        ("stuck-watcher", 1, with_stuck),
        ("baseline-again", 0, again),
    ]
    .into_iter()
    .map(|(phase, watchers, report)| WatchPhase {
        phase,
        watchers,
        p99_vs_baseline: ratio(&report),
        report,
    })
    .collect();
    Ok(WatchBenchReport {
        phases,
        stuck_watcher,
    })
}

/// Reads what the stuck watch holds now, up to its end: what became of it.
async fn outcome(stuck: &mut iroh_raft::WatchStream) -> &'static str {
    let drained = tokio::time::timeout(std::time::Duration::from_secs(3), async {
        loop {
            match stuck.next().await {
                Ok(_) => continue,
                Err(ClientError::WatchEnded(WatchEnd::FellBehind { .. })) => return "fell-behind",
                Err(_) => return "let-go",
            }
        }
    });
    drained.await.unwrap_or("still-open")
}

/// Prints the phases as a table.
pub(super) fn print(report: &WatchBenchReport) {
    println!(
        "{:<16} {:>8} {:>10} {:>10} {:>10} {:>8}",
        "phase", "watchers", "ops/s", "p50 ms", "p99 ms", "p99 ×"
    );
    for phase in &report.phases {
        println!(
            "{:<16} {:>8} {:>10.0} {:>10.2} {:>10.2} {:>8.2}",
            phase.phase,
            phase.watchers,
            phase.report.ops_per_sec,
            phase.report.p50_us / 1000.0,
            phase.report.p99_us / 1000.0,
            phase.p99_vs_baseline
        );
    }
    match report.stuck_watcher {
        "fell-behind" => println!("the stuck watch was ended as fallen behind"),
        "let-go" => println!("the stuck watch was let go: it took nothing for 30 s"),
        _ => println!("the stuck watch was still open: the phase wrote less than it holds"),
    }
}
