//! What the process says about itself in `/metrics`: resident memory and panics caught. A
//! panic in a job is caught and ends only that job, but it is still a bug, so it is counted
//! where a soak or an alert can see it.

use std::sync::Once;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

static PANICS: AtomicU64 = AtomicU64::new(0);
static HOOK: Once = Once::new();

/// Counts every panic from now on, then lets the previous hook report it as before.
pub fn count_panics() {
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            PANICS.fetch_add(1, Relaxed);
            previous(info);
        }));
    });
}

pub fn panics() -> u64 {
    PANICS.load(Relaxed)
}

/// Blocks of 1 MiB and more go back to the operating system when freed. glibc's malloc raises
/// its mmap threshold to the size of the largest block freed (up to 32 MiB); blocks under it
/// come from its arenas, which keep them. In the soak, a hostile guest's refused 16 MB answers
/// left the service ~40 MiB larger for good (resident floor 62 -> 88 MiB during the attack, 88 at
/// the end); with the threshold fixed, 45 -> 57 MiB and 53-57 at the end.
pub fn return_large_blocks_to_the_os() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: `mallopt` only sets one of malloc's parameters; it takes no pointers.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
    }
}

/// Resident memory in bytes (Linux; `None` elsewhere).
pub fn resident_bytes() -> Option<u64> {
    resident_bytes_of("self")
}

/// Resident memory of process `pid` ("self" for this one), from `/proc/PID/status`.
pub fn resident_bytes_of(pid: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.trim_start_matches("VmRSS:").trim().trim_end_matches("kB").trim().parse().ok()?;
    Some(kib * 1024)
}

/// CPU time process `pid` ("self" for this one) has used, user plus system, in seconds, from
/// `/proc/PID/stat` (Linux; `None` elsewhere).
pub fn cpu_seconds_of(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces; the fields after its closing parenthesis
    // start with field 3, so utime and stime (fields 14 and 15) are the 12th and 13th.
    let rest = stat.rsplit_once(')')?.1;
    let mut fields = rest.split_whitespace().skip(11);
    let ticks: u64 = fields.next()?.parse::<u64>().ok()? + fields.next()?.parse::<u64>().ok()?;
    // USER_HZ is 100 on every Linux architecture this runs on.
    Some(ticks as f64 / 100.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panics_are_counted_and_still_reported() {
        count_panics();
        let before = panics();
        let caught = std::panic::catch_unwind(|| panic!("a deliberate panic"));
        assert!(caught.is_err());
        assert!(panics() > before);
    }

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
        let before = resident_bytes().unwrap();
        let block = vec![1u8; 64 << 20];
        let after = resident_bytes().unwrap();
        assert!(after >= before + (48 << 20), "{before} -> {after}");
        drop(std::hint::black_box(block));
    }
}
