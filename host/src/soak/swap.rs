//! Re-registration under load: every few seconds a new version of an honest Wasm kernel in the
//! mix (`basket-option`) is uploaded through the admin API while its jobs run, now and then an
//! upload that must be refused (a wrong sha256), and a new version of a hostile kernel (which
//! starts with a clean quarantine record, as a team's re-release would).

use super::chaos::{HOSTILE, hostile_manifest};
use super::served::ADMIN_TOKEN;
use crate::replica::Http;
use serde::Serialize;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::Duration;

/// The honest kernel whose versions are swapped.
pub const SWAPPED: &str = "basket-option";

#[derive(Clone, Debug, Default, Serialize)]
pub struct SwapTally {
    /// New versions of the honest kernel accepted (200), and their version strings.
    pub honest_swaps: u64,
    pub versions: Vec<String>,
    /// New versions of a hostile kernel accepted.
    pub hostile_swaps: u64,
    /// Uploads with a wrong sha256, refused (422) as they must be.
    pub refused_as_expected: u64,
    /// Anything else: an upload that should have passed and did not, or the reverse.
    pub unexpected: Vec<String>,
}

/// Uploads every `every` until `stop` is set.
pub async fn run(
    http: Arc<Http>,
    manifests: &Path,
    every: Duration,
    stop: Arc<AtomicBool>,
) -> Result<SwapTally, String> {
    let read = |p: &Path| std::fs::read(p).map_err(|e| format!("cannot read {}: {e}", p.display()));
    let wasm = manifests.join("wasm");
    let manifest = String::from_utf8(read(&wasm.join(format!("{SWAPPED}.toml")))?).map_err(|e| e.to_string())?;
    let module = read(&wasm.join(format!("{SWAPPED}.wasm")))?;
    let hostile = &HOSTILE[0];
    let hostile_module = read(&manifests.join("hostile").join(format!("{}.wasm", hostile.name)))?;
    let mut tally = SwapTally::default();
    let mut tick = 0u64;
    loop {
        let next = tokio::time::Instant::now() + every;
        while tokio::time::Instant::now() < next && !stop.load(Relaxed) {
            tokio::time::sleep(Duration::from_millis(50).min(every)).await;
        }
        if stop.load(Relaxed) {
            break;
        }
        tick += 1;
        let version = format!("1.1.{tick}");
        let text = with_version(&manifest, &version);
        match http.put_kernel(SWAPPED, ADMIN_TOKEN, &text, &module).await {
            Ok((200, _)) => {
                tally.honest_swaps += 1;
                tally.versions.push(version);
            }
            other => tally.unexpected.push(format!("{SWAPPED} {version}: {}", describe(other))),
        }
        if tick.is_multiple_of(3) {
            let wrong = with_sha(&with_version(&manifest, &format!("9.9.{tick}")), &"0".repeat(64));
            match http.put_kernel(SWAPPED, ADMIN_TOKEN, &wrong, &module).await {
                Ok((422, _)) => tally.refused_as_expected += 1,
                other => tally.unexpected.push(format!("{SWAPPED} with a wrong sha256: {}", describe(other))),
            }
        }
        if tick.is_multiple_of(2) {
            let text = hostile_manifest(hostile.name, &format!("1.1.{tick}"), hostile.claims, &hostile_module);
            match http.put_kernel(hostile.name, ADMIN_TOKEN, &text, &hostile_module).await {
                Ok((200, _)) => tally.hostile_swaps += 1,
                other => tally.unexpected.push(format!("{}: {}", hostile.name, describe(other))),
            }
        }
    }
    Ok(tally)
}

fn describe(answer: crate::replica::Answer) -> String {
    match answer {
        Ok((code, body)) => format!("{code} {}", String::from_utf8_lossy(&body[..body.len().min(200)])),
        Err(e) => format!("no answer: {e}"),
    }
}

/// The manifest with its `version = ...` line replaced.
fn with_version(manifest: &str, version: &str) -> String {
    replace_line(manifest, "version = ", &format!("version = \"{version}\""))
}

fn with_sha(manifest: &str, sha: &str) -> String {
    replace_line(manifest, "sha256 = ", &format!("sha256 = \"{sha}\""))
}

fn replace_line(text: &str, prefix: &str, line: &str) -> String {
    text.lines().map(|l| if l.starts_with(prefix) { line } else { l }).collect::<Vec<_>>().join("\n") + "\n"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_and_hashes_are_replaced_in_place() {
        let m = "name = \"k\"\nversion = \"1.0.0\"\n[module]\nsha256 = \"ab\"\n";
        assert_eq!(with_version(m, "1.1.7"), "name = \"k\"\nversion = \"1.1.7\"\n[module]\nsha256 = \"ab\"\n");
        assert!(with_sha(m, "00").contains("sha256 = \"00\"\n"));
    }
}
