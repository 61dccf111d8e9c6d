//! Appends are readable as soon as `append` returns, reported flushed only after an fsync, and
//! appends in flight together share fsyncs.

use openraft::storage::{IOFlushed, RaftLogReader, RaftLogStorage};
use openraft::type_config::TypeConfigExt;

use crate::support::{C, blank_entry, bounded, open};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appends_in_flight_share_fsyncs() {
    bounded(60, async {
        let dir = tempfile::tempdir().expect("temp dir");
        let (mut log, _sm) = open(dir.path());
        const APPENDS: u64 = 100;
        let mut flushed = Vec::new();
        for index in 1..=APPENDS {
            let (tx, rx) = C::oneshot();
            log.append([blank_entry(1, index)], IOFlushed::signal(tx))
                .await
                .expect("append");
            // Readable before it is durable.
            let read = log.try_get_log_entries(index..=index).await.expect("read");
            assert_eq!(read, vec![blank_entry(1, index)]);
            flushed.push(rx);
        }
        for rx in flushed {
            rx.await.expect("callback").expect("flushed");
        }
        let (fsyncs, appends) = log.fsync_stats();
        tracing::info!(fsyncs, appends, "group commit");
        assert_eq!(appends, APPENDS);
        assert!(
            fsyncs < appends,
            "{appends} appends in flight together took {fsyncs} fsyncs"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_appenders_all_complete() {
    bounded(60, async {
        let dir = tempfile::tempdir().expect("temp dir");
        let (log, _sm) = open(dir.path());
        let mut tasks = Vec::new();
        for writer in 0..4u64 {
            let mut log = log.clone();
            tasks.push(tokio::spawn(async move {
                for i in 0..25u64 {
                    let index = writer * 1000 + i + 1;
                    crate::support::append(&mut log, vec![blank_entry(1, index)]).await;
                }
            }));
        }
        for task in tasks {
            task.await.expect("appender");
        }
        let mut log = log;
        assert_eq!(log.try_get_log_entries(..).await.expect("read").len(), 100);
        assert_eq!(log.fsync_stats().1, 100);
    })
    .await;
}
