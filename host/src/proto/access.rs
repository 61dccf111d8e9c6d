//! What the access policy judges: every [`Operation`] as an operation name and a resource. The
//! names are one list, [`op`] (shared with the bundled policies through `iroh-raft-access-types`);
//! this file maps each request onto it, and the README lists it.
//!
//! Data requests name their resources through the state machine's optional `resources` export
//! (the host cannot see inside a command); [`Access::Data`] says which bytes to ask it about.

use bytes::Bytes;

pub use iroh_raft_access_types::{Role, op, resource};

use super::Operation;

/// What a request asks, as the access policy sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access {
    /// An operation on a resource the host names itself (`member/3`, `plugin/policy`, or "" when
    /// the operation has no narrower target).
    Fixed {
        /// The operation's name, one of [`op::ALL`].
        operation: &'static str,
        /// What it acts on.
        resource: String,
    },
    /// `data.write` of `bytes` (a command) or `data.read` (a query): the state machine names the
    /// keys it touches, or the request is judged as [`resource::STATE_MACHINE`].
    Data {
        /// Whether the request writes.
        write: bool,
        /// The command or query.
        bytes: Bytes,
    },
}

impl Access {
    /// The operation's name.
    pub fn operation(&self) -> &'static str {
        match self {
            Self::Fixed { operation, .. } => operation,
            Self::Data { write: true, .. } => op::DATA_WRITE,
            Self::Data { write: false, .. } => op::DATA_READ,
        }
    }
}

fn fixed(operation: &'static str, resource: impl Into<String>) -> Access {
    Access::Fixed {
        operation,
        resource: resource.into(),
    }
}

impl Operation {
    /// How the access policy sees this operation.
    pub fn access(&self) -> Access {
        match self {
            Self::Write { command, .. } => Access::Data {
                write: true,
                bytes: command.clone(),
            },
            Self::Read { query, .. } => Access::Data {
                write: false,
                bytes: query.clone(),
            },
            Self::Status
            | Self::GetClusterStatus
            | Self::GetLogInfo
            | Self::GetSnapshotInfo
            | Self::PluginList
            | Self::GetStateHash { .. } => fixed(op::STATUS_READ, ""),
            Self::AddMember { node_id, .. } => fixed(op::MEMBER_ADD, format!("member/{node_id}")),
            Self::RemoveMember { node_id } => fixed(op::MEMBER_REMOVE, format!("member/{node_id}")),
            Self::UpdateMemberRole { node_id, .. } => {
                fixed(op::MEMBER_ROLE, format!("member/{node_id}"))
            }
            Self::TransferLeadership { target_node } => fixed(
                op::LEADER_TRANSFER,
                target_node.map_or(String::new(), |id| format!("member/{id}")),
            ),
            Self::StepDown => fixed(op::LEADER_TRANSFER, ""),
            Self::GetConfiguration => fixed(op::CONFIG_READ, ""),
            Self::UpdateConfiguration { .. } => fixed(op::CONFIG_UPDATE, ""),
            Self::GetHealthStatus => fixed(op::HEALTH_READ, ""),
            Self::GetMetrics { .. } => fixed(op::METRICS_READ, ""),
            Self::CompactLog { .. } => fixed(op::LOG_COMPACT, "log"),
            Self::GetLogEntries { .. } => fixed(op::LOG_READ, "log"),
            Self::TriggerSnapshot => fixed(op::SNAPSHOT_TRIGGER, ""),
            Self::CreateBackup { .. } => fixed(op::BACKUP_CREATE, ""),
            Self::RestoreBackup { backup_id } => {
                fixed(op::BACKUP_RESTORE, format!("backup/{backup_id}"))
            }
            Self::ListBackups => fixed(op::BACKUP_LIST, ""),
            // The ticket carries the join secret: whoever may add members may hand it out.
            Self::GetJoinTicket => fixed(op::MEMBER_ADD, "ticket"),
            // An image is every key and value: whoever may take backups may read them back.
            Self::ReadBackup { backup_id, .. } | Self::DeleteBackup { backup_id } => {
                fixed(op::BACKUP_CREATE, format!("backup/{backup_id}"))
            }
            Self::Subscribe => fixed(op::EVENTS_SUBSCRIBE, ""),
            // A watch reads every value put in its range: judged like a read of the range.
            Self::Watch(request) => fixed(
                op::DATA_READ,
                match request.single_key() {
                    Some(key) => resource::key(key),
                    None => resource::prefix(resource::covering_prefix(
                        &request.start,
                        request.end.as_deref(),
                    )),
                },
            ),
            Self::PluginDeploy(request) => {
                fixed(op::PLUGIN_DEPLOY, format!("plugin/{}", request.kind))
            }
            Self::PluginRollback { kind } => fixed(op::PLUGIN_ROLLBACK, format!("plugin/{kind}")),
        }
    }
}

/// What a health-check frame (not an operation) is judged as.
pub const HEALTH_CHECK: &str = op::HEALTH_READ;

/// What the root identities (the break-glass keys named at `--init`, `root_identities` in the
/// cluster configuration) may always do, whatever the policy says: read status and health, and
/// deploy or roll back the access policy.
pub fn break_glass(operation: &str, resource: &str) -> bool {
    match operation {
        op::STATUS_READ | op::HEALTH_READ => true,
        op::PLUGIN_DEPLOY | op::PLUGIN_ROLLBACK => resource == "plugin/policy",
        _ => false,
    }
}

/// What every cluster member may do on another member whatever the policy says: read its status
/// (members compare state hashes with each other) and health.
pub fn member_may(operation: &str) -> bool {
    matches!(operation, op::STATUS_READ | op::HEALTH_READ)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::{ClusterConfig, Consistency, DeployRequest, Member, MemberRole, PluginKind};

    fn deploy(kind: PluginKind) -> Operation {
        Operation::PluginDeploy(DeployRequest {
            kind,
            version: String::new(),
            config: Bytes::new(),
            sha256: [0; 32],
            size: 0,
            wasm: Bytes::new(),
        })
    }

    #[test]
    fn every_operation_has_a_name_from_the_one_list() {
        let member = Member {
            endpoint_key: [0; 32],
            addrs: Vec::new(),
            observer: false,
        };
        let cases: Vec<(Operation, &str, &str)> = vec![
            (Operation::Status, op::STATUS_READ, ""),
            (Operation::GetClusterStatus, op::STATUS_READ, ""),
            (Operation::GetLogInfo, op::STATUS_READ, ""),
            (Operation::GetSnapshotInfo, op::STATUS_READ, ""),
            (Operation::PluginList, op::STATUS_READ, ""),
            (
                Operation::GetStateHash { at_index: None },
                op::STATUS_READ,
                "",
            ),
            (
                Operation::AddMember {
                    node_id: 4,
                    member,
                    role: MemberRole::Voter,
                },
                op::MEMBER_ADD,
                "member/4",
            ),
            (
                Operation::RemoveMember { node_id: 2 },
                op::MEMBER_REMOVE,
                "member/2",
            ),
            (
                Operation::UpdateMemberRole {
                    node_id: 3,
                    role: MemberRole::Learner,
                },
                op::MEMBER_ROLE,
                "member/3",
            ),
            (
                Operation::TransferLeadership {
                    target_node: Some(2),
                },
                op::LEADER_TRANSFER,
                "member/2",
            ),
            (Operation::StepDown, op::LEADER_TRANSFER, ""),
            (Operation::GetConfiguration, op::CONFIG_READ, ""),
            (
                Operation::UpdateConfiguration {
                    config: ClusterConfig::default(),
                },
                op::CONFIG_UPDATE,
                "",
            ),
            (Operation::GetHealthStatus, op::HEALTH_READ, ""),
            (
                Operation::GetMetrics {
                    categories: Vec::new(),
                },
                op::METRICS_READ,
                "",
            ),
            (Operation::CompactLog { index: 3 }, op::LOG_COMPACT, "log"),
            (
                Operation::GetLogEntries { start: 1, end: 2 },
                op::LOG_READ,
                "log",
            ),
            (Operation::TriggerSnapshot, op::SNAPSHOT_TRIGGER, ""),
            (
                Operation::CreateBackup {
                    metadata: Vec::new(),
                },
                op::BACKUP_CREATE,
                "",
            ),
            (
                Operation::RestoreBackup {
                    backup_id: "b1".into(),
                },
                op::BACKUP_RESTORE,
                "backup/b1",
            ),
            (Operation::ListBackups, op::BACKUP_LIST, ""),
            (
                Operation::ReadBackup {
                    backup_id: "b1".into(),
                    offset: 0,
                    max: 1,
                },
                op::BACKUP_CREATE,
                "backup/b1",
            ),
            (
                Operation::DeleteBackup {
                    backup_id: "b1".into(),
                },
                op::BACKUP_CREATE,
                "backup/b1",
            ),
            (Operation::GetJoinTicket, op::MEMBER_ADD, "ticket"),
            (Operation::Subscribe, op::EVENTS_SUBSCRIBE, ""),
            (
                deploy(PluginKind::Policy),
                op::PLUGIN_DEPLOY,
                "plugin/policy",
            ),
            (
                Operation::PluginRollback {
                    kind: PluginKind::StateMachine,
                },
                op::PLUGIN_ROLLBACK,
                "plugin/state-machine",
            ),
        ];
        for (operation, name, resource) in cases {
            assert!(op::ALL.contains(&name), "{name} is not in op::ALL");
            assert_eq!(operation.access(), fixed(name, resource), "{operation:?}");
        }
        let write = Operation::Write {
            command: Bytes::from_static(b"c"),
            session: None,
        };
        assert_eq!(write.access().operation(), op::DATA_WRITE);
        let read = Operation::Read {
            query: Bytes::from_static(b"q"),
            consistency: Consistency::Stale,
        };
        assert_eq!(
            read.access(),
            Access::Data {
                write: false,
                bytes: Bytes::from_static(b"q")
            }
        );
    }

    #[test]
    fn break_glass_reaches_only_status_health_and_the_policy() {
        assert!(break_glass(op::STATUS_READ, ""));
        assert!(break_glass(op::HEALTH_READ, ""));
        assert!(break_glass(op::PLUGIN_DEPLOY, "plugin/policy"));
        assert!(break_glass(op::PLUGIN_ROLLBACK, "plugin/policy"));
        assert!(!break_glass(op::PLUGIN_DEPLOY, "plugin/state-machine"));
        for name in [
            op::DATA_WRITE,
            op::DATA_READ,
            op::MEMBER_ADD,
            op::CONFIG_UPDATE,
            op::LOG_READ,
        ] {
            assert!(!break_glass(name, ""), "{name}");
        }
        assert!(member_may(op::STATUS_READ));
        assert!(!member_may(op::DATA_WRITE));
    }
}
