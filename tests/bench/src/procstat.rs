//! CPU and memory of a process, and softirq time of a CPU, from /proc.

use std::io;

fn ticks_per_second() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 { ticks as f64 } else { 100.0 }
}

/// utime + stime of every thread of `pid`, in seconds.
pub fn process_cpu_seconds(pid: u32) -> io::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The command name may contain spaces: fields start after the last ')'.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, r)| r)
        .ok_or_else(|| io::Error::other("malformed /proc stat"))?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After ')': state is field 3, so utime (14) and stime (15) are at 11 and 12.
    let parse = |i: usize| -> io::Result<f64> {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .ok_or_else(|| io::Error::other("malformed /proc stat"))
    };
    Ok((parse(11)? + parse(12)?) / ticks_per_second())
}

/// Time every thread of `pid` has spent on a CPU, in seconds, from the scheduler's exact
/// per-thread runtime (`/proc/<pid>/task/*/schedstat`). utime+stime are sampled at the tick and
/// on this VM read 2.5× the scheduler's figure (and `perf stat`'s) for the bursty media thread.
pub fn process_runtime_seconds(pid: u32) -> io::Result<f64> {
    let mut total_ns = 0u64;
    for task in std::fs::read_dir(format!("/proc/{pid}/task"))? {
        let path = task?.path().join("schedstat");
        // A thread that exited since read_dir is simply no longer counted.
        if let Ok(text) = std::fs::read_to_string(path) {
            total_ns += text
                .split_whitespace()
                .next()
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0);
        }
    }
    Ok(total_ns as f64 * 1e-9)
}

/// Resident set size of `pid`, in bytes.
pub fn rss_bytes(pid: u32) -> io::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|kb| kb.parse::<u64>().ok())
        .map(|kb| kb * 1024)
        .ok_or_else(|| io::Error::other("no VmRSS"))
}

/// Softirq time spent on `cpu` since boot, in seconds (loopback delivery runs there).
pub fn cpu_softirq_seconds(cpu: usize) -> io::Result<f64> {
    let stat = std::fs::read_to_string("/proc/stat")?;
    let name = format!("cpu{cpu}");
    let line = stat
        .lines()
        .find(|l| l.split_whitespace().next() == Some(name.as_str()))
        .ok_or_else(|| io::Error::other(format!("no {name} in /proc/stat")))?;
    // cpuN user nice system idle iowait irq softirq ...
    let softirq = line
        .split_whitespace()
        .nth(7)
        .and_then(|v| v.parse::<f64>().ok())
        .ok_or_else(|| io::Error::other("malformed /proc/stat"))?;
    Ok(softirq / ticks_per_second())
}

/// The 1-minute load average.
pub fn loadavg() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(f64::NAN)
}

/// A point-in-time CPU sample of a process plus one CPU's softirq time.
#[derive(Debug, Clone, Copy)]
pub struct CpuSample {
    pub at: std::time::Instant,
    /// Scheduler runtime of every thread.
    pub process: f64,
    /// utime + stime (tick-sampled), reported for comparison.
    pub ticks: f64,
    pub softirq: f64,
}

impl CpuSample {
    pub fn take(pid: u32, cpu: usize) -> io::Result<Self> {
        Ok(Self {
            at: std::time::Instant::now(),
            process: process_runtime_seconds(pid)?,
            ticks: process_cpu_seconds(pid)?,
            softirq: cpu_softirq_seconds(cpu)?,
        })
    }

    /// CPU-seconds per second between two samples.
    pub fn rates_since(&self, earlier: &CpuSample) -> CpuRates {
        let wall = self.at.duration_since(earlier.at).as_secs_f64().max(1e-9);
        CpuRates {
            process: (self.process - earlier.process) / wall,
            ticks: (self.ticks - earlier.ticks) / wall,
            softirq: (self.softirq - earlier.softirq) / wall,
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct CpuRates {
    pub process: f64,
    pub ticks: f64,
    pub softirq: f64,
}
