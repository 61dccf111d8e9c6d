//! What a bench run reports: throughput, nearest-rank latency percentiles and the servers' CPU
//! per operation; a pure function of the recorded latencies and the CPU read around the run.

use std::time::Duration;

use serde::Serialize;

/// The result of a run; latencies in microseconds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(super) struct BenchReport {
    /// Requests answered successfully.
    pub(super) ops: u64,
    /// Requests that failed.
    pub(super) errors: u64,
    /// Wall time of the measured phase, in seconds.
    pub(super) seconds: f64,
    /// Successful requests per second.
    pub(super) ops_per_sec: f64,
    /// Median latency.
    pub(super) p50_us: f64,
    /// 90th percentile.
    pub(super) p90_us: f64,
    /// 99th percentile.
    pub(super) p99_us: f64,
    /// Worst latency.
    pub(super) max_us: f64,
    /// The first failure, in words (`None` if nothing failed).
    pub(super) first_error: Option<String>,
    /// Concurrent clients.
    pub(super) clients: usize,
    /// Connections they shared.
    pub(super) connections: usize,
    /// The CPU every member's process used during the measured phase, summed, per successful
    /// operation (`None`: not measured, or nothing succeeded).
    pub(super) server_cpu_us_per_op: Option<f64>,
    /// That CPU in all, in seconds.
    pub(super) server_cpu_seconds: Option<f64>,
    /// The members whose CPU was counted.
    pub(super) servers: usize,
    /// Why the servers' CPU was not measured (`None` when it was).
    pub(super) server_cpu_unmeasured: Option<String>,
}

/// Summarizes recorded latencies (nearest-rank percentiles).
pub(super) fn summarize(
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
        clients: 0,
        connections: 0,
        server_cpu_us_per_op: None,
        server_cpu_seconds: None,
        servers: 0,
        server_cpu_unmeasured: None,
    }
}

/// Charges `cpu_us` of the servers' CPU to the report's successful operations.
pub(super) fn charge_cpu(report: &mut BenchReport, servers: usize, cpu_us: Result<u64, String>) {
    report.servers = servers;
    match cpu_us {
        Ok(cpu_us) => {
            report.server_cpu_seconds = Some(cpu_us as f64 / 1e6);
            report.server_cpu_us_per_op =
                (report.ops > 0).then(|| cpu_us as f64 / report.ops as f64);
        }
        Err(why) => report.server_cpu_unmeasured = Some(why),
    }
}

pub(super) fn print_report(report: &BenchReport) {
    let plural =
        |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    println!(
        "{} on {}: {} ops in {:.1} s: {:.0} ops/s, {} errors",
        plural(report.clients, "client", "clients"),
        plural(report.connections, "connection", "connections"),
        report.ops,
        report.seconds,
        report.ops_per_sec,
        report.errors
    );
    println!(
        "latency p50 {:.0} us  p90 {:.0} us  p99 {:.0} us  max {:.0} us",
        report.p50_us, report.p90_us, report.p99_us, report.max_us
    );
    match (report.server_cpu_us_per_op, &report.server_cpu_unmeasured) {
        (Some(per_op), _) => println!(
            "servers' CPU {per_op:.0} us per op ({:.2} s over {} members)",
            report.server_cpu_seconds.unwrap_or_default(),
            report.servers
        ),
        (None, Some(why)) => println!("servers' CPU not measured: {why}"),
        (None, None) => println!("servers' CPU: no operation succeeded"),
    }
    if let Some(error) = &report.first_error {
        println!("first error: {error}");
    }
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
    fn the_servers_cpu_is_charged_to_the_successful_operations() {
        let mut latencies: Vec<Duration> = (1..=100).map(Duration::from_micros).collect();
        let mut report = summarize(&mut latencies, 5, None, Duration::from_secs(1));
        charge_cpu(&mut report, 3, Ok(25_000));
        assert_eq!(report.server_cpu_us_per_op, Some(250.0));
        assert_eq!(report.server_cpu_seconds, Some(0.025));
        assert_eq!((report.servers, report.server_cpu_unmeasured), (3, None));

        let mut nothing = summarize(&mut [], 4, None, Duration::from_secs(1));
        charge_cpu(&mut nothing, 3, Ok(25_000));
        assert_eq!(nothing.server_cpu_us_per_op, None, "no operation to charge");

        let mut denied = summarize(&mut latencies, 0, None, Duration::from_secs(1));
        charge_cpu(&mut denied, 0, Err("node 2's CPU could not be read".into()));
        assert_eq!(denied.server_cpu_us_per_op, None);
        assert!(
            denied
                .server_cpu_unmeasured
                .is_some_and(|why| why.contains("node 2"))
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
