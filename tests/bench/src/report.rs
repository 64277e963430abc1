//! The benchmark report: a markdown table and the same figures as JSON.

use std::fmt::Write as _;

use serde::Serialize;

use crate::runner::{MAX_LOSS, MAX_P99_MS, RunResult, StepResult, Ttff};

#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    pub cpu: String,
    pub cores: usize,
    pub kernel: String,
    pub loadavg_at_start: f64,
    pub date_utc: String,
}

impl Machine {
    pub fn probe() -> Self {
        let cpu = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("model name"))
                    .map(|v| v.trim_start_matches([' ', '\t', ':']).to_owned())
            })
            .unwrap_or_else(|| "unknown".into());
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|s| s.trim().to_owned())
            .unwrap_or_default();
        let date_utc = std::process::Command::new("date")
            .args(["-u", "+%Y-%m-%d %H:%M UTC"])
            .output()
            .ok()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .unwrap_or_default();
        Self {
            cpu,
            cores: std::thread::available_parallelism().map_or(0, |n| n.get()),
            kernel,
            loadavg_at_start: crate::procstat::loadavg(),
            date_utc,
        }
    }
}

/// The largest N within every limit (every step up to it included).
pub fn capacity(steps: &[StepResult]) -> usize {
    steps
        .iter()
        .take_while(|s| s.within_limits)
        .map(|s| s.subscribers)
        .max()
        .unwrap_or(0)
}

fn ttff_cell(t: &Ttff) -> String {
    if t.joiners == 0 {
        return "—".into();
    }
    format!(
        "{:.0} / {:.0} ({:.0} / {:.0})",
        t.first_rtp_p50_ms, t.keyframe_p50_ms, t.first_rtp_p95_ms, t.keyframe_p95_ms
    )
}

pub fn markdown(result: &RunResult) -> String {
    let mut md = String::new();
    let m = &result.machine;
    let f = &result.floor;
    let _ = writeln!(
        md,
        "Machine: {} × {} cores, kernel {}, load {:.2} at start, {}.  ",
        m.cpu, m.cores, m.kernel, m.loadavg_at_start, m.date_utc
    );
    let _ = writeln!(
        md,
        "SRTP {}; gateway pinned to CPU 0, generator to CPU 1; {} s per step. Gateway CPU = the \
         scheduler's runtime of all its threads (/proc/PID/task/*/schedstat; utime+stime is in \
         report.json); the floor is costed the same way (its thread's runtime). Without IRQ \
         time accounting in this kernel, the softirq work of loopback delivery runs in, and is \
         counted with, the sending thread (the softirq column is CPU 0's share of it, \
         tick-sampled).\n",
        result.srtp_profile, result.step_secs
    );
    let p = &result.floor_plain_receivers;
    let _ = writeln!(
        md,
        "Floor (copy + rewrite + SRTP + sendmmsg(32), {} destinations, receivers set up as the generator's subscriber sockets: epoll, receive timestamps): **{:.0} ns/packet = {:.0} packets per CPU-second** ({:.2} s thread CPU, of which {:.2} s softirq, for {} packets). With plain receiving sockets (no epoll callback or timestamp per delivery): {:.0} ns/packet = {:.0} packets per CPU-second.\n",
        f.destinations,
        f.ns_per_packet,
        f.packets_per_cpu_second,
        f.thread_cpu_s,
        f.softirq_cpu_s,
        f.packets,
        p.ns_per_packet,
        p.packets_per_cpu_second
    );
    md.push_str("| N | connected | delivered pps | loss | latency p50 / p99 / max ms | gateway cores (softirq) | E pkt/CPU-s | E / floor | RSS MB (KB/sub) | TTFF ms first RTP / keyframe p50 (p95) | generator busy |\n");
    md.push_str("|---|---|---|---|---|---|---|---|---|---|---|\n");
    for s in &result.steps {
        let _ = writeln!(
            md,
            "| {}{} | {}{} | {:.0} | {:.3}% | {:.2} / {:.2} / {:.1} | {:.2} ({:.2}) | {:.0} | {:.0}% | {:.1} ({:.0}) | {} | {:.2}{} |",
            s.subscribers,
            if s.within_limits { "" } else { " ✗" },
            s.connected,
            if s.refused > 0 {
                format!(" ({} refused)", s.refused)
            } else {
                String::new()
            },
            s.delivered_pps,
            s.loss * 100.0,
            s.latency_p50_ms,
            s.latency_p99_ms,
            s.latency_max_ms,
            s.gateway_cores,
            s.softirq_cores,
            s.efficiency,
            s.efficiency_vs_floor * 100.0,
            s.rss_mb,
            s.rss_per_subscriber_kb,
            ttff_cell(&s.ttff),
            s.generator_cores,
            if s.generator_bound { " (bound)" } else { "" },
        );
    }
    let _ = writeln!(
        md,
        "\nTTFF: {} late joiners per step, {} ms apart, each timed from its WHEP POST; latency is the publisher's send → the kernel's receive stamp on the subscriber socket.",
        result.late_joiners, result.joiner_spacing_ms
    );
    let _ = writeln!(
        md,
        "\nCapacity (loss ≤ {:.1}%, p99 ≤ {MAX_P99_MS} ms, ≤ 1 core, all connected): **{} subscribers**. Gateway RSS with the publisher alone: {:.1} MB.",
        MAX_LOSS * 100.0,
        capacity(&result.steps),
        result.baseline_rss_mb
    );
    if let Some(k) = &result.keyframe_cache {
        let _ = writeln!(
            md,
            "\nKeyframe cache, {} late joiners at N = {}: without {} ms, with {} ms (POST → first RTP / first complete keyframe, p50 (p95)).",
            k.with_cache.joiners,
            k.subscribers,
            ttff_cell(&k.without_cache),
            ttff_cell(&k.with_cache)
        );
    }
    md
}
