//! The guest's heap on `wasm32-unknown-unknown`: `dlmalloc` (the allocator Rust's standard
//! library and wasi-libc use on Wasm) fed like `sbrk`, from the initial memory's free tail first.
//!
//! Why not the standard library's: on this target it asks `memory.grow` for 64 KiB at its first
//! allocation however much of the initial memory is free, so every job grew its memory, and
//! the host then paid an `mprotect` to grow it and another to shrink the slot back (measured:
//! a one-path `mc-option` job 8.2 us with `wasm32-wasip2`'s libc heap, 14 us with std's). Here
//! a small job allocates inside the pages it started with and never grows.

use core::alloc::{GlobalAlloc, Layout};
use core::arch::wasm32;
use core::cell::UnsafeCell;
use dlmalloc::{Allocator, Dlmalloc};

const WASM_PAGE: usize = 64 << 10;
/// The granularity of grants: small, so a job's first allocation fits the initial memory.
const GRANT: usize = 4 << 10;

unsafe extern "C" {
    /// The first byte after the statics and the stack (placed by the linker).
    static __heap_base: u8;
}

/// Memory handed out like `sbrk`: from the end of the last grant up to the memory's end, then
/// from pages grown onto it, so every grant is contiguous with the one before.
struct Sbrk {
    /// The first byte not yet handed out (0: not started).
    next: UnsafeCell<usize>,
}

// SAFETY: a guest instance runs on one thread (no Wasm threads here).
unsafe impl Send for Sbrk {}

unsafe impl Allocator for Sbrk {
    fn alloc(&self, size: usize) -> (*mut u8, usize, u32) {
        // SAFETY: single-threaded (see `Send`); the cell is only touched here.
        let next = unsafe { &mut *self.next.get() };
        if *next == 0 {
            *next = (&raw const __heap_base) as usize;
        }
        let end = wasm32::memory_size(0) * WASM_PAGE;
        if end - *next < size {
            let pages = (size - (end - *next)).div_ceil(WASM_PAGE);
            if wasm32::memory_grow(0, pages) == usize::MAX {
                return (core::ptr::null_mut(), 0, 0);
            }
        }
        let base = *next;
        *next += size;
        (base as *mut u8, size, 0)
    }

    fn remap(&self, _ptr: *mut u8, _old: usize, _new: usize, _can_move: bool) -> *mut u8 {
        core::ptr::null_mut()
    }

    fn free_part(&self, _ptr: *mut u8, _old: usize, _new: usize) -> bool {
        false
    }

    fn free(&self, _ptr: *mut u8, _size: usize) -> bool {
        false
    }

    fn can_release_part(&self, _flags: u32) -> bool {
        false
    }

    /// A fresh instance's free memory is zero, and so are grown pages; nothing is given back.
    fn allocates_zeros(&self) -> bool {
        true
    }

    fn page_size(&self) -> usize {
        GRANT
    }
}

/// The global allocator: one `dlmalloc` over [`Sbrk`].
struct GuestHeap(UnsafeCell<Dlmalloc<Sbrk>>);

// SAFETY: a guest instance runs on one thread.
unsafe impl Sync for GuestHeap {}

impl GuestHeap {
    const fn new() -> Self {
        let mut heap = Dlmalloc::new_with_allocator(Sbrk { next: UnsafeCell::new(0) });
        // Grants in 4 KiB steps, not the default 64 KiB: a 64 KiB first grant would not fit
        // the initial memory's free tail, so every job would grow its memory.
        assert!(heap.set_granularity(GRANT));
        GuestHeap(UnsafeCell::new(heap))
    }
}

// SAFETY: forwards to dlmalloc, which upholds `GlobalAlloc`'s contract; one thread only.
unsafe impl GlobalAlloc for GuestHeap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        unsafe { (*self.0.get()).malloc(layout.size(), layout.align()) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        unsafe { (*self.0.get()).calloc(layout.size(), layout.align()) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { (*self.0.get()).free(ptr, layout.size(), layout.align()) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        unsafe { (*self.0.get()).realloc(ptr, layout.size(), layout.align(), new_size) }
    }
}

#[global_allocator]
static HEAP: GuestHeap = GuestHeap::new();
