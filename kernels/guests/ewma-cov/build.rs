//! Links this guest with 128 KiB of initial memory instead of the one page the others start
//! with: an `ewma-cov` job carries its whole return window (80 KB for 10 assets x 1000 rows),
//! which then fits without growing the memory. The first pages of a slot are rewritten in place
//! between jobs (`WasmConfig::keep_resident_bytes`), so the window lands on pages that are
//! already mapped instead of ones the next job must fault in again.
fn main() {
    if std::env::var("CARGO_CFG_TARGET_ARCH").as_deref() == Ok("wasm32") {
        println!("cargo:rustc-link-arg=--initial-memory=131072");
    }
}
