//! [`WatchHub`]: the node's watchers, the index they are at, and the history's horizon. The state
//! store publishes every commit's changes here; a new watch registers here, atomically with
//! learning how much history it must read first.

use std::sync::{Arc, Mutex, PoisonError, Weak};

use super::WatchQueue;
use crate::proto::{RequestError, WatchEnd, WatchRequest, WatchStart};
use crate::store::EntryChanges;

/// The most changes one watcher's queue holds before the watch ends as fallen behind.
pub(crate) const QUEUE_MAX_CHANGES: usize = 8192;
/// The most bytes of keys and values one watcher's queue holds before the watch ends as fallen
/// behind.
pub(crate) const QUEUE_MAX_BYTES: usize = 8 << 20;

#[derive(Debug)]
struct HubState {
    /// The last index committed (and published).
    applied: u64,
    /// The oldest index whose changes the history holds.
    oldest: u64,
    /// How many indexes of history to keep (`watch_history`).
    retain: u64,
    queues: Vec<Weak<WatchQueue>>,
}

/// A watch just registered: its queue takes the changes after `start.applied`; the history holds
/// the ones from `start.from_index` up to it.
#[derive(Debug)]
pub(crate) struct Registration {
    /// The watcher's queue.
    pub(crate) queue: Arc<WatchQueue>,
    /// Where the watch begins.
    pub(crate) start: WatchStart,
}

/// The node's watchers.
#[derive(Debug)]
pub(crate) struct WatchHub {
    state: Mutex<HubState>,
}

/// The oldest index the history keeps once `applied` is committed: `retain` indexes back, never
/// less than it already is.
pub(crate) fn horizon_after(applied: u64, oldest: u64, retain: u64) -> u64 {
    oldest.max(applied.saturating_add(1).saturating_sub(retain))
}

impl WatchHub {
    /// A hub at applied index `applied`, with history from `oldest` on, keeping `retain` indexes.
    pub(crate) fn new(applied: u64, oldest: u64, retain: u64) -> Self {
        Self {
            state: Mutex::new(HubState {
                applied,
                oldest,
                retain,
                queues: Vec::new(),
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HubState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The oldest index whose changes the history holds.
    pub(crate) fn oldest(&self) -> u64 {
        self.lock().oldest
    }

    /// Keeps `retain` indexes of history from the next commit on.
    pub(crate) fn set_retain(&self, retain: u64) {
        self.lock().retain = retain;
    }

    /// Where the history should begin once `applied` is committed.
    pub(crate) fn horizon_after(&self, applied: u64) -> u64 {
        let state = self.lock();
        horizon_after(applied, state.oldest, state.retain)
    }

    /// The history is about to lose the indexes before `oldest`: raised before they go, so that
    /// a watch reading them finds out ([`Self::oldest`] after its read).
    pub(crate) fn raise_oldest(&self, oldest: u64) {
        let mut state = self.lock();
        state.oldest = state.oldest.max(oldest);
    }

    /// The entries up to `applied` are committed: every watcher takes its share of `entries`.
    pub(crate) fn publish(&self, applied: u64, entries: &[EntryChanges]) {
        let mut state = self.lock();
        state.applied = state.applied.max(applied);
        state.queues.retain(|queue| match queue.upgrade() {
            Some(queue) => {
                queue.offer(entries);
                !queue.ended()
            }
            None => false,
        });
    }

    /// The data was replaced at `at` (a snapshot install or a restore): no change before it can
    /// be sent, so every watch ends.
    pub(crate) fn replaced(&self, at: u64) {
        let mut state = self.lock();
        state.applied = at;
        state.oldest = at.saturating_add(1);
        for queue in state.queues.drain(..).filter_map(|queue| queue.upgrade()) {
            queue.end(WatchEnd::Replaced { at });
        }
    }

    /// Registers a watch for `request` (from its index, or from the next one applied). Refused
    /// when the history no longer holds that index.
    pub(crate) fn register(
        &self,
        request: WatchRequest,
        max_changes: usize,
        max_bytes: usize,
    ) -> Result<Registration, RequestError> {
        let mut state = self.lock();
        let from_index = request
            .from_index
            .unwrap_or(state.applied.saturating_add(1));
        if from_index < state.oldest {
            return Err(RequestError::Compacted {
                requested: from_index,
                oldest: state.oldest,
            });
        }
        let start = WatchStart {
            from_index,
            oldest: state.oldest,
            applied: state.applied,
        };
        // The queue takes what is committed from now on; the history holds the rest.
        let live_from = from_index.max(state.applied.saturating_add(1));
        let queue = Arc::new(WatchQueue::new(request, live_from, max_changes, max_bytes));
        state.queues.push(Arc::downgrade(&queue));
        Ok(Registration { queue, start })
    }

    /// How many watches are open.
    #[cfg(test)]
    pub(crate) fn watchers(&self) -> usize {
        self.lock()
            .queues
            .iter()
            .filter(|queue| queue.strong_count() > 0)
            .count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Change;
    use crate::watch::queue::Watched;

    fn put(index: u64, key: &str) -> EntryChanges {
        EntryChanges {
            index,
            changes: vec![Change {
                key: key.as_bytes().to_vec(),
                value: Some(b"v".to_vec()),
            }],
        }
    }

    #[test]
    fn the_horizon_keeps_retain_indexes_and_never_moves_back() {
        assert_eq!(horizon_after(100, 1, 10), 91);
        assert_eq!(horizon_after(5, 1, 10), 1);
        assert_eq!(horizon_after(100, 95, 10), 95);
        // No history at all: only what comes next.
        assert_eq!(horizon_after(100, 1, 0), 101);
        assert_eq!(horizon_after(u64::MAX, 1, 0), u64::MAX);
    }

    #[test]
    fn a_watch_from_before_the_horizon_is_refused_with_the_oldest_index() {
        let hub = WatchHub::new(50, 20, 100);
        let refused = hub
            .register(WatchRequest::prefix("", Some(19)), 10, 100)
            .unwrap_err();
        assert_eq!(
            refused,
            RequestError::Compacted {
                requested: 19,
                oldest: 20
            }
        );
        assert!(
            refused
                .to_string()
                .contains("keeps changes only from index 20")
        );
        let from_oldest = hub
            .register(WatchRequest::prefix("", Some(20)), 10, 100)
            .unwrap();
        assert_eq!(
            from_oldest.start,
            WatchStart {
                from_index: 20,
                oldest: 20,
                applied: 50
            }
        );
        // Live changes start after the applied index; 20..=50 come from the history.
        assert_eq!(from_oldest.queue.first_index(), 51);
        let now = hub
            .register(WatchRequest::prefix("", None), 10, 100)
            .unwrap();
        assert_eq!(now.start.from_index, 51);
    }

    #[test]
    fn published_changes_reach_the_watchers_that_asked_and_dropped_watches_are_forgotten() {
        let hub = WatchHub::new(0, 1, 100);
        let a = hub
            .register(WatchRequest::prefix("a", None), 10, 100)
            .unwrap();
        let b = hub
            .register(WatchRequest::prefix("b", None), 10, 100)
            .unwrap();
        hub.publish(1, &[put(1, "a1"), put(1, "b1")]);
        assert!(
            matches!(a.queue.try_take(100), Some(Watched::Changes(c)) if c.len() == 1 && &c[0].key[..] == b"a1")
        );
        drop(b);
        hub.publish(2, &[put(2, "b2")]);
        assert_eq!(hub.watchers(), 1);
        hub.replaced(9);
        assert_eq!(
            a.queue.try_take(100),
            Some(Watched::End(WatchEnd::Replaced { at: 9 }))
        );
        assert_eq!(hub.oldest(), 10);
        assert_eq!(hub.watchers(), 0);
    }
}
