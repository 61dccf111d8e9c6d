//! Lowers a batch's payloads into guest memory as one `list<u8>`: one guest allocation, and each
//! payload byte copied exactly once, straight from its `Bytes`. wasmtime lowers `&[u8]` byte by
//! byte and would need a contiguous host buffer first (a second copy); this writes each chunk with
//! one `memcpy`.
//!
//! This implements wasmtime's `#[doc(hidden)]` lowering traits, which carry no semver promise; the
//! crate pins wasmtime with `=` for that reason.

use std::mem::MaybeUninit;

use bytes::Bytes;
use wasmtime::ValRaw;
use wasmtime::component::__internal::{
    CanonicalAbiInfo, InstanceType, InterfaceType, LowerContext,
};
use wasmtime::component::{ComponentType, Lower};

/// The concatenation of `entries`, as a `list<u8>` argument.
pub(crate) struct Payloads<'a> {
    entries: &'a [Bytes],
    total: usize,
}

impl<'a> Payloads<'a> {
    pub(crate) fn new(entries: &'a [Bytes]) -> Self {
        Self {
            entries,
            total: entries.iter().map(Bytes::len).sum(),
        }
    }

    /// Total bytes of the entries.
    pub(crate) fn len(&self) -> usize {
        self.total
    }

    /// Allocates the list in guest memory and copies every entry in; returns the guest pointer.
    fn copy_in<T>(&self, cx: &mut LowerContext<'_, T>) -> wasmtime::Result<usize> {
        let ptr = cx.realloc(0, 0, 1, self.total)?;
        let memory = cx.as_slice_mut();
        let end = ptr
            .checked_add(self.total)
            .filter(|end| *end <= memory.len())
            .ok_or_else(|| {
                wasmtime::Error::msg("guest realloc returned a buffer outside its memory")
            })?;
        let mut at = ptr;
        for entry in self.entries {
            memory[at..at + entry.len()].copy_from_slice(entry);
            at += entry.len();
        }
        debug_assert_eq!(at, end);
        Ok(ptr)
    }

    fn len32(&self) -> wasmtime::Result<u32> {
        u32::try_from(self.total).map_err(|_| wasmtime::Error::msg("batch larger than 4 GiB"))
    }
}

// SAFETY: the lowered form is a (pointer, length) pair, exactly that of `list<u8>`, and `typecheck`
// accepts only `list<u8>`.
unsafe impl ComponentType for Payloads<'_> {
    type Lower = [ValRaw; 2];

    const ABI: CanonicalAbiInfo = CanonicalAbiInfo::POINTER_PAIR;

    fn typecheck(ty: &InterfaceType, types: &InstanceType<'_>) -> wasmtime::Result<()> {
        <[u8] as ComponentType>::typecheck(ty, types)
    }
}

// SAFETY: writes a pointer/length pair to a buffer that `copy_in` allocated through the guest's
// realloc and filled completely.
unsafe impl Lower for Payloads<'_> {
    fn linear_lower_to_flat<T>(
        &self,
        cx: &mut LowerContext<'_, T>,
        _ty: InterfaceType,
        dst: &mut MaybeUninit<[ValRaw; 2]>,
    ) -> wasmtime::Result<()> {
        let len = self.len32()?;
        let ptr = self.copy_in(cx)?;
        dst.write([ValRaw::i64(ptr as i64), ValRaw::i64(i64::from(len))]);
        Ok(())
    }

    fn linear_lower_to_memory<T>(
        &self,
        cx: &mut LowerContext<'_, T>,
        _ty: InterfaceType,
        offset: usize,
    ) -> wasmtime::Result<()> {
        let len = self.len32()?;
        let ptr = u32::try_from(self.copy_in(cx)?)
            .map_err(|_| wasmtime::Error::msg("guest pointer beyond 4 GiB"))?;
        let memory = cx.as_slice_mut();
        let slot = memory
            .get_mut(offset..offset + 8)
            .ok_or_else(|| wasmtime::Error::msg("argument area outside guest memory"))?;
        slot[..4].copy_from_slice(&ptr.to_le_bytes());
        slot[4..].copy_from_slice(&len.to_le_bytes());
        Ok(())
    }
}
