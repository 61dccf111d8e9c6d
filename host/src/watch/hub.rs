//! [`WatchHub`]: the node's watchers, the index they are at, and the history's horizon. The state
//! store publishes every commit's changes here; a new watch registers here, atomically with
//! learning how much history it must read first.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};

use super::WatchQueue;
use crate::proto::{RequestError, WatchChange, WatchEnd, WatchRequest, WatchStart};
use crate::store::EntryChanges;

/// The most changes one watcher's queue holds before the watch ends as fallen behind.
pub(crate) const QUEUE_MAX_CHANGES: usize = 8192;
/// The most bytes of keys and values one watcher's queue holds before the watch ends as fallen
/// behind.
pub(crate) const QUEUE_MAX_BYTES: usize = 8 << 20;
/// The most bytes all the watchers' queues of a node hold together: past it, the queue holding
/// the most is emptied and its watch ended as fallen behind, until they are within it again.
pub(crate) const NODE_QUEUE_MAX_BYTES: usize = 256 << 20;
/// The most watches one node serves at once.
pub(crate) const MAX_WATCHES: usize = 1024;

#[derive(Debug)]
struct HubState {
    /// The last index committed (and published).
    applied: u64,
    /// The oldest index whose changes the history holds.
    oldest: u64,
    /// How many indexes of history to keep (`watch_history`).
    retain: u64,
    queues: Vec<Weak<WatchQueue>>,
    /// The bytes every queue holds, together.
    queued: Arc<AtomicUsize>,
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
                queued: Arc::default(),
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
    /// Each change some watcher wants is copied once, and shared by all of them; then, while the
    /// queues hold more than [`NODE_QUEUE_MAX_BYTES`] together, the largest one is shed.
    pub(crate) fn publish(&self, applied: u64, entries: &[EntryChanges]) {
        let mut state = self.lock();
        state.applied = state.applied.max(applied);
        let live: Vec<Arc<WatchQueue>> = state.queues.iter().filter_map(Weak::upgrade).collect();
        if !live.is_empty() {
            let shared: Vec<Vec<WatchChange>> = entries
                .iter()
                .map(|entry| {
                    entry
                        .changes
                        .iter()
                        .filter(|change| live.iter().any(|q| q.wants(entry.index, &change.key)))
                        .map(|change| WatchChange {
                            index: entry.index,
                            key: change.key.clone(),
                            value: change.value.clone(),
                        })
                        .collect::<Vec<_>>()
                })
                .filter(|changes| !changes.is_empty())
                .collect();
            for queue in &live {
                queue.offer(&shared);
            }
            while state.queued.load(Ordering::Relaxed) > NODE_QUEUE_MAX_BYTES {
                let largest = live.iter().max_by_key(|queue| queue.queued_bytes());
                if largest.is_none_or(|queue| queue.shed() == 0) {
                    break;
                }
            }
        }
        state
            .queues
            .retain(|queue| queue.upgrade().is_some_and(|queue| !queue.ended()));
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

    /// The node was removed from its cluster: every watch ends, saying so.
    pub(crate) fn removed(&self) {
        let mut state = self.lock();
        for queue in state.queues.drain(..).filter_map(|queue| queue.upgrade()) {
            queue.end(WatchEnd::Removed);
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
        state.queues.retain(|queue| queue.strong_count() > 0);
        if state.queues.len() >= MAX_WATCHES {
            return Err(RequestError::Refused(format!(
                "this node already serves {MAX_WATCHES} watches, the most it serves at once; \
                 close some, or watch through another member"
            )));
        }
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
        let queue = Arc::new(WatchQueue::new(
            request,
            live_from,
            (max_changes, max_bytes),
            state.queued.clone(),
        ));
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
    use bytes::Bytes;

    fn put(index: u64, key: &str) -> EntryChanges {
        EntryChanges {
            index,
            changes: vec![Change {
                key: Bytes::copy_from_slice(key.as_bytes()),
                value: Some(Bytes::from_static(b"v")),
            }],
        }
    }

    #[test]
    fn past_the_node_budget_the_largest_queue_is_shed_and_a_prompt_reader_keeps_up() {
        let hub = WatchHub::new(0, 1, 100);
        let hog = hub
            .register(WatchRequest::prefix("", None), 1 << 20, usize::MAX)
            .unwrap();
        let prompt = hub
            .register(WatchRequest::prefix("", None), 1 << 20, usize::MAX)
            .unwrap();
        let value = Bytes::from(vec![0u8; 1 << 20]);
        let big = |index: u64| EntryChanges {
            index,
            changes: vec![Change {
                key: Bytes::from_static(b"k"),
                value: Some(value.clone()),
            }],
        };
        // Both queue 1 MiB per entry; the prompt reader takes each at once, the hog never does.
        let mut index = 0;
        while !hog.queue.ended() {
            index += 1;
            hub.publish(index, &[big(index)]);
            assert!(matches!(
                prompt.queue.try_take(usize::MAX),
                Some(Watched::Changes(_))
            ));
            assert!(index < 1000, "the hog was never shed");
        }
        // Shed at the first entry that took the two queues together past the budget.
        let entry = (1 << 20) + 1;
        let index = index as usize;
        assert!(
            (index + 1) * entry > NODE_QUEUE_MAX_BYTES && index * entry <= NODE_QUEUE_MAX_BYTES
        );
        assert_eq!(
            hog.queue.try_take(usize::MAX),
            Some(Watched::End(WatchEnd::FellBehind { at: 1 }))
        );
        assert!(!prompt.queue.ended());
        assert_eq!(hub.state.lock().unwrap().queued.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn a_node_serves_at_most_max_watches_and_forgets_closed_ones() {
        let hub = WatchHub::new(0, 1, 100);
        let open: Vec<_> = (0..MAX_WATCHES)
            .map(|_| {
                hub.register(WatchRequest::prefix("", None), 10, 100)
                    .unwrap()
            })
            .collect();
        let refused = hub
            .register(WatchRequest::prefix("", None), 10, 100)
            .unwrap_err();
        assert!(
            refused.to_string().contains("already serves 1024 watches"),
            "{refused}"
        );
        drop(open);
        hub.register(WatchRequest::prefix("", None), 10, 100)
            .expect("room again");
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
