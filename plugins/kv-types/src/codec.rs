//! The postcard encoding of the kv messages, and [`CodecError`].
//!
//! Decoding is strict: bytes left over after a message make it malformed, so a truncated or
//! concatenated payload is never mistaken for a valid one.

use alloc::vec::Vec;
use core::fmt;
use serde::{Deserialize, Serialize};

/// Why a message could not be encoded or decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CodecError {
    /// The value could not be serialized.
    Encode {
        /// What postcard reported.
        source: postcard::Error,
    },
    /// The bytes are not a message of the expected type.
    Decode {
        /// What postcard reported.
        source: postcard::Error,
    },
    /// The bytes hold a message followed by `count` more bytes.
    TrailingBytes {
        /// How many bytes follow the message.
        count: usize,
    },
}

impl fmt::Display for CodecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Encode { source } => write!(f, "could not encode the message: {source}"),
            Self::Decode { source } => write!(
                f,
                "malformed message ({source}); build it with iroh_raft_kv_types::encode"
            ),
            Self::TrailingBytes { count } => write!(
                f,
                "malformed message: {count} unexpected bytes after its end; send exactly one message"
            ),
        }
    }
}

impl core::error::Error for CodecError {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            Self::Encode { source } | Self::Decode { source } => Some(source),
            Self::TrailingBytes { .. } => None,
        }
    }
}

/// Encodes a message with postcard.
pub fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, CodecError> {
    postcard::to_allocvec(value).map_err(|source| CodecError::Encode { source })
}

/// Decodes one postcard message that fills `bytes` exactly, borrowing from `bytes` where the type
/// allows.
pub fn decode<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, CodecError> {
    let (value, rest) =
        postcard::take_from_bytes(bytes).map_err(|source| CodecError::Decode { source })?;
    if rest.is_empty() {
        Ok(value)
    } else {
        Err(CodecError::TrailingBytes { count: rest.len() })
    }
}

#[cfg(test)]
#[path = "codec_tests.rs"]
mod tests;
