//! The plugin's keyspace, as the host's `kv` interface offers it: raw bytes plus postcard-typed
//! helpers and forward scans.
//!
//! [`ApplyContext`] is handed to `apply` and `migrate` and may write; its reads see the current
//! transaction's earlier writes. [`QueryContext`] is handed to `query` and reads a snapshot.

use alloc::vec::Vec;
use core::marker::PhantomData;
use core::ops::Deref;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::Result;
use crate::bindings::state_machine::iroh_raft::plugin::kv as host;

/// Read access to the keyspace.
pub struct QueryContext {
    // Only the SDK creates contexts, and they are not `Send`: the host calls are bound to the
    // current export call.
    _not_send: PhantomData<*const ()>,
}

/// Read and write access to the keyspace inside the current apply transaction.
pub struct ApplyContext {
    reader: QueryContext,
}

impl QueryContext {
    pub(crate) fn new() -> Self {
        Self {
            _not_send: PhantomData,
        }
    }

    /// Reads one key.
    pub fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        host::get(key)
    }

    /// Reads one key and decodes it with postcard.
    pub fn get_as<T: DeserializeOwned>(&self, key: &[u8]) -> Result<Option<T>> {
        match host::get(key) {
            Some(bytes) => Ok(Some(crate::codec::decode(&bytes)?)),
            None => Ok(None),
        }
    }

    /// Scans the keys in `[start, end)` in byte order (`end = None`: to the end of the keyspace).
    pub fn scan(&self, start: &[u8], end: Option<&[u8]>) -> Scan {
        Scan::new(start, end)
    }

    /// Scans the keys that start with `prefix`, in byte order.
    pub fn scan_prefix(&self, prefix: &[u8]) -> Scan {
        let end = prefix_end(prefix);
        Scan::new(prefix, end.as_deref())
    }

    /// Scans the keys in `[start, end)` in byte order without their values: counting, listing
    /// or deleting a range of large values this way costs only the keys' memory.
    pub fn scan_keys(&self, start: &[u8], end: Option<&[u8]>) -> KeyScan {
        KeyScan::new(start, end)
    }
}

impl ApplyContext {
    pub(crate) fn new() -> Self {
        Self {
            reader: QueryContext::new(),
        }
    }

    /// Writes one key. The host refuses an empty key, a key over the cluster's `max_key_bytes`
    /// and a value over its `max_value_bytes`; the error names the limit. Return it from `apply`
    /// (with `?`) so the entry fails with that message.
    pub fn put(&mut self, key: &[u8], value: &[u8]) -> Result<()> {
        host::put(key, value).map_err(crate::Error::new)
    }

    /// Encodes a value with postcard and writes it (refused like [`Self::put`]).
    pub fn put_as<T: Serialize + ?Sized>(&mut self, key: &[u8], value: &T) -> Result<()> {
        self.put(key, &crate::codec::encode(value)?)
    }

    /// Deletes one key; returns whether it existed.
    pub fn delete(&mut self, key: &[u8]) -> bool {
        host::delete(key)
    }
}

impl Deref for ApplyContext {
    type Target = QueryContext;

    fn deref(&self) -> &QueryContext {
        &self.reader
    }
}

/// A forward scan; fetches pairs from the host in pages of 64 pairs, or fewer
/// ([`Scan::pages_of`]).
pub struct Scan {
    cursor: host::Cursor,
    page: host::Pairs,
    page_size: u32,
    position: usize,
    offset: usize,
    done: bool,
}

/// The most pairs a scan fetches from the host at a time.
const PAGE: u32 = 64;

impl Scan {
    fn new(start: &[u8], end: Option<&[u8]>) -> Self {
        Self {
            cursor: host::Cursor::new(start, end),
            page: host::Pairs {
                key_lens: Vec::new(),
                value_lens: Vec::new(),
                data: Vec::new(),
            },
            page_size: PAGE,
            position: 0,
            offset: 0,
            done: false,
        }
    }

    /// Fetches at most `pairs` pairs from the host at a time (1 to 64). A caller that takes
    /// only a few pairs, whose values may be large, says so: a full page of 16 MiB values would
    /// not fit in the plugin's memory.
    pub fn pages_of(mut self, pairs: usize) -> Self {
        self.page_size = u32::try_from(pairs).unwrap_or(PAGE).clamp(1, PAGE);
        self
    }
}

impl Iterator for Scan {
    type Item = (Vec<u8>, Vec<u8>);

    fn next(&mut self) -> Option<Self::Item> {
        if self.position == self.page.key_lens.len() {
            if self.done {
                return None;
            }
            self.page = self.cursor.next(self.page_size);
            self.done = (self.page.key_lens.len() as u32) < self.page_size;
            self.position = 0;
            self.offset = 0;
            if self.page.key_lens.is_empty() {
                return None;
            }
        }
        let key_len = *self.page.key_lens.get(self.position)? as usize;
        let value_len = *self.page.value_lens.get(self.position)? as usize;
        let key = self
            .page
            .data
            .get(self.offset..self.offset + key_len)?
            .to_vec();
        self.offset += key_len;
        let value = self
            .page
            .data
            .get(self.offset..self.offset + value_len)?
            .to_vec();
        self.offset += value_len;
        self.position += 1;
        Some((key, value))
    }
}

/// A forward scan over keys alone; fetches them from the host in pages of 256 keys.
pub struct KeyScan {
    cursor: host::Cursor,
    page: host::Keys,
    position: usize,
    offset: usize,
    done: bool,
}

/// The most keys a key scan fetches from the host at a time.
const KEY_PAGE: u32 = 256;

impl KeyScan {
    fn new(start: &[u8], end: Option<&[u8]>) -> Self {
        Self {
            cursor: host::Cursor::new(start, end),
            page: host::Keys {
                lens: Vec::new(),
                data: Vec::new(),
            },
            position: 0,
            offset: 0,
            done: false,
        }
    }
}

impl Iterator for KeyScan {
    type Item = Vec<u8>;

    fn next(&mut self) -> Option<Vec<u8>> {
        if self.position == self.page.lens.len() {
            if self.done {
                return None;
            }
            self.page = self.cursor.next_keys(KEY_PAGE);
            self.done = (self.page.lens.len() as u32) < KEY_PAGE;
            self.position = 0;
            self.offset = 0;
            if self.page.lens.is_empty() {
                return None;
            }
        }
        let len = *self.page.lens.get(self.position)? as usize;
        let key = self.page.data.get(self.offset..self.offset + len)?.to_vec();
        self.offset += len;
        self.position += 1;
        Some(key)
    }
}

pub(crate) use iroh_raft_access_types::resource::prefix_end;

#[cfg(test)]
mod tests {
    use super::prefix_end;

    #[test]
    fn prefix_end_increments_the_last_byte_that_can_be() {
        assert_eq!(prefix_end(b"ab"), Some(b"ac".to_vec()));
        assert_eq!(prefix_end(b"a\xff"), Some(b"b".to_vec()));
        assert_eq!(prefix_end(b"\xff\xff"), None);
        assert_eq!(prefix_end(b""), None);
    }
}
