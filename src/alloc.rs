//! The global allocator of the `priorauth` binary: mimalloc, asked for a plain allocation
//! whenever the alignment is one mimalloc gives that block anyway.
//!
//! The `mimalloc` crate's allocator calls `mi_malloc_aligned` for every allocation. That call
//! has a fast path only for blocks of up to 1 KiB; a larger one (a decoded 278 response, the
//! service-line lists) takes mimalloc's generic aligned path, which over-allocates and costs
//! several times a plain `mi_malloc`. Plain `mi_malloc` blocks are aligned to the block size
//! up to 16 bytes (`MI_MAX_ALIGN_SIZE`), so every layout with an alignment of at most 16 and
//! at most its size is served by the plain functions; any other goes to the aligned ones.
//!
//! Implementing `GlobalAlloc` is unsafe by definition (see the invariants in ARCHITECTURE.md).

use std::alloc::{GlobalAlloc, Layout};
use std::ffi::c_void;

use libmimalloc_sys as mi;

/// What every plain mimalloc block of at least this size is aligned to.
const PLAIN_ALIGN: usize = 16;

/// Whether a plain mimalloc block of `size` bytes is aligned enough for `align`.
#[inline(always)]
fn plain(align: usize, size: usize) -> bool {
    align <= PLAIN_ALIGN && align <= size
}

/// mimalloc as the global allocator (see the module documentation).
pub struct MiMalloc;

// SAFETY: every function hands mimalloc a block it gave out (`dealloc`, `realloc`) or a size
// (`alloc`), and returns what mimalloc returns: a block of at least the requested size and
// alignment (checked by `plain`, else asked of the aligned functions), or null on failure.
unsafe impl GlobalAlloc for MiMalloc {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: mimalloc accepts any size and alignment here (see above).
        unsafe {
            if plain(layout.align(), layout.size()) {
                mi::mi_malloc(layout.size()) as *mut u8
            } else {
                mi::mi_malloc_aligned(layout.size(), layout.align()) as *mut u8
            }
        }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as `alloc`.
        unsafe {
            if plain(layout.align(), layout.size()) {
                mi::mi_zalloc(layout.size()) as *mut u8
            } else {
                mi::mi_zalloc_aligned(layout.size(), layout.align()) as *mut u8
            }
        }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, _layout: Layout) {
        // SAFETY: `ptr` came from this allocator (the caller's contract), so from mimalloc.
        unsafe { mi::mi_free(ptr as *mut c_void) }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: `ptr` came from this allocator with `layout`; the new block keeps that
        // alignment (a plain block when `plain` allows it for the new size).
        unsafe {
            if plain(layout.align(), new_size) {
                mi::mi_realloc(ptr as *mut c_void, new_size) as *mut u8
            } else {
                mi::mi_realloc_aligned(ptr as *mut c_void, new_size, layout.align()) as *mut u8
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_are_aligned_and_keep_their_bytes() {
        let a = MiMalloc;
        for align in [1usize, 2, 4, 8, 16, 32, 64, 4096] {
            for size in [1usize, 3, 8, 15, 16, 17, 100, 1024, 1025, 4000, 70_000] {
                let Ok(layout) = Layout::from_size_align(size, align) else {
                    continue;
                };
                // SAFETY: a non-zero size; each block is freed once with its own layout.
                unsafe {
                    let p = a.alloc(layout);
                    assert!(!p.is_null());
                    assert_eq!(p as usize % align, 0, "size {size} align {align}");
                    for i in 0..size {
                        *p.add(i) = i as u8;
                    }
                    let bigger = size * 3 + 5;
                    let q = a.realloc(p, layout, bigger);
                    assert!(!q.is_null());
                    assert_eq!(q as usize % align, 0, "realloc size {bigger} align {align}");
                    for i in 0..size {
                        assert_eq!(*q.add(i), i as u8);
                    }
                    a.dealloc(q, Layout::from_size_align(bigger, align).unwrap());
                    let z = a.alloc_zeroed(layout);
                    assert_eq!(z as usize % align, 0);
                    assert!((0..size).all(|i| *z.add(i) == 0));
                    a.dealloc(z, layout);
                }
            }
        }
    }
}
