//! Panics on every job: with `panic = "abort"` the guest traps.

use helix_kernel_sdk::{Job, Kernel, KernelError, Output, export_kernel};

struct Boom;

impl Kernel for Boom {
    fn run(job: Job) -> Result<Output, KernelError> {
        let v: Vec<u64> = Vec::new();
        let i = std::hint::black_box(job.seed as usize);
        panic!("index {i} of {}", v.len());
    }
}

export_kernel!(Boom);
