//! The read side of the protocol: [`Query`], a read-only request, and [`QueryResponse`], its
//! answer, plus the limit rules of range reads.

use alloc::vec::Vec;
use serde::{Deserialize, Serialize};

/// The most pairs one range read returns; a larger requested limit is clamped to it.
pub const MAX_SCAN_LIMIT: u32 = 10_000;

/// The number of pairs a range read with `requested` limit returns at most: `0` means
/// [`MAX_SCAN_LIMIT`], and larger limits are clamped to it.
pub fn scan_limit(requested: u32) -> u32 {
    if requested == 0 {
        MAX_SCAN_LIMIT
    } else {
        requested.min(MAX_SCAN_LIMIT)
    }
}

/// A read-only request. Its byte fields borrow from the encoded request.
///
/// Range reads return keys in byte order. To page through a larger range, repeat the read with
/// `start` set to the last key returned followed by a `0` byte while [`QueryResponse::Pairs`]
/// says `more`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Query<'a> {
    /// Reads one key. Answered by [`QueryResponse::Value`].
    Get {
        /// The key; must not be empty.
        #[serde(with = "serde_bytes")]
        key: &'a [u8],
    },
    /// Reads the keys in `[start, end)`. Answered by [`QueryResponse::Pairs`].
    Scan {
        /// The first key to include; empty means the start of the keyspace.
        #[serde(with = "serde_bytes")]
        start: &'a [u8],
        /// The first key to exclude; `None` means the end of the keyspace.
        #[serde(borrow, with = "serde_bytes")]
        end: Option<&'a [u8]>,
        /// The most pairs to return; see [`scan_limit`].
        limit: u32,
    },
    /// Reads the keys that start with `prefix` (all keys if it is empty). Answered by
    /// [`QueryResponse::Pairs`].
    Prefix {
        /// The common prefix.
        #[serde(with = "serde_bytes")]
        prefix: &'a [u8],
        /// The most pairs to return; see [`scan_limit`].
        limit: u32,
    },
    /// Lists the keys in `[start, end)` without their values. Answered by
    /// [`QueryResponse::Keys`]; pages like [`Query::Scan`].
    Keys {
        /// The first key to include; empty means the start of the keyspace.
        #[serde(with = "serde_bytes")]
        start: &'a [u8],
        /// The first key to exclude; `None` means the end of the keyspace.
        #[serde(borrow, with = "serde_bytes")]
        end: Option<&'a [u8]>,
        /// The most keys to return; see [`scan_limit`].
        limit: u32,
    },
}

/// The answer to a [`Query`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum QueryResponse {
    /// The value of the key a [`Query::Get`] asked for; `None` if it is absent.
    Value(#[serde(with = "serde_bytes")] Option<Vec<u8>>),
    /// The pairs a range read found, in key order.
    Pairs {
        /// At most the read's limit of pairs.
        pairs: Vec<Pair>,
        /// Whether the range holds further pairs after the last one returned.
        more: bool,
    },
    /// The keys a [`Query::Keys`] found, in order.
    Keys {
        /// At most the read's limit of keys.
        keys: Vec<Key>,
        /// Whether the range holds further keys after the last one returned.
        more: bool,
    },
}

/// One key, without its value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Key(#[serde(with = "serde_bytes")] pub Vec<u8>);

/// One key and its value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pair {
    /// The key.
    #[serde(with = "serde_bytes")]
    pub key: Vec<u8>,
    /// Its value.
    #[serde(with = "serde_bytes")]
    pub value: Vec<u8>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_means_the_maximum_and_larger_limits_are_clamped() {
        assert_eq!(scan_limit(0), MAX_SCAN_LIMIT);
        assert_eq!(scan_limit(1), 1);
        assert_eq!(scan_limit(MAX_SCAN_LIMIT), MAX_SCAN_LIMIT);
        assert_eq!(scan_limit(MAX_SCAN_LIMIT + 1), MAX_SCAN_LIMIT);
        assert_eq!(scan_limit(u32::MAX), MAX_SCAN_LIMIT);
    }
}
