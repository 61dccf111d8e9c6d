//! The raft type configuration: what a log entry carries and what applying it returns. Entries
//! cross the wire in append-entries and snapshots, so their encoding is part of the protocol.

use std::fmt;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::{ClusterConfig, Member, PluginKind, SessionTag};

/// The payload of a normal log entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum LogPayload {
    /// A state-machine command, handed to the plugin's `apply` unchanged.
    Command(Bytes),
    /// A new cluster configuration, effective from this entry on every member.
    Config(ClusterConfig),
    /// Activate a plugin at this entry's index, on every replica (`plugin deploy`).
    Deploy(DeployEntry),
    /// Reactivate the previous plugin of `kind` at this entry's index (`plugin rollback`), provided
    /// `from_sha256` is still the active one.
    Rollback {
        /// Which kind.
        kind: PluginKind,
        /// The plugin the operator saw active; if another is active by now, the rollback fails.
        from_sha256: [u8; 32],
    },
    /// A state-machine command in a client session: applied once per tag, however many entries
    /// carry it (a retry returns the first result).
    SessionCommand {
        /// The client's session and this write's number in it.
        session: SessionTag,
        /// The command, handed to the plugin unchanged.
        command: Bytes,
    },
    /// Replace the state machine's data with a backup's (`backup restore`), on every replica at
    /// this index. The entry carries the whole image, so no follower needs the backup.
    Restore(RestoreEntry),
}

/// A backup restore as replicated through the log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestoreEntry {
    /// The backup's id (for the operator; the image is what counts).
    pub backup_id: String,
    /// sha256 of `image`, as the backup recorded it; a replica refuses an image that hashes
    /// differently.
    pub sha256: [u8; 32],
    /// The state hash the backup recorded at its index, checked against the image's content.
    pub state_hash: Option<[u8; 32]>,
    /// The snapshot image.
    pub image: Bytes,
}

/// A plugin deploy as replicated through the log: everything a replica needs to activate it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeployEntry {
    /// Which world the plugin implements.
    pub kind: PluginKind,
    /// sha256 of `wasm`; a replica refuses bytes that hash differently.
    pub sha256: [u8; 32],
    /// The operator's version string ("" if none); handed to the next plugin's `migrate`.
    pub version: String,
    /// Configuration deployed with the plugin (a policy's `policy-config`), possibly empty.
    pub config: Bytes,
    /// The component's `.wasm` bytes.
    pub wasm: Bytes,
}

/// What a deploy or rollback entry did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PluginOutcome {
    /// The plugin became active at `index`.
    Activated {
        /// Which kind.
        kind: PluginKind,
        /// Its sha256.
        sha256: [u8; 32],
        /// Its version.
        version: String,
        /// The log index it took effect at.
        index: u64,
        /// The version it replaced.
        from_version: String,
    },
    /// That plugin was already active: nothing changed.
    Unchanged {
        /// Which kind.
        kind: PluginKind,
        /// Its sha256.
        sha256: [u8; 32],
        /// Its version.
        version: String,
        /// The index where it was activated.
        since: u64,
    },
}

impl fmt::Display for LogPayload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Command(bytes) => write!(f, "command({} bytes)", bytes.len()),
            Self::Config(config) => write!(f, "config(version {})", config.version),
            Self::Deploy(deploy) => write!(
                f,
                "deploy({} {} {}, {} bytes)",
                deploy.kind,
                hex::encode(&deploy.sha256[..8]),
                deploy.version,
                deploy.wasm.len()
            ),
            Self::Rollback { kind, .. } => write!(f, "rollback({kind})"),
            Self::Restore(restore) => write!(
                f,
                "restore(backup {}, {} bytes)",
                restore.backup_id,
                restore.image.len()
            ),
            Self::SessionCommand { session, command } => write!(
                f,
                "command({} bytes, session {} write {})",
                command.len(),
                hex::encode(&session.client[..4]),
                session.seq
            ),
        }
    }
}

/// What a restore entry did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestoreOutcome {
    /// The backup restored.
    pub backup_id: String,
    /// The log index the restore took effect at.
    pub index: u64,
    /// The index the backup was taken at.
    pub backup_index: u64,
    /// Key-value pairs the state machine now holds.
    pub pairs: u64,
}

/// What applying an entry returns to the client that proposed it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum ApplyResponse {
    /// An entry with nothing for the plugin (blank or membership).
    #[default]
    None,
    /// The plugin's response bytes.
    Ok(Bytes),
    /// The entry failed: the plugin's error, or the trap that stopped it. Every replica records the
    /// same message.
    Failed(String),
    /// A deploy or rollback took effect (or changed nothing). A refused one is [`Self::Failed`].
    Plugin(PluginOutcome),
    /// The entry repeats a write its session already applied, at `index`: not applied again;
    /// `first` is what applying it returned then.
    Repeated {
        /// The index the write was applied at.
        index: u64,
        /// Its result then.
        first: Box<ApplyResponse>,
    },
    /// A restore replaced the state machine's data at this entry's index.
    Restored(RestoreOutcome),
}

openraft::declare_raft_types!(
    /// The openraft type configuration of iroh-raft.
    pub TypeConfig:
        D = LogPayload,
        R = ApplyResponse,
        NodeId = u64,
        Node = Member,
);
