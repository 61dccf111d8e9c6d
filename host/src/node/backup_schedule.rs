//! Scheduled backups: while this node leads and the replicated configuration asks for them
//! (`backup_every_entries`, `backup_every_secs`), it takes a backup when one is due and then
//! deletes the oldest scheduled ones beyond `backup_keep`. Backups taken by hand are never
//! deleted. The decisions ([`due`], [`to_prune`]) are pure; [`run`] sequences them.

use std::sync::Arc;
use std::time::Duration;

use super::service::NodeService;
use crate::proto::{BackupInfo, ClusterConfig, RequestError};

/// How often the schedule is looked at.
const TICK: Duration = Duration::from_secs(1);

/// The last scheduled backup, as far as the schedule knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Last {
    pub(crate) index: u64,
    pub(crate) created_unix_ms: u64,
}

/// Whether a scheduled backup is due at applied index `applied` and time `now_unix_ms`.
pub(crate) fn due(
    config: &ClusterConfig,
    applied: u64,
    now_unix_ms: u64,
    last: Option<Last>,
) -> bool {
    let by_entries = config.backup_every_entries;
    let by_time = config.backup_every_secs;
    if by_entries == 0 && by_time == 0 {
        return false;
    }
    let Some(last) = last else {
        // None yet: take the first once there is something to back up.
        return applied > 0;
    };
    (by_entries > 0 && applied >= last.index.saturating_add(by_entries))
        || (by_time > 0
            && applied > last.index
            && now_unix_ms >= last.created_unix_ms.saturating_add(by_time * 1000))
}

/// The scheduled backups to delete so that the newest `keep` remain (`keep` 0: none).
pub(crate) fn to_prune(listed: &[BackupInfo], keep: u64) -> Vec<String> {
    if keep == 0 {
        return Vec::new();
    }
    let mut scheduled: Vec<&BackupInfo> = listed.iter().filter(|info| info.scheduled).collect();
    scheduled.sort_by_key(|info| (info.index, info.created_unix_ms));
    let excess = scheduled.len().saturating_sub(keep as usize);
    scheduled[..excess]
        .iter()
        .map(|info| info.id.clone())
        .collect()
}

/// The newest scheduled backup in `listed`.
pub(crate) fn last_of(listed: &[BackupInfo]) -> Option<Last> {
    listed
        .iter()
        .filter(|info| info.scheduled)
        .map(|info| Last {
            index: info.index,
            created_unix_ms: info.created_unix_ms.unwrap_or(0),
        })
        .max_by_key(|last| (last.index, last.created_unix_ms))
}

fn now_unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_millis() as u64)
}

/// Runs the schedule until the node stops.
pub(crate) async fn run(service: Arc<NodeService>) {
    // Read from the backup directory the first time a backup may be due while leading.
    let mut last: Option<Option<Last>> = None;
    let mut complaint = Complaint::default();
    loop {
        tokio::time::sleep(TICK).await;
        let config = service.config();
        let status = service.status();
        if status.leader != Some(service.node_id)
            || (config.backup_every_entries == 0 && config.backup_every_secs == 0)
        {
            last = None;
            continue;
        }
        let known = match last {
            Some(known) => known,
            None => match service.all_backups().await {
                Ok(listed) => *last.insert(last_of(&listed)),
                Err(error) => {
                    complaint.about(format!("scheduled backups cannot run: {error}"));
                    continue;
                }
            },
        };
        if !due(&config, status.applied.unwrap_or(0), now_unix_ms(), known) {
            continue;
        }
        match service.take_backup(Vec::new(), true).await {
            Ok(info) => {
                complaint = Complaint::default();
                last = Some(Some(Last {
                    index: info.index,
                    created_unix_ms: info.created_unix_ms.unwrap_or_else(now_unix_ms),
                }));
                if let Err(error) = prune(&service, config.backup_keep).await {
                    tracing::warn!("old scheduled backups were not deleted: {error}");
                }
            }
            // Tried again at the next tick; the same failure is logged once.
            Err(error) => complaint.about(format!("a scheduled backup failed: {error}")),
        }
    }
}

/// A failure that repeats every tick is logged as a warning once, then at debug level.
#[derive(Default)]
struct Complaint {
    last: Option<String>,
}

impl Complaint {
    fn about(&mut self, message: String) {
        if self.last.as_ref() == Some(&message) {
            tracing::debug!("{message}");
        } else {
            tracing::warn!("{message} (said once until it changes)");
            self.last = Some(message);
        }
    }
}

async fn prune(service: &NodeService, keep: u64) -> Result<(), RequestError> {
    let listed = service.all_backups().await?;
    for id in to_prune(&listed, keep) {
        service.delete_backup(id.clone()).await?;
        tracing::info!(backup = id, keep, "deleted an old scheduled backup");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(every_entries: u64, every_secs: u64) -> ClusterConfig {
        ClusterConfig {
            backup_every_entries: every_entries,
            backup_every_secs: every_secs,
            ..ClusterConfig::default()
        }
    }

    fn backup(id: &str, index: u64, scheduled: bool) -> BackupInfo {
        BackupInfo {
            id: id.into(),
            index,
            size: 1,
            sha256: [0; 32],
            state_hash: None,
            created_unix_ms: Some(index * 1000),
            handler: None,
            node_id: Some(1),
            pairs: None,
            scheduled,
            metadata: Vec::new(),
        }
    }

    #[test]
    fn a_backup_is_due_by_entries_or_by_time_and_never_when_nothing_changed() {
        let last = Some(Last {
            index: 100,
            created_unix_ms: 10_000,
        });
        assert!(!due(&config(0, 0), 500, 99_000, last));
        assert!(!due(&config(0, 0), 500, 99_000, None));
        assert!(due(&config(50, 0), 1, 0, None));
        assert!(!due(&config(50, 0), 0, 0, None));
        assert!(!due(&config(50, 0), 149, 0, last));
        assert!(due(&config(50, 0), 150, 0, last));
        assert!(!due(&config(0, 60), 101, 69_999, last));
        assert!(due(&config(0, 60), 101, 70_000, last));
        // Time passed but nothing was applied since: the last backup still holds it all.
        assert!(!due(&config(0, 60), 100, 1_000_000, last));
    }

    #[test]
    fn the_oldest_scheduled_backups_beyond_keep_are_pruned_and_manual_ones_never() {
        let listed = vec![
            backup("s1", 10, true),
            backup("m1", 15, false),
            backup("s2", 20, true),
            backup("s3", 30, true),
            backup("m2", 5, false),
        ];
        assert_eq!(to_prune(&listed, 2), vec!["s1".to_string()]);
        assert_eq!(
            to_prune(&listed, 1),
            vec!["s1".to_string(), "s2".to_string()]
        );
        assert!(to_prune(&listed, 3).is_empty());
        assert!(to_prune(&listed, 0).is_empty());
        assert_eq!(
            last_of(&listed),
            Some(Last {
                index: 30,
                created_unix_ms: 30_000
            })
        );
        assert_eq!(last_of(&[backup("m", 9, false)]), None);
    }
}
