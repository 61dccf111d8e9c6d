//! Backups as they cross the wire: [`BackupInfo`] (what `ListBackups` and `CreateBackup` answer),
//! the metadata keys the host records with every backup, and the checks on backup ids and
//! operator metadata.
//!
//! A handler stores a backup's metadata as a list of string pairs and gives it back unchanged.
//! The host's own facts go in under keys starting with [`HOST_KEY_PREFIX`], which operator metadata
//! may not use. On restore the image is checked against what the handler gives back (its sha256
//! and state hash), which catches damage. It does not authenticate the handler: a handler that
//! substitutes another valid image together with matching facts is trusted, as the operator who
//! deployed it is.

use serde::{Deserialize, Serialize};

/// Keys of the host's facts in a backup's metadata start with this.
pub const HOST_KEY_PREFIX: &str = "iroh-raft.";
const KEY_STATE_HASH: &str = "iroh-raft.state-hash";
const KEY_CREATED: &str = "iroh-raft.created-unix-ms";
const KEY_HANDLER: &str = "iroh-raft.handler";
const KEY_NODE: &str = "iroh-raft.node";
const KEY_PAIRS: &str = "iroh-raft.pairs";
const KEY_SCHEDULED: &str = "iroh-raft.scheduled";
const KEY_CLUSTER: &str = "iroh-raft.cluster";

/// The longest backup id.
pub const MAX_BACKUP_ID: usize = 100;
/// The most operator metadata pairs on one backup.
pub const MAX_METADATA_PAIRS: usize = 64;
/// The longest operator metadata key or value.
pub const MAX_METADATA_BYTES: usize = 1024;

/// One backup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupInfo {
    /// Its id, chosen by the host when it was created.
    pub id: String,
    /// The applied log index the image holds the state at.
    pub index: u64,
    /// The image's size in bytes.
    pub size: u64,
    /// sha256 of the image bytes.
    pub sha256: [u8; 32],
    /// The state hash at `index` (what `GetStateHash { at_index: index }` answered on the node
    /// that took it), if the handler kept it.
    pub state_hash: Option<[u8; 32]>,
    /// When the node took it (its clock), in milliseconds since the Unix epoch.
    pub created_unix_ms: Option<u64>,
    /// sha256 of the backup handler that stored it.
    pub handler: Option<[u8; 32]>,
    /// The node that took it.
    pub node_id: Option<u64>,
    /// The cluster it was taken in (a restored cluster is a new one: the schedule keeps to its
    /// own cluster's backups in a directory it shares).
    pub cluster_id: Option<[u8; 16]>,
    /// Key-value pairs in the image.
    pub pairs: Option<u64>,
    /// Taken by the schedule (`backup_every_*`), which deletes the oldest beyond `backup_keep`;
    /// backups taken by hand are never deleted by it.
    pub scheduled: bool,
    /// The operator's own metadata (`backup create --meta KEY=VALUE`).
    pub metadata: Vec<(String, String)>,
}

impl BackupInfo {
    /// The metadata list a handler stores: the host's facts, then the operator's pairs.
    pub fn to_metadata(&self) -> Vec<(String, String)> {
        let mut all = Vec::new();
        let mut host = |key: &str, value: Option<String>| {
            if let Some(value) = value {
                all.push((key.to_string(), value));
            }
        };
        host(KEY_STATE_HASH, self.state_hash.map(hex::encode));
        host(KEY_CREATED, self.created_unix_ms.map(|ms| ms.to_string()));
        host(KEY_HANDLER, self.handler.map(hex::encode));
        host(KEY_NODE, self.node_id.map(|id| id.to_string()));
        host(KEY_PAIRS, self.pairs.map(|pairs| pairs.to_string()));
        host(KEY_SCHEDULED, self.scheduled.then(|| "true".to_string()));
        host(KEY_CLUSTER, self.cluster_id.map(hex::encode));
        all.extend(self.metadata.iter().cloned());
        all
    }

    /// A backup as a handler described it: the host's facts are read back out of `metadata`
    /// (one that does not parse is left out), the rest is the operator's.
    pub fn from_parts(
        id: String,
        index: u64,
        size: u64,
        sha256_hex: &str,
        metadata: Vec<(String, String)>,
    ) -> Result<Self, String> {
        let sha256 = parse_hash(sha256_hex)
            .ok_or_else(|| format!("backup {id} has no valid sha256 ({sha256_hex:?})"))?;
        let mut info = Self {
            id,
            index,
            size,
            sha256,
            state_hash: None,
            created_unix_ms: None,
            handler: None,
            node_id: None,
            cluster_id: None,
            pairs: None,
            scheduled: false,
            metadata: Vec::new(),
        };
        for (key, value) in metadata {
            match key.as_str() {
                KEY_STATE_HASH => info.state_hash = parse_hash(&value),
                KEY_CREATED => info.created_unix_ms = value.parse().ok(),
                KEY_HANDLER => info.handler = parse_hash(&value),
                KEY_NODE => info.node_id = value.parse().ok(),
                KEY_PAIRS => info.pairs = value.parse().ok(),
                KEY_SCHEDULED => info.scheduled = value == "true",
                KEY_CLUSTER => {
                    let mut id = [0u8; 16];
                    info.cluster_id = hex::decode_to_slice(&value, &mut id).ok().map(|()| id);
                }
                _ if key.starts_with(HOST_KEY_PREFIX) => {}
                _ => info.metadata.push((key, value)),
            }
        }
        Ok(info)
    }
}

fn parse_hash(text: &str) -> Option<[u8; 32]> {
    let mut hash = [0u8; 32];
    hex::decode_to_slice(text, &mut hash).ok()?;
    Some(hash)
}

/// Why `id` cannot name a backup, or `Ok`: 1 to [`MAX_BACKUP_ID`] letters, digits, `-` and `_`.
pub fn check_backup_id(id: &str) -> Result<(), String> {
    if id.is_empty() || id.len() > MAX_BACKUP_ID {
        return Err(format!(
            "a backup id has 1 to {MAX_BACKUP_ID} characters; {:?} has {}",
            id,
            id.len()
        ));
    }
    if let Some(bad) = id
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_')))
    {
        return Err(format!(
            "backup id {id:?} holds {bad:?}: ids are letters, digits, `-` and `_` \
             (`iroh-raft backup list` shows them)"
        ));
    }
    Ok(())
}

/// Why operator metadata is refused, or `Ok`.
pub fn check_metadata(metadata: &[(String, String)]) -> Result<(), String> {
    if metadata.len() > MAX_METADATA_PAIRS {
        return Err(format!(
            "{} metadata pairs are over the limit of {MAX_METADATA_PAIRS}",
            metadata.len()
        ));
    }
    for (key, value) in metadata {
        if key.is_empty() {
            return Err("a metadata key must not be empty".into());
        }
        if key.starts_with(HOST_KEY_PREFIX) {
            return Err(format!(
                "metadata key {key:?}: keys starting with `{HOST_KEY_PREFIX}` are the host's"
            ));
        }
        if key.len() > MAX_METADATA_BYTES || value.len() > MAX_METADATA_BYTES {
            return Err(format!(
                "metadata key {key:?}: keys and values are at most {MAX_METADATA_BYTES} bytes"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info() -> BackupInfo {
        BackupInfo {
            id: "b-7".into(),
            index: 7,
            size: 100,
            sha256: [1; 32],
            state_hash: Some([2; 32]),
            created_unix_ms: Some(1_700_000_000_000),
            handler: Some([3; 32]),
            node_id: Some(2),
            cluster_id: Some([4; 16]),
            pairs: Some(5),
            scheduled: true,
            metadata: vec![("team".into(), "ops".into())],
        }
    }

    #[test]
    fn host_facts_survive_a_round_trip_through_handler_metadata() {
        let info = info();
        let back = BackupInfo::from_parts(
            info.id.clone(),
            info.index,
            info.size,
            &hex::encode(info.sha256),
            info.to_metadata(),
        )
        .unwrap();
        assert_eq!(back, info);
    }

    #[test]
    fn a_handler_that_mangles_host_facts_loses_them_but_not_the_backup() {
        let back = BackupInfo::from_parts(
            "b".into(),
            1,
            2,
            &hex::encode([9u8; 32]),
            vec![
                (KEY_STATE_HASH.into(), "zz".into()),
                ("iroh-raft.unknown".into(), "x".into()),
            ],
        )
        .unwrap();
        assert_eq!(back.state_hash, None);
        assert!(back.metadata.is_empty());
        assert!(BackupInfo::from_parts("b".into(), 1, 2, "nothex", vec![]).is_err());
    }

    #[test]
    fn ids_and_metadata_are_checked() {
        check_backup_id("backup-000000000012-1700000000000").unwrap();
        for bad in [
            "",
            "../x",
            "a b",
            "a/b",
            ".",
            &"x".repeat(MAX_BACKUP_ID + 1),
        ] {
            assert!(check_backup_id(bad).is_err(), "{bad:?}");
        }
        check_metadata(&[("k".into(), "v".into())]).unwrap();
        assert!(check_metadata(&[("iroh-raft.node".into(), "1".into())]).is_err());
        assert!(check_metadata(&[(String::new(), "v".into())]).is_err());
        let many: Vec<_> = (0..=MAX_METADATA_PAIRS)
            .map(|i| (i.to_string(), String::new()))
            .collect();
        assert!(check_metadata(&many).is_err());
    }
}
