//! Which node serves an operation: the one rule every path that must reach the leader follows.

use super::{Consistency, Operation};

/// Where an operation is served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// Whichever node is asked answers from its own state.
    Local,
    /// Only the leader can serve it: another node forwards it there.
    Leader,
}

impl Operation {
    /// Whether any node or only the leader serves this operation.
    pub fn route(&self) -> Route {
        match self {
            Self::Write { .. }
            | Self::GetClusterStatus
            | Self::AddMember { .. }
            | Self::RemoveMember { .. }
            | Self::UpdateMemberRole { .. }
            | Self::TransferLeadership { .. }
            | Self::StepDown
            | Self::UpdateConfiguration { .. }
            | Self::PluginDeploy(_)
            | Self::PluginRollback { .. }
            | Self::RestoreBackup { .. } => Route::Leader,
            Self::Read { consistency, .. } => match consistency {
                Consistency::Linearizable | Consistency::Lease => Route::Leader,
                Consistency::Stale => Route::Local,
            },
            Self::Status
            | Self::GetConfiguration
            | Self::GetHealthStatus
            | Self::GetMetrics { .. }
            | Self::GetLogInfo
            | Self::CompactLog { .. }
            | Self::GetLogEntries { .. }
            | Self::TriggerSnapshot
            | Self::GetSnapshotInfo
            | Self::CreateBackup { .. }
            | Self::ListBackups
            | Self::ReadBackup { .. }
            | Self::DeleteBackup { .. }
            | Self::GetJoinTicket
            | Self::Subscribe
            | Self::Watch(_)
            | Self::PluginList
            | Self::GetStateHash { .. } => Route::Local,
        }
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::proto::{ClusterConfig, DeployRequest, PluginKind};

    #[test]
    fn changes_go_to_the_leader_and_local_views_stay_local() {
        let leader = [
            Operation::Write {
                command: Bytes::new(),
                session: None,
            },
            Operation::Read {
                query: Bytes::new(),
                consistency: Consistency::Linearizable,
            },
            Operation::Read {
                query: Bytes::new(),
                consistency: Consistency::Lease,
            },
            Operation::GetClusterStatus,
            Operation::RemoveMember { node_id: 2 },
            Operation::StepDown,
            Operation::UpdateConfiguration {
                config: ClusterConfig::default(),
            },
            Operation::PluginDeploy(DeployRequest {
                kind: PluginKind::StateMachine,
                version: String::new(),
                config: Bytes::new(),
                sha256: [0; 32],
                size: 0,
                wasm: Bytes::new(),
            }),
            Operation::PluginRollback {
                kind: PluginKind::Policy,
            },
        ];
        for operation in &leader {
            assert_eq!(operation.route(), Route::Leader, "{operation:?}");
        }
        let local = [
            Operation::Read {
                query: Bytes::new(),
                consistency: Consistency::Stale,
            },
            Operation::Status,
            Operation::GetConfiguration,
            Operation::GetHealthStatus,
            Operation::GetLogInfo,
            Operation::GetLogEntries { start: 1, end: 2 },
            Operation::CompactLog { index: 1 },
            Operation::TriggerSnapshot,
            Operation::PluginList,
            Operation::Subscribe,
            Operation::GetStateHash { at_index: None },
            Operation::GetStateHash { at_index: Some(3) },
        ];
        for operation in &local {
            assert_eq!(operation.route(), Route::Local, "{operation:?}");
        }
    }
}
