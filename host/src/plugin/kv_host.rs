//! The `kv` host interface: the plugin's keyspace, read through the apply transaction (or the
//! query snapshot), with forward cursors.

use wasmtime::component::Resource;

use super::bindings::iroh_raft::plugin::kv::{Host, HostCursor as HostCursorMethods, Pairs};
use super::host_state::{Access, HostState};
use crate::store::Pairs as PairVec;

/// The state of one `kv.cursor` resource: where the next page starts.
#[allow(unreachable_pub)] // bindgen re-exports it as `pub` inside a private module
pub struct HostCursor {
    /// Inclusive start of the next page; `None` once the scan is done.
    next: Option<Vec<u8>>,
    end: Option<Vec<u8>>,
}

/// Largest page one `cursor.next` call returns, whatever the guest asks for.
const MAX_PAGE: u32 = 4096;

impl HostState {
    fn read(&mut self, key: &[u8]) -> wasmtime::Result<Option<Vec<u8>>> {
        let result = match &self.access {
            Access::Apply(state) => self.txn.get(&**state, key),
            Access::Query(view) => view.get(key),
            Access::Closed => {
                return Err(wasmtime::Error::msg(
                    "kv used outside apply, migrate or query",
                ));
            }
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
            Access::Closed => {
                return Err(wasmtime::Error::msg(
                    "kv used outside apply, migrate or query",
                ));
            }
        };
        result.map_err(|e| self.storage_trap(e))
    }

    fn writable(&self, operation: &str) -> wasmtime::Result<()> {
        match self.access {
            Access::Apply(_) => Ok(()),
            Access::Query(_) => Err(wasmtime::format_err!(
                "kv.{operation} is not allowed in query: queries are read-only"
            )),
            Access::Closed => Err(wasmtime::Error::msg(
                "kv used outside apply, migrate or query",
            )),
        }
    }
}

impl Host for HostState {
    fn get(&mut self, key: Vec<u8>) -> wasmtime::Result<Option<Vec<u8>>> {
        self.read(&key)
    }

    fn put(&mut self, key: Vec<u8>, value: Vec<u8>) -> wasmtime::Result<()> {
        self.writable("put")?;
        self.txn.put(key, value);
        Ok(())
    }

    fn delete(&mut self, key: Vec<u8>) -> wasmtime::Result<bool> {
        let Access::Apply(state) = &self.access else {
            return self.writable("delete").map(|()| false);
        };
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
        let (start, end) = {
            let state = self.table.get(&cursor)?;
            match &state.next {
                Some(start) => (start.clone(), state.end.clone()),
                None => return Ok(pack(Vec::new())),
            }
        };
        let page = self.scan(&start, end.as_deref(), max)?;
        let state = self.table.get_mut(&cursor)?;
        state.next = match page.last() {
            // The smallest key after the last one returned.
            Some((last, _)) if page.len() == max => {
                let mut after = last.clone();
                after.push(0);
                Some(after)
            }
            _ => None,
        };
        Ok(pack(page))
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
