//! Serving one watch on its `iroh-raft-mgmt/0` stream: the changes as they come, until the client
//! leaves, the watch ends, the policy revokes it, or the node loses touch with the leader.

use std::time::{Duration, Instant};

use iroh::endpoint::{RecvStream, SendStream};

use super::{Caller, ManagementService, read_frame, write_frame};
use crate::proto::{FrameError, Operation, Reply, RequestId, ServerFrame, WatchEnd, encode_frame};
use crate::watch::{WatchFeed, Watched};

/// How often a watch looks whether the access policy changed and whether its node is in touch
/// with a leader.
const RECHECK: Duration = Duration::from_millis(500);

/// Who asked for a watch, what exactly, and who judges them.
pub(super) struct Asked<'a, S> {
    pub(super) service: &'a S,
    pub(super) caller: Caller,
    pub(super) operation: Operation,
}

/// The code a watch's stream is reset with when its watcher is let go for taking nothing.
const WATCH_STALLED: u32 = 0x5741;

/// How long a watch waits for its client to take a frame before it gives the watcher up: a
/// watcher that reads nothing for this long is gone or stuck, and its queue is freed.
pub const WATCH_STALL_LIMIT: Duration = Duration::from_secs(30);

/// Sends every change of `watch` on the stream, until the client closes it (finishes, resets or
/// sends anything more) or the watch ends (a `WatchEnded` frame says why, also when the node has
/// been out of touch with a leader too long). A client that stops reading stalls only this
/// stream: its queue fills and the watch ends as fallen behind; one that takes nothing for
/// [`WATCH_STALL_LIMIT`] has its stream reset where it stands.
pub(super) async fn stream_changes<S: ManagementService>(
    id: RequestId,
    asked: Asked<'_, S>,
    mut watch: WatchFeed,
    mut send: SendStream,
    mut recv: RecvStream,
) -> Result<(), FrameError> {
    let watching = ServerFrame::Response {
        id,
        result: Ok(Reply::Watching(watch.start())),
    };
    write_frame(&mut send, encode_frame(&watching)?).await?;
    let closed = read_frame(&mut recv, 1024);
    tokio::pin!(closed);
    let mut judged_under = asked.service.policy_generation();
    let mut check = tokio::time::interval(RECHECK);
    let mut out_of_touch_since: Option<Instant> = None;
    loop {
        let frame = tokio::select! {
            _ = &mut closed => break,
            next = watch.next() => match next {
                Ok(Watched::Changes(changes)) => ServerFrame::Changes { id, changes },
                Ok(Watched::End(end)) => ServerFrame::WatchEnded { id, end },
                Err(error) => ServerFrame::Error(error),
            },
            _ = check.tick() => {
                if let Some(end) = lost_leader(asked.service, &mut out_of_touch_since) {
                    tracing::debug!("ending a watch: {end}");
                    ServerFrame::WatchEnded { id, end }
                } else {
                    // A new policy judges the watch again: one that revokes the caller's read
                    // ends it.
                    let now = asked.service.policy_generation();
                    if now == judged_under {
                        continue;
                    }
                    judged_under = now;
                    match asked.service.admit(&asked.caller, &asked.operation).await {
                        Ok(()) => continue,
                        Err(error) => ServerFrame::Error(error),
                    }
                }
            }
        };
        let last = !matches!(frame, ServerFrame::Changes { .. });
        // A stalled client must not keep the stream open once it went away.
        tokio::select! {
            _ = &mut closed => break,
            written = tokio::time::timeout(WATCH_STALL_LIMIT, write_frame(&mut send, encode_frame(&frame)?)) => match written {
                Ok(written) => written?,
                Err(_) => {
                    tracing::debug!("a watcher took nothing for {WATCH_STALL_LIMIT:?}; ending its watch");
                    // Reset, not finished: the frame in flight is cut short and must not be
                    // taken for a whole one.
                    let _ = send.reset(WATCH_STALLED.into());
                    return Ok(());
                }
            },
        }
        if last {
            break;
        }
    }
    send.finish().map_err(|e| FrameError::Stream(e.to_string()))
}

/// How a watch ends because its node lost touch with the leader: once it has been out of touch
/// (since `since`, which this keeps) for the service's limit.
fn lost_leader<S: ManagementService>(service: &S, since: &mut Option<Instant>) -> Option<WatchEnd> {
    if service.in_touch_with_leader() {
        *since = None;
        return None;
    }
    let out_of_touch = since.get_or_insert_with(Instant::now).elapsed();
    (out_of_touch >= service.out_of_touch_limit()).then_some(WatchEnd::LostLeader {
        after_ms: out_of_touch.as_millis() as u64,
    })
}
