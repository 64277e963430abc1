//! The load generator against a real gateway (in-process, loopback): it connects every
//! subscriber, counts every packet, matches every packet to its publisher send time and sees
//! the late joiners' first keyframe. Functional only: the figures are the benchmark's business.

use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use serde_json::Value;

async fn load_step(base_url: &str) -> Result<Value> {
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_gatehouse-bench"))
        .args([
            "load",
            "--url",
            base_url,
            "--subscribers",
            "3",
            "--secs",
            "2",
        ])
        .args(["--late-joiners", "2", "--joiner-spacing-ms", "300"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .context("starting gatehouse-bench")?;
    let output = tokio::time::timeout(Duration::from_secs(90), child.wait_with_output())
        .await
        .context("gatehouse-bench load did not finish in 90 s")??;
    ensure!(
        output.status.success(),
        "gatehouse-bench load failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).context("gatehouse-bench output is not JSON")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generator_subscribers_receive_every_packet_and_late_joiners_get_a_keyframe() {
    let gateway = gatehouse::Gateway::start(gatehouse::Config::for_tests())
        .await
        .expect("gateway starts");
    let step = load_step(&gateway.base_url()).await;
    gateway.shutdown().await;
    let step = step.expect("load step");
    println!("{step}");
    let num = |key: &str| step[key].as_f64().unwrap_or(f64::NAN);
    assert_eq!(num("connected"), 3.0, "subscribers connected: {step}");
    // ~276 packets/s per subscriber (video 226 + audio 50).
    assert!(num("delivered_pps") > 3.0 * 200.0, "delivery: {step}");
    assert!(num("loss") < 0.01, "loss on loopback: {step}");
    assert_eq!(
        num("unmatched_packets"),
        0.0,
        "packets not matched to a send: {step}"
    );
    let ttff = &step["ttff"];
    assert_eq!(ttff["failed"].as_u64(), Some(0), "late joiners: {step}");
    assert!(
        ttff["keyframe_p50_ms"].as_f64().is_some_and(|ms| ms > 0.0),
        "late joiners saw no complete keyframe: {step}"
    );
}
