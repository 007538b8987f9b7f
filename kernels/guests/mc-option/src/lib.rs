//! `mc-option` as a Wasm kernel: the same `helix-math` code as the native build, so the same job
//! gives the same bits in both runtimes.

helix_kernel_sdk::bundled_kernel!(Bundled, helix_math::KernelKind::McOption);
