//! Prints the vector math's digest at every instruction set and width this CPU (or Wasm
//! runtime) runs, and exits non-zero if one differs from `vmath::DIGEST`. Built for Wasm, it
//! checks that the Wasm build gives the native bits:
//!
//!     cargo build -p helix-math --example vmath_digest --target wasm32-wasip2 --release
//!     wasmtime target/wasm32-wasip2/release/examples/vmath_digest.wasm

use helix_math::vmath::{DIGEST, Simd, digest};

fn main() {
    let mut differs = false;
    for simd in Simd::all_available() {
        let d = digest(simd);
        differs |= d != DIGEST;
        println!(
            "{}-x{}: {d:#018x}{}",
            simd.isa().name(),
            simd.width().lanes(),
            if d == DIGEST { "" } else { "  DIFFERS" }
        );
    }
    println!("recorded: {DIGEST:#018x}");
    if differs {
        std::process::exit(1);
    }
}
