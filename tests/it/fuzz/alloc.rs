//! The harness's global allocator: the system allocator, plus the size of
//! the largest single allocation made on this thread while `track` runs.
//! Allocations of other threads (the broker's own tasks) are not counted.

#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

pub struct Counting;

thread_local! {
    static TRACKING: Cell<bool> = const { Cell::new(false) };
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

fn note(size: usize) {
    // `try_with`: a thread being torn down has no locals left to count in.
    let _ = TRACKING.try_with(|on| {
        if on.get() {
            let _ = LARGEST.try_with(|l| l.set(l.get().max(size)));
        }
    });
}

// SAFETY: every call is passed straight to `System` with the caller's
// arguments; the bookkeeping touches only const-initialised thread locals,
// which never allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        // SAFETY: the caller upholds `alloc`'s contract, passed on as is.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        // SAFETY: as above.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size);
        // SAFETY: as above.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Runs `f`, returning its result and the largest single allocation it made
/// on this thread. Nests: an outer `track` sees the inner one's allocations.
pub fn track<R>(f: impl FnOnce() -> R) -> (R, usize) {
    let (was_on, outer) = (TRACKING.with(|t| t.replace(true)), LARGEST.with(|l| l.replace(0)));
    let r = f();
    let largest = LARGEST.with(|l| l.replace(outer.max(l.get())));
    TRACKING.with(|t| t.set(was_on));
    (r, largest)
}

#[test]
fn the_largest_allocation_is_seen() {
    let (v, largest) = track(|| vec![0u8; 12_345]);
    assert_eq!(v.len(), 12_345);
    assert!(largest >= 12_345);
    let ((), small) = track(|| drop(Box::new(1u64)));
    assert!(small < 1_000);
}
