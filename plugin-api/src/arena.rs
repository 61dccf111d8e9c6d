//! [`Arena`]: the allocator an entry runs on. It hands out blocks from `[base, limit)` and goes
//! back to exactly the same state at every [`Arena::reset`], so each entry of a batch allocates at
//! the same addresses, through the same instructions, whatever ran before it.
//!
//! Small requests get power-of-two blocks (16 B to 64 KiB) with a free list per size; larger ones
//! get whole 64 KiB pages, with one first-fit free list. Freeing or resizing the topmost block
//! moves the top instead. Everything is a pure function of the sequence of requests since the
//! last reset. The arena never touches memory it has not handed out, except to link free blocks.
// A policy never resets its arena: it has no entries.
#![cfg_attr(not(feature = "state-machine"), allow(dead_code))]

/// A wasm page, the granule of memory growth and of large blocks.
pub(crate) const PAGE: usize = 64 << 10;

const MIN_SHIFT: u32 = 4;
const MAX_SMALL_SHIFT: u32 = 16;
const SMALL_CLASSES: usize = (MAX_SMALL_SHIFT - MIN_SHIFT + 1) as usize;

/// Why an allocation failed: it would end at `end`, past the arena's limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Exhausted {
    /// Bytes from the arena's base the allocation would need.
    pub(crate) needed: usize,
}

/// A resettable allocator over `[base, limit)`.
pub(crate) struct Arena {
    base: usize,
    top: usize,
    limit: usize,
    small: [usize; SMALL_CLASSES],
    /// Large free blocks, each starting with `[next, size]`.
    large: usize,
}

/// The block a request gets: its size, and its small class if it has one.
fn block(size: usize, align: usize) -> (usize, Option<usize>) {
    let size = size.max(align).max(1 << MIN_SHIFT);
    if size <= 1 << MAX_SMALL_SHIFT {
        let shift = usize::BITS - (size - 1).leading_zeros();
        (1 << shift, Some((shift - MIN_SHIFT) as usize))
    } else {
        (size.div_ceil(PAGE).saturating_mul(PAGE), None)
    }
}

fn align_up(value: usize, align: usize) -> Option<usize> {
    value.checked_add(align - 1).map(|v| v & !(align - 1))
}

impl Arena {
    /// An empty arena over `[base, limit)`; `base` must be 16-byte aligned.
    pub(crate) const fn new(base: usize, limit: usize) -> Self {
        Self {
            base,
            top: base,
            limit,
            small: [0; SMALL_CLASSES],
            large: 0,
        }
    }

    /// Forgets every block: the arena is as [`Arena::new`] made it.
    pub(crate) fn reset(&mut self) {
        self.top = self.base;
        self.small = [0; SMALL_CLASSES];
        self.large = 0;
    }

    /// Whether `ptr` lies in the arena's range.
    pub(crate) fn contains(&self, ptr: usize) -> bool {
        (self.base..self.limit).contains(&ptr)
    }

    /// The first address past every block handed out since the last reset.
    pub(crate) fn top(&self) -> usize {
        self.top
    }

    /// A block of at least `size` bytes aligned to `align` (a power of two).
    ///
    /// # Safety
    /// `[base, limit)` must be memory this arena owns.
    pub(crate) unsafe fn alloc(&mut self, size: usize, align: usize) -> Result<usize, Exhausted> {
        let (bytes, class) = block(size, align);
        match class {
            Some(class) => {
                let head = self.small[class];
                if head != 0 && head & (align - 1) == 0 {
                    // SAFETY: `head` is a free block of this class, holding the next link.
                    self.small[class] = unsafe { *(head as *const usize) };
                    return Ok(head);
                }
            }
            None => {
                // SAFETY: the list only holds free large blocks of this arena.
                if let Some(found) = unsafe { self.take_large(bytes, align) } {
                    return Ok(found);
                }
            }
        }
        self.bump(bytes, align.max(1 << MIN_SHIFT))
    }

    /// The end of the memory `realloc(ptr, old, align, new)` may write to: the block grown in
    /// place, or a new block past the top (a reused free block lies below the top).
    #[cfg(target_arch = "wasm32")]
    pub(crate) fn realloc_reach(&self, ptr: usize, old: usize, align: usize, new: usize) -> usize {
        let (old_bytes, _) = block(old, align);
        let (new_bytes, _) = block(new, align);
        if ptr.saturating_add(old_bytes) == self.top {
            return ptr.saturating_add(new_bytes);
        }
        if new_bytes <= old_bytes {
            return self.top;
        }
        align_up(self.top, align.max(1 << MIN_SHIFT))
            .map_or(usize::MAX, |start| start.saturating_add(new_bytes))
    }

    fn bump(&mut self, bytes: usize, align: usize) -> Result<usize, Exhausted> {
        let start = align_up(self.top, align);
        let end = start.and_then(|s| s.checked_add(bytes));
        match (start, end) {
            (Some(start), Some(end)) if end <= self.limit => {
                self.top = end;
                Ok(start)
            }
            _ => Err(Exhausted {
                needed: end.unwrap_or(usize::MAX).saturating_sub(self.base),
            }),
        }
    }

    /// First fit among the free large blocks.
    unsafe fn take_large(&mut self, bytes: usize, align: usize) -> Option<usize> {
        let mut link: *mut usize = &mut self.large;
        // SAFETY: every block on the list starts with `[next, size]`, written by `free`.
        unsafe {
            while *link != 0 {
                let at = *link;
                let header = at as *const usize;
                if *header.add(1) >= bytes && at & (align - 1) == 0 {
                    *link = *header;
                    return Some(at);
                }
                link = at as *mut usize;
            }
        }
        None
    }

    /// Returns a block that [`Arena::alloc`] handed out for `size` and `align`.
    ///
    /// # Safety
    /// `ptr` must come from this arena, since its last reset, with this `size` and `align`.
    pub(crate) unsafe fn free(&mut self, ptr: usize, size: usize, align: usize) {
        let (bytes, class) = block(size, align);
        if ptr + bytes == self.top {
            self.top = ptr;
            return;
        }
        // SAFETY: the block is ours and at least 16 bytes long: room for the links.
        unsafe {
            match class {
                Some(class) => {
                    *(ptr as *mut usize) = self.small[class];
                    self.small[class] = ptr;
                }
                None => {
                    let header = ptr as *mut usize;
                    *header = self.large;
                    *header.add(1) = bytes;
                    self.large = ptr;
                }
            }
        }
    }

    /// Resizes a block, in place when it is the topmost one or already big enough.
    ///
    /// # Safety
    /// As [`Arena::free`] for `ptr`, `old` and `align`.
    pub(crate) unsafe fn realloc(
        &mut self,
        ptr: usize,
        old: usize,
        align: usize,
        new: usize,
    ) -> Result<usize, Exhausted> {
        let (old_bytes, _) = block(old, align);
        let (new_bytes, _) = block(new, align);
        if ptr + old_bytes == self.top {
            return match ptr.checked_add(new_bytes) {
                Some(end) if end <= self.limit => {
                    self.top = end;
                    Ok(ptr)
                }
                end => Err(Exhausted {
                    needed: end.unwrap_or(usize::MAX).saturating_sub(self.base),
                }),
            };
        }
        if new_bytes <= old_bytes {
            return Ok(ptr);
        }
        // SAFETY: forwarded from the caller; the new block is distinct from the old one.
        unsafe {
            let moved = self.alloc(new, align)?;
            core::ptr::copy_nonoverlapping(ptr as *const u8, moved as *mut u8, old.min(new));
            self.free(ptr, old, align);
            Ok(moved)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 16-aligned region for an arena to run in.
    fn region(bytes: usize) -> (Vec<u128>, usize) {
        let memory = vec![0u128; bytes / 16];
        let base = memory.as_ptr() as usize;
        (memory, base)
    }

    /// What a run of requests gives, as offsets from the base.
    fn run(arena: &mut Arena, base: usize) -> Vec<usize> {
        unsafe {
            let a = arena.alloc(100, 1).unwrap();
            let b = arena.alloc(24, 8).unwrap();
            let c = arena.alloc(3 * PAGE / 2, 8).unwrap();
            arena.free(b, 24, 8);
            let d = arena.alloc(30, 4).unwrap();
            let e = arena.realloc(a, 100, 1, 5000).unwrap();
            arena.free(c, 3 * PAGE / 2, 8);
            let f = arena.alloc(PAGE + 1, 16).unwrap();
            [a, b, c, d, e, f].iter().map(|p| p - base).collect()
        }
    }

    #[test]
    fn a_reset_arena_repeats_itself_exactly() {
        let (_memory, base) = region(1 << 20);
        let mut arena = Arena::new(base, base + (1 << 20));
        let first = run(&mut arena, base);
        // Whatever happened before (here: a leak), a reset starts over.
        unsafe { arena.alloc(70_000, 1).unwrap() };
        arena.reset();
        assert_eq!(run(&mut arena, base), first);
        // Freed blocks are reused: `d` takes `b`'s block, `f` takes `c`'s.
        assert_eq!(first[3], first[1]);
        assert_eq!(first[5], first[2]);
    }

    #[test]
    fn blocks_are_aligned_and_disjoint() {
        let (_memory, base) = region(1 << 20);
        let mut arena = Arena::new(base, base + (1 << 20));
        let mut blocks = Vec::new();
        for (i, align) in [1usize, 2, 8, 16, 64, 256]
            .into_iter()
            .cycle()
            .take(60)
            .enumerate()
        {
            let size = 1 + i * 37;
            let at = unsafe { arena.alloc(size, align).unwrap() };
            assert_eq!(at % align, 0);
            blocks.push((at, size));
        }
        blocks.sort();
        assert!(blocks.windows(2).all(|w| w[0].0 + w[0].1 <= w[1].0));
    }

    #[test]
    fn exhaustion_reports_what_was_needed() {
        let (_memory, base) = region(4 * PAGE);
        let mut arena = Arena::new(base, base + 4 * PAGE);
        unsafe {
            arena.alloc(3 * PAGE, 1).unwrap();
            assert_eq!(
                arena.alloc(2 * PAGE, 1),
                Err(Exhausted { needed: 5 * PAGE })
            );
            // The failure changed nothing.
            assert_eq!(arena.top(), base + 3 * PAGE);
            assert!(arena.contains(base) && arena.contains(base + 4 * PAGE - 1));
            assert!(!arena.contains(base + 4 * PAGE) && !arena.contains(base - 1));
        }
    }

    #[test]
    fn the_top_block_grows_and_shrinks_in_place() {
        let (_memory, base) = region(1 << 20);
        let mut arena = Arena::new(base, base + (1 << 20));
        unsafe {
            let v = arena.alloc(16, 1).unwrap();
            let grown = arena.realloc(v, 16, 1, 100_000).unwrap();
            assert_eq!(grown, v);
            assert_eq!(arena.top(), v + 2 * PAGE);
            arena.free(grown, 100_000, 1);
            assert_eq!(arena.top(), base);
        }
    }
}
