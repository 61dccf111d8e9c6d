//! Tests of `cluster_config.rs`.
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
fn root_identities_are_set_as_hex_ids_and_bounded() {
    let mut config = ClusterConfig::default();
    let id = "ab".repeat(32);
    config
        .set("root_identities", &format!("{id}, {}", "01".repeat(32)))
        .unwrap();
    assert_eq!(config.root_identities, vec![[0xab; 32], [0x01; 32]]);
    assert_eq!(config.roots_text(), format!("{id},{}", "01".repeat(32)));
    let error = config.set("root_identities", "xyz").unwrap_err();
    assert_eq!(error.field, "root_identities");
    assert!(error.reason.contains("64 hex digits"), "{}", error.reason);
    config.set("root_identities", "").unwrap();
    assert!(config.root_identities.is_empty());
    config.root_identities = vec![[7; 32]; MAX_ROOT_IDENTITIES + 1];
    assert_eq!(config.validate().unwrap_err().field, "root_identities");
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
