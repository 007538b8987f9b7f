//! Answers with two million values: more than the host accepts from one job.

use helix_kernel_sdk::{Estimate, Job, Kernel, KernelError, Output, export_kernel};

struct Flood;

impl Kernel for Flood {
    fn run(job: Job) -> Result<Output, KernelError> {
        Ok(Output {
            estimates: vec![("n", Estimate::exact(2e6))],
            arrays: vec![("flood", vec![job.seed as f64; 2_000_000])],
            units_done: job.units.unwrap_or(1),
        })
    }
}

export_kernel!(Flood);
