//! The LEB quality-report burst: the gateway pinned to one CPU, `sessions` LEB pulls, then
//! `reportquality` at `rate` per second for `secs` seconds from up to `concurrency` requests in
//! flight, while a probe keeps opening new pulls (signaling) every 50 ms. Reports: achieved
//! rate, accepted/refused, reply latency, pull latency idle vs during the burst, gateway CPU,
//! and whether every accepted report reached the JSON-lines log.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use serde::Serialize;
use serde_json::{Value, json};

use crate::client::{ClientFactory, SrtpChoice};
use crate::gateway::GatewayProcess;
use crate::procstat;

/// What to run.
pub struct ReportOptions {
    pub gateway: PathBuf,
    pub sessions: usize,
    pub rate: u64,
    pub secs: u64,
    pub concurrency: usize,
    pub out_dir: PathBuf,
}

/// The figures of one burst.
#[derive(Debug, Serialize)]
pub struct ReportBurst {
    pub offered_per_sec: u64,
    pub achieved_per_sec: f64,
    pub sent: u64,
    pub accepted: u64,
    pub refused_queue_full: u64,
    pub other_errors: u64,
    pub reply_p50_ms: f64,
    pub reply_p99_ms: f64,
    pub pull_idle_p50_ms: f64,
    pub pull_idle_p99_ms: f64,
    pub pull_during_p50_ms: f64,
    pub pull_during_p99_ms: f64,
    pub pulls_during: usize,
    pub gateway_cpu_per_sec: f64,
    pub logged_reports: u64,
}

fn percentile(values: &mut [f64], p: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(f64::total_cmp);
    let index = ((values.len() - 1) as f64 * p).round() as usize;
    values[index.min(values.len() - 1)]
}

async fn post(client: &reqwest::Client, url: &str, body: &Value) -> anyhow::Result<Value> {
    let text = client
        .post(url)
        .header("Content-Type", "text/plain;charset=utf-8")
        .body(body.to_string())
        .send()
        .await?
        .text()
        .await?;
    Ok(serde_json::from_str(&text)?)
}

/// A pull of `stream` with a real offer; its svrsig.
async fn pull(
    client: &reqwest::Client,
    base: &str,
    offer: &str,
    stream: &str,
) -> anyhow::Result<String> {
    let body = json!({
        "streamurl": format!("webrtc://bench.example/live/{stream}"),
        "sessionid": stream, "clientinfo": "gatehouse-bench",
        "localsdp": {"type": "offer", "sdp": offer},
    });
    let reply = post(client, &format!("{base}/webrtc/v1/pullstream"), &body).await?;
    anyhow::ensure!(reply["errcode"] == 0, "pullstream: {reply}");
    reply["svrsig"]
        .as_str()
        .map(str::to_owned)
        .context("pullstream gave no svrsig")
}

fn quality_body(stream: &str, svrsig: &str, n: u64) -> Value {
    json!({
        "streamurl": format!("webrtc://bench.example/live/{stream}"), "svrsig": svrsig,
        "beginutime": (n * 2000).to_string(), "endutime": (n * 2000 + 2000).to_string(),
        "audiossrc": 1, "audiocodec": "opus", "audiopktrecv": 100, "audiobyterecv": 12000,
        "audiopktlost": n % 3, "videossrc": 2, "videocodec": "vp8", "videopktrecv": 420,
        "videobyterecv": 480_000, "videopktlost": n % 7, "videowidth": 640,
        "videoheight": 480, "videoframedec": 30, "videoframerecv": 30,
    })
}

fn count_lines(path: &Path) -> u64 {
    std::fs::read_to_string(path).map_or(0, |t| t.lines().count() as u64)
}

/// Pull latencies (ms) of new sessions opened every 50 ms until `stop`.
async fn probe_pulls(
    client: reqwest::Client,
    base: String,
    offer: String,
    tag: &'static str,
    until: Instant,
) -> Vec<f64> {
    let mut latencies = Vec::new();
    let mut n = 0;
    while Instant::now() < until {
        let started = Instant::now();
        if pull(&client, &base, &offer, &format!("probe-{tag}-{n}"))
            .await
            .is_ok()
        {
            latencies.push(started.elapsed().as_secs_f64() * 1000.0);
        }
        n += 1;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    latencies
}

pub fn run(options: &ReportOptions) -> anyhow::Result<ReportBurst> {
    std::fs::create_dir_all(&options.out_dir)?;
    let log_path = options.out_dir.join("reports.jsonl");
    let _ = std::fs::remove_file(&log_path);
    let sections = format!(
        "\n[leb]\nreport_log = \"{}\"\nreport_queue = 65536\n",
        log_path.display()
    );
    let gateway = GatewayProcess::start_with(
        &options.gateway,
        0,
        "",
        &sections,
        &options.out_dir,
        &options.out_dir.join("gateway-reports.log"),
    )?;
    crate::netio::pin_current_thread(1).context("pinning the generator to CPU 1")?;
    let factory = ClientFactory::new(SrtpChoice::AesCmHmacSha1_80)?;
    let local: SocketAddr = "127.0.0.1:9".parse()?;
    let (_pc, offer) = factory.subscriber(local)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let base = gateway.base_url.clone();
    let pid = gateway.pid();
    let result = runtime.block_on(async {
        let client = reqwest::Client::builder()
            .no_proxy()
            .pool_max_idle_per_host(options.concurrency)
            .timeout(Duration::from_secs(10))
            .build()?;
        let mut sessions = Vec::new();
        for i in 0..options.sessions {
            let stream = format!("s{}", i % 50);
            sessions.push((stream.clone(), pull(&client, &base, &offer, &stream).await?));
        }
        let sessions = Arc::new(sessions);
        let mut idle = probe_pulls(
            client.clone(),
            base.clone(),
            offer.clone(),
            "idle",
            Instant::now() + Duration::from_secs(1),
        )
        .await;

        let burst = Duration::from_secs(options.secs);
        let probe = tokio::spawn(probe_pulls(
            client.clone(),
            base.clone(),
            offer.clone(),
            "burst",
            Instant::now() + burst,
        ));
        let cpu_before = procstat::process_runtime_seconds(pid)?;
        let started = Instant::now();
        let permits = Arc::new(tokio::sync::Semaphore::new(options.concurrency));
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(f64, Option<u64>)>();
        let total = options.rate * options.secs;
        let url = format!("{base}/webrtc/v1/reportquality");
        for n in 0..total {
            let due = started + Duration::from_secs_f64(n as f64 / options.rate as f64);
            tokio::time::sleep_until(due.into()).await;
            let permit = permits.clone().acquire_owned().await?;
            let (client, url, sessions, tx) =
                (client.clone(), url.clone(), sessions.clone(), tx.clone());
            tokio::spawn(async move {
                let (stream, svrsig) = &sessions[n as usize % sessions.len()];
                let sent = Instant::now();
                let reply = post(&client, &url, &quality_body(stream, svrsig, n)).await;
                let code = reply.ok().and_then(|r| r["errcode"].as_u64());
                let _ = tx.send((sent.elapsed().as_secs_f64() * 1000.0, code));
                drop(permit);
            });
        }
        drop(tx);
        let mut latencies = Vec::new();
        let (mut accepted, mut refused, mut other) = (0, 0, 0);
        while let Some((ms, code)) = rx.recv().await {
            latencies.push(ms);
            match code {
                Some(0) => accepted += 1,
                Some(429_001) => refused += 1,
                _ => other += 1,
            }
        }
        let elapsed = started.elapsed().as_secs_f64();
        let cpu = procstat::process_runtime_seconds(pid)? - cpu_before;
        let mut during = probe.await?;
        // The worker drains the queue after the burst: wait for the log to settle.
        let mut logged = count_lines(&log_path);
        for _ in 0..100 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let now = count_lines(&log_path);
            if now == logged && now >= accepted {
                break;
            }
            logged = now;
        }
        anyhow::Ok(ReportBurst {
            offered_per_sec: options.rate,
            achieved_per_sec: latencies.len() as f64 / elapsed,
            sent: latencies.len() as u64,
            accepted,
            refused_queue_full: refused,
            other_errors: other,
            reply_p50_ms: percentile(&mut latencies, 0.5),
            reply_p99_ms: percentile(&mut latencies, 0.99),
            pull_idle_p50_ms: percentile(&mut idle, 0.5),
            pull_idle_p99_ms: percentile(&mut idle, 0.99),
            pull_during_p50_ms: percentile(&mut during, 0.5),
            pull_during_p99_ms: percentile(&mut during, 0.99),
            pulls_during: during.len(),
            gateway_cpu_per_sec: cpu / elapsed,
            logged_reports: count_lines(&log_path),
        })
    })?;
    drop(gateway);
    Ok(result)
}
