//! The plugin's memory layout and global allocator (wasm only; natively these are no-ops).
//!
//! ```text
//! 0 ── stack ── data ── A0 ─────── entry arena ─────── A0 + R ── batch window ──▶ memory end
//! ```
//!
//! `A0` is the memory's initial size. During `apply` each entry allocates in the arena
//! `[A0, A0 + R)` (`R` = the host's `entry-memory`, rounded up to pages), which [`start_entry`]
//! resets, so every entry starts from the same allocator state at the same addresses. Everything
//! that belongs to the call rather than to an entry (the lowered lens and payloads, anything
//! allocated outside an entry) goes to the window above it, a bump region reset at every call.
//! The memory always covers the whole arena before the first entry, so an entry never executes
//! `memory.grow`: whether it fits is decided by the arena's limit alone, the same in every batch.
//!
//! `query`, `migrate` and policies are single calls: their allocations go to an arena right above
//! the window that grows the memory on demand (the host caps the memory as a whole). A policy may
//! keep what one call allocated for the instance's lifetime ([`pin_body`]): the window of every
//! later call then starts above it, so no later call reuses that memory.

#[cfg(target_arch = "wasm32")]
mod wasm {
    use core::alloc::{GlobalAlloc, Layout};
    use core::arch::wasm32::{memory_grow, memory_size};

    use crate::arena::{Arena, PAGE};

    /// The largest arena an entry gets, whatever the host allows: 2 GiB.
    #[cfg(feature = "state-machine")]
    const MAX_RESERVE: u64 = 1 << 31;

    /// The whole layout; the module is single-threaded, as every component instance is.
    struct Heap {
        /// `A0`: the memory's size when first used (0 until then).
        start: usize,
        /// `R`: bytes reserved for the entry arena (0 until the first `apply`).
        reserve: usize,
        window_top: usize,
        /// The last window allocation, which can grow in place.
        window_last: usize,
        /// Allocations go to the arena (inside an entry or a body), not the window.
        body: bool,
        /// The arena may grow the memory (outside `apply`).
        growable: bool,
        arena: Arena,
        /// Called when an entry's arena is exhausted, with the bytes it needed; traps.
        exhausted: Option<fn(u64)>,
        /// Everything below this was kept for good by [`pin_body`] (0: nothing kept).
        pinned: usize,
    }

    static mut HEAP: Heap = Heap {
        start: 0,
        reserve: 0,
        window_top: 0,
        window_last: 0,
        body: false,
        growable: false,
        arena: Arena::new(0, 0),
        exhausted: None,
        pinned: 0,
    };

    // `&mut HEAP`, which clippy suggests, is a reference to a `static mut` (`static_mut_refs`).
    #[allow(clippy::deref_addrof)]
    fn heap() -> &'static mut Heap {
        // SAFETY: a component instance runs one thread, and no caller holds two of these at once.
        let heap = unsafe { &mut *(&raw mut HEAP) };
        if heap.start == 0 {
            heap.start = memory_size(0) * PAGE;
            heap.window_top = heap.start;
        }
        heap
    }

    /// Makes the memory at least `end` bytes long.
    fn ensure(end: usize) -> bool {
        let have = memory_size(0) * PAGE;
        end <= have || memory_grow(0, (end - have).div_ceil(PAGE)) != usize::MAX
    }

    impl Heap {
        fn window_start(&self) -> usize {
            (self.start + self.reserve).max(self.pinned)
        }

        fn window_alloc(&mut self, size: usize, align: usize) -> *mut u8 {
            let Some(at) = self
                .window_top
                .checked_add(align - 1)
                .map(|v| v & !(align - 1))
            else {
                return core::ptr::null_mut();
            };
            let Some(end) = at.checked_add(size) else {
                return core::ptr::null_mut();
            };
            if !ensure(end) {
                return core::ptr::null_mut();
            }
            self.window_top = end;
            self.window_last = at;
            at as *mut u8
        }

        fn arena_result(&mut self, result: Result<usize, crate::arena::Exhausted>) -> *mut u8 {
            match result {
                Ok(at) => {
                    if self.growable && !ensure(self.arena.top()) {
                        return core::ptr::null_mut();
                    }
                    at as *mut u8
                }
                Err(exhausted) => {
                    if let Some(report) = self.exhausted {
                        report(exhausted.needed as u64);
                    }
                    core::ptr::null_mut()
                }
            }
        }
    }

    /// The global allocator: the window or the arena, by phase.
    struct Allocator;

    // SAFETY: every block handed out is unused memory of this instance, aligned as requested.
    unsafe impl GlobalAlloc for Allocator {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            let heap = heap();
            if heap.body {
                // SAFETY: the arena's range is memory reserved for it (see `enter_*`).
                let result = unsafe { heap.arena.alloc(layout.size(), layout.align()) };
                heap.arena_result(result)
            } else {
                heap.window_alloc(layout.size(), layout.align())
            }
        }

        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            let heap = heap();
            // Window blocks (and arena blocks outliving their entry) are dropped with their region.
            if heap.body && heap.arena.contains(ptr as usize) {
                // SAFETY: an arena block of the current entry or body, with its layout.
                unsafe { heap.arena.free(ptr as usize, layout.size(), layout.align()) };
            }
        }

        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            let heap = heap();
            let (at, align) = (ptr as usize, layout.align());
            if heap.body && heap.arena.contains(at) {
                // A block that has to move is copied inside `Arena::realloc`, before
                // `arena_result` grows the memory: in a growable arena, make room first for as
                // far as it may write. Without this, a body call that grew a buffer past the
                // memory's end trapped (out of bounds).
                if heap.growable
                    && !ensure(heap.arena.realloc_reach(at, layout.size(), align, new_size))
                {
                    return core::ptr::null_mut();
                }
                // SAFETY: as `dealloc`.
                let result = unsafe { heap.arena.realloc(at, layout.size(), align, new_size) };
                return heap.arena_result(result);
            }
            if !heap.body && at == heap.window_last && at + layout.size() == heap.window_top {
                heap.window_top = at;
                return heap.window_alloc(new_size, align);
            }
            // SAFETY: `ptr` is valid for `layout.size()` bytes; the new block is distinct.
            unsafe {
                let moved = self.alloc(Layout::from_size_align_unchecked(new_size, align));
                if !moved.is_null() {
                    core::ptr::copy_nonoverlapping(ptr, moved, layout.size().min(new_size));
                }
                moved
            }
        }
    }

    impl Heap {
        fn arena_floor(&self) -> usize {
            (self.window_top + 15) & !15
        }
    }

    #[global_allocator]
    static ALLOCATOR: Allocator = Allocator;

    /// Sets up an `apply` call: reserves `entry_memory` for the arena and moves the batch window
    /// above it if it is not there yet (the first call on an instance). Returns how far the
    /// window moved, to add to the pointers into it.
    #[cfg(feature = "state-machine")]
    pub(crate) fn enter_apply(entry_memory: u64, exhausted: fn(u64)) -> usize {
        let heap = heap();
        // The host rounds the same way when it sizes the memory cap (`plugin/memory.rs`).
        let reserve = (entry_memory.min(MAX_RESERVE) as usize).div_ceil(PAGE) * PAGE;
        let old_start = heap.window_start();
        let used = heap.window_top - old_start;
        let new_start = heap.start + reserve;
        if !ensure(new_start + used) {
            // The host caps memory; past it this traps, failing the call the same everywhere.
            core::arch::wasm32::unreachable();
        }
        if new_start != old_start {
            // SAFETY: both ranges lie inside the memory; `copy` allows overlap.
            unsafe { core::ptr::copy(old_start as *const u8, new_start as *mut u8, used) };
        }
        heap.reserve = reserve;
        heap.window_top = new_start + used;
        heap.window_last = 0;
        heap.arena = Arena::new(heap.start, heap.start + reserve);
        heap.growable = false;
        heap.exhausted = Some(exhausted);
        new_start.wrapping_sub(old_start)
    }

    /// An entry starts: its allocations go to the arena, reset to its initial state.
    #[cfg(feature = "state-machine")]
    pub(crate) fn start_entry() {
        let heap = heap();
        heap.arena.reset();
        heap.body = true;
    }

    /// A single-call export (`query`, `migrate`, `authorize`) starts: its allocations go to an
    /// arena above the window that grows the memory as needed.
    pub(crate) fn enter_body() {
        let heap = heap();
        let floor = heap.arena_floor();
        heap.arena = Arena::new(floor, usize::MAX / 2);
        heap.growable = true;
        heap.exhausted = None;
        heap.body = true;
    }

    /// Keeps everything the current single call has allocated so far for the instance's
    /// lifetime: later calls lower their arguments and allocate above it.
    #[cfg(feature = "policy")]
    pub(crate) fn pin_body() {
        let heap = heap();
        heap.pinned = (heap.arena.top() + 15) & !15;
    }

    /// As [`leave`], for an export whose result the glue still lowers into new memory (a list
    /// of records): the window restarts above everything the call allocated, so lowering cannot
    /// overwrite what the result points to. The next [`leave`] takes the window back down.
    #[cfg(feature = "backup")]
    pub(crate) fn leave_above() {
        let heap = heap();
        heap.body = false;
        heap.window_top = heap.window_top.max((heap.arena.top() + 15) & !15);
        heap.window_last = 0;
    }

    /// The export's own work is done: what the host lowers next belongs to the next call.
    pub(crate) fn leave() {
        let heap = heap();
        heap.body = false;
        heap.window_top = heap.window_start();
        heap.window_last = 0;
    }
}

#[cfg(all(target_arch = "wasm32", feature = "backup"))]
pub(crate) use wasm::leave_above;
#[cfg(all(target_arch = "wasm32", feature = "policy"))]
pub(crate) use wasm::pin_body;
#[cfg(all(target_arch = "wasm32", feature = "state-machine"))]
pub(crate) use wasm::{enter_apply, start_entry};
#[cfg(target_arch = "wasm32")]
pub(crate) use wasm::{enter_body, leave};

/// Natively (unit tests, `cargo build --workspace`) memory is the host's: nothing to lay out.
#[cfg(not(target_arch = "wasm32"))]
mod native {
    #[cfg(feature = "state-machine")]
    pub(crate) fn enter_apply(_entry_memory: u64, _exhausted: fn(u64)) -> usize {
        0
    }
    #[cfg(feature = "state-machine")]
    pub(crate) fn start_entry() {}
    pub(crate) fn enter_body() {}
    pub(crate) fn leave() {}
    #[cfg(feature = "policy")]
    pub(crate) fn pin_body() {}
    #[cfg(feature = "backup")]
    pub(crate) fn leave_above() {}
}

#[cfg(all(not(target_arch = "wasm32"), feature = "backup"))]
pub(crate) use native::leave_above;
#[cfg(all(not(target_arch = "wasm32"), feature = "policy"))]
pub(crate) use native::pin_body;
#[cfg(all(not(target_arch = "wasm32"), feature = "state-machine"))]
pub(crate) use native::{enter_apply, start_entry};
#[cfg(not(target_arch = "wasm32"))]
pub(crate) use native::{enter_body, leave};
