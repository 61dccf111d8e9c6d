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
/// The longest wait after failed scheduled backups (the wait doubles from one tick).
const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// How long to wait after `failures` scheduled backups in a row failed.
pub(crate) fn backoff(failures: u32) -> Duration {
    TICK.saturating_mul(1u32 << failures.min(16))
        .min(MAX_BACKOFF)
}

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

/// Whether `info` is a scheduled backup of cluster `cluster`: the schedule touches no other (a
/// backup directory may hold those of the cluster a restored one came from, at other indexes).
fn ours(info: &BackupInfo, cluster: &[u8; 16]) -> bool {
    info.scheduled && info.cluster_id.as_ref() == Some(cluster)
}

/// The scheduled backups of `cluster` to delete so that its newest `keep` remain (`keep` 0:
/// none).
pub(crate) fn to_prune(listed: &[BackupInfo], cluster: &[u8; 16], keep: u64) -> Vec<String> {
    if keep == 0 {
        return Vec::new();
    }
    let mut scheduled: Vec<&BackupInfo> =
        listed.iter().filter(|info| ours(info, cluster)).collect();
    scheduled.sort_by_key(|info| (info.index, info.created_unix_ms));
    let excess = scheduled.len().saturating_sub(keep as usize);
    scheduled[..excess]
        .iter()
        .map(|info| info.id.clone())
        .collect()
}

/// The newest scheduled backup of `cluster` in `listed`.
pub(crate) fn last_of(listed: &[BackupInfo], cluster: &[u8; 16]) -> Option<Last> {
    listed
        .iter()
        .filter(|info| ours(info, cluster))
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
    let mut failures = 0u32;
    loop {
        // Each attempt writes a whole image: a failing one is not retried every second.
        tokio::time::sleep(if failures == 0 {
            TICK
        } else {
            backoff(failures)
        })
        .await;
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
                Ok(listed) => *last.insert(last_of(&listed, &service.cluster_id)),
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
                failures = 0;
                last = Some(Some(Last {
                    index: info.index,
                    created_unix_ms: info.created_unix_ms.unwrap_or_else(now_unix_ms),
                }));
                if let Err(error) = prune(&service, config.backup_keep).await {
                    tracing::warn!("old scheduled backups were not deleted: {error}");
                }
            }
            // Tried again after a growing wait; the same failure is logged once.
            Err(error) => {
                failures = failures.saturating_add(1);
                complaint.about(format!(
                    "a scheduled backup failed: {error}; trying again in {:?}",
                    backoff(failures)
                ));
            }
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
    for id in to_prune(&listed, &service.cluster_id, keep) {
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
            cluster_id: Some([1; 16]),
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
    fn failed_scheduled_backups_back_off_to_five_minutes() {
        assert_eq!(backoff(1), Duration::from_secs(2));
        assert_eq!(backoff(3), Duration::from_secs(8));
        assert_eq!(backoff(40), MAX_BACKOFF);
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
        let us = [1; 16];
        assert_eq!(to_prune(&listed, &us, 2), vec!["s1".to_string()]);
        assert_eq!(
            to_prune(&listed, &us, 1),
            vec!["s1".to_string(), "s2".to_string()]
        );
        assert!(to_prune(&listed, &us, 3).is_empty());
        assert!(to_prune(&listed, &us, 0).is_empty());
        assert_eq!(
            last_of(&listed, &us),
            Some(Last {
                index: 30,
                created_unix_ms: 30_000
            })
        );
        assert_eq!(last_of(&[backup("m", 9, false)], &us), None);
    }

    #[test]
    fn bug_a_restored_cluster_s_schedule_pruned_by_the_old_cluster_s_higher_indexes() {
        // The old cluster's scheduled backups sit at high indexes in the shared directory; the
        // restored cluster starts near 0. Only its own count.
        let mut old = backup("old", 50_000, true);
        old.cluster_id = Some([9; 16]);
        let listed = vec![old, backup("new-1", 10, true), backup("new-2", 20, true)];
        let us = [1; 16];
        assert_eq!(to_prune(&listed, &us, 1), vec!["new-1".to_string()]);
        assert_eq!(last_of(&listed, &us).map(|last| last.index), Some(20));
    }
}
