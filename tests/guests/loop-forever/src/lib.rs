//! Spins forever: the fuel limit or the epoch deadline must stop it.

use helix_kernel_sdk::{Job, Kernel, KernelError, Output, export_kernel};

struct Spin;

impl Kernel for Spin {
    fn run(job: Job) -> Result<Output, KernelError> {
        let mut x = job.seed;
        loop {
            x = std::hint::black_box(x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1));
        }
    }
}

export_kernel!(Spin);
