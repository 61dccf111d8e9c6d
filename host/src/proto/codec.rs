//! The frame codec every ALPN shares: a 4-byte big-endian length, then a postcard body. Pure: the
//! stream side (reads bounded by the protocol's limit) is `net/frame.rs`.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::FrameError;

/// A request id: 16 bytes chosen by the caller, echoed by the response.
pub type RequestId = [u8; 16];

/// Encodes `value` as one frame (length prefix included).
pub fn encode_frame<T: Serialize + ?Sized>(value: &T) -> Result<Bytes, FrameError> {
    let mut buf = postcard::to_extend(value, vec![0u8; 4])?;
    let len = u32::try_from(buf.len() - 4).map_err(|_| FrameError::TooLarge {
        len: buf.len() - 4,
        max: u32::MAX as usize,
    })?;
    buf[..4].copy_from_slice(&len.to_be_bytes());
    Ok(Bytes::from(buf))
}

/// Decodes a frame body (without its length prefix). Trailing bytes are an error.
pub fn decode_body<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T, FrameError> {
    let (value, rest) = postcard::take_from_bytes(body)?;
    if !rest.is_empty() {
        return Err(FrameError::Malformed(
            postcard::Error::DeserializeBadEncoding,
        ));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    enum Message {
        Ping { id: RequestId, payload: Bytes },
        Pong(u64, Option<String>),
    }

    fn message() -> impl Strategy<Value = Message> {
        prop_oneof![
            (
                any::<[u8; 16]>(),
                proptest::collection::vec(any::<u8>(), 0..256)
            )
                .prop_map(|(id, p)| Message::Ping {
                    id,
                    payload: Bytes::from(p)
                }),
            (any::<u64>(), proptest::option::of(".{0,32}")).prop_map(|(n, s)| Message::Pong(n, s)),
        ]
    }

    proptest! {
        #[test]
        fn frames_round_trip(message in message()) {
            let frame = encode_frame(&message).unwrap();
            let len = u32::from_be_bytes(frame[..4].try_into().unwrap()) as usize;
            prop_assert_eq!(len, frame.len() - 4);
            prop_assert_eq!(decode_body::<Message>(&frame[4..]).unwrap(), message);
        }

        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = decode_body::<Message>(&bytes);
        }
    }

    #[test]
    fn trailing_bytes_are_malformed() {
        let frame = encode_frame(&Message::Pong(1, None)).unwrap();
        let mut body = frame[4..].to_vec();
        body.push(0);
        assert!(matches!(
            decode_body::<Message>(&body),
            Err(FrameError::Malformed(_))
        ));
    }
}
