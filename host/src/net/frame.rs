//! Frames on QUIC streams: every read is bounded by the protocol's maximum frame size, checked
//! before a byte of the body is read. The codec itself is `proto/codec.rs`.

use bytes::{Bytes, BytesMut};
use iroh::endpoint::{ReadExactError, RecvStream, SendStream};

use crate::proto::FrameError;

/// Writes one encoded frame (from [`crate::proto::encode_frame`]).
pub async fn write_frame(send: &mut SendStream, frame: Bytes) -> Result<(), FrameError> {
    send.write_chunk(frame).await.map_err(|e| stream_error(&e))
}

/// A stream error with its causes: noq's "connection lost" alone does not say whether the peer
/// closed the connection, reset it or stopped answering.
pub(crate) fn stream_error(error: &dyn std::error::Error) -> FrameError {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(next) = cause {
        text.push_str(": ");
        text.push_str(&next.to_string());
        cause = next.source();
    }
    FrameError::Stream(text)
}

/// Reads the next frame body. `Ok(None)` is a clean end of stream between frames.
pub async fn read_frame(recv: &mut RecvStream, max: usize) -> Result<Option<Bytes>, FrameError> {
    let mut prefix = [0u8; 4];
    match recv.read_exact(&mut prefix).await {
        Ok(()) => {}
        Err(ReadExactError::FinishedEarly(0)) => return Ok(None),
        Err(ReadExactError::FinishedEarly(read)) => {
            return Err(FrameError::Truncated { read, expected: 4 });
        }
        Err(ReadExactError::ReadError(e)) => return Err(stream_error(&e)),
    }
    let len = u32::from_be_bytes(prefix) as usize;
    if len > max {
        return Err(FrameError::TooLarge { len, max });
    }
    let mut body = BytesMut::zeroed(len);
    match recv.read_exact(&mut body).await {
        Ok(()) => Ok(Some(body.freeze())),
        Err(ReadExactError::FinishedEarly(read)) => Err(FrameError::Truncated {
            read,
            expected: len,
        }),
        Err(ReadExactError::ReadError(e)) => Err(stream_error(&e)),
    }
}

#[cfg(test)]
mod tests {
    use super::stream_error;
    use crate::proto::FrameError;

    #[derive(Debug, thiserror::Error)]
    #[error("connection lost")]
    struct Lost(#[source] std::io::Error);

    #[test]
    fn bug_a_lost_stream_did_not_say_why() {
        let lost = Lost(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "timed out",
        ));
        match stream_error(&lost) {
            FrameError::Stream(text) => assert_eq!(text, "connection lost: timed out"),
            other => panic!("{other:?}"),
        }
    }
}
