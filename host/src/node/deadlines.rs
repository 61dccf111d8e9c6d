//! How long the node gives each management operation, end to end, forwarding included.

use std::time::Duration;

use crate::proto::Operation;

/// How long most requests may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How long requests that wait for a member to catch up, a snapshot, a migration or a backup
/// may take.
const LONG_REQUEST_TIMEOUT: Duration = Duration::from_secs(120);

/// The deadline of `operation`.
pub(crate) fn timeout_for(operation: &Operation) -> Duration {
    use Operation::*;
    match operation {
        AddMember { .. } | RemoveMember { .. } | UpdateMemberRole { .. } | TriggerSnapshot => {
            LONG_REQUEST_TIMEOUT
        }
        PluginDeploy(_) | PluginRollback { .. } => LONG_REQUEST_TIMEOUT, // waits for `migrate`
        CreateBackup { .. } | RestoreBackup { .. } => LONG_REQUEST_TIMEOUT,
        _ => REQUEST_TIMEOUT,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operations_that_wait_for_long_work_get_the_long_deadline() {
        assert_eq!(
            timeout_for(&Operation::TriggerSnapshot),
            LONG_REQUEST_TIMEOUT
        );
        assert_eq!(
            timeout_for(&Operation::RestoreBackup {
                backup_id: "b-1".into()
            }),
            LONG_REQUEST_TIMEOUT
        );
        assert_eq!(timeout_for(&Operation::Status), REQUEST_TIMEOUT);
    }
}
