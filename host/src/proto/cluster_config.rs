//! [`ClusterConfig`]: the replicated, versioned settings every member shares. An update is a log
//! entry, so it takes effect on every member at the same log index; it is validated before it is
//! proposed, and a refusal names the field and the reason.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::PluginLimits;

/// Parses `config set root_identities=ID,ID`: endpoint ids in hex, comma-separated ("" for none).
fn parse_roots(value: &str) -> Result<Vec<[u8; 32]>, ConfigError> {
    value
        .split(',')
        .map(str::trim)
        .filter(|id| !id.is_empty())
        .map(|id| {
            let bad = || {
                refuse(
                    "root_identities",
                    format!(
                        "`{id}` is not an endpoint id (64 hex digits, as `iroh-raft whoami` prints)"
                    ),
                )
            };
            if id.len() != 64 || !id.is_ascii() {
                return Err(bad());
            }
            let mut key = [0u8; 32];
            for (slot, pair) in key.iter_mut().zip(id.as_bytes().chunks(2)) {
                let pair = std::str::from_utf8(pair).map_err(|_| bad())?;
                *slot = u8::from_str_radix(pair, 16).map_err(|_| bad())?;
            }
            Ok(key)
        })
        .collect()
}

/// What a raft frame needs beside its largest entry: the append request around it.
const ENTRY_HEADROOM: u64 = 64 << 10;

/// The cluster's shared settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterConfig {
    /// Bumped by one with every accepted update; 0 is the built-in defaults.
    pub version: u64,
    /// Leader heartbeat interval, in milliseconds.
    pub heartbeat_interval_ms: u64,
    /// Shortest election timeout, in milliseconds.
    pub election_timeout_min_ms: u64,
    /// Longest election timeout, in milliseconds.
    pub election_timeout_max_ms: u64,
    /// Snapshot after this many applied entries since the last snapshot (0: never automatically).
    pub snapshot_every: u64,
    /// Entries kept in the log behind a snapshot, for followers that are a little behind.
    pub keep_after_snapshot: u64,
    /// Fuel and memory budgets of plugin calls.
    pub limits: PluginLimits,
    /// Largest `iroh-raft-mgmt/0` frame, in bytes.
    pub max_management_frame: u64,
    /// Largest `iroh-raft/0` frame, in bytes.
    pub max_raft_frame: u64,
    /// Largest state-machine command the leader accepts into the log, in bytes (etcd's
    /// `--max-request-bytes`).
    pub max_command_bytes: u64,
    /// Every applied index that is a multiple of this is a consistency check point: each member
    /// keeps a view of its state there, and the members compare their state hashes at it
    /// (`GetStateHash`, `iroh-raft check consistency`); 0: no check points, no automatic check.
    pub check_every: u64,
    /// The break-glass identities (endpoint keys): whatever the access policy says, they may
    /// read status and health and deploy or roll back the policy. `--init` names the user who
    /// created the cluster and the first node; at most [`MAX_ROOT_IDENTITIES`].
    pub root_identities: Vec<[u8; 32]>,
    /// Scheduled backups: the leader takes one every this many applied entries since the last
    /// scheduled one (0: not by entries).
    pub backup_every_entries: u64,
    /// The leader takes a scheduled backup every this many seconds (0: not by time).
    pub backup_every_secs: u64,
    /// Scheduled backups kept in the leader's backup directory; older scheduled ones are deleted
    /// (0: all kept). Backups taken by hand are never deleted by the schedule.
    pub backup_keep: u64,
    /// How many log indexes of changes each member keeps for `watch`: a watch may start from
    /// any of the last this many applied indexes (0: only from the next one).
    pub watch_history: u64,
}

/// The most break-glass identities a cluster names.
pub const MAX_ROOT_IDENTITIES: usize = 16;

impl Default for ClusterConfig {
    fn default() -> Self {
        Self {
            version: 0,
            heartbeat_interval_ms: 100,
            election_timeout_min_ms: 500,
            election_timeout_max_ms: 1000,
            snapshot_every: 100_000,
            keep_after_snapshot: 5_000,
            limits: PluginLimits::default(),
            max_management_frame: super::alpn::MAX_MANAGEMENT_FRAME as u64,
            max_raft_frame: super::alpn::MAX_RAFT_FRAME as u64,
            max_command_bytes: super::alpn::MAX_MANAGEMENT_FRAME as u64,
            check_every: 100_000,
            root_identities: Vec::new(),
            backup_every_entries: 0,
            backup_every_secs: 0,
            backup_keep: 0,
            watch_history: 10_000,
        }
    }
}

/// Why a configuration was refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("invalid configuration: `{field}` {reason}")]
pub struct ConfigError {
    /// The offending field.
    pub field: String,
    /// What is wrong with it.
    pub reason: String,
}

fn refuse(field: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError {
        field: field.into(),
        reason: reason.into(),
    }
}

fn within(field: &str, value: u64, min: u64, max: u64) -> Result<(), ConfigError> {
    if value < min || value > max {
        return Err(refuse(
            field,
            format!("is {value}; it must be between {min} and {max}"),
        ));
    }
    Ok(())
}

/// The names [`ClusterConfig::set`] accepts, in display order.
pub const CONFIG_FIELDS: [&str; 22] = [
    "heartbeat_interval_ms",
    "election_timeout_min_ms",
    "election_timeout_max_ms",
    "snapshot_every",
    "keep_after_snapshot",
    "fuel_per_entry",
    "fuel_per_query",
    "fuel_per_migration",
    "plugin_memory_bytes",
    "max_management_frame",
    "max_raft_frame",
    "max_key_bytes",
    "max_value_bytes",
    "max_entry_write_bytes",
    "max_command_bytes",
    "check_every",
    "backup_every_entries",
    "backup_every_secs",
    "backup_keep",
    "watch_history",
    "root_identities",
    "version",
];

impl ClusterConfig {
    /// Checks every field; the first bad one is named with the reason.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.root_identities.len() > MAX_ROOT_IDENTITIES {
            return Err(refuse(
                "root_identities",
                format!(
                    "names {} identities; at most {MAX_ROOT_IDENTITIES} are allowed",
                    self.root_identities.len()
                ),
            ));
        }
        within(
            "heartbeat_interval_ms",
            self.heartbeat_interval_ms,
            10,
            10_000,
        )?;
        within(
            "election_timeout_min_ms",
            self.election_timeout_min_ms,
            50,
            120_000,
        )?;
        if self.election_timeout_min_ms < 3 * self.heartbeat_interval_ms {
            return Err(refuse(
                "election_timeout_min_ms",
                format!(
                    "is {}; it must be at least 3 heartbeats ({} ms), or followers stand for \
                     election while the leader is healthy",
                    self.election_timeout_min_ms,
                    3 * self.heartbeat_interval_ms
                ),
            ));
        }
        if self.election_timeout_max_ms <= self.election_timeout_min_ms {
            return Err(refuse(
                "election_timeout_max_ms",
                format!(
                    "is {}; it must be greater than election_timeout_min_ms ({})",
                    self.election_timeout_max_ms, self.election_timeout_min_ms
                ),
            ));
        }
        within(
            "election_timeout_max_ms",
            self.election_timeout_max_ms,
            51,
            300_000,
        )?;
        within("snapshot_every", self.snapshot_every, 0, u64::MAX)?;
        within("keep_after_snapshot", self.keep_after_snapshot, 0, 1 << 40)?;
        within(
            "fuel_per_entry",
            self.limits.fuel_per_entry,
            10_000,
            1 << 40,
        )?;
        within(
            "fuel_per_query",
            self.limits.fuel_per_query,
            10_000,
            1 << 40,
        )?;
        within(
            "fuel_per_migration",
            self.limits.fuel_per_migration,
            10_000,
            1 << 50,
        )?;
        within(
            "plugin_memory_bytes",
            self.limits.memory_bytes as u64,
            1 << 20,
            4 << 30,
        )?;
        within(
            "max_management_frame",
            self.max_management_frame,
            64 << 10,
            1 << 30,
        )?;
        within(
            "max_raft_frame",
            self.max_raft_frame,
            1 << 20,
            super::alpn::RAFT_FRAME_CEILING as u64,
        )?;
        // fjall refuses (by panicking) keys over 65,535 bytes: no setting may let one through.
        within("max_key_bytes", self.limits.max_key_bytes, 1, 65_535)?;
        within("max_value_bytes", self.limits.max_value_bytes, 1, 1 << 30)?;
        within(
            "max_entry_write_bytes",
            self.limits.max_entry_write_bytes,
            1 << 10,
            1 << 32,
        )?;
        within("max_command_bytes", self.max_command_bytes, 1, 1 << 30)?;
        within("check_every", self.check_every, 0, u64::MAX)?;
        within(
            "backup_every_entries",
            self.backup_every_entries,
            0,
            u64::MAX,
        )?;
        // At most one a day less often; at least a second apart.
        if self.backup_every_secs != 0 {
            within("backup_every_secs", self.backup_every_secs, 1, 366 * 86_400)?;
        }
        within("backup_keep", self.backup_keep, 0, 100_000)?;
        within("watch_history", self.watch_history, 0, 10_000_000)?;
        // Every entry must fit in a frame on its own, or no batch could carry it.
        let largest_entry = [
            ("max_management_frame", self.max_management_frame),
            ("max_command_bytes", self.max_command_bytes),
            (
                "the largest deploy",
                (super::MAX_PLUGIN_BYTES + super::MAX_PLUGIN_CONFIG) as u64,
            ),
        ];
        for (what, bytes) in largest_entry {
            if self.max_raft_frame < bytes + ENTRY_HEADROOM {
                return Err(refuse(
                    "max_raft_frame",
                    format!(
                        "is {}; it must exceed {what} ({bytes}) by 64 KiB, or an accepted entry \
                         could not be replicated",
                        self.max_raft_frame
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Sets the field `name` from its text form (the names are [`CONFIG_FIELDS`]; `version` cannot
    /// be set: it is bumped by the cluster).
    pub fn set(&mut self, name: &str, value: &str) -> Result<(), ConfigError> {
        if name == "root_identities" {
            self.root_identities = parse_roots(value)?;
            return Ok(());
        }
        let number: u64 = value
            .trim()
            .replace('_', "")
            .parse()
            .map_err(|_| refuse(name, format!("must be a whole number, not `{value}`")))?;
        let slot = match name {
            "heartbeat_interval_ms" => &mut self.heartbeat_interval_ms,
            "election_timeout_min_ms" => &mut self.election_timeout_min_ms,
            "election_timeout_max_ms" => &mut self.election_timeout_max_ms,
            "snapshot_every" => &mut self.snapshot_every,
            "keep_after_snapshot" => &mut self.keep_after_snapshot,
            "fuel_per_entry" => &mut self.limits.fuel_per_entry,
            "fuel_per_query" => &mut self.limits.fuel_per_query,
            "fuel_per_migration" => &mut self.limits.fuel_per_migration,
            "plugin_memory_bytes" => {
                self.limits.memory_bytes = usize::try_from(number)
                    .map_err(|_| refuse(name, "does not fit this machine's address space"))?;
                return Ok(());
            }
            "max_management_frame" => &mut self.max_management_frame,
            "max_raft_frame" => &mut self.max_raft_frame,
            "max_key_bytes" => &mut self.limits.max_key_bytes,
            "max_value_bytes" => &mut self.limits.max_value_bytes,
            "max_entry_write_bytes" => &mut self.limits.max_entry_write_bytes,
            "max_command_bytes" => &mut self.max_command_bytes,
            "check_every" => &mut self.check_every,
            "backup_every_entries" => &mut self.backup_every_entries,
            "backup_every_secs" => &mut self.backup_every_secs,
            "backup_keep" => &mut self.backup_keep,
            "watch_history" => &mut self.watch_history,
            "version" => {
                return Err(refuse(
                    name,
                    "is set by the cluster: every accepted update bumps it",
                ));
            }
            other => {
                return Err(refuse(
                    other,
                    format!(
                        "is not a setting; the settings are {}",
                        CONFIG_FIELDS.join(", ")
                    ),
                ));
            }
        };
        *slot = number;
        Ok(())
    }

    /// Every numeric field with its value, in [`CONFIG_FIELDS`] order (`root_identities` is
    /// [`ClusterConfig::roots_text`]).
    pub fn fields(&self) -> Vec<(&'static str, u64)> {
        vec![
            ("heartbeat_interval_ms", self.heartbeat_interval_ms),
            ("election_timeout_min_ms", self.election_timeout_min_ms),
            ("election_timeout_max_ms", self.election_timeout_max_ms),
            ("snapshot_every", self.snapshot_every),
            ("keep_after_snapshot", self.keep_after_snapshot),
            ("fuel_per_entry", self.limits.fuel_per_entry),
            ("fuel_per_query", self.limits.fuel_per_query),
            ("fuel_per_migration", self.limits.fuel_per_migration),
            ("plugin_memory_bytes", self.limits.memory_bytes as u64),
            ("max_management_frame", self.max_management_frame),
            ("max_raft_frame", self.max_raft_frame),
            ("max_key_bytes", self.limits.max_key_bytes),
            ("max_value_bytes", self.limits.max_value_bytes),
            ("max_entry_write_bytes", self.limits.max_entry_write_bytes),
            ("max_command_bytes", self.max_command_bytes),
            ("check_every", self.check_every),
            ("backup_every_entries", self.backup_every_entries),
            ("backup_every_secs", self.backup_every_secs),
            ("backup_keep", self.backup_keep),
            ("watch_history", self.watch_history),
            ("version", self.version),
        ]
    }

    /// The break-glass identities as `config get` prints them and `config set` takes them:
    /// endpoint ids (hex), comma-separated.
    pub fn roots_text(&self) -> String {
        self.root_identities
            .iter()
            .map(|key| key.iter().map(|b| format!("{b:02x}")).collect::<String>())
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The leader heartbeat interval.
    pub fn heartbeat(&self) -> Duration {
        Duration::from_millis(self.heartbeat_interval_ms)
    }

    /// The openraft configuration for these settings. Snapshots and log purges are driven by the
    /// node from the replicated settings (so a change applies without a restart); openraft's own
    /// policies are off. openraft reads the election timeouts only when a core starts, so the node
    /// starts a new core when they change (`node/raft_core.rs`).
    pub(crate) fn raft_config(&self) -> Result<openraft::Config, String> {
        let config = openraft::Config {
            cluster_name: "iroh-raft".into(),
            heartbeat_interval: self.heartbeat_interval_ms,
            election_timeout_min: self.election_timeout_min_ms,
            election_timeout_max: self.election_timeout_max_ms,
            snapshot_policy: openraft::SnapshotPolicy::Never,
            max_in_snapshot_log_to_keep: u64::MAX,
            enable_pre_vote: Some(true),
            ..Default::default()
        };
        config.validate().map_err(|e| e.to_string())
    }
}

#[cfg(test)]
#[path = "cluster_config_tests.rs"]
mod tests;
