//! A watch on one node: [`Client::watch`] and the [`WatchStream`] it opens.

use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use iroh::endpoint::{RecvStream, SendStream};

use super::{Client, ClientError};
use crate::net::read_frame;
use crate::proto::{
    MAX_WATCH_FRAME, Operation, Reply, RequestId, ServerFrame, WatchChange, WatchRequest,
    WatchStart, decode_body,
};

impl Client {
    /// Opens a watch on this node: every change its state machine makes to the keys `request`
    /// names, from its index (or from the next one applied), in log order. Refused with
    /// [`RequestError::Compacted`](crate::proto::RequestError::Compacted) when the node no longer
    /// holds that index.
    pub async fn watch(&self, request: WatchRequest) -> Result<WatchStream, ClientError> {
        let (id, send, recv, reply) = self.open_stream(Operation::Watch(request)).await?;
        match reply {
            Reply::Watching(start) => Ok(WatchStream {
                id,
                start,
                resume_from: start.from_index,
                _send: send,
                recv,
            }),
            other => Err(ClientError::Unexpected(format!("{other:?}"))),
        }
    }
}

/// The changes of one watch. Dropping it closes the watch.
pub struct WatchStream {
    id: RequestId,
    start: WatchStart,
    resume_from: u64,
    _send: SendStream,
    recv: RecvStream,
}

impl std::fmt::Debug for WatchStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WatchStream")
            .field("start", &self.start)
            .field("resume_from", &self.resume_from)
            .finish_non_exhaustive()
    }
}

impl WatchStream {
    /// Where the watch began, as the node answered.
    pub fn start(&self) -> WatchStart {
        self.start
    }

    /// The index a new watch would resume from without losing or repeating a change: the one
    /// after the last index delivered (the node never splits an index's changes).
    pub fn resume_from(&self) -> u64 {
        self.resume_from
    }

    /// The next changes, in log order. Fails with [`ClientError::WatchEnded`] when the node ended
    /// the watch (it fell behind, or the node's data was replaced), every change before the
    /// index it names delivered.
    pub async fn next(&mut self) -> Result<Vec<WatchChange>, ClientError> {
        let stopped = |why: String| {
            ClientError::Connect(format!(
                "the watch stopped ({why}): the node shut down, or let go of a watcher that took \
                 nothing for {} s; watch again from index {} to lose nothing",
                crate::net::WATCH_STALL_LIMIT.as_secs(),
                self.resume_from
            ))
        };
        let body = match read_frame(&mut self.recv, MAX_WATCH_FRAME).await {
            Ok(Some(body)) => body,
            Ok(None) => return Err(stopped("the node closed the stream".into())),
            Err(error) => return Err(stopped(error.to_string())),
        };
        match decode_body::<ServerFrame>(&body)? {
            ServerFrame::Changes { id, changes } if id == self.id => {
                if let Some(last) = changes.last() {
                    self.resume_from = last.index.saturating_add(1);
                }
                Ok(changes)
            }
            ServerFrame::WatchEnded { id, end } if id == self.id => {
                Err(ClientError::WatchEnded(end))
            }
            ServerFrame::Error(error) => Err(error.into()),
            other => Err(ClientError::Unexpected(format!("{other:?}"))),
        }
    }

    /// The changes one by one as a [`Stream`](futures_util::Stream); its last item is the error
    /// that ended it.
    pub fn into_stream(self) -> BoxStream<'static, Result<WatchChange, ClientError>> {
        change_stream(self)
    }
}

/// A source of changes a batch at a time: a watch on one node, or one that resumes elsewhere.
pub(crate) trait ChangeBatches: Send + 'static {
    /// The next batch, or the error that ends the watch.
    fn next_batch(
        &mut self,
    ) -> impl std::future::Future<Output = Result<Vec<WatchChange>, ClientError>> + Send;
}

impl ChangeBatches for WatchStream {
    async fn next_batch(&mut self) -> Result<Vec<WatchChange>, ClientError> {
        self.next().await
    }
}

/// The changes of `batches` one by one; the last item is the error that ended them.
pub(crate) fn change_stream(
    batches: impl ChangeBatches,
) -> BoxStream<'static, Result<WatchChange, ClientError>> {
    futures_util::stream::unfold(Some(batches), |state| async move {
        let mut batches = state?;
        match batches.next_batch().await {
            Ok(changes) => Some((
                futures_util::stream::iter(changes.into_iter().map(Ok)).left_stream(),
                Some(batches),
            )),
            Err(error) => Some((
                futures_util::stream::iter([Err(error)]).right_stream(),
                None,
            )),
        }
    })
    .flatten()
    .boxed()
}
