//! A [`MetricsSnapshot`] as Prometheus text exposition (format 0.0.4), encoded by the
//! `prometheus-client` crate: the snapshot is a [`Collector`] whose figures become const
//! counters, gauges and histograms. Every series is named `iroh_raft_…` in base units (seconds,
//! bytes), counters end in `_total`, and every series carries the node's id as `node`.

use std::borrow::Cow;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::{Registry, Unit};

use crate::proto::{MetricsSnapshot, RaftRole};

mod families;

#[cfg(test)]
use families::seconds_buckets;
use families::{Families, Fmt, label};

/// The `Content-Type` of what [`render`] returns.
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// `snapshot` in the Prometheus text format.
pub fn render(snapshot: &MetricsSnapshot) -> String {
    let node = (
        Cow::Borrowed("node"),
        Cow::Owned(snapshot.node_id.to_string()),
    );
    let mut registry = Registry::with_prefix_and_labels("iroh_raft", std::iter::once(node));
    registry.register_collector(Box::new(SnapshotCollector(snapshot.clone())));
    let mut text = String::new();
    // Writing to a String cannot fail; an encoder error would be a bug in a name or label here.
    if let Err(error) = prometheus_client::encoding::prometheus_text::encode(&mut text, &registry) {
        tracing::error!("encoding the Prometheus exposition failed: {error}");
    }
    text
}

#[derive(Debug)]
struct SnapshotCollector(MetricsSnapshot);

impl Collector for SnapshotCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Fmt {
        let mut f = Families {
            encoder: &mut encoder,
        };
        let snapshot = &self.0;
        if let Some(raft) = &snapshot.raft {
            f.gauge(
                "raft_term",
                "The current raft term.",
                None,
                raft.term as i64,
            )?;
            let roles = [
                RaftRole::Leader,
                RaftRole::Follower,
                RaftRole::Candidate,
                RaftRole::Learner,
                RaftRole::Shutdown,
            ];
            let rows: Vec<_> = roles
                .iter()
                .map(|role| {
                    (
                        label("state", role.as_str()),
                        u64::from(*role == raft.state),
                    )
                })
                .collect();
            f.labelled(
                MetricType::Gauge,
                "raft_state",
                "1 for the raft state this node is in, 0 for the others.",
                None,
                &rows,
            )?;
            f.gauge(
                "raft_leader",
                "The node id of the leader this node knows of (-1: none).",
                None,
                raft.leader.map_or(-1, |id| id as i64),
            )?;
            for (name, help, value) in [
                (
                    "raft_last_log_index",
                    "The last index in this node's log.",
                    raft.last_log,
                ),
                (
                    "raft_committed_index",
                    "The committed index.",
                    raft.committed,
                ),
                (
                    "raft_applied_index",
                    "The last applied index.",
                    raft.applied,
                ),
                (
                    "raft_snapshot_index",
                    "The last index the snapshot covers.",
                    raft.snapshot,
                ),
                (
                    "raft_purged_index",
                    "The last index purged from the log.",
                    raft.purged,
                ),
            ] {
                f.gauge(name, help, None, value.map_or(0, |v| v as i64))?;
            }
            let matched: Vec<_> = raft
                .followers
                .iter()
                .filter_map(|p| Some((label("peer", p.node_id.to_string()), p.matched?)))
                .collect();
            f.labelled(
                MetricType::Gauge,
                "raft_follower_matched_index",
                "On the leader: the last index each follower is known to hold.",
                None,
                &matched,
            )?;
            let lag: Vec<_> = raft
                .followers
                .iter()
                .filter_map(|p| Some((label("peer", p.node_id.to_string()), p.lag?)))
                .collect();
            f.labelled(
                MetricType::Gauge,
                "raft_follower_lag_entries",
                "On the leader: entries each follower is behind the leader's log.",
                None,
                &lag,
            )?;
            f.counter(
                "raft_elections",
                "Times this node saw the raft term rise.",
                None,
                raft.elections,
            )?;
            f.counter(
                "raft_leader_changes",
                "Times the leader this node knows of changed.",
                None,
                raft.leader_changes,
            )?;
            f.counter(
                "raft_proposals_failed",
                "Client writes this node proposed as leader that failed.",
                None,
                raft.proposals_failed,
            )?;
            f.histogram(
                "raft_proposal_duration",
                "Client writes proposed on this node as leader: time from proposal to applied.",
                &raft.proposal_latency,
            )?;
        }
        if let Some(storage) = &snapshot.storage {
            f.gauge(
                "storage_database_size",
                "Bytes the node's database directory takes on disk.",
                Some(Unit::Bytes),
                storage.database_bytes as i64,
            )?;
            f.gauge(
                "storage_log_size",
                "Bytes the raft log keyspace takes on disk.",
                Some(Unit::Bytes),
                storage.log_bytes as i64,
            )?;
            let rows: Vec<_> = storage
                .keyspaces
                .iter()
                .map(|k| (label("keyspace", k.name.as_str()), k.bytes))
                .collect();
            f.labelled(
                MetricType::Gauge,
                "storage_keyspace_size",
                "Bytes each fjall keyspace's segments take on disk.",
                Some(Unit::Bytes),
                &rows,
            )?;
            f.gauge(
                "storage_snapshot_size",
                "Bytes the current snapshot takes.",
                Some(Unit::Bytes),
                storage.snapshot_bytes as i64,
            )?;
            if let Some(age) = storage.snapshot_age_secs {
                f.gauge(
                    "storage_snapshot_age",
                    "Seconds since the current snapshot was written.",
                    Some(Unit::Seconds),
                    age as i64,
                )?;
            }
            f.counter(
                "storage_appends_synced",
                "Raft log appends made durable by the group-commit fsyncs.",
                None,
                storage.appends_synced,
            )?;
            f.histogram(
                "storage_fsync_duration",
                "Raft log fsyncs (one per group of appends).",
                &storage.fsync_latency,
            )?;
        }
        if let Some(network) = &snapshot.network {
            let per = |value: fn(&crate::proto::ProtocolFigures) -> u64| -> Vec<_> {
                network
                    .protocols
                    .iter()
                    .map(|p| (label("alpn", p.alpn.as_str()), value(p)))
                    .collect()
            };
            f.labelled(
                MetricType::Counter,
                "network_connections_opened",
                "Connections accepted or dialled, by protocol.",
                None,
                &per(|p| p.connections_opened),
            )?;
            f.labelled(
                MetricType::Gauge,
                "network_connections_open",
                "Connections open now, by protocol.",
                None,
                &per(|p| p.connections_open),
            )?;
            f.labelled(
                MetricType::Counter,
                "network_sent",
                "UDP payload bytes sent, by protocol.",
                Some(Unit::Bytes),
                &per(|p| p.bytes_sent),
            )?;
            f.labelled(
                MetricType::Counter,
                "network_received",
                "UDP payload bytes received, by protocol.",
                Some(Unit::Bytes),
                &per(|p| p.bytes_received),
            )?;
            f.counter(
                "endpoint_sent",
                "Bytes the endpoint sent over IP, all protocols.",
                Some(Unit::Bytes),
                network.bytes_sent,
            )?;
            f.counter(
                "endpoint_received",
                "Bytes the endpoint received over IP, all protocols.",
                Some(Unit::Bytes),
                network.bytes_received,
            )?;
            let failures: Vec<_> = network
                .peers
                .iter()
                .map(|p| (label("peer", p.node_id.to_string()), p.failures))
                .collect();
            f.labelled(
                MetricType::Counter,
                "raft_rpc_failures",
                "Raft RPCs to each peer that failed or timed out.",
                None,
                &failures,
            )?;
            let rows: Vec<_> = network
                .peers
                .iter()
                .map(|p| (label("peer", p.node_id.to_string()), &p.latency))
                .collect();
            f.histograms(
                "raft_rpc_duration",
                "Raft RPC round trips per peer (unary RPCs; each pipelined append-entries batch).",
                &rows,
            )?;
        }
        if let Some(plugin) = &snapshot.plugin {
            let rows: Vec<_> = plugin
                .active
                .iter()
                .map(|p| {
                    let mut labels = label("kind", p.kind.as_str());
                    labels.push(("sha256", hex::encode(&p.sha256[..8]).into()));
                    labels.push(("version", p.version.as_str().into()));
                    (labels, 1)
                })
                .collect();
            f.labelled(
                MetricType::Gauge,
                "plugin_active",
                "1 for the plugin active for each kind (sha256 prefix, version).",
                None,
                &rows,
            )?;
            f.counter(
                "plugin_fuel_consumed",
                "Fuel the state machine's apply calls burned.",
                None,
                plugin.fuel_consumed,
            )?;
            f.counter(
                "plugin_instances_created",
                "State machine instances created (one, plus one per trap or budget change).",
                None,
                plugin.instances_created,
            )?;
            f.counter(
                "plugin_entries_applied",
                "Entries the state machine applied.",
                None,
                plugin.entries_applied,
            )?;
            let traps: Vec<_> = plugin
                .traps
                .iter()
                .map(|(kind, count)| (label("kind", kind.as_str()), *count))
                .collect();
            f.labelled(
                MetricType::Counter,
                "plugin_traps",
                "Entries that trapped, by kind.",
                None,
                &traps,
            )?;
            f.histogram(
                "plugin_apply_duration",
                "State machine apply calls (one per batch of committed entries).",
                &plugin.apply_latency,
            )?;
        }
        if let Some(management) = &snapshot.management {
            let by_op = |rows: &[(String, u64)]| -> Vec<_> {
                rows.iter()
                    .map(|(op, count)| (label("operation", op.clone()), *count))
                    .collect()
            };
            f.labelled(
                MetricType::Counter,
                "management_requests",
                "Requests by operation (management and metrics protocols).",
                None,
                &by_op(&management.requests_by_operation),
            )?;
            f.labelled(
                MetricType::Counter,
                "management_denied",
                "Requests the access policy refused, by operation.",
                None,
                &by_op(&management.denied),
            )?;
            f.counter(
                "management_errors",
                "Management requests answered with an error.",
                None,
                management.errors,
            )?;
            f.counter(
                "management_forwarded",
                "Management requests this node forwarded to the leader.",
                None,
                management.forwarded,
            )?;
            f.gauge(
                "management_subscribers",
                "Event subscriptions open now.",
                None,
                management.subscribers as i64,
            )?;
        }
        if let Some(process) = &snapshot.process {
            let cpu_us = process.cpu_user_us + process.cpu_system_us;
            f.counter(
                "process_cpu",
                "CPU time the node process has used, user and system, every thread.",
                Some(Unit::Seconds),
                cpu_us as f64 / 1e6,
            )?;
            f.gauge(
                "process_max_resident_memory",
                "The largest resident set the node process has had.",
                Some(Unit::Bytes),
                i64::try_from(process.max_resident_bytes).unwrap_or(i64::MAX),
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
#[path = "prometheus_tests.rs"]
mod tests;
