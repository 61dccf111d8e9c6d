//! postcard helpers for command, response and stored value types.
//!
//! Use borrowed fields (`&'a [u8]`, `&'a str`) in command types: [`decode`] then reads them straight
//! out of the entry's payload without copying.

use alloc::vec::Vec;
use serde::{Deserialize, Serialize};

use crate::Result;

/// Decodes a postcard-encoded value, borrowing from `bytes` where the type allows.
pub fn decode<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> Result<T> {
    Ok(postcard::from_bytes(bytes)?)
}

/// Encodes a value with postcard.
pub fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>> {
    Ok(postcard::to_allocvec(value)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct Command<'a> {
        key: &'a [u8],
        by: i64,
    }

    #[test]
    fn borrowed_fields_round_trip() {
        let bytes = encode(&Command { key: b"k", by: -3 }).unwrap();
        let back: Command<'_> = decode(&bytes).unwrap();
        assert_eq!(back, Command { key: b"k", by: -3 });
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let err = decode::<Command<'_>>(&[0xff, 0xff, 0xff]).unwrap_err();
        assert!(err.message().starts_with("malformed message"), "{err}");
    }
}
