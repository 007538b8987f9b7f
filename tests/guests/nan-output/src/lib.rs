//! Answers every job with a NaN estimate (0/0, whose sign and payload differ between hosts): the
//! host refuses non-finite answers at the boundary, as it does for native kernels.

use helix_kernel_sdk::{Estimate, Job, Kernel, KernelError, Output, export_kernel};

struct NotANumber;

impl Kernel for NotANumber {
    fn run(job: Job) -> Result<Output, KernelError> {
        let zero = std::hint::black_box(job.seed as f64 * 0.0);
        Ok(Output { estimates: vec![("ratio", Estimate::exact(zero / zero))], arrays: vec![], units_done: 1 })
    }
}

export_kernel!(NotANumber);
