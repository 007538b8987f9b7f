//! Recurses without bound: the Wasm stack limit must stop it.
#![allow(unconditional_recursion)] // the point of this guest

use helix_kernel_sdk::{Job, Kernel, KernelError, Output, export_kernel};

fn descend(depth: u64, pad: [u64; 16]) -> u64 {
    let next = std::hint::black_box(pad);
    descend(depth + 1, next).wrapping_add(next[(depth % 16) as usize])
}

struct Deep;

impl Kernel for Deep {
    fn run(job: Job) -> Result<Output, KernelError> {
        let n = descend(job.seed, [job.seed; 16]);
        Err(KernelError::NumericFailure(format!("unreachable: {n}")))
    }
}

export_kernel!(Deep);
