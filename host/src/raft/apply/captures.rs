//! [`StateCaptures`]: the views of its own state a replica keeps so that its state hash at an
//! applied index can be computed later, exactly — the capture points.
//!
//! A capture is a fjall snapshot (an MVCC view: cheap to take, nothing copied) taken right after
//! the commit that made the applied index exactly *i*, under the apply lock, so no later commit is
//! in it. Two kinds are kept:
//!
//! - every check point (a multiple of the replicated `check_every`; `check_points.rs` splits apply
//!   calls so that the state there is committed on its own), the last [`KEEP_CHECK_POINTS`];
//! - the end of the most recent apply call (or the state opened or installed from a snapshot), so
//!   that a quiet cluster, where every replica ends at the committed index, has a common point.
//!
//! The hash is computed lazily, on a blocking thread and outside the apply lock, and cached. A
//! kept view pins the versions it sees from fjall's compaction, which is why only a few are kept.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::watch;

use crate::raft::RaftStorageError;
use crate::raft::apply::applied_state::AppliedState;
use crate::raft::apply::check_points::is_check_point;
use crate::raft::apply::state_hash::state_hash;
use crate::store::{FjallStateStore, StateExport};

/// How many check points a replica keeps views of (besides the end of its last apply).
pub(crate) const KEEP_CHECK_POINTS: usize = 3;

/// How many entries a backup waits for to reach a check point (see
/// [`StateCaptures::backup_point`]).
pub(crate) const BACKUP_CHECK_WAIT: u64 = 10_000;

/// A view taken right after a commit.
pub(crate) struct Taken {
    /// The applied index of the committed state.
    pub(crate) index: u64,
    /// Whether the index is a check point.
    pub(crate) check: bool,
    /// The state right after the commit.
    pub(crate) view: StateExport,
    /// Its state hash, when the commit computed it already (a restore does).
    pub(crate) hash: Option<[u8; 32]>,
}

/// A view of the state `store` holds now, which `applied` describes (`None`: nothing applied).
pub(crate) fn take(
    store: &FjallStateStore,
    applied: &AppliedState,
) -> Result<Option<Taken>, RaftStorageError> {
    let Some(last) = applied.last_applied else {
        return Ok(None);
    };
    Ok(Some(Taken {
        index: last.index,
        check: is_check_point(last.index, applied.config.check_every),
        view: store.export()?,
        hash: None,
    }))
}

/// Why a state hash cannot be given.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum CaptureError {
    /// No view of the state at that index is kept.
    #[error("no state capture at index {index}; held: {held:?}, applied {applied:?}")]
    NotHeld {
        index: u64,
        held: Vec<u64>,
        applied: Option<u64>,
    },
    /// Reading the view failed.
    #[error(transparent)]
    Storage(#[from] RaftStorageError),
}

pub(crate) struct Capture {
    index: u64,
    view: StateExport,
    /// The hash once computed; locked while computing, so concurrent askers compute it once.
    hash: Mutex<Option<[u8; 32]>>,
}

impl Capture {
    /// The applied index the view holds the state at.
    pub(crate) fn index(&self) -> u64 {
        self.index
    }

    /// The view.
    pub(crate) fn view(&self) -> &StateExport {
        &self.view
    }

    /// The state hash at [`Capture::index`], computed once.
    pub(crate) fn hash(&self) -> Result<[u8; 32], RaftStorageError> {
        let mut cached = self.hash.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(hash) = *cached {
            return Ok(hash);
        }
        let hash = state_hash(&self.view, self.index)?;
        *cached = Some(hash);
        Ok(hash)
    }
}

/// The views kept; the retention rule, free of locks and threads.
#[derive(Default)]
struct Held {
    checks: BTreeMap<u64, Arc<Capture>>,
    latest: Option<Arc<Capture>>,
}

impl Held {
    /// Adds the views one apply call took, in log order; the last is the end of the call.
    fn add(&mut self, taken: Vec<Taken>) {
        for taken in taken {
            let check = taken.check;
            let capture = Arc::new(Capture {
                index: taken.index,
                view: taken.view,
                hash: Mutex::new(taken.hash),
            });
            if check {
                self.checks.insert(capture.index, capture.clone());
                while self.checks.len() > KEEP_CHECK_POINTS {
                    self.checks.pop_first();
                }
            }
            self.latest = Some(capture);
        }
    }

    fn indexes(&self) -> Vec<u64> {
        let mut indexes: Vec<u64> = self.checks.keys().copied().collect();
        if let Some(latest) = &self.latest
            && !self.checks.contains_key(&latest.index)
        {
            indexes.push(latest.index);
            indexes.sort_unstable();
        }
        indexes
    }

    fn get(&self, index: u64) -> Option<Arc<Capture>> {
        self.checks
            .get(&index)
            .or(self.latest.as_ref().filter(|latest| latest.index == index))
            .cloned()
    }
}

/// A replica's capture points. Shared by every clone of the state machine.
pub(crate) struct StateCaptures {
    held: Mutex<Held>,
    /// The index of the latest capture: where the state machine stands.
    applied: watch::Sender<Option<u64>>,
    /// The newest check point captured.
    checks: watch::Sender<Option<u64>>,
}

impl Default for StateCaptures {
    fn default() -> Self {
        Self {
            held: Mutex::default(),
            applied: watch::Sender::new(None),
            checks: watch::Sender::new(None),
        }
    }
}

impl StateCaptures {
    /// Keeps the views an apply call took (in log order; the last is where it ended).
    pub(crate) fn record(&self, taken: Vec<Taken>) {
        let newest_check = taken.iter().rev().find(|t| t.check).map(|t| t.index);
        let end = taken.last().map(|t| t.index);
        self.lock().add(taken);
        if let Some(end) = end {
            self.applied.send_replace(Some(end));
        }
        if let Some(check) = newest_check {
            self.checks.send_replace(Some(check));
        }
    }

    /// Drops every view and keeps `taken` alone: the state was replaced (a snapshot install or a
    /// restore), and
    /// the views before it may read a data generation that no longer exists.
    pub(crate) fn reset(&self, taken: Vec<Taken>) {
        *self.lock() = Held::default();
        self.record(taken);
    }

    /// Where the state machine stands and the indexes it can hash, ascending.
    pub(crate) fn points(&self) -> (Option<u64>, Vec<u64>) {
        (*self.applied.borrow(), self.lock().indexes())
    }

    /// The newest check point captured, updated as they are reached.
    pub(crate) fn check_points(&self) -> watch::Receiver<Option<u64>> {
        self.checks.subscribe()
    }

    /// The state hash at `index`, waiting up to `wait` for the state machine to reach it. The
    /// hash is computed (once) on a blocking thread.
    pub(crate) async fn hash_at(
        &self,
        index: u64,
        wait: Duration,
    ) -> Result<[u8; 32], CaptureError> {
        let mut applied = self.applied.subscribe();
        // Timing out is not an error here: the answer below says what is held instead.
        let _ = tokio::time::timeout(
            wait,
            applied.wait_for(|at| at.is_some_and(|at| at >= index)),
        )
        .await;
        let Some(capture) = self.lock().get(index) else {
            let (applied, held) = self.points();
            return Err(CaptureError::NotHeld {
                index,
                held,
                applied,
            });
        };
        Ok(tokio::task::spawn_blocking(move || capture.hash())
            .await
            .map_err(RaftStorageError::from)??)
    }

    /// The capture a backup of the state at `from` (or later) is written from. Every replica
    /// keeps its check points, so the first check point at or after `from` is preferred: then any
    /// replica's state hash at the backup's index can be compared with the backup's. It is waited
    /// for while entries keep being applied, for at most `limit`, and only if it is at most
    /// [`BACKUP_CHECK_WAIT`] entries away under the interval `check_every`; otherwise (or once the
    /// applied index stood still for `settle`) the end of the latest apply is taken.
    pub(crate) async fn backup_point(
        &self,
        from: u64,
        check_every: u64,
        settle: Duration,
        limit: Duration,
    ) -> Option<Arc<Capture>> {
        let worth_waiting = check_every > 0
            && from.next_multiple_of(check_every).saturating_sub(from) <= BACKUP_CHECK_WAIT;
        let deadline = tokio::time::Instant::now() + limit;
        let mut applied = self.applied.subscribe();
        loop {
            if let Some((_, capture)) = self.lock().checks.range(from..).next() {
                return Some(capture.clone());
            }
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let moved = worth_waiting
                && matches!(
                    tokio::time::timeout(settle.min(left), applied.changed()).await,
                    Ok(Ok(()))
                );
            if !moved {
                return self
                    .lock()
                    .latest
                    .clone()
                    .filter(|latest| latest.index >= from);
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Held> {
        // The views stay valid whatever panicked while the lock was held.
        self.held.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{AppliedMark, FjallStateStore, StateStore, WriteSet};

    fn view(store: &FjallStateStore, index: u64) -> StateExport {
        store
            .commit(
                WriteSet::default(),
                Vec::new(),
                &AppliedMark {
                    index,
                    extra: Vec::new(),
                },
            )
            .expect("commit");
        store.export().expect("export")
    }

    fn taken(store: &FjallStateStore, index: u64, every: u64) -> Taken {
        Taken {
            index,
            check: crate::raft::apply::check_points::is_check_point(index, every),
            view: view(store, index),
            hash: None,
        }
    }

    #[test]
    fn the_last_check_points_and_the_end_of_the_last_apply_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let db = fjall::Database::builder(dir.path()).open().unwrap();
        let store = FjallStateStore::open(&db, "kv", None).unwrap();
        let captures = StateCaptures::default();
        assert_eq!(captures.points(), (None, vec![]));
        // Calls ending at 3, 7 (check at 5), 10 (a check itself), 17 (check at 15), 20.
        captures.record(vec![taken(&store, 3, 5)]);
        assert_eq!(captures.points(), (Some(3), vec![3]));
        captures.record(vec![taken(&store, 5, 5), taken(&store, 7, 5)]);
        assert_eq!(captures.points(), (Some(7), vec![5, 7]));
        captures.record(vec![taken(&store, 10, 5)]);
        assert_eq!(captures.points(), (Some(10), vec![5, 10]));
        captures.record(vec![taken(&store, 15, 5), taken(&store, 17, 5)]);
        assert_eq!(captures.points(), (Some(17), vec![5, 10, 15, 17]));
        captures.record(vec![taken(&store, 20, 5), taken(&store, 21, 5)]);
        assert_eq!(captures.points(), (Some(21), vec![10, 15, 20, 21]));
        assert_eq!(*captures.check_points().borrow(), Some(20));
        captures.reset(vec![taken(&store, 40, 5)]);
        assert_eq!(captures.points(), (Some(40), vec![40]));
    }
}
