//! [`WatchQueue`]: the changes waiting for one watcher, bounded in changes and bytes. The hub
//! offers under its lock; the watcher's stream takes. When an offer does not fit, the watch ends
//! at the first index it could not take: everything before it is still delivered.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use tokio::sync::Notify;

use crate::proto::{WatchChange, WatchEnd, WatchRequest};
use crate::store::EntryChanges;

/// What a watch delivers next.
#[derive(Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Watched {
    /// Changes, in log order.
    Changes(Vec<WatchChange>),
    /// The watch ended, after every change before the index it names.
    End(WatchEnd),
}

#[derive(Debug, Default)]
struct Pending {
    changes: VecDeque<WatchChange>,
    bytes: usize,
    end: Option<WatchEnd>,
}

/// One watcher's queue.
#[derive(Debug)]
pub(crate) struct WatchQueue {
    request: WatchRequest,
    /// Changes before this index are not the watcher's (it reads them from the history, or did
    /// not ask for them).
    from_index: u64,
    max_changes: usize,
    max_bytes: usize,
    /// The bytes every queue of the node holds together (the hub keeps them within its budget).
    node_queued: Arc<AtomicUsize>,
    pending: Mutex<Pending>,
    ready: Notify,
}

/// The changes of `entry` to keys `request` watches.
pub(super) fn watched(request: &WatchRequest, entry: &EntryChanges) -> Vec<WatchChange> {
    entry
        .changes
        .iter()
        .filter(|change| request.contains(&change.key))
        .map(|change| WatchChange {
            index: entry.index,
            key: change.key.clone(),
            value: change.value.clone(),
        })
        .collect()
}

pub(super) fn size(change: &WatchChange) -> usize {
    change.key.len() + change.value.as_ref().map_or(0, Bytes::len)
}

impl WatchQueue {
    /// A queue for `request`'s keys from `from_index` on, holding at most `max_changes` changes
    /// and `max_bytes` of keys and values (an empty queue takes one entry's changes whatever
    /// their size, so that no entry is too large to watch); `node_queued` counts its bytes with
    /// the other queues of the node.
    pub(crate) fn new(
        request: WatchRequest,
        from_index: u64,
        (max_changes, max_bytes): (usize, usize),
        node_queued: Arc<AtomicUsize>,
    ) -> Self {
        Self {
            request,
            from_index,
            max_changes,
            max_bytes,
            node_queued,
            pending: Mutex::new(Pending::default()),
            ready: Notify::new(),
        }
    }

    /// The keys watched.
    pub(crate) fn request(&self) -> &WatchRequest {
        &self.request
    }

    /// The first index the queue takes.
    #[cfg(test)]
    pub(crate) fn first_index(&self) -> u64 {
        self.from_index
    }

    /// Whether the watch ended.
    pub(crate) fn ended(&self) -> bool {
        self.lock().end.is_some()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether the queue takes a change of `key` at `index`.
    pub(crate) fn wants(&self, index: u64, key: &[u8]) -> bool {
        index >= self.from_index && self.request.contains(key)
    }

    /// The bytes of keys and values it holds.
    pub(crate) fn queued_bytes(&self) -> usize {
        self.lock().bytes
    }

    /// Offers the changes of committed entries (one vector per entry, in log order; the hub
    /// builds them once for every queue); takes the watched ones. Never waits: an entry that
    /// does not fit ends the watch at its index.
    pub(crate) fn offer(&self, entries: &[Vec<WatchChange>]) {
        let mut pending = self.lock();
        if pending.end.is_some() {
            return;
        }
        let mut offered = false;
        for entry in entries {
            let Some(index) = entry.first().map(|change| change.index) else {
                continue;
            };
            let watched: Vec<WatchChange> = entry
                .iter()
                .filter(|change| self.wants(index, &change.key))
                .cloned()
                .collect();
            if watched.is_empty() {
                continue;
            }
            let bytes: usize = watched.iter().map(size).sum();
            let fits = pending.changes.is_empty()
                || (pending.changes.len() + watched.len() <= self.max_changes
                    && pending.bytes + bytes <= self.max_bytes);
            if !fits {
                pending.end = Some(WatchEnd::FellBehind { at: index });
                break;
            }
            self.node_queued.fetch_add(bytes, Ordering::Relaxed);
            pending.bytes += bytes;
            pending.changes.extend(watched);
            offered = true;
        }
        let ended = pending.end.is_some();
        drop(pending);
        if offered || ended {
            self.ready.notify_one();
        }
    }

    /// Drops everything queued and ends the watch at the first index dropped (the node's queues
    /// are over their budget, and this one holds the most); returns the bytes given back.
    pub(crate) fn shed(&self) -> usize {
        let mut pending = self.lock();
        let Some(first) = pending.changes.front().map(|change| change.index) else {
            return 0;
        };
        let bytes = std::mem::take(&mut pending.bytes);
        pending.changes.clear();
        pending.end = Some(WatchEnd::FellBehind { at: first });
        drop(pending);
        self.node_queued.fetch_sub(bytes, Ordering::Relaxed);
        self.ready.notify_one();
        bytes
    }

    /// Ends the watch with `end`, after what is queued, unless it already ended; returns the end
    /// that stands.
    pub(crate) fn end(&self, end: WatchEnd) -> WatchEnd {
        let mut pending = self.lock();
        let end = pending.end.get_or_insert(end).clone();
        drop(pending);
        self.ready.notify_one();
        end
    }

    /// Takes up to `max_bytes` of queued changes (at least one index's, and never part of an
    /// index's: a watcher that stops after a take can resume from the next index), or the end
    /// once nothing is queued; `None` when there is neither yet.
    pub(crate) fn try_take(&self, max_bytes: usize) -> Option<Watched> {
        let mut pending = self.lock();
        if pending.changes.is_empty() {
            return pending.end.clone().map(Watched::End);
        }
        let mut taken = Vec::new();
        let mut bytes = 0;
        while let Some(change) = pending.changes.front() {
            let next = size(change);
            let same_index = taken
                .last()
                .is_some_and(|last: &WatchChange| last.index == change.index);
            if !taken.is_empty() && !same_index && bytes + next > max_bytes {
                break;
            }
            bytes += next;
            taken.extend(pending.changes.pop_front());
        }
        pending.bytes -= bytes;
        self.node_queued.fetch_sub(bytes, Ordering::Relaxed);
        Some(Watched::Changes(taken))
    }

    /// Waits for changes or the end, then takes them as [`Self::try_take`] does.
    pub(crate) async fn take(&self, max_bytes: usize) -> Watched {
        loop {
            if let Some(taken) = self.try_take(max_bytes) {
                return taken;
            }
            // One taker: `notify_one` keeps a permit when nobody waits, so no offer is missed.
            self.ready.notified().await;
        }
    }
}

impl Drop for WatchQueue {
    fn drop(&mut self) {
        let bytes = self.lock().bytes;
        self.node_queued.fetch_sub(bytes, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Change;

    /// A queue of a node of its own.
    fn queue(request: WatchRequest, from: u64, max_changes: usize, max_bytes: usize) -> WatchQueue {
        WatchQueue::new(request, from, (max_changes, max_bytes), Arc::default())
    }

    /// Entry `index`'s puts of `keys`, as the hub offers them.
    fn entry(index: u64, keys: &[&str]) -> Vec<WatchChange> {
        let entry = EntryChanges {
            index,
            changes: keys
                .iter()
                .map(|key| Change {
                    key: Bytes::copy_from_slice(key.as_bytes()),
                    value: Some(Bytes::from_static(b"vv")),
                })
                .collect(),
        };
        watched(&WatchRequest::prefix("", None), &entry)
    }

    fn indexes(taken: Option<Watched>) -> Vec<(u64, String)> {
        match taken {
            Some(Watched::Changes(changes)) => changes
                .into_iter()
                .map(|c| (c.index, String::from_utf8_lossy(&c.key).into_owned()))
                .collect(),
            other => panic!("expected changes, got {other:?}"),
        }
    }

    #[test]
    fn a_queue_takes_only_its_keys_from_its_index_on() {
        let queue = queue(WatchRequest::prefix("app/", None), 3, 100, 1 << 20);
        queue.offer(&[
            entry(2, &["app/old"]),
            entry(3, &["app/a", "other", "app/b"]),
        ]);
        queue.offer(&[entry(4, &["zzz"]), entry(5, &["app/c"])]);
        assert_eq!(
            indexes(queue.try_take(1 << 20)),
            vec![
                (3, "app/a".into()),
                (3, "app/b".into()),
                (5, "app/c".into())
            ]
        );
        assert_eq!(queue.try_take(1 << 20), None);
    }

    #[test]
    fn a_full_queue_ends_at_the_first_index_it_could_not_take_after_what_it_holds() {
        let queue = queue(WatchRequest::prefix("", None), 1, 3, 1 << 20);
        queue.offer(&[
            entry(1, &["a", "b"]),
            entry(2, &["c", "d"]),
            entry(3, &["e"]),
        ]);
        // Later offers change nothing: the end stands.
        queue.offer(&[entry(4, &["f"])]);
        assert_eq!(
            indexes(queue.try_take(1 << 20)),
            vec![(1, "a".into()), (1, "b".into())]
        );
        assert_eq!(
            queue.try_take(1 << 20),
            Some(Watched::End(WatchEnd::FellBehind { at: 2 }))
        );
    }

    #[test]
    fn bytes_bound_the_queue_but_an_empty_queue_takes_any_entry() {
        let queue = queue(WatchRequest::prefix("", None), 1, 100, 3);
        queue.offer(&[entry(1, &["big", "bigger"])]);
        assert!(!queue.ended());
        queue.offer(&[entry(2, &["x"])]);
        assert!(queue.ended());
        // Takes are bounded too, but always take whole indexes.
        assert_eq!(
            indexes(queue.try_take(1)),
            vec![(1, "big".into()), (1, "bigger".into())]
        );
        assert_eq!(
            queue.try_take(1),
            Some(Watched::End(WatchEnd::FellBehind { at: 2 }))
        );
    }

    #[test]
    fn shedding_drops_what_is_queued_ends_at_its_first_index_and_gives_the_bytes_back() {
        let node = Arc::new(AtomicUsize::new(0));
        let queue = WatchQueue::new(
            WatchRequest::prefix("", None),
            1,
            (100, 1 << 20),
            node.clone(),
        );
        queue.offer(&[entry(4, &["k1", "k2"]), entry(5, &["k3"])]);
        assert_eq!(
            (node.load(Ordering::Relaxed), queue.queued_bytes()),
            (12, 12)
        );
        assert_eq!(queue.shed(), 12);
        assert_eq!(node.load(Ordering::Relaxed), 0);
        assert_eq!(
            queue.try_take(100),
            Some(Watched::End(WatchEnd::FellBehind { at: 4 }))
        );
        assert_eq!(queue.shed(), 0);
        let dropped = WatchQueue::new(
            WatchRequest::prefix("", None),
            1,
            (100, 1 << 20),
            node.clone(),
        );
        dropped.offer(&[entry(6, &["k4"])]);
        assert_eq!(node.load(Ordering::Relaxed), 4);
        drop(dropped);
        assert_eq!(node.load(Ordering::Relaxed), 0);
    }

    #[tokio::test]
    async fn a_waiting_taker_wakes_for_an_offer_and_for_an_end() {
        let queue = Arc::new(queue(WatchRequest::key("k", None), 1, 10, 100));
        let waiter = tokio::spawn({
            let queue = queue.clone();
            async move { (queue.take(100).await, queue.take(100).await) }
        });
        tokio::task::yield_now().await;
        queue.offer(&[entry(7, &["k", "k2"])]);
        queue.end(WatchEnd::Replaced { at: 9 });
        let (first, second) = tokio::time::timeout(std::time::Duration::from_secs(5), waiter)
            .await
            .expect("woken")
            .expect("task");
        assert_eq!(indexes(Some(first)), vec![(7, "k".into())]);
        assert_eq!(second, Watched::End(WatchEnd::Replaced { at: 9 }));
    }
}
