//! [`GroupCommit`]: the thread that makes raft log appends durable. Appends write to fjall's
//! journal buffer and queue their openraft callback here; the thread takes every queued callback,
//! fsyncs the shared journal once (`Database::persist(SyncAll)`), and only then completes them, so
//! concurrent appends share one fsync.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, mpsc};
use std::thread::JoinHandle;

use fjall::{Database, PersistMode};
use openraft::storage::IOFlushed;

use crate::metrics::LatencyRecorder;
use crate::proto::{LatencyHistogram, TypeConfig};
use crate::raft::RaftStorageError;

/// Counters of the group-commit thread.
#[derive(Debug, Default)]
struct Counters {
    fsyncs: AtomicU64,
    appends: AtomicU64,
    fsync_latency: LatencyRecorder,
}

/// The group-commit thread of one database. Dropping it stops the thread after it has completed
/// every queued callback.
pub(crate) struct GroupCommit {
    queue: Option<mpsc::Sender<IOFlushed<TypeConfig>>>,
    thread: Option<JoinHandle<()>>,
    counters: Arc<Counters>,
}

impl GroupCommit {
    /// Starts the thread for `db`.
    pub(crate) fn start(db: Database) -> Result<Self, RaftStorageError> {
        let (queue, pending) = mpsc::channel();
        let counters = Arc::new(Counters::default());
        let thread_counters = counters.clone();
        let thread = std::thread::Builder::new()
            .name("raft-log-fsync".into())
            .spawn(move || run(&db, &pending, &thread_counters))
            .map_err(|e| RaftStorageError::Task(format!("cannot start the fsync thread: {e}")))?;
        Ok(Self {
            queue: Some(queue),
            thread: Some(thread),
            counters,
        })
    }

    /// Completes `callback` after the next fsync of the journal.
    pub(crate) fn submit(&self, callback: IOFlushed<TypeConfig>) -> Result<(), RaftStorageError> {
        self.queue
            .as_ref()
            .ok_or(RaftStorageError::GroupCommitStopped)?
            .send(callback)
            .map_err(|_| RaftStorageError::GroupCommitStopped)
    }

    /// fsyncs done so far.
    pub(crate) fn fsyncs(&self) -> u64 {
        self.counters.fsyncs.load(Ordering::Relaxed)
    }

    /// Appends made durable so far.
    pub(crate) fn appends(&self) -> u64 {
        self.counters.appends.load(Ordering::Relaxed)
    }

    /// How long the fsyncs took.
    pub(crate) fn fsync_latency(&self) -> LatencyHistogram {
        self.counters.fsync_latency.snapshot()
    }
}

impl Drop for GroupCommit {
    fn drop(&mut self) {
        // Closing the queue ends the thread once it has drained it.
        self.queue = None;
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            tracing::error!("the raft log fsync thread panicked");
        }
    }
}

fn run(db: &Database, pending: &mpsc::Receiver<IOFlushed<TypeConfig>>, counters: &Counters) {
    while let Ok(first) = pending.recv() {
        let mut group = vec![first];
        group.extend(pending.try_iter());
        let started = std::time::Instant::now();
        let synced = db.persist(PersistMode::SyncAll);
        counters.fsync_latency.record(started.elapsed());
        counters.fsyncs.fetch_add(1, Ordering::Relaxed);
        match synced {
            Ok(()) => {
                counters
                    .appends
                    .fetch_add(group.len() as u64, Ordering::Relaxed);
                for callback in group {
                    callback.io_completed(Ok(()));
                }
            }
            Err(error) => {
                // fjall poisons the database: every later write fails too, and openraft stops the
                // raft core on the first failed callback.
                tracing::error!("fsync of the raft log failed; the node must stop: {error}");
                let source = Arc::new(error);
                for callback in group {
                    callback.io_completed(Err(RaftStorageError::Sync {
                        source: source.clone(),
                    }
                    .into()));
                }
            }
        }
    }
}
