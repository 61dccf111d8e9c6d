//! [`WatchQueue`]: the changes waiting for one watcher, bounded in changes and bytes. The hub
//! offers under its lock; the watcher's stream takes. When an offer does not fit, the watch ends
//! at the first index it could not take: everything before it is still delivered.

use std::collections::VecDeque;
use std::sync::{Mutex, PoisonError};

use bytes::Bytes;
use tokio::sync::Notify;

use crate::proto::{WatchChange, WatchEnd, WatchRequest};
use crate::store::EntryChanges;

/// What a watch delivers next.
#[derive(Debug, PartialEq, Eq)]
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
            key: Bytes::copy_from_slice(&change.key),
            value: change.value.as_deref().map(Bytes::copy_from_slice),
        })
        .collect()
}

pub(super) fn size(change: &WatchChange) -> usize {
    change.key.len() + change.value.as_ref().map_or(0, Bytes::len)
}

impl WatchQueue {
    /// A queue for `request`'s keys from `from_index` on, holding at most `max_changes` changes
    /// and `max_bytes` of keys and values (an empty queue takes one entry's changes whatever
    /// their size, so that no entry is too large to watch).
    pub(crate) fn new(
        request: WatchRequest,
        from_index: u64,
        max_changes: usize,
        max_bytes: usize,
    ) -> Self {
        Self {
            request,
            from_index,
            max_changes,
            max_bytes,
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

    /// Offers the changes of committed entries, in log order; takes the watched ones. Never
    /// waits: one that does not fit ends the watch at its index.
    pub(crate) fn offer(&self, entries: &[EntryChanges]) {
        let mut pending = self.lock();
        if pending.end.is_some() {
            return;
        }
        let mut offered = false;
        for entry in entries
            .iter()
            .filter(|entry| entry.index >= self.from_index)
        {
            let watched = watched(&self.request, entry);
            if watched.is_empty() {
                continue;
            }
            let bytes: usize = watched.iter().map(size).sum();
            let fits = pending.changes.is_empty()
                || (pending.changes.len() + watched.len() <= self.max_changes
                    && pending.bytes + bytes <= self.max_bytes);
            if !fits {
                pending.end = Some(WatchEnd::FellBehind { at: entry.index });
                break;
            }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Change;

    fn entry(index: u64, keys: &[&str]) -> EntryChanges {
        EntryChanges {
            index,
            changes: keys
                .iter()
                .map(|key| Change {
                    key: key.as_bytes().to_vec(),
                    value: Some(b"vv".to_vec()),
                })
                .collect(),
        }
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
        let queue = WatchQueue::new(WatchRequest::prefix("app/", None), 3, 100, 1 << 20);
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
        let queue = WatchQueue::new(WatchRequest::prefix("", None), 1, 3, 1 << 20);
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
        let queue = WatchQueue::new(WatchRequest::prefix("", None), 1, 100, 3);
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

    #[tokio::test]
    async fn a_waiting_taker_wakes_for_an_offer_and_for_an_end() {
        let queue = std::sync::Arc::new(WatchQueue::new(WatchRequest::key("k", None), 1, 10, 100));
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
