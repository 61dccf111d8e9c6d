//! [`MemoryCap`]: the store's memory limiter. Outside `apply` an instance's linear memory may
//! grow to `memory_bytes`. During `apply` the SDK lays memory out as the plugin's initial memory,
//! then an entry arena of `memory_bytes` (rounded up to pages), then the window holding the
//! lowered batch (`plugin-api/src/heap.rs`); the cap is that sum, so the batch never eats into an
//! entry's memory. The SDK keeps each entry inside its arena and reports when it would leave it
//! (`entry.out-of-memory`), which fails the entry the same way in any batch.

use wasmtime::ResourceLimiter;

/// A wasm page.
const PAGE: usize = 64 << 10;

/// The largest arena the SDK reserves (`MAX_RESERVE` in `plugin-api/src/heap.rs`).
const MAX_RESERVE: usize = 1 << 31;

/// The plugin needed more memory than its limit.
#[derive(Debug, thiserror::Error)]
#[error(
    "out of memory: the plugin needed {desired} bytes of memory, over its limit of {limit} bytes"
)]
pub(crate) struct MemoryLimitExceeded {
    pub(crate) desired: u64,
    pub(crate) limit: u64,
}

/// Caps linear memory; exceeding the cap traps at that exact allocation.
pub(crate) struct MemoryCap {
    /// The configured `memory_bytes`.
    max_bytes: usize,
    /// What the memory may grow to right now.
    limit: usize,
    /// The memory's size when the instance was created.
    initial: Option<usize>,
}

fn pages(bytes: usize) -> usize {
    bytes.div_ceil(PAGE).saturating_mul(PAGE)
}

impl MemoryCap {
    pub(crate) fn new(max_bytes: usize) -> Self {
        Self {
            max_bytes,
            limit: max_bytes,
            initial: None,
        }
    }

    /// An `apply` call whose lowered arguments take `lowered` bytes is about to start.
    pub(crate) fn begin_apply(&mut self, lowered: usize) {
        let arena = pages(self.max_bytes.min(MAX_RESERVE));
        let initial = self.initial.unwrap_or(0);
        self.limit =
            pages(initial.saturating_add(arena).saturating_add(lowered)).max(self.max_bytes);
    }

    /// The `apply` call is over: back to the plain cap.
    pub(crate) fn end_apply(&mut self) {
        self.limit = self.max_bytes;
    }

    /// The per-entry memory the SDK is given (`entry-memory`).
    pub(crate) fn entry_memory(&self) -> u64 {
        self.max_bytes as u64
    }
}

impl ResourceLimiter for MemoryCap {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.limit {
            return Err(wasmtime::Error::new(MemoryLimitExceeded {
                desired: desired as u64,
                limit: self.limit as u64,
            }));
        }
        if current == 0 && self.initial.is_none() {
            self.initial = Some(desired);
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        // Tables hold function references; a plugin that needs more than this is broken.
        Ok(desired <= 1 << 20)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apply_leaves_room_for_the_arena_and_the_batch() {
        let mut cap = MemoryCap::new(4 << 20);
        // Instantiation: the initial memory is held to the plain cap.
        assert!(cap.memory_growing(0, 17 * PAGE, None).unwrap());
        assert!(cap.memory_growing(17 * PAGE, (4 << 20) + 1, None).is_err());
        cap.begin_apply(100_000);
        let limit = pages(17 * PAGE + (4 << 20) + 100_000);
        assert!(cap.memory_growing(17 * PAGE, limit, None).unwrap());
        assert!(cap.memory_growing(17 * PAGE, limit + 1, None).is_err());
        cap.end_apply();
        assert!(cap.memory_growing(17 * PAGE, (4 << 20) + 1, None).is_err());
    }
}
