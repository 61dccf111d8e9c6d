//! The `kv` host interface: the plugin's keyspace, read through the apply transaction (or the
//! query snapshot), with forward cursors.

use wasmtime::component::Resource;

use super::bindings::iroh_raft::plugin::kv::{Host, HostCursor as HostCursorMethods, Keys, Pairs};
use super::host_state::{Access, HostState, WriteBudgetExceeded};
use crate::proto::PluginLimits;
use crate::store::Pairs as PairVec;

/// The state of one `kv.cursor` resource: where the next page starts.
#[allow(unreachable_pub)] // bindgen re-exports it as `pub` inside a private module
pub struct HostCursor {
    /// Inclusive start of the next page; `None` once the scan is done.
    next: Option<Vec<u8>>,
    end: Option<Vec<u8>>,
}

/// A start key, inclusive, and an end key, exclusive (`None`: to the end of the keyspace).
type KeyRange = (Vec<u8>, Option<Vec<u8>>);

/// Largest page one `cursor.next` call returns, whatever the guest asks for.
const MAX_PAGE: u32 = 4096;

/// The longest key fjall can hold; a longer one makes it panic, so none reaches it.
const STORABLE_KEY: usize = u16::MAX as usize;

/// Whether any stored key can be `key`: no empty key and none over fjall's limit ever is.
fn storable(key: &[u8]) -> bool {
    !key.is_empty() && key.len() <= STORABLE_KEY
}

/// Why `kv.put` refuses `key` = `value` under `limits`, in words naming the limit; pure.
pub(crate) fn refusal(limits: &PluginLimits, key: &[u8], value: &[u8]) -> Option<String> {
    if key.is_empty() {
        return Some("the key is empty: keys must be at least one byte long".into());
    }
    if key.len() as u64 > limits.max_key_bytes {
        return Some(format!(
            "the key is {} bytes, over the cluster's max_key_bytes of {} \
             (`iroh-raft config set max_key_bytes=N` raises it, up to 65535)",
            key.len(),
            limits.max_key_bytes
        ));
    }
    if value.len() as u64 > limits.max_value_bytes {
        return Some(format!(
            "the value is {} bytes, over the cluster's max_value_bytes of {} \
             (`iroh-raft config set max_value_bytes=N` raises it)",
            value.len(),
            limits.max_value_bytes
        ));
    }
    None
}

/// The trap for a `kv` call while no apply, migrate or query runs.
fn outside() -> wasmtime::Error {
    wasmtime::Error::msg("kv used outside apply, migrate or query")
}

impl HostState {
    fn read(&mut self, key: &[u8]) -> wasmtime::Result<Option<Vec<u8>>> {
        let result = match &self.access {
            Access::Apply(state) => self.txn.get(&**state, key),
            Access::Query(view) => view.get(key),
            Access::Closed => return Err(outside()),
        };
        result.map_err(|e| self.storage_trap(e))
    }

    fn scan(
        &mut self,
        start: &[u8],
        end: Option<&[u8]>,
        limit: usize,
    ) -> wasmtime::Result<PairVec> {
        let result = match &self.access {
            Access::Apply(state) => self.txn.scan(&**state, start, end, limit),
            Access::Query(view) => view.scan(start, end, limit),
            Access::Closed => return Err(outside()),
        };
        result.map_err(|e| self.storage_trap(e))
    }

    fn scan_keys(
        &mut self,
        start: &[u8],
        end: Option<&[u8]>,
        limit: usize,
    ) -> wasmtime::Result<Vec<Vec<u8>>> {
        let result = match &self.access {
            Access::Apply(state) => self.txn.scan_keys(&**state, start, end, limit),
            Access::Query(view) => view.scan_keys(start, end, limit),
            Access::Closed => return Err(outside()),
        };
        result.map_err(|e| self.storage_trap(e))
    }

    /// Where `cursor`'s next page starts and ends; `None` once it is done.
    fn cursor_range(
        &mut self,
        cursor: &Resource<HostCursor>,
    ) -> wasmtime::Result<Option<KeyRange>> {
        let state = self.table.get(cursor)?;
        Ok(state.next.clone().map(|start| (start, state.end.clone())))
    }

    /// Moves `cursor` past a page whose last key is `last` and which held `count` of the `max`
    /// keys asked for: a short page ends the scan.
    fn advance(
        &mut self,
        cursor: &Resource<HostCursor>,
        last: Option<&[u8]>,
        count: usize,
        max: usize,
    ) -> wasmtime::Result<()> {
        let state = self.table.get_mut(cursor)?;
        state.next = match last {
            // The smallest key after the last one returned.
            Some(last) if count == max => {
                let mut after = last.to_vec();
                after.push(0);
                Some(after)
            }
            _ => None,
        };
        Ok(())
    }

    fn writable(&self, operation: &str) -> wasmtime::Result<()> {
        match self.access {
            Access::Apply(_) => Ok(()),
            Access::Query(_) => Err(wasmtime::format_err!(
                "kv.{operation} is not allowed in query: queries are read-only"
            )),
            Access::Closed => Err(outside()),
        }
    }
}

impl Host for HostState {
    fn get(&mut self, key: Vec<u8>) -> wasmtime::Result<Option<Vec<u8>>> {
        if !storable(&key) {
            return Ok(None);
        }
        self.read(&key)
    }

    fn put(&mut self, key: Vec<u8>, value: Vec<u8>) -> wasmtime::Result<Result<(), String>> {
        self.writable("put")?;
        // Counted before the limits are checked: refused bytes were copied into the host too.
        self.written = self
            .written
            .saturating_add((key.len() + value.len()) as u64);
        if self.written > self.write_budget {
            return Err(wasmtime::Error::new(WriteBudgetExceeded {
                written: self.written,
                limit: self.write_budget,
            }));
        }
        if let Some(reason) = refusal(&self.limits, &key, &value) {
            return Ok(Err(reason));
        }
        self.txn.put(key, value);
        Ok(Ok(()))
    }

    fn delete(&mut self, key: Vec<u8>) -> wasmtime::Result<bool> {
        let Access::Apply(state) = &self.access else {
            return self.writable("delete").map(|()| false);
        };
        if !storable(&key) {
            return Ok(false);
        }
        let result = self.txn.delete(&**state, key);
        result.map_err(|e| self.storage_trap(e))
    }
}

impl HostCursorMethods for HostState {
    fn new(
        &mut self,
        start: Vec<u8>,
        end: Option<Vec<u8>>,
    ) -> wasmtime::Result<Resource<HostCursor>> {
        Ok(self.table.push(HostCursor {
            next: Some(start),
            end,
        })?)
    }

    fn next(&mut self, cursor: Resource<HostCursor>, max: u32) -> wasmtime::Result<Pairs> {
        let max = max.min(MAX_PAGE) as usize;
        let Some((start, end)) = self.cursor_range(&cursor)? else {
            return Ok(pack(Vec::new()));
        };
        let page = self.scan(&start, end.as_deref(), max)?;
        let last = page.last().map(|(key, _)| key.as_slice());
        self.advance(&cursor, last, page.len(), max)?;
        Ok(pack(page))
    }

    fn next_keys(&mut self, cursor: Resource<HostCursor>, max: u32) -> wasmtime::Result<Keys> {
        let max = max.min(MAX_PAGE) as usize;
        let Some((start, end)) = self.cursor_range(&cursor)? else {
            return Ok(pack_keys(Vec::new()));
        };
        let page = self.scan_keys(&start, end.as_deref(), max)?;
        self.advance(&cursor, page.last().map(Vec::as_slice), page.len(), max)?;
        Ok(pack_keys(page))
    }

    fn drop(&mut self, cursor: Resource<HostCursor>) -> wasmtime::Result<()> {
        self.table.delete(cursor)?;
        Ok(())
    }
}

fn pack(pairs: PairVec) -> Pairs {
    let mut packed = Pairs {
        key_lens: Vec::with_capacity(pairs.len()),
        value_lens: Vec::with_capacity(pairs.len()),
        data: Vec::with_capacity(pairs.iter().map(|(k, v)| k.len() + v.len()).sum()),
    };
    for (key, value) in pairs {
        packed.key_lens.push(key.len() as u32);
        packed.value_lens.push(value.len() as u32);
        packed.data.extend_from_slice(&key);
        packed.data.extend_from_slice(&value);
    }
    packed
}

fn pack_keys(keys: Vec<Vec<u8>>) -> Keys {
    Keys {
        lens: keys.iter().map(|key| key.len() as u32).collect(),
        data: keys.concat(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn puts_are_refused_with_the_limit_they_broke() {
        let limits = PluginLimits {
            max_key_bytes: 4,
            max_value_bytes: 8,
            ..PluginLimits::default()
        };
        assert_eq!(refusal(&limits, b"k", b"v"), None);
        assert_eq!(refusal(&limits, b"kkkk", b"vvvvvvvv"), None);
        assert!(refusal(&limits, b"", b"v").unwrap().contains("empty"));
        let key = refusal(&limits, b"kkkkk", b"v").unwrap();
        assert!(
            key.contains("5 bytes") && key.contains("max_key_bytes of 4"),
            "{key}"
        );
        let value = refusal(&limits, b"k", b"vvvvvvvvv").unwrap();
        assert!(
            value.contains("9 bytes") && value.contains("max_value_bytes of 8"),
            "{value}"
        );
    }

    #[test]
    fn no_empty_or_overlong_key_reaches_storage() {
        assert!(storable(b"k"));
        assert!(storable(&[1; STORABLE_KEY]));
        assert!(!storable(b""));
        assert!(!storable(&[1; STORABLE_KEY + 1]));
    }
}
