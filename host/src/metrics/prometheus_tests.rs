use super::*;
use crate::proto::LatencyHistogram;
use crate::proto::{
    ActivePlugin, FollowerFigures, KeyspaceFigures, ManagementFigures, NetworkFigures,
    PeerRpcFigures, PluginFigures, PluginKind, ProcessFigures, ProtocolFigures, RaftFigures,
    StorageFigures,
};

fn histogram(counts: &[u64]) -> LatencyHistogram {
    let mut full = vec![0; crate::proto::LATENCY_BOUNDS_US.len() + 1];
    full[..counts.len()].copy_from_slice(counts);
    LatencyHistogram {
        bounds_us: crate::proto::LATENCY_BOUNDS_US.to_vec(),
        count: counts.iter().sum(),
        counts: full,
        sum_us: 1_500,
    }
}

fn snapshot() -> MetricsSnapshot {
    MetricsSnapshot {
        node_id: 7,
        raft: Some(RaftFigures {
            term: 3,
            state: RaftRole::Leader,
            leader: Some(7),
            last_log: Some(40),
            committed: Some(40),
            applied: Some(39),
            snapshot: None,
            purged: None,
            millis_since_quorum_ack: Some(2),
            max_replication_lag: Some(5),
            followers: vec![FollowerFigures {
                node_id: 2,
                matched: Some(35),
                lag: Some(5),
            }],
            elections: 1,
            leader_changes: 1,
            proposal_latency: histogram(&[1, 2]),
            proposals_failed: 0,
        }),
        storage: Some(StorageFigures {
            database_bytes: 1 << 20,
            log_bytes: 4096,
            keyspaces: vec![KeyspaceFigures {
                name: "raft.log".into(),
                bytes: 4096,
            }],
            snapshot_bytes: 0,
            snapshot_age_secs: None,
            fsync_latency: histogram(&[0, 0, 0, 4]),
            appends_synced: 9,
        }),
        network: Some(NetworkFigures {
            connections_opened: 3,
            connections_closed: 0,
            bytes_sent: 1000,
            bytes_received: 2000,
            protocols: vec![ProtocolFigures {
                alpn: "iroh-raft/0".into(),
                connections_opened: 2,
                connections_open: 2,
                bytes_sent: 900,
                bytes_received: 800,
            }],
            peers: vec![PeerRpcFigures {
                node_id: 2,
                latency: histogram(&[3]),
                failures: 1,
            }],
        }),
        plugin: Some(PluginFigures {
            state_machine: "kv".into(),
            sha256: [0xab; 32],
            fuel_consumed: 100,
            instances_created: 2,
            apply_latency: histogram(&[5]),
            entries_applied: 39,
            traps: vec![("out_of_fuel".into(), 1)],
            active: vec![ActivePlugin {
                kind: PluginKind::StateMachine,
                sha256: [0xab; 32],
                version: "2".into(),
                index: 10,
            }],
        }),
        management: Some(ManagementFigures {
            requests: 4,
            errors: 1,
            forwarded: 0,
            subscribers: 0,
            requests_by_operation: vec![("data.write".into(), 4)],
            denied: vec![("data.write".into(), 1)],
        }),
        process: Some(ProcessFigures {
            cpu_user_us: 1_500_000,
            cpu_system_us: 250_000,
            max_resident_bytes: 52_428_800,
        }),
    }
}

/// The sample line of `series` (name and label set as written), if any.
fn sample<'a>(text: &'a str, name: &str, labels: &[&str]) -> Option<&'a str> {
    text.lines().find(|line| {
        line.starts_with(&format!("{name}{{"))
            && labels.iter().all(|l| line.contains(l))
            && line.contains("node=\"7\"")
    })
}

#[test]
fn names_follow_prometheus_conventions() {
    let text = render(&snapshot());
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        assert!(line.starts_with("iroh_raft_"), "{line}");
        assert!(
            line.contains("node=\"7\""),
            "every series names the node: {line}"
        );
    }
    for line in text
        .lines()
        .filter(|l| l.starts_with("# TYPE") && l.ends_with(" counter"))
    {
        assert!(
            line.split(' ').nth(2).unwrap().ends_with("_total"),
            "{line}"
        );
    }
    assert!(
        sample(&text, "iroh_raft_raft_term", &[])
            .unwrap()
            .ends_with(" 3")
    );
    assert!(
        sample(&text, "iroh_raft_raft_state", &["state=\"leader\""])
            .unwrap()
            .ends_with(" 1")
    );
    assert!(
        sample(
            &text,
            "iroh_raft_raft_follower_lag_entries",
            &["peer=\"2\""]
        )
        .unwrap()
        .ends_with(" 5")
    );
    assert!(
        sample(
            &text,
            "iroh_raft_network_sent_bytes_total",
            &["alpn=\"iroh-raft/0\""]
        )
        .unwrap()
        .ends_with(" 900")
    );
    assert!(
        sample(
            &text,
            "iroh_raft_plugin_traps_total",
            &["kind=\"out_of_fuel\""]
        )
        .unwrap()
        .ends_with(" 1")
    );
    assert!(
        sample(
            &text,
            "iroh_raft_management_denied_total",
            &["operation=\"data.write\""]
        )
        .unwrap()
        .ends_with(" 1")
    );
    assert!(
        sample(&text, "iroh_raft_storage_log_size_bytes", &[])
            .unwrap()
            .ends_with(" 4096")
    );
    // User and system CPU together, in seconds.
    assert!(
        sample(&text, "iroh_raft_process_cpu_seconds_total", &[])
            .unwrap()
            .ends_with(" 1.75")
    );
    assert!(
        sample(&text, "iroh_raft_process_max_resident_memory_bytes", &[])
            .unwrap()
            .ends_with(" 52428800")
    );
}

#[test]
fn histograms_have_cumulative_buckets_in_seconds() {
    let text = render(&snapshot());
    assert!(text.contains("# TYPE iroh_raft_storage_fsync_duration_seconds histogram"));
    let bucket = |le: &str| {
        sample(
            &text,
            "iroh_raft_storage_fsync_duration_seconds_bucket",
            &[&format!("le=\"{le}\"")],
        )
        .unwrap_or_else(|| panic!("no bucket le={le} in\n{text}"))
    };
    // Four fsyncs of 250–500 µs: none at or below 250 µs, all four from 500 µs up.
    assert!(bucket("0.00025").ends_with(" 0"));
    assert!(bucket("0.0005").ends_with(" 4"));
    assert!(bucket("+Inf").ends_with(" 4"));
    assert!(
        sample(&text, "iroh_raft_storage_fsync_duration_seconds_count", &[])
            .unwrap()
            .ends_with(" 4")
    );
    assert!(
        sample(&text, "iroh_raft_storage_fsync_duration_seconds_sum", &[])
            .unwrap()
            .ends_with(" 0.0015")
    );
    assert!(
        sample(
            &text,
            "iroh_raft_raft_rpc_duration_seconds_count",
            &["peer=\"2\""]
        )
        .unwrap()
        .ends_with(" 3")
    );
}

#[test]
fn buckets_end_at_infinity() {
    let buckets = seconds_buckets(&histogram(&[1]));
    assert_eq!(buckets[0], (0.00005, 1));
    assert_eq!(buckets.last().unwrap().0, f64::INFINITY);
    assert_eq!(buckets.len(), crate::proto::LATENCY_BOUNDS_US.len() + 1);
}
