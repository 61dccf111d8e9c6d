//! [`WatchFeed`]: one watch as its server sees it: first the history from the index asked for
//! up to the index applied when it registered, a page at a time, then its live queue.

use std::sync::Arc;

use super::queue::{Watched, watched};
use super::{Registration, WatchHub, WatchQueue};
use crate::proto::{RequestError, WatchEnd, WatchStart};
use crate::store::{EntryChanges, StoreError};

/// How many bytes of keys and values one page of changes holds at most (at least one change).
pub(crate) const PAGE_BYTES: usize = 1 << 20;

/// Reads the recorded changes of past entries.
pub(crate) trait HistoryRead: Send + Sync + 'static {
    /// The records of the entries in `[from, to]`, in index order, up to about `max_bytes` of
    /// them (at least one), and the index to read on from (`to + 1` once all are read).
    fn read_changes(
        &self,
        from: u64,
        to: u64,
        max_bytes: usize,
    ) -> Result<(Vec<EntryChanges>, u64), StoreError>;
}

/// One open watch, as the node serving it sees it.
pub struct WatchFeed {
    queue: Arc<WatchQueue>,
    start: WatchStart,
    hub: Arc<WatchHub>,
    history: Arc<dyn HistoryRead>,
    /// The next history index to read and the last one, while the history is being read.
    replay: Option<(u64, u64)>,
}

impl std::fmt::Debug for WatchFeed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WatchFeed")
            .field("start", &self.start)
            .field("replay", &self.replay)
            .finish_non_exhaustive()
    }
}

impl WatchFeed {
    /// Serves `registration`, reading its history through `history`.
    pub(crate) fn new(
        registration: Registration,
        hub: Arc<WatchHub>,
        history: Arc<dyn HistoryRead>,
    ) -> Self {
        let Registration { queue, start } = registration;
        let replay =
            (start.from_index <= start.applied).then_some((start.from_index, start.applied));
        Self {
            queue,
            start,
            hub,
            history,
            replay,
        }
    }

    /// Where the watch began.
    pub fn start(&self) -> WatchStart {
        self.start
    }

    /// The next changes, in log order, or why the watch ended.
    pub async fn next(&mut self) -> Result<Watched, RequestError> {
        while let Some((next, last)) = self.replay {
            let history = self.history.clone();
            let (page, after) =
                tokio::task::spawn_blocking(move || history.read_changes(next, last, PAGE_BYTES))
                    .await
                    .map_err(|e| RequestError::TaskFailed {
                        task: "watch history read".into(),
                        reason: e.to_string(),
                    })?
                    .map_err(|e| RequestError::Storage {
                        what: "the watch history".into(),
                        reason: e.to_string(),
                    })?;
            // The horizon is raised before records go: past `next` now means the read may have
            // missed some.
            if self.hub.oldest() > next {
                self.replay = None;
                // The live queue may have ended later (it filled meanwhile): the replay's index
                // comes first, or what lies between would be skipped. A replaced history says so.
                let end = match self.queue.end(WatchEnd::FellBehind { at: next }) {
                    WatchEnd::FellBehind { .. } => WatchEnd::FellBehind { at: next },
                    other => other,
                };
                return Ok(Watched::End(end));
            }
            self.replay = (after <= last).then_some((after, last));
            let changes: Vec<_> = page
                .iter()
                .flat_map(|entry| watched(self.queue.request(), entry))
                .collect();
            if !changes.is_empty() {
                return Ok(Watched::Changes(changes));
            }
        }
        Ok(self.queue.take(PAGE_BYTES).await)
    }
}
