//! Project tasks, so a fresh clone needs only the Rust toolchain:
//!
//! - `cargo xtask test`: installs the wasm32-wasip2 target, checks the kernel math builds for
//!   it, and runs the whole test suite.
//! - `cargo xtask helix ARGS...`: builds `helix` in release and runs it with the bundled
//!   manifests (`cargo xtask helix run mc-option --param spot=100 ...`).
//!
//! Every step echoes the command it runs.

use std::process::{Command, ExitCode};

const WASM_TARGET: &str = "wasm32-wasip2";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("test") => test(&args[1..]),
        Some("helix") => helix(&args[1..]),
        _ => {
            eprintln!("usage: cargo xtask test [cargo test args] | cargo xtask helix [helix args]");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(program: &str, args: &[&str]) -> Result<(), String> {
    eprintln!("+ {program} {}", args.join(" "));
    let status = Command::new(program).args(args).status().map_err(|e| format!("cannot start {program}: {e}"))?;
    if status.success() { Ok(()) } else { Err(format!("`{program} {}` failed with {status}", args.join(" "))) }
}

/// The Wasm target comes through rustup; a toolchain without rustup must already have it.
fn ensure_wasm_target() -> Result<(), String> {
    run("rustup", &["target", "add", WASM_TARGET])
}

fn test(extra: &[String]) -> Result<(), String> {
    ensure_wasm_target()?;
    run("cargo", &["build", "--release", "--package", "helix-math", "--target", WASM_TARGET])?;
    let mut args = vec!["test", "--workspace"];
    args.extend(extra.iter().map(String::as_str));
    run("cargo", &args)
}

/// The workspace root (xtask lives one level below it).
fn root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask sits in the workspace").to_path_buf()
}

fn helix(args: &[String]) -> Result<(), String> {
    run("cargo", &["build", "--release", "--package", "helix-host", "--bin", "helix"])?;
    let root = root();
    let bin = root.join("target/release/helix");
    eprintln!("+ {} {}", bin.display(), args.join(" "));
    let status = Command::new(&bin)
        .args(args)
        .env("HELIX_MANIFESTS", root.join("manifests"))
        .status()
        .map_err(|e| format!("cannot start {}: {e}", bin.display()))?;
    if status.success() { Ok(()) } else { Err(format!("helix exited with {status}")) }
}
