//! What a node remembers about its cluster between restarts: the cluster id, its raft id and the
//! join secret. Written once (at `--init` or after a join), so a restart needs no flags.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::NodeError;

/// The file name inside the data directory.
pub(crate) const FILE: &str = "cluster";

/// A node's membership of a cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterIdentity {
    /// The cluster's id.
    pub cluster_id: [u8; 16],
    /// This node's raft id.
    pub node_id: u64,
    /// The join secret (tickets carry it; joins must present it).
    pub secret: [u8; 32],
    /// Endpoint keys of the members this node was told about when it joined. They may speak raft
    /// to it even before any log entry reaches its disk: a node killed that early restarts with
    /// an empty membership and would otherwise refuse the whole cluster.
    pub join_peers: Vec<[u8; 32]>,
}

impl ClusterIdentity {
    /// A new cluster with this node as node 1, with fresh random ids.
    pub fn new_cluster() -> Self {
        // SecretKey::generate draws from the OS CSPRNG; its bytes are as good a random source as
        // any, and spare a dependency.
        let random = iroh::SecretKey::generate().to_bytes();
        let mut cluster_id = [0u8; 16];
        cluster_id.copy_from_slice(&random[..16]);
        Self {
            cluster_id,
            node_id: 1,
            secret: iroh::SecretKey::generate().to_bytes(),
            join_peers: Vec::new(),
        }
    }

    /// Reads the identity from `dir`, if the node has one.
    pub fn load(dir: &Path) -> Result<Option<Self>, NodeError> {
        let path = dir.join(FILE);
        match std::fs::read(&path) {
            Ok(bytes) => postcard::from_bytes(&bytes)
                .map(Some)
                .map_err(|e| NodeError::DataDir {
                    path,
                    reason: format!("the cluster identity file is corrupt ({e})"),
                }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(NodeError::DataDir {
                path,
                reason: e.to_string(),
            }),
        }
    }

    /// Writes the identity to `dir` durably (write, fsync, rename), readable by its owner only: it
    /// holds the join secret.
    pub fn store(&self, dir: &Path) -> Result<(), NodeError> {
        let path = dir.join(FILE);
        let fail = |e: std::io::Error| NodeError::DataDir {
            path: path.clone(),
            reason: e.to_string(),
        };
        let bytes = postcard::to_allocvec(self).map_err(|e| NodeError::DataDir {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        let tmp = dir.join(format!("{FILE}.tmp"));
        {
            use std::io::Write;
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create(true).truncate(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            let mut file = options.open(&tmp).map_err(fail)?;
            // A file left by an older version keeps its mode on truncate: set it.
            #[cfg(unix)]
            file.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600))
                .map_err(fail)?;
            file.write_all(&bytes).map_err(fail)?;
            file.sync_all().map_err(fail)?;
        }
        std::fs::rename(&tmp, &path).map_err(fail)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_survives_a_restart_and_corruption_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(ClusterIdentity::load(dir.path()).unwrap(), None);
        let identity = ClusterIdentity::new_cluster();
        identity.store(dir.path()).unwrap();
        assert_eq!(
            ClusterIdentity::load(dir.path()).unwrap(),
            Some(identity.clone())
        );
        assert_ne!(ClusterIdentity::new_cluster().secret, identity.secret);
        std::fs::write(dir.path().join(FILE), b"\xff").unwrap();
        let err = ClusterIdentity::load(dir.path()).unwrap_err();
        assert!(err.to_string().contains("corrupt"), "{err}");
    }

    #[cfg(unix)]
    #[test]
    fn bug_the_file_holding_the_join_secret_was_world_readable() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        ClusterIdentity::new_cluster().store(dir.path()).unwrap();
        let mode = std::fs::metadata(dir.path().join(FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{mode:o}");
    }
}
