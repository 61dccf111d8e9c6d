//! `memcmp`, which the byte-slice comparisons of `iroh-raft-kv-types` compile to.
//!
//! The SDK's `no_std` runtime supplies an allocator and a panic handler but no C memory functions,
//! and wasm has no instruction for this one (copies and fills lower to bulk-memory instructions),
//! so without it the component would import `env::memcmp` and fail to link.

/// Compares `len` bytes at `left` and `right` as unsigned bytes, as C's `memcmp` does.
///
/// # Safety
/// Both pointers must be valid for reads of `len` bytes.
#[unsafe(no_mangle)]
unsafe extern "C" fn memcmp(left: *const u8, right: *const u8, len: usize) -> i32 {
    // SAFETY: the caller guarantees both ranges are readable for `len` bytes.
    let (left, right) = unsafe {
        (
            core::slice::from_raw_parts(left, len),
            core::slice::from_raw_parts(right, len),
        )
    };
    // Byte by byte, never through slice comparison, which would call this function again.
    for (a, b) in left.iter().zip(right) {
        if a != b {
            return i32::from(*a) - i32::from(*b);
        }
    }
    0
}
