//! The sending half of a pipelined append-entries stream: requests go out as frames on their own
//! task, each stamped with when it went out so that its result (they come back in order) can be
//! timed; and the rule that bounds a batch's frame.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use futures_util::{Stream, StreamExt};
use openraft::raft::AppendEntriesRequest;

use crate::net::link_faults::{Fate, LinkFaults};
use crate::net::write_frame;
use crate::proto::{TypeConfig, encode_frame};

type C = TypeConfig;

/// A leader sends no batch of several entries in a frame over `max_frame` bytes (the log
/// reader's byte budget keeps batches under it); one entry goes alone whatever its size, up to
/// the receivers' ceiling, since it cannot be split.
pub(super) fn check_batch(
    frame_len: usize,
    entries: usize,
    max_frame: usize,
) -> Result<(), String> {
    if entries > 1 && frame_len > max_frame {
        return Err(format!(
            "an append batch of {entries} entries is a {frame_len}-byte frame, over \
             max_raft_frame ({max_frame})"
        ));
    }
    Ok(())
}

/// When each append request of a pipelined stream went out, oldest first.
pub(super) type Sent = Arc<Mutex<std::collections::VecDeque<std::time::Instant>>>;

pub(super) fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

/// Writes each append request as a frame until the input ends or the stream breaks. Each passes
/// through the link faults towards the peer (`faults`, with the peer's endpoint key) first: one
/// lost breaks the stream, as a lost segment would on an ordered stream that can never repair it.
pub(super) async fn forward_appends<S>(
    mut input: S,
    mut send: iroh::endpoint::SendStream,
    max_frame: Arc<AtomicUsize>,
    sent: Sent,
    (faults, peer): (LinkFaults, [u8; 32]),
) where
    S: Stream<Item = AppendEntriesRequest<C>> + Unpin,
{
    while let Some(request) = input.next().await {
        let Ok(frame) = encode_frame(&request) else {
            break;
        };
        let entries = request.entries.len();
        if let Err(error) = check_batch(frame.len(), entries, max_frame.load(Ordering::Relaxed)) {
            tracing::error!("append stream stopped: {error}");
            break;
        }
        // Stamped first, so a delay the faults add shows in the round trip.
        lock(&sent).push_back(std::time::Instant::now());
        if faults.send_to(&peer).await == Fate::Lost {
            let _ = send.reset(0u32.into());
            return;
        }
        if write_frame(&mut send, frame).await.is_err() {
            return;
        }
    }
    let _ = send.finish();
}

#[cfg(test)]
mod tests {
    use super::check_batch;

    #[test]
    fn only_a_batch_of_several_entries_is_held_to_max_raft_frame() {
        assert!(check_batch(100, 2, 100).is_ok());
        assert!(
            check_batch(101, 2, 100)
                .unwrap_err()
                .contains("over max_raft_frame (100)")
        );
        assert!(check_batch(1000, 1, 100).is_ok(), "one entry goes alone");
        assert!(check_batch(0, 0, 100).is_ok(), "heartbeats");
    }
}
