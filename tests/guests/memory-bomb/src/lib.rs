//! Allocates and touches memory without bound: the memory cap must stop it.

use helix_kernel_sdk::{Job, Kernel, KernelError, Output, export_kernel};

struct Bomb;

impl Kernel for Bomb {
    fn run(_job: Job) -> Result<Output, KernelError> {
        let mut hoard: Vec<Vec<u8>> = Vec::new();
        loop {
            hoard.push(vec![0xA5; 1 << 20]);
            std::hint::black_box(&hoard);
        }
    }
}

export_kernel!(Bomb);
