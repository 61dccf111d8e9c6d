//! The write side of the protocol: [`Command`], the payload of one log entry, and [`Response`],
//! what applying it returns.

use alloc::vec::Vec;
use serde::{Deserialize, Serialize};

/// A write to the keyspace. Its byte fields borrow from the encoded entry, so the plugin decodes
/// it without copying.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command<'a> {
    /// Sets `key` to `value`. Answered by [`Response::Written`].
    Put {
        /// The key; must not be empty.
        #[serde(with = "serde_bytes")]
        key: &'a [u8],
        /// The value; may be empty.
        #[serde(with = "serde_bytes")]
        value: &'a [u8],
    },
    /// Removes `key`. Answered by [`Response::Deleted`].
    Delete {
        /// The key; must not be empty.
        #[serde(with = "serde_bytes")]
        key: &'a [u8],
    },
    /// Compare-and-swap: if `key` currently holds `expected`, replaces it with `new`. Answered by
    /// [`Response::Cas`].
    Cas {
        /// The key; must not be empty.
        #[serde(with = "serde_bytes")]
        key: &'a [u8],
        /// The value the key must hold; `None` means the key must be absent.
        #[serde(borrow, with = "serde_bytes")]
        expected: Option<&'a [u8]>,
        /// The value to store on success; `None` deletes the key.
        #[serde(borrow, with = "serde_bytes")]
        new: Option<&'a [u8]>,
    },
    /// Deletes the keys in `[start, end)` (`end = None`: to the last key), at most `limit` of
    /// them (0: [`crate::MAX_SCAN_LIMIT`], larger limits are clamped to it), in key order.
    /// Answered by [`Response::DeletedRange`]; while `more` is true, sending it again deletes on.
    DeleteRange {
        /// The first key of the range (inclusive).
        #[serde(with = "serde_bytes")]
        start: &'a [u8],
        /// The end of the range (exclusive).
        #[serde(borrow, with = "serde_bytes")]
        end: Option<&'a [u8]>,
        /// The most keys this one entry deletes.
        limit: u32,
    },
}

/// The outcome of one applied [`Command`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Response {
    /// A [`Command::Put`] stored its value.
    Written,
    /// A [`Command::Delete`] ran.
    Deleted {
        /// Whether the key existed before.
        existed: bool,
    },
    /// A [`Command::Cas`] ran.
    Cas {
        /// Whether the key held the expected value, so the swap happened.
        swapped: bool,
        /// The key's value after the command (the new value on success, the unchanged one
        /// otherwise); `None` if the key is absent.
        #[serde(with = "serde_bytes")]
        current: Option<Vec<u8>>,
    },
    /// A [`Command::DeleteRange`] ran.
    DeletedRange {
        /// How many keys it deleted.
        deleted: u32,
        /// Whether keys remain in the range past its limit.
        more: bool,
    },
}
