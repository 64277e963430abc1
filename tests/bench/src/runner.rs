//! The benchmark procedure: floor baseline, then the gateway pinned to one CPU and the
//! generator to the other, stepping the subscriber count until saturation.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use serde::Serialize;

use crate::client::{ClientFactory, SrtpChoice};
use crate::floor::{self, FloorResult};
use crate::gateway::GatewayProcess;
use crate::generator::Generator;
use crate::netio;
use crate::procstat::{self, CpuSample};
use crate::subscriber::{LegState, SubscriberLeg};

/// Limits that define capacity.
pub const MAX_LOSS: f64 = 0.001;
pub const MAX_P99_MS: f64 = 10.0;
pub const MAX_GATEWAY_CORES: f64 = 1.0;
/// A step is valid only while the generator stays under this share of its CPU.
pub const MAX_GENERATOR_CORES: f64 = 0.8;

pub struct RunOptions {
    pub gateway: PathBuf,
    pub steps: Vec<usize>,
    pub plan: StepPlan,
    pub floor_secs: u64,
    pub srtp: SrtpChoice,
    pub gateway_cpu: usize,
    pub generator_cpu: usize,
    pub out_dir: PathBuf,
    pub compare_keyframe_cache: bool,
}

/// How each step is measured.
#[derive(Debug, Clone)]
pub struct StepPlan {
    pub window: Duration,
    pub late_joiners: usize,
    pub joiner_spacing: Duration,
}

/// What is known about the gateway's process, when it is ours to measure.
#[derive(Debug, Clone, Copy)]
pub struct MeasuredProcess {
    pub pid: u32,
    pub cpu: usize,
    pub baseline_rss: f64,
    pub floor_pps: f64,
}

/// Time to first RTP / first complete keyframe of late joiners.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Ttff {
    pub joiners: usize,
    pub failed: usize,
    /// POST → DTLS connected.
    pub connected_p50_ms: f64,
    pub first_rtp_p50_ms: f64,
    pub first_rtp_p95_ms: f64,
    pub keyframe_p50_ms: f64,
    pub keyframe_p95_ms: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct StepResult {
    pub subscribers: usize,
    pub connected: usize,
    /// Subscribers the gateway refused with 503 (over `max_loop_load`).
    pub refused: usize,
    pub connect_failures: usize,
    pub window_s: f64,
    pub delivered_pps: f64,
    pub loss: f64,
    pub latency_p50_ms: f64,
    pub latency_p99_ms: f64,
    pub latency_max_ms: f64,
    pub unmatched_packets: u64,
    /// Scheduler runtime of the gateway's threads, per second.
    pub gateway_cores: f64,
    /// utime + stime per second (tick-sampled; for comparison only).
    pub gateway_cores_utime_stime: f64,
    /// Softirq time on the gateway's CPU per second (tick-sampled; without IRQ time
    /// accounting it is already inside `gateway_cores`).
    pub softirq_cores: f64,
    /// Delivered packets per gateway CPU-second.
    pub efficiency: f64,
    pub efficiency_vs_floor: f64,
    pub generator_cores: f64,
    pub rss_mb: f64,
    pub rss_per_subscriber_kb: f64,
    pub ttff: Ttff,
    pub keyframe_requests_to_publisher: u64,
    pub within_limits: bool,
    pub generator_bound: bool,
}

impl StepResult {
    /// The gateway no longer keeps up: a larger N would only measure the overload.
    pub fn saturated(&self) -> bool {
        self.loss > 10.0 * MAX_LOSS
            || self.gateway_cores >= 0.95 * MAX_GATEWAY_CORES
            || self.connect_failures * 20 > self.subscribers
            || self.refused > 0
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct KeyframeCacheComparison {
    pub subscribers: usize,
    pub without_cache: Ttff,
    pub with_cache: Ttff,
}

#[derive(Debug, Clone, Serialize)]
pub struct RunResult {
    pub machine: crate::report::Machine,
    pub srtp_profile: String,
    pub step_secs: u64,
    pub late_joiners: usize,
    pub joiner_spacing_ms: u64,
    /// The floor with receivers like the generator's subscribers: the one E is divided by.
    pub floor: FloorResult,
    /// The same loop with plain receiving sockets (cheaper delivery), for comparison.
    pub floor_plain_receivers: FloorResult,
    pub baseline_rss_mb: f64,
    pub steps: Vec<StepResult>,
    pub keyframe_cache: Option<KeyframeCacheComparison>,
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Runs the whole benchmark.
pub fn run(options: &RunOptions) -> anyhow::Result<RunResult> {
    std::fs::create_dir_all(&options.out_dir).context("output directory")?;
    let machine = crate::report::Machine::probe();
    eprintln!(
        "floor baseline: {} s, {} ...",
        options.floor_secs,
        options.srtp.name()
    );
    let run_floor = |receivers| {
        floor::run(
            options.srtp.srtp_profile(),
            receivers,
            Duration::from_secs(options.floor_secs),
            options.gateway_cpu,
            options.generator_cpu,
        )
    };
    let floor = run_floor(floor::Receivers::LikeSubscribers)?;
    let floor_plain_receivers = run_floor(floor::Receivers::Plain)?;
    eprintln!(
        "floor: {:.0} ns/packet, {:.0} packets per CPU-second ({:.0} with plain receivers)",
        floor.ns_per_packet,
        floor.packets_per_cpu_second,
        floor_plain_receivers.packets_per_cpu_second
    );
    netio::pin_current_thread(options.generator_cpu).context("pinning the generator")?;

    let (baseline_rss_mb, steps, ttff_without) = measure_steps(options, &floor)?;
    let keyframe_cache = match (options.compare_keyframe_cache, ttff_without) {
        (true, Some((subscribers, without_cache))) => {
            eprintln!("keyframe cache: {subscribers} subscribers, cache on ...");
            let with_cache = ttff_with_cache(options, subscribers)?;
            Some(KeyframeCacheComparison {
                subscribers,
                without_cache,
                with_cache,
            })
        }
        _ => None,
    };
    Ok(RunResult {
        machine,
        srtp_profile: options.srtp.name().into(),
        step_secs: options.plan.window.as_secs(),
        late_joiners: options.plan.late_joiners,
        joiner_spacing_ms: options.plan.joiner_spacing.as_millis() as u64,
        floor,
        floor_plain_receivers,
        baseline_rss_mb,
        steps,
        keyframe_cache,
    })
}

type Steps = (f64, Vec<StepResult>, Option<(usize, Ttff)>);

fn measure_steps(options: &RunOptions, floor: &FloorResult) -> anyhow::Result<Steps> {
    let gateway = GatewayProcess::start(
        &options.gateway,
        options.gateway_cpu,
        false,
        &options.out_dir,
        &options.out_dir.join("gateway.log"),
    )?;
    let mut generator = start_generator(options.srtp, &gateway.base_url)?;
    generator.run(Instant::now() + Duration::from_secs(1), |_| false)?;
    let baseline_rss = procstat::rss_bytes(gateway.pid())? as f64;
    let process = MeasuredProcess {
        pid: gateway.pid(),
        cpu: options.gateway_cpu,
        baseline_rss,
        floor_pps: floor.packets_per_cpu_second,
    };
    let mut steps = Vec::new();
    let mut first_ttff = None;
    for &n in &options.steps {
        let step = measure_step(&options.plan, Some(process), &mut generator, n)?;
        eprintln!(
            "N={:>4}: {:>8.0} pps, loss {:.4}%, p99 {:.2} ms, gateway {:.2} cores (softirq {:.2}), E {:.0} ({:.0}% of floor), generator {:.2} cores, TTFF {:.0}/{:.0}/{:.0} ms",
            step.subscribers,
            step.delivered_pps,
            step.loss * 100.0,
            step.latency_p99_ms,
            step.gateway_cores,
            step.softirq_cores,
            step.efficiency,
            step.efficiency_vs_floor * 100.0,
            step.generator_cores,
            step.ttff.connected_p50_ms,
            step.ttff.first_rtp_p50_ms,
            step.ttff.keyframe_p50_ms
        );
        let stop = step.saturated() || step.generator_bound;
        if first_ttff.is_none() {
            first_ttff = Some((n, step.ttff.clone()));
        }
        steps.push(step);
        if stop {
            eprintln!("saturated or generator-bound: stopping");
            break;
        }
    }
    generator.shutdown();
    Ok((baseline_rss / 1e6, steps, first_ttff))
}

/// A generator whose publisher is connected to the gateway at `base_url`.
pub fn start_generator(srtp: SrtpChoice, base_url: &str) -> anyhow::Result<Generator> {
    let factory = ClientFactory::new(srtp)?;
    let mut generator = Generator::new(base_url, "bench", factory)?;
    generator.start_publisher()?;
    generator.run(Instant::now() + Duration::from_secs(10), |g| {
        !matches!(
            g.publisher_state(),
            Some(LegState::Signaling | LegState::Connecting)
        )
    })?;
    match generator.publisher_state() {
        Some(LegState::Connected) => Ok(generator),
        other => anyhow::bail!("publisher did not connect: {other:?}"),
    }
}

fn settled(leg: &SubscriberLeg) -> bool {
    !matches!(leg.state, LegState::Signaling | LegState::Connecting)
}

/// Brings the generator to `n` subscribers and measures one window; CPU, RSS and efficiency
/// only when the gateway's `process` is known.
pub fn measure_step(
    plan: &StepPlan,
    process: Option<MeasuredProcess>,
    generator: &mut Generator,
    n: usize,
) -> anyhow::Result<StepResult> {
    let current = generator.legs().filter(|l| !l.late_joiner).count();
    generator.schedule_joins(n.saturating_sub(current), Duration::from_millis(4), false);
    generator.run(Instant::now() + Duration::from_secs(60), |g| {
        !g.joins_pending() && g.legs().all(settled)
    })?;
    // Settle: keyframes for the joiners, RTCP timers.
    generator.run(Instant::now() + Duration::from_secs(2), |_| false)?;

    let counts = |g: &Generator| -> (u64, u64) {
        g.legs()
            .filter(|l| !l.late_joiner && l.is_connected())
            .fold((0, 0), |(r, e), l| {
                (
                    r + l.video.received + l.audio.received,
                    e + l.video.expected() + l.audio.expected(),
                )
            })
    };
    let requests0 = generator.keyframe_requests();
    let sample = |p: Option<MeasuredProcess>| p.map(|p| CpuSample::take(p.pid, p.cpu)).transpose();
    let gw0 = sample(process)?;
    let started = Instant::now();
    let gen0 = generator.busy;
    let (received0, expected0) = counts(generator);
    generator.begin_window()?;
    generator.run(Instant::now() + plan.window, |_| false)?;
    let (received1, expected1) = counts(generator);
    let gw1 = sample(process)?;
    let wall = started.elapsed().as_secs_f64();
    let gen1 = generator.busy;
    let rss = match process {
        Some(p) => procstat::rss_bytes(p.pid)? as f64,
        None => f64::NAN,
    };
    let window = generator.window.take().context("window")?;
    let (gateway_cores, ticks_cores, softirq_cores) = match (gw0, gw1) {
        (Some(a), Some(b)) => {
            let r = b.rates_since(&a);
            (r.process, r.ticks, r.softirq)
        }
        _ => (f64::NAN, f64::NAN, f64::NAN),
    };
    let delivered = received1.saturating_sub(received0);
    let expected = expected1.saturating_sub(expected0);
    let delivered_pps = delivered as f64 / wall;
    let loss = if expected == 0 {
        1.0
    } else {
        expected.saturating_sub(delivered) as f64 / expected as f64
    };
    let hist = &window.latency_us;
    // NaN when the gateway is not ours to measure (`load`).
    let efficiency = delivered_pps / gateway_cores;
    let connected = generator
        .legs()
        .filter(|l| !l.late_joiner && l.is_connected())
        .count();
    let refused = generator
        .legs()
        .filter(|l| !l.late_joiner && l.state == LegState::Refused)
        .count();
    let ttff = late_joiners(generator, plan.late_joiners, plan.joiner_spacing)?;
    let generator_cores = (gen1 - gen0).as_secs_f64() / wall;
    let latency_p99_ms = hist.value_at_quantile(0.99) as f64 / 1e3;
    let mut step = StepResult {
        subscribers: n,
        connected,
        refused,
        connect_failures: n.saturating_sub(connected + refused),
        window_s: wall,
        delivered_pps,
        loss,
        latency_p50_ms: hist.value_at_quantile(0.5) as f64 / 1e3,
        latency_p99_ms,
        latency_max_ms: hist.max() as f64 / 1e3,
        unmatched_packets: window.unmatched,
        gateway_cores,
        gateway_cores_utime_stime: ticks_cores,
        softirq_cores,
        efficiency,
        efficiency_vs_floor: efficiency / process.map_or(f64::NAN, |p| p.floor_pps),
        generator_cores,
        rss_mb: rss / 1e6,
        rss_per_subscriber_kb: (rss - process.map_or(f64::NAN, |p| p.baseline_rss))
            / n.max(1) as f64
            / 1e3,
        ttff,
        keyframe_requests_to_publisher: generator.keyframe_requests() - requests0,
        within_limits: false,
        generator_bound: generator_cores > MAX_GENERATOR_CORES,
    };
    step.within_limits = step.loss <= MAX_LOSS
        && step.latency_p99_ms <= MAX_P99_MS
        && (process.is_none() || step.gateway_cores <= MAX_GATEWAY_CORES)
        && step.connect_failures == 0;
    Ok(step)
}

/// Joins `count` subscribers `spacing` apart, waits for their first keyframe, removes them.
fn late_joiners(
    generator: &mut Generator,
    count: usize,
    spacing: Duration,
) -> anyhow::Result<Ttff> {
    if count == 0 {
        return Ok(Ttff::default());
    }
    generator.schedule_joins(count, spacing, true);
    let done = |g: &Generator| {
        !g.joins_pending()
            && g.legs().filter(|l| l.late_joiner).all(|l| {
                l.first_keyframe_at.is_some()
                    || matches!(l.state, LegState::Failed(_) | LegState::Refused)
            })
    };
    generator.run(Instant::now() + Duration::from_secs(15), done)?;
    let mut connected = Vec::new();
    let mut rtp = Vec::new();
    let mut keyframe = Vec::new();
    let mut failed = 0;
    for leg in generator.legs().filter(|l| l.late_joiner) {
        match (leg.first_rtp_at, leg.first_keyframe_at) {
            (Some(r), Some(k)) => {
                if let Some(c) = leg.connected_at {
                    connected.push(ms(c.duration_since(leg.posted_at)));
                }
                rtp.push(ms(r.duration_since(leg.posted_at)));
                keyframe.push(ms(k.duration_since(leg.posted_at)));
            }
            _ => failed += 1,
        }
    }
    generator.remove_subscribers(|l| l.late_joiner);
    generator.run(Instant::now() + Duration::from_millis(500), |_| false)?;
    connected.sort_by(f64::total_cmp);
    rtp.sort_by(f64::total_cmp);
    keyframe.sort_by(f64::total_cmp);
    Ok(Ttff {
        joiners: count,
        failed,
        connected_p50_ms: percentile(&connected, 50.0),
        first_rtp_p50_ms: percentile(&rtp, 50.0),
        first_rtp_p95_ms: percentile(&rtp, 95.0),
        keyframe_p50_ms: percentile(&keyframe, 50.0),
        keyframe_p95_ms: percentile(&keyframe, 95.0),
    })
}

fn ttff_with_cache(options: &RunOptions, subscribers: usize) -> anyhow::Result<Ttff> {
    let gateway = GatewayProcess::start(
        &options.gateway,
        options.gateway_cpu,
        true,
        &options.out_dir,
        &options.out_dir.join("gateway-keyframe-cache.log"),
    )?;
    let mut generator = start_generator(options.srtp, &gateway.base_url)?;
    generator.schedule_joins(subscribers, Duration::from_millis(4), false);
    generator.run(Instant::now() + Duration::from_secs(30), |g| {
        !g.joins_pending() && g.legs().all(settled)
    })?;
    generator.run(Instant::now() + Duration::from_secs(2), |_| false)?;
    let ttff = late_joiners(
        &mut generator,
        options.plan.late_joiners,
        options.plan.joiner_spacing,
    )?;
    generator.shutdown();
    Ok(ttff)
}
