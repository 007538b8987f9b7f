//! The machine a measurement ran on, as published beside the numbers: without it a number means
//! nothing to anyone else.

use serde::Serialize;

#[derive(Clone, Debug, Serialize)]
pub struct Machine {
    pub cpu: String,
    pub logical_cpus: usize,
    pub memory_gib: f64,
    pub os: String,
    pub helix_version: &'static str,
    pub profile: &'static str,
}

impl Machine {
    /// Reads what Linux tells about this machine; fields it cannot read say "unknown".
    pub fn describe() -> Machine {
        let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
        let cpuinfo = read("/proc/cpuinfo");
        let cpu = cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name").and_then(|r| r.split_once(':')).map(|(_, v)| v.trim()))
            .unwrap_or("unknown")
            .to_string();
        let memory_kib: f64 = read("/proc/meminfo")
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0.0);
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
