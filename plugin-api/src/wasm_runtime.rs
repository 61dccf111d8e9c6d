//! What a `no_std` component needs from its runtime besides the allocator (`heap.rs`): a panic
//! handler and the one C memory function wasm has no instruction for (`memcmp`, which byte-slice comparisons compile
//! to; copies and fills lower to bulk-memory instructions). A panic becomes a trap, which the host
//! reports as the failing entry's error.

#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    core::arch::wasm32::unreachable()
}

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
