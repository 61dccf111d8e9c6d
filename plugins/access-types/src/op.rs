//! The operation names the host authorizes, one per kind of request. A policy sees exactly these
//! strings as `request.operation`; [`ALL`] lists them.
//!
//! Data requests (`data.*`) carry a resource from [`crate::resource`]; management requests carry
//! whatever the host names as their target (e.g. `member/3`), or an empty string.

/// Application writes: commands proposed to the state machine. The resource names what the
/// command writes (`key/…`, `prefix/…`), or `state-machine` when the plugin cannot narrow it.
pub const DATA_WRITE: &str = "data.write";
/// Application reads: queries to the state machine, named like [`DATA_WRITE`]'s resources.
pub const DATA_READ: &str = "data.read";
/// Adding a node to the cluster, as a learner or a voter.
pub const MEMBER_ADD: &str = "member.add";
/// Removing a node from the cluster.
pub const MEMBER_REMOVE: &str = "member.remove";
/// Changing a member's role (voter or learner).
pub const MEMBER_ROLE: &str = "member.role";
/// Transferring leadership to another node, or stepping down.
pub const LEADER_TRANSFER: &str = "leader.transfer";
/// Reading the cluster's replicated configuration.
pub const CONFIG_READ: &str = "config.read";
/// Changing the cluster's replicated configuration.
pub const CONFIG_UPDATE: &str = "config.update";
/// Reading log entries, which expose every command ever written (so every key and value).
pub const LOG_READ: &str = "log.read";
/// Compacting (purging) the log up to an index.
pub const LOG_COMPACT: &str = "log.compact";
/// Triggering a snapshot.
pub const SNAPSHOT_TRIGGER: &str = "snapshot.trigger";
/// Creating a backup through the backup handler.
pub const BACKUP_CREATE: &str = "backup.create";
/// Restoring the cluster's state from a backup, replacing the whole keyspace.
pub const BACKUP_RESTORE: &str = "backup.restore";
/// Listing the backups the backup handler holds.
pub const BACKUP_LIST: &str = "backup.list";
/// Deploying a plugin (state machine, policy, backup handler), which changes what every replica
/// runs and, for a policy, who may do what.
pub const PLUGIN_DEPLOY: &str = "plugin.deploy";
/// Rolling a plugin back to its previous version.
pub const PLUGIN_ROLLBACK: &str = "plugin.rollback";
/// Subscribing to the cluster's event stream (leader and membership changes, applied entries).
pub const EVENTS_SUBSCRIBE: &str = "events.subscribe";
/// Reading the node's metrics.
pub const METRICS_READ: &str = "metrics.read";
/// Reading status: node status, cluster status, log info, snapshot info, the plugin list and state
/// hashes. None of it exposes keys or values.
pub const STATUS_READ: &str = "status.read";
/// The health check.
pub const HEALTH_READ: &str = "health.read";

/// Every operation name, in the order above.
pub const ALL: &[&str] = &[
    DATA_WRITE,
    DATA_READ,
    MEMBER_ADD,
    MEMBER_REMOVE,
    MEMBER_ROLE,
    LEADER_TRANSFER,
    CONFIG_READ,
    CONFIG_UPDATE,
    LOG_READ,
    LOG_COMPACT,
    SNAPSHOT_TRIGGER,
    BACKUP_CREATE,
    BACKUP_RESTORE,
    BACKUP_LIST,
    PLUGIN_DEPLOY,
    PLUGIN_ROLLBACK,
    EVENTS_SUBSCRIBE,
    METRICS_READ,
    STATUS_READ,
    HEALTH_READ,
];

/// Whether `name` is one of [`ALL`].
pub fn is_known(name: &str) -> bool {
    ALL.contains(&name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::collections::BTreeSet;

    #[test]
    fn names_are_distinct_and_dotted() {
        let distinct: BTreeSet<_> = ALL.iter().collect();
        assert_eq!(distinct.len(), ALL.len());
        assert_eq!(ALL.len(), 20);
        for name in ALL {
            let (area, verb) = name.split_once('.').expect("area.verb");
            assert!(!area.is_empty() && !verb.is_empty(), "{name}");
            assert!(is_known(name));
        }
        assert!(!is_known("data"));
    }
}
