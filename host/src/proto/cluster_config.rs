//! [`ClusterConfig`]: the replicated, versioned settings every member shares. An update is a log
//! entry, so it takes effect on every member at the same log index; it is validated before it is
//! proposed, and a refusal names the field and the reason.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::PluginLimits;

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
}

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
pub const CONFIG_FIELDS: [&str; 17] = [
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
    "version",
];

impl ClusterConfig {
    /// Checks every field; the first bad one is named with the reason.
    pub fn validate(&self) -> Result<(), ConfigError> {
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

    /// Every field with its value, in [`CONFIG_FIELDS`] order.
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
            ("version", self.version),
        ]
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
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_defaults_are_valid_and_make_a_raft_config() {
        let config = ClusterConfig::default();
        config.validate().unwrap();
        config.raft_config().unwrap();
    }

    #[test]
    fn set_parses_every_field_it_lists() {
        let mut config = ClusterConfig::default();
        for (name, value) in ClusterConfig::default().fields() {
            if name == "version" {
                assert!(config.set(name, "7").is_err());
                continue;
            }
            config.set(name, &(value + 1).to_string()).unwrap();
        }
        for ((name, before), (_, after)) in ClusterConfig::default()
            .fields()
            .into_iter()
            .zip(config.fields())
        {
            if name != "version" {
                assert_eq!(after, before + 1, "{name}");
            }
        }
    }

    #[test]
    fn refusals_name_the_field_and_the_reason() {
        let config = ClusterConfig {
            election_timeout_min_ms: 200,
            heartbeat_interval_ms: 100,
            ..ClusterConfig::default()
        };
        let error = config.validate().unwrap_err();
        assert_eq!(error.field, "election_timeout_min_ms");
        assert!(error.reason.contains("3 heartbeats"), "{error}");

        let mut config = ClusterConfig::default();
        config.election_timeout_max_ms = config.election_timeout_min_ms;
        assert_eq!(
            config.validate().unwrap_err().field,
            "election_timeout_max_ms"
        );

        let mut config = ClusterConfig::default();
        config.limits.memory_bytes = 1000;
        assert_eq!(config.validate().unwrap_err().field, "plugin_memory_bytes");

        let error = ClusterConfig::default().set("colour", "1").unwrap_err();
        assert!(error.reason.contains("heartbeat_interval_ms"), "{error}");
        let error = ClusterConfig::default()
            .set("snapshot_every", "lots")
            .unwrap_err();
        assert_eq!(error.field, "snapshot_every");
    }

    #[test]
    fn max_raft_frame_must_carry_the_largest_command_and_the_largest_deploy_alone() {
        let mib = 1u64 << 20;
        let with = |raft: u64, command: u64, management: u64| ClusterConfig {
            max_raft_frame: raft,
            max_command_bytes: command,
            max_management_frame: management,
            ..ClusterConfig::default()
        };
        // The largest deploy (16 MiB of wasm and 64 KiB of config) sets the floor.
        let error = with(16 * mib + (64 << 10), mib, mib)
            .validate()
            .unwrap_err();
        assert_eq!(error.field, "max_raft_frame");
        assert!(error.reason.contains("the largest deploy"), "{error}");
        with(17 * mib, mib, mib).validate().unwrap();
        let error = with(17 * mib, 17 * mib, mib).validate().unwrap_err();
        assert!(error.reason.contains("max_command_bytes"), "{error}");
        let error = with(17 * mib, mib, 17 * mib).validate().unwrap_err();
        assert!(error.reason.contains("max_management_frame"), "{error}");
        let error = with(2 << 30, mib, mib).validate().unwrap_err();
        assert!(error.reason.contains("1073741824"), "{error}");
    }

    proptest! {
        #[test]
        fn a_valid_config_always_makes_a_raft_config(
            heartbeat in 10u64..1000,
            extra in 0u64..5000,
            spread in 1u64..5000,
        ) {
            let config = ClusterConfig {
                heartbeat_interval_ms: heartbeat,
                election_timeout_min_ms: (3 * heartbeat).max(50) + extra,
                election_timeout_max_ms: (3 * heartbeat).max(50) + extra + spread,
                ..ClusterConfig::default()
            };
            prop_assert!(config.validate().is_ok());
            prop_assert!(config.raft_config().is_ok());
        }
    }
}
