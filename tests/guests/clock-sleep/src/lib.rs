//! Sleeps, which Rust's standard library does through WASI's monotonic clock: the host admits
//! that import (the standard library links it into every kernel) but satisfies it with a
//! function that traps, so this job fails and nothing else notices.

use helix_kernel_sdk::{Estimate, Job, Kernel, KernelError, Output, export_kernel};

struct Sleeper;

impl Kernel for Sleeper {
    fn run(_job: Job) -> Result<Output, KernelError> {
        std::thread::sleep(std::time::Duration::from_millis(1));
        Ok(Output { estimates: vec![("slept", Estimate::exact(1.0))], arrays: vec![], units_done: 1 })
    }
}

export_kernel!(Sleeper);
