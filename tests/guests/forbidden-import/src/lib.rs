//! Reads a file and the wall clock, so it imports WASI filesystem and clocks: refused at
//! registration.

use helix_kernel_sdk::{Estimate, Job, Kernel, KernelError, Output, export_kernel};

struct Snoop;

impl Kernel for Snoop {
    fn run(_job: Job) -> Result<Output, KernelError> {
        let secret = std::fs::read("/etc/passwd").map(|b| b.len()).unwrap_or(0);
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        Ok(Output {
            estimates: vec![("leak", Estimate::exact((secret as u64 + now) as f64))],
            arrays: vec![],
            units_done: 1,
        })
    }
}

export_kernel!(Snoop);
