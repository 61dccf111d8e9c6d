//! Backups through an [`IrohRaftManagementClient`]: taken, listed and read on the leader or on a
//! member the caller names (`--from-node`), restored through the leader.

use bytes::Bytes;

use super::{IrohRaftManagementClient, unexpected};
use crate::client::ClientError;
use crate::proto::{BackupInfo, Operation, Reply, RestoreOutcome};

impl IrohRaftManagementClient {
    /// Sends `operation` to member `node_id`, or to the leader with `None`.
    async fn send_on(
        &self,
        node_id: Option<u64>,
        operation: Operation,
    ) -> Result<Reply, ClientError> {
        let Some(node_id) = node_id else {
            // Learn the leader first: these operations are served by the node asked.
            self.get_cluster_status().await?;
            return self.send(operation, true).await;
        };
        let status = self.get_cluster_status().await?;
        let member = status
            .members
            .iter()
            .find(|member| member.node_id == node_id)
            .ok_or_else(|| {
                ClientError::Connect(format!(
                    "node {node_id} is not a member (members: {})",
                    status
                        .members
                        .iter()
                        .map(|m| m.node_id.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            })?;
        let addr = member
            .member
            .endpoint_addr()
            .map_err(|e| ClientError::Connect(format!("node {node_id}'s address: {e}")))?;
        self.connection(&addr).await?.request(operation).await
    }

    /// Takes a backup on member `node_id` (the leader with `None`), stored through the active
    /// backup handler in that node's `--backup-dir`, with the operator's `metadata`.
    pub async fn create_backup(
        &self,
        node_id: Option<u64>,
        metadata: Vec<(String, String)>,
    ) -> Result<BackupInfo, ClientError> {
        match self
            .send_on(node_id, Operation::CreateBackup { metadata })
            .await?
        {
            Reply::Backup(info) => Ok(info),
            other => Err(unexpected(other)),
        }
    }

    /// The backups in member `node_id`'s backup directory (the leader's with `None`).
    pub async fn list_backups(&self, node_id: Option<u64>) -> Result<Vec<BackupInfo>, ClientError> {
        match self.send_on(node_id, Operation::ListBackups).await? {
            Reply::Backups(all) => Ok(all),
            other => Err(unexpected(other)),
        }
    }

    /// Up to `max` bytes of backup `backup_id`'s image from `offset`, from member `node_id`'s
    /// backup directory (the leader's with `None`); shorter than asked means the end.
    pub async fn read_backup(
        &self,
        node_id: Option<u64>,
        backup_id: &str,
        offset: u64,
        max: u32,
    ) -> Result<Bytes, ClientError> {
        let operation = Operation::ReadBackup {
            backup_id: backup_id.to_string(),
            offset,
            max,
        };
        match self.send_on(node_id, operation).await? {
            Reply::BackupChunk(bytes) => Ok(bytes),
            other => Err(unexpected(other)),
        }
    }

    /// Deletes backup `backup_id` from member `node_id`'s backup directory (the leader's with
    /// `None`).
    pub async fn delete_backup(
        &self,
        node_id: Option<u64>,
        backup_id: &str,
    ) -> Result<(), ClientError> {
        let operation = Operation::DeleteBackup {
            backup_id: backup_id.to_string(),
        };
        match self.send_on(node_id, operation).await? {
            Reply::BackupDeleted => Ok(()),
            other => Err(unexpected(other)),
        }
    }

    /// Restores backup `backup_id` from the leader's backup directory: every replica replaces its
    /// state machine's data with the backup's at one log index.
    pub async fn restore_backup(&self, backup_id: &str) -> Result<RestoreOutcome, ClientError> {
        let operation = Operation::RestoreBackup {
            backup_id: backup_id.to_string(),
        };
        match self.send(operation, true).await? {
            Reply::Restored(outcome) => Ok(outcome),
            other => Err(unexpected(other)),
        }
    }
}
