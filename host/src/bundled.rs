//! The bundled plugins, built from `plugins/` by `build.rs` and embedded in the binary, so a node
//! started with no plugin flags serves the key-value state machine.

/// The key-value state machine (`plugins/kv`): put, get, delete, compare-and-swap, range and prefix
/// scans. Commands and responses are in the `iroh-raft-kv-types` crate.
pub const KV: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/kv.wasm"));

/// Version 2 of the key-value state machine (`plugins/kv-v2`), for deploy tests: its `migrate`
/// rewrites stored values to `m:<value>`, and it stores written values as `v2:<value>`.
pub const KV_V2: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/kv_v2.wasm"));

/// The replicated counter (`plugins/counter`), the smallest example to copy.
pub const COUNTER: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/counter.wasm"));

/// A state machine that does nothing per entry (`plugins/noop`), for measuring host overhead.
pub const NOOP: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/noop.wasm"));

/// A test state machine that traps on command (`plugins/faulty`): infinite loops, memory bombs,
/// panics. Used by the fault tests; never a default.
pub const FAULTY: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/faulty.wasm"));

/// The walk-through's custom state machine (`examples/custom-state-machine`), built here so that a
/// test deploys exactly what the walk-through builds. Not a default and not in [`ALL`].
pub const EXAMPLE_TALLY: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/example_tally.wasm"));

/// A policy that allows everything (`plugins/allow-all`).
pub const ALLOW_ALL: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/allow_all.wasm"));

/// A policy that allows only reads and status (`plugins/read-only`).
pub const READ_ONLY: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/read_only.wasm"));

/// The role-based policy (`plugins/rbac`): grants of roles to peers, narrowed by operation and key
/// prefix, from a JSON configuration (`iroh_raft_access_types::RbacConfig`).
pub const RBAC: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/rbac.wasm"));

/// A test policy that misbehaves as its configuration says (`plugins/faulty-policy`): `trap`,
/// `loop` (runs out of fuel) or `allow`. Used by the access tests; never a default.
pub const FAULTY_POLICY: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/faulty_policy.wasm"));

/// The filesystem backup handler (`plugins/fs-backup`): each backup is `ID.snap`, the snapshot
/// bytes, beside `ID.json`, its manifest with the sha256.
pub const FS_BACKUP: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/fs_backup.wasm"));

/// A backup handler that compresses every chunk with LZ4 inside wasm (`plugins/lz4-backup`).
pub const LZ4_BACKUP: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/lz4_backup.wasm"));

/// A test backup handler that traps, loops or tries to leave its directory as a backup's metadata
/// `fault` asks (`plugins/faulty-backup`). Used by the backup tests; never a default.
pub const FAULTY_BACKUP: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/faulty_backup.wasm"));

/// Every bundled plugin: name, kind and bytes.
pub const ALL: &[(&str, crate::proto::PluginKind, &[u8])] = &[
    ("kv", crate::proto::PluginKind::StateMachine, KV),
    ("kv-v2", crate::proto::PluginKind::StateMachine, KV_V2),
    ("counter", crate::proto::PluginKind::StateMachine, COUNTER),
    ("noop", crate::proto::PluginKind::StateMachine, NOOP),
    ("faulty", crate::proto::PluginKind::StateMachine, FAULTY),
    ("allow-all", crate::proto::PluginKind::Policy, ALLOW_ALL),
    ("read-only", crate::proto::PluginKind::Policy, READ_ONLY),
    ("rbac", crate::proto::PluginKind::Policy, RBAC),
    (
        "faulty-policy",
        crate::proto::PluginKind::Policy,
        FAULTY_POLICY,
    ),
    ("fs-backup", crate::proto::PluginKind::Backup, FS_BACKUP),
    ("lz4-backup", crate::proto::PluginKind::Backup, LZ4_BACKUP),
    (
        "faulty-backup",
        crate::proto::PluginKind::Backup,
        FAULTY_BACKUP,
    ),
];
