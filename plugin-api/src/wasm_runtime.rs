//! What a `no_std` component needs from its runtime: a global allocator and a panic handler.
//! A panic becomes a trap, which the host reports as the failing entry's error.

#[global_allocator]
static ALLOCATOR: dlmalloc::GlobalDlmalloc = dlmalloc::GlobalDlmalloc;

#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    core::arch::wasm32::unreachable()
}
