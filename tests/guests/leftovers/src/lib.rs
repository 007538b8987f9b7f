//! Looks for anything an earlier instance left in its linear memory, then leaves some: every
//! job must start from the module's initial image however the host recycles memory slots.
//!
//! It checks an initialised static (`.data`), a zeroed one (`.bss`) and pages it grows the
//! memory by (zero by the Wasm spec), then overwrites all three. `leftovers` is the number of
//! bytes that were not pristine.

use helix_kernel_sdk::{Estimate, Job, Kernel, KernelError, Output, export_kernel};

const PAGE: usize = 64 << 10;
/// Memory grown per job: 32 Wasm pages (2 MiB), past any "keep resident" prefix.
const GROWN_PAGES: usize = 32;
const MARK: u8 = 0xA5;

static mut DATA: [u8; 3 * PAGE] = [7; 3 * PAGE];
static mut BSS: [u8; 3 * PAGE] = [0; 3 * PAGE];

struct Leftovers;

/// Counts bytes of `region` that differ from `pristine`, then fills it with `MARK`.
///
/// # Safety
/// `start..start + len` must be linear memory this job may read and write.
unsafe fn check_and_dirty(start: *mut u8, len: usize, pristine: u8) -> usize {
    let mut dirty = 0;
    for i in 0..len {
        // SAFETY: in bounds by the caller's promise; volatile so the check is not elided.
        unsafe {
            dirty += (start.add(i).read_volatile() != pristine) as usize;
            start.add(i).write_volatile(MARK);
        }
    }
    dirty
}

impl Kernel for Leftovers {
    fn run(_job: Job) -> Result<Output, KernelError> {
        let grown = core::arch::wasm32::memory_grow(0, GROWN_PAGES);
        if grown == usize::MAX {
            return Err(KernelError::NumericFailure("memory.grow refused".into()));
        }
        // SAFETY: the statics are only touched here, one job at a time; the grown pages are
        // ours (the allocator never saw them).
        let leftovers = unsafe {
            check_and_dirty(&raw mut DATA as *mut u8, 3 * PAGE, 7)
                + check_and_dirty(&raw mut BSS as *mut u8, 3 * PAGE, 0)
                + check_and_dirty((grown * PAGE) as *mut u8, GROWN_PAGES * PAGE, 0)
        };
        Ok(Output { estimates: vec![("leftovers", Estimate::exact(leftovers as f64))], arrays: vec![], units_done: 1 })
    }
}

export_kernel!(Leftovers);
