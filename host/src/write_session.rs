//! The client side of client sessions: every write a [`crate::Client`] or
//! [`crate::IrohRaftManagementClient`] sends carries its session and number
//! ([`SessionTag`]), and a write whose fate is unknown (the connection broke, the leader changed,
//! the node timed out) is sent again with the same tag: the cluster applies it once and a repeat
//! returns the first result.

use std::collections::BTreeSet;
use std::future::Future;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use iroh::SecretKey;

use crate::client::ClientError;
use bytes::Bytes;

use crate::proto::{Operation, Reply, RequestError, SessionTag};

/// How long a write is sent again while its fate is unknown.
pub(crate) const WRITE_RETRY_WINDOW: Duration = Duration::from_secs(30);
/// How long one attempt waits for its reply (a node answers within 10 s, or says it timed out):
/// past it the node is taken to be gone.
pub(crate) const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(15);
/// The first pause between attempts; it doubles up to [`MAX_PAUSE`].
const FIRST_PAUSE: Duration = Duration::from_millis(50);
const MAX_PAUSE: Duration = Duration::from_secs(1);
/// Writes one session has in flight at most: what the cluster remembers per session
/// (`raft/apply/sessions.rs`), so no write in flight is ever forgotten.
pub(crate) const MAX_IN_FLIGHT: usize = 16;

/// One client's session: a random id and the numbers of its writes in flight.
#[derive(Debug)]
pub(crate) struct WriteSession {
    id: [u8; 16],
    next: AtomicU64,
    in_flight: Mutex<BTreeSet<u64>>,
    slots: tokio::sync::Semaphore,
}

impl WriteSession {
    /// A session with a fresh random id (from the system's secure random source).
    pub(crate) fn new() -> Self {
        let digest = crate::hash::sha256(&SecretKey::generate().to_bytes());
        let mut id = [0u8; 16];
        id.copy_from_slice(&digest[..16]);
        Self {
            id,
            next: AtomicU64::new(1),
            in_flight: Mutex::default(),
            slots: tokio::sync::Semaphore::new(MAX_IN_FLIGHT),
        }
    }

    /// Numbers the next write once fewer than [`MAX_IN_FLIGHT`] are in flight; it counts as in
    /// flight until the guard is dropped.
    pub(crate) async fn begin(&self) -> InFlight<'_> {
        // The semaphore is never closed, so acquiring only waits.
        let slot = self.slots.acquire().await.ok();
        // Numbered and marked in flight under one lock: numbered first and marked after, a
        // concurrent write's `tag` could slip between and say every number below its own was
        // answered, and the cluster then refused this write as "already answered" without
        // applying it (a bench with two workers on one connection hit it).
        let seq = {
            let mut in_flight = self.lock();
            let seq = self.next.fetch_add(1, Ordering::Relaxed);
            in_flight.insert(seq);
            seq
        };
        InFlight {
            session: self,
            seq,
            _slot: slot,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeSet<u64>> {
        self.in_flight
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// A write in flight.
pub(crate) struct InFlight<'a> {
    session: &'a WriteSession,
    seq: u64,
    _slot: Option<tokio::sync::SemaphorePermit<'a>>,
}

impl InFlight<'_> {
    /// The tag to send now: every write numbered below the oldest one still in flight has been
    /// answered.
    pub(crate) fn tag(&self) -> SessionTag {
        let acked = self.session.lock().first().copied().unwrap_or(self.seq);
        SessionTag {
            client: self.session.id,
            seq: self.seq,
            acked,
        }
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.session.lock().remove(&self.seq);
    }
}

/// Whether a write that failed this way may or may not have been applied, and is worth sending
/// again with the same tag. Refusals (too large, malformed, ...) are final.
pub(crate) fn worth_retrying(error: &ClientError) -> bool {
    match error {
        ClientError::Connect(_) | ClientError::Frame(_) => true,
        ClientError::Request(error) => matches!(
            error,
            RequestError::NoLeader
                | RequestError::TimedOut { .. }
                | RequestError::ForwardFailed { .. }
                | RequestError::RaftStopped { .. }
                | RequestError::Raft { .. }
        ),
        _ => false,
    }
}

/// `attempt` within [`ATTEMPT_TIMEOUT`]; past it, an unknown outcome.
pub(crate) async fn within_attempt<T>(
    attempt: impl Future<Output = Result<T, ClientError>>,
) -> Result<T, ClientError> {
    tokio::time::timeout(ATTEMPT_TIMEOUT, attempt)
        .await
        .unwrap_or_else(|_| {
            Err(ClientError::Connect(format!(
                "no reply within {ATTEMPT_TIMEOUT:?}"
            )))
        })
}

/// Sends `command` as the next write of `session` through `send`, again with the same tag while
/// its fate is unknown ([`retry`]), and returns the entry's index and the plugin's outcome.
pub(crate) async fn tagged_write<F, Fut>(
    session: &WriteSession,
    command: Bytes,
    send: F,
) -> Result<(u64, Result<Bytes, String>), ClientError>
where
    F: Fn(Operation) -> Fut,
    Fut: Future<Output = Result<Reply, ClientError>>,
{
    let write = session.begin().await;
    retry(|| {
        let reply = send(Operation::Write {
            command: command.clone(),
            session: Some(write.tag()),
        });
        async move {
            match reply.await? {
                Reply::Written { index, outcome } => Ok((index, outcome)),
                other => Err(ClientError::Unexpected(format!("{other:?}"))),
            }
        }
    })
    .await
}

/// Runs `attempt` until it succeeds, fails for good, or [`WRITE_RETRY_WINDOW`] has passed.
pub(crate) async fn retry<T, F, Fut>(mut attempt: F) -> Result<T, ClientError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, ClientError>>,
{
    let deadline = Instant::now() + WRITE_RETRY_WINDOW;
    let mut pause = FIRST_PAUSE;
    loop {
        match attempt().await {
            Err(error) if worth_retrying(&error) && Instant::now() + pause < deadline => {
                tracing::debug!("write not known to be applied, sending it again: {error}");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(MAX_PAUSE);
            }
            result => return result,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bug_a_write_numbered_but_not_yet_in_flight_was_acked_by_a_concurrent_tag() {
        let session = std::sync::Arc::new(WriteSession::new());
        let held = session.lock();
        let beginner = {
            let session = session.clone();
            std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .build()
                    .unwrap();
                runtime.block_on(async { session.begin().await.tag().seq })
            })
        };
        std::thread::sleep(Duration::from_millis(50));
        // While the in-flight set is locked (as a concurrent `tag` holds it), no number is
        // handed out: a number exists only together with its place in the set.
        assert_eq!(session.next.load(Ordering::Relaxed), 1);
        drop(held);
        assert_eq!(beginner.join().unwrap(), 1);
    }

    #[tokio::test]
    async fn writes_are_numbered_and_acked_below_the_oldest_in_flight() {
        let session = WriteSession::new();
        let one = session.begin().await;
        let two = session.begin().await;
        assert_eq!((one.tag().seq, one.tag().acked), (1, 1));
        assert_eq!((two.tag().seq, two.tag().acked), (2, 1));
        drop(one);
        assert_eq!(two.tag().acked, 2, "write 1 was answered");
        drop(two);
        let three = session.begin().await;
        assert_eq!((three.tag().seq, three.tag().acked), (3, 3));
        assert_ne!(WriteSession::new().id, session.id, "sessions are random");
    }

    #[tokio::test]
    async fn no_more_writes_are_in_flight_than_the_cluster_remembers() {
        let session = WriteSession::new();
        let mut held = Vec::new();
        for _ in 0..MAX_IN_FLIGHT {
            held.push(session.begin().await);
        }
        let waiting = tokio::time::timeout(Duration::from_millis(50), session.begin()).await;
        assert!(waiting.is_err(), "the 17th write waits for a slot");
        held.remove(0);
        let next = tokio::time::timeout(Duration::from_secs(5), session.begin())
            .await
            .expect("a slot freed");
        assert_eq!(next.tag().acked, 2);
    }

    #[test]
    fn only_failures_of_unknown_outcome_are_retried() {
        assert!(worth_retrying(&ClientError::Connect("gone".into())));
        assert!(worth_retrying(&ClientError::Request(
            RequestError::NoLeader
        )));
        assert!(worth_retrying(&ClientError::Request(
            RequestError::TimedOut { after_ms: 10 }
        )));
        assert!(!worth_retrying(&ClientError::Request(
            RequestError::CommandTooLarge { len: 2, max: 1 }
        )));
        assert!(!worth_retrying(&ClientError::Unexpected("?".into())));
    }

    #[tokio::test]
    async fn retry_stops_at_the_first_answer_or_final_error() {
        let mut calls = 0;
        let result: Result<u32, ClientError> = retry(|| {
            calls += 1;
            let n = calls;
            async move {
                if n < 3 {
                    Err(ClientError::Request(RequestError::NoLeader))
                } else {
                    Ok(7)
                }
            }
        })
        .await;
        assert_eq!(result.unwrap(), 7);
        assert_eq!(calls, 3);
        let mut calls = 0;
        let result: Result<u32, ClientError> = retry(|| {
            calls += 1;
            async { Err(ClientError::Request(RequestError::NoSnapshot)) }
        })
        .await;
        assert!(result.is_err());
        assert_eq!(calls, 1);
    }
}
