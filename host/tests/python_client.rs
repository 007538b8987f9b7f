//! The Python client (`clients/python`) against the real server: its pytest suite, run with
//! the venv Python `cargo xtask test` makes (`HELIX_PYTHON`), this build's `helix` and a copy
//! of the bundled manifests. The suite starts and stops its own servers on loopback.
//!
//! `clients/python/src` goes first on `PYTHONPATH`, so the suite tests the checkout's client
//! even when the venv's installed copy (from `tools/python-test-requirements.txt`, reinstalled
//! only when that file changes) is older.

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

mod support;
use support::{bundled_copy, guest_module, repo, temp_dir};

/// The suite takes well under a minute; past this it is stuck, and is stopped.
const SUITE_LIMIT: Duration = Duration::from_secs(600);

/// pytest in its own process group, so the servers it started go with it if it must be killed.
struct Suite(Child);

impl Suite {
    fn wait(&mut self, limit: Duration) -> Option<ExitStatus> {
        let start = Instant::now();
        while start.elapsed() < limit {
            if let Some(status) = self.0.try_wait().expect("pytest can be waited for") {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        None
    }
}

impl Drop for Suite {
    fn drop(&mut self) {
        if self.0.try_wait().is_ok_and(|s| s.is_none()) {
            // SAFETY: kill(2) with the negated id of the group this test created for pytest.
            unsafe { libc::kill(-(self.0.id() as i32), libc::SIGKILL) };
            let _ = self.0.wait();
        }
    }
}

fn python() -> PathBuf {
    let Some(python) = std::env::var_os("HELIX_PYTHON") else {
        panic!(
            "HELIX_PYTHON is not set: run `cargo xtask test`, which makes the venv (target/py) with \
             tools/python-test-requirements.txt and passes its python"
        );
    };
    PathBuf::from(python)
}

#[test]
fn the_python_client_suite_passes_against_the_real_server() {
    let python = python();
    let manifests = bundled_copy("python-client");
    // The hostile guests the suite uploads (a trap, a NaN) are built by `cargo xtask test`.
    let guests = guest_module("panic-trap").parent().unwrap().to_path_buf();
    let client = repo().join("clients/python");
    let out = temp_dir("python-client-out");
    let (stdout, stderr) = (out.join("pytest.out"), out.join("pytest.err"));
    let pythonpath = match std::env::var_os("PYTHONPATH") {
        Some(rest) => std::env::join_paths([client.join("src"), PathBuf::from(rest)]).unwrap(),
        None => client.join("src").into_os_string(),
    };
    let child = Command::new(&python)
        .args(["-m", "pytest", "-q", "-p", "no:cacheprovider"])
        .arg(client.join("tests"))
        .current_dir(repo())
        .env("HELIX_BIN", env!("CARGO_BIN_EXE_helix"))
        .env("HELIX_MANIFESTS", &manifests)
        .env("HELIX_TEST_GUESTS", &guests)
        .env("PYTHONPATH", pythonpath)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env_remove("HELIX_ADMIN_TOKEN")
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&stdout).unwrap())
        .stderr(std::fs::File::create(&stderr).unwrap())
        .process_group(0)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e} (run `cargo xtask test`, which makes it)", python.display()));
    let mut suite = Suite(child);
    let status = suite.wait(SUITE_LIMIT);
    let output = std::fs::read_to_string(&stdout).unwrap_or_default();
    let errors = std::fs::read_to_string(&stderr).unwrap_or_default();
    println!("{output}{errors}");
    let status = status.unwrap_or_else(|| panic!("pytest did not finish within {SUITE_LIMIT:?}"));
    assert!(status.success(), "pytest failed ({status}):\n{output}{errors}");
    // pytest exits 0 only when tests ran and passed; say how many, and that none were skipped.
    let summary = output.lines().rev().find(|l| l.contains(" passed")).unwrap_or_default();
    assert!(!summary.contains("skipped"), "the suite must not skip: {summary}");
    println!("python client: {summary}");
}
