//! Frames on QUIC streams: every read is bounded by the protocol's maximum frame size, checked
//! before a byte of the body is read. The codec itself is `proto/codec.rs`.

use bytes::{Bytes, BytesMut};
use iroh::endpoint::{ReadExactError, RecvStream, SendStream};

use crate::proto::FrameError;

/// Writes one encoded frame (from [`crate::proto::encode_frame`]).
pub async fn write_frame(send: &mut SendStream, frame: Bytes) -> Result<(), FrameError> {
    send.write_chunk(frame)
        .await
        .map_err(|e| FrameError::Stream(e.to_string()))
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
        Err(ReadExactError::ReadError(e)) => return Err(FrameError::Stream(e.to_string())),
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
        Err(ReadExactError::ReadError(e)) => Err(FrameError::Stream(e.to_string())),
    }
}
