//! Layer 1: what Linux says about this machine and its processes, read from `/proc` in this one
//! place: the machine a measurement ran on (published beside the numbers: without it a number means
//! nothing to anyone else), and a process's resident memory and CPU time.

use serde::Serialize;

/// The machine a measurement ran on.
#[derive(Clone, Debug, Serialize)]
pub struct Machine {
    /// The CPU's model name.
    pub cpu: String,
    /// CPUs this process may run on.
    pub logical_cpus: usize,
    /// Total memory, GiB, to one decimal.
    pub memory_gib: f64,
    /// The operating system and its kernel release.
    pub os: String,
    /// This build of helix.
    pub helix_version: &'static str,
    /// `release` or `debug`.
    pub profile: &'static str,
}

impl Machine {
    /// Reads what Linux tells about this machine; fields it cannot read say "unknown".
    pub fn describe() -> Machine {
        let cpuinfo = read("/proc/cpuinfo");
        let cpu = cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name").and_then(|r| r.split_once(':')).map(|(_, v)| v.trim()))
            .unwrap_or("unknown")
            .to_string();
        let memory_kib = kib_field(&read("/proc/meminfo"), "MemTotal:").unwrap_or(0) as f64;
        let release = read("/proc/sys/kernel/osrelease");
        Machine {
            cpu,
            logical_cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
            memory_gib: (memory_kib / (1024.0 * 1024.0) * 10.0).round() / 10.0,
            os: format!("{} {}", std::env::consts::OS, release.trim()).trim().to_string(),
            helix_version: env!("CARGO_PKG_VERSION"),
            profile: if cfg!(debug_assertions) { "debug" } else { "release" },
        }
    }

    /// One line for the top of a report.
    pub fn summary(&self) -> String {
        format!(
            "{} ({} logical CPUs), {} GiB, {}, helix {} ({})",
            self.cpu, self.logical_cpus, self.memory_gib, self.os, self.helix_version, self.profile
        )
    }
}

/// Resident memory of process `pid` ("self" for this one) in bytes, from `/proc/PID/status`
/// (Linux; `None` elsewhere).
pub fn resident_bytes_of(pid: &str) -> Option<u64> {
    kib_field(&read(&format!("/proc/{pid}/status")), "VmRSS:").map(|kib| kib * 1024)
}

/// CPU time process `pid` ("self" for this one) has used, user plus system, in seconds, from
/// `/proc/PID/stat` (Linux; `None` elsewhere).
pub fn cpu_seconds_of(pid: &str) -> Option<f64> {
    let stat = read(&format!("/proc/{pid}/stat"));
    // The command name (field 2) may hold spaces; the fields after its closing parenthesis
    // start with field 3, so utime and stime (fields 14 and 15) are the 12th and 13th.
    let rest = stat.rsplit_once(')')?.1;
    let mut fields = rest.split_whitespace().skip(11);
    let ticks: u64 = fields.next()?.parse::<u64>().ok()? + fields.next()?.parse::<u64>().ok()?;
    // USER_HZ is 100 on every Linux architecture this runs on.
    Some(ticks as f64 / 100.0)
}

/// A `/proc` file's text; empty when it cannot be read (not Linux, or the process is gone).
fn read(path: &str) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// The value of a `Key:   123 kB` line, in KiB.
fn kib_field(text: &str, key: &str) -> Option<u64> {
    let value = text.lines().find_map(|l| l.strip_prefix(key))?;
    value.trim().trim_end_matches("kB").trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(target_os = "linux")]
    #[test]
    fn cpu_time_grows_with_work() {
        let before = cpu_seconds_of("self").unwrap();
        let start = std::time::Instant::now();
        let mut x = 0u64;
        while start.elapsed() < std::time::Duration::from_millis(300) {
            x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
        }
        let after = cpu_seconds_of("self").unwrap();
        assert!(after - before >= 0.1, "{before} -> {after}");
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn resident_memory_grows_with_touched_pages() {
        let before = resident_bytes_of("self").unwrap();
        let block = vec![1u8; 64 << 20];
        let after = resident_bytes_of("self").unwrap();
        assert!(after >= before + (48 << 20), "{before} -> {after}");
        drop(std::hint::black_box(block));
    }
}
