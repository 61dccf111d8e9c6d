//! What a node does on its own, following the replicated configuration as it applies: leader
//! heartbeats at the configured interval, a snapshot every `snapshot_every` entries, purging the
//! log behind a snapshot down to `keep_after_snapshot` entries, and the frame limits.

use openraft::async_runtime::WatchReceiver;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use super::inspect::View;
use super::raft_core::{self, CoreFactory};
use crate::proto::ClusterConfig;
use crate::raft::{SharedRaft, StateMachineStore};

/// What to ask of raft now, decided from a view and the configuration.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Chores {
    pub(crate) snapshot: bool,
    pub(crate) purge_upto: Option<u64>,
}

/// Decides the chores; `snapshot_pending` says a requested snapshot has not finished yet.
pub(crate) fn chores(view: &View, config: &ClusterConfig, snapshot_pending: bool) -> Chores {
    let applied = view.applied.unwrap_or(0);
    let snapshot_at = view.snapshot.unwrap_or(0);
    let snapshot = config.snapshot_every > 0
        && !snapshot_pending
        && applied.saturating_sub(snapshot_at) >= config.snapshot_every;
    let purge_upto = view
        .snapshot
        .and_then(|at| at.checked_sub(config.keep_after_snapshot))
        .filter(|upto| view.purged.is_none_or(|purged| *upto > purged) && *upto > 0);
    Chores {
        snapshot,
        purge_upto,
    }
}

/// The configuration a node runs: the replicated one once the cluster has one (version 1 on), else
/// the node's own settings (`local`, from its flags).
pub(crate) fn effective<'a>(
    replicated: &'a ClusterConfig,
    local: &'a ClusterConfig,
) -> &'a ClusterConfig {
    if replicated.version > 0 {
        replicated
    } else {
        local
    }
}

/// The heartbeat interval to use: the replicated one, but at most a third of the election timeout
/// the running raft core's followers use.
pub(crate) fn heartbeat_interval(
    config: &ClusterConfig,
    running_election_min: Duration,
) -> Duration {
    config.heartbeat().min(running_election_min / 3)
}

/// The least time between two decisions prompted by metric changes.
const COALESCE: Duration = Duration::from_millis(5);

/// How long a requested snapshot may take before another is requested.
const SNAPSHOT_PATIENCE: Duration = Duration::from_secs(30);

/// Runs the chores until the node stops (or its raft core fails).
pub(crate) async fn run(
    shared: SharedRaft<StateMachineStore>,
    factory: CoreFactory,
    state_machine: StateMachineStore,
    management_frame: Arc<AtomicUsize>,
    raft_frame: Arc<AtomicUsize>,
    local: ClusterConfig,
) {
    let mut config = state_machine.config();
    let mut raft = shared.get();
    let mut metrics = raft.metrics();
    // Heartbeats follow the replicated interval, so openraft's fixed-interval ones are off.
    raft.runtime_config().heartbeat(false);
    let mut next_heartbeat = Instant::now();
    let mut snapshot_requested: Option<(Instant, Option<u64>)> = None;
    let mut purge_requested: Option<u64> = None;
    loop {
        let settings = effective(&config.borrow_and_update(), &local).clone();
        management_frame.store(settings.max_management_frame as usize, Ordering::Relaxed);
        raft_frame.store(settings.max_raft_frame as usize, Ordering::Relaxed);
        if raft_core::election_changed(raft.config(), &settings) && !shared.is_stopping() {
            match raft_core::restart(&shared, &factory, &settings).await {
                Ok(core) => {
                    raft = core;
                    metrics = raft.metrics();
                    raft.runtime_config().heartbeat(false);
                    continue;
                }
                Err(error) => {
                    tracing::error!("the raft core could not be restarted: {error}");
                    return;
                }
            }
        }
        // Never heartbeat slower than the running core's followers wait.
        let running_election_min = Duration::from_millis(raft.config().election_timeout_min);
        let view = View::of(&raft);
        if !view.running {
            return;
        }
        if view.is_leader() && Instant::now() >= next_heartbeat {
            if raft.trigger().heartbeat().await.is_err() {
                return;
            }
            next_heartbeat = Instant::now() + heartbeat_interval(&settings, running_election_min);
        }
        let pending = snapshot_requested
            .is_some_and(|(at, from)| view.snapshot == from && at.elapsed() < SNAPSHOT_PATIENCE);
        let chores = chores(&view, &settings, pending);
        if chores.snapshot {
            if raft.trigger().snapshot().await.is_err() {
                return;
            }
            snapshot_requested = Some((Instant::now(), view.snapshot));
        }
        if let Some(upto) = chores.purge_upto
            && purge_requested != Some(upto)
        {
            if raft.trigger().purge_log(upto).await.is_err() {
                return;
            }
            purge_requested = Some(upto);
        }
        let wait = if view.is_leader() {
            next_heartbeat.saturating_duration_since(Instant::now())
        } else {
            heartbeat_interval(&settings, running_election_min)
        };
        tokio::select! {
            changed = metrics.changed() => {
                if changed.is_err() {
                    return;
                }
                // The metrics change with every apply under load: decide at most every few
                // milliseconds, never past the next heartbeat.
                tokio::time::sleep(wait.min(COALESCE)).await;
            }
            _ = config.changed() => {}
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(applied: u64, snapshot: Option<u64>, purged: Option<u64>) -> View {
        View {
            applied: Some(applied),
            snapshot,
            purged,
            ..View::default()
        }
    }

    fn config(every: u64, keep: u64) -> ClusterConfig {
        ClusterConfig {
            snapshot_every: every,
            keep_after_snapshot: keep,
            ..ClusterConfig::default()
        }
    }

    #[test]
    fn a_snapshot_is_due_every_n_entries_and_not_while_one_is_pending() {
        assert!(chores(&view(100, None, None), &config(100, 10), false).snapshot);
        assert!(!chores(&view(99, None, None), &config(100, 10), false).snapshot);
        assert!(!chores(&view(250, Some(200), None), &config(100, 10), false).snapshot);
        assert!(chores(&view(300, Some(200), None), &config(100, 10), false).snapshot);
        assert!(!chores(&view(300, Some(200), None), &config(100, 10), true).snapshot);
        assert!(
            !chores(&view(10_000, None, None), &config(0, 10), false).snapshot,
            "0 is never"
        );
    }

    #[test]
    fn heartbeats_never_outlast_the_running_election_timeout() {
        let mut config = config(100, 10);
        config.heartbeat_interval_ms = 50;
        assert_eq!(
            heartbeat_interval(&config, Duration::from_millis(600)),
            Duration::from_millis(50)
        );
        config.heartbeat_interval_ms = 400;
        assert_eq!(
            heartbeat_interval(&config, Duration::from_millis(600)),
            Duration::from_millis(200)
        );
    }

    #[test]
    fn the_log_is_purged_behind_the_snapshot_keeping_some() {
        assert_eq!(
            chores(&view(300, Some(200), None), &config(100, 10), false).purge_upto,
            Some(190)
        );
        assert_eq!(
            chores(&view(300, Some(200), Some(190)), &config(100, 10), false).purge_upto,
            None
        );
        assert_eq!(
            chores(&view(300, Some(5), None), &config(100, 10), false).purge_upto,
            None
        );
        assert_eq!(
            chores(&view(300, None, None), &config(100, 10), false).purge_upto,
            None
        );
    }
}
