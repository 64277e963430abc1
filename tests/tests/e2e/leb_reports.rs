//! The LEB report log (specs/dialects.md §4): it rotates into `report_log_keep` files without
//! losing a report, and records each report with the quality policy's verdict (`accepted`,
//! `rejected`, or `dropped` when no policy judged it).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use gatehouse_e2e::start_gateway;
use serde_json::Value;

use crate::contract_support::{
    PATIENT_CONNECT_SECS, first_frame_report, ice_report, leb, leb_series, metrics, pull,
    quality_report, reports_total, run_leb as run, wait_for_metric,
};

fn scratch_dir(name: &str) -> Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!(
        "gatehouse-leb-contract-{name}-{}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// `<log>.n`, a rotated report log.
fn rotated(log: &Path, n: usize) -> PathBuf {
    let mut name = log.as_os_str().to_owned();
    name.push(format!(".{n}"));
    PathBuf::from(name)
}

/// One file of the report log.
struct LogFile {
    path: PathBuf,
    bytes: u64,
    lines: Vec<Value>,
}

/// The report log's files that exist, oldest first (`.probe` … `.1`, then the live file).
fn read_log(log: &Path, probe: usize) -> Result<Vec<LogFile>> {
    let paths = (1..=probe)
        .rev()
        .map(|n| rotated(log, n))
        .chain(std::iter::once(log.to_path_buf()));
    let mut files = Vec::new();
    for path in paths.filter(|p| p.exists()) {
        let text = std::fs::read_to_string(&path).with_context(|| format!("{}", path.display()))?;
        let lines = text
            .lines()
            .map(|l| {
                serde_json::from_str::<Value>(l)
                    .with_context(|| format!("{}: {l:?}", path.display()))
            })
            .collect::<Result<Vec<Value>>>()?;
        files.push(LogFile {
            path,
            bytes: text.len() as u64,
            lines,
        });
    }
    Ok(files)
}

/// Waits (10 s at most) until the log's files satisfy `done` (the worker flushes once its
/// queue is empty; a half-flushed file does not parse and is read again).
async fn wait_for_log(
    log: &Path,
    probe: usize,
    done: impl Fn(&[LogFile]) -> bool,
) -> Result<Vec<LogFile>> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match read_log(log, probe) {
            Ok(files) if done(files.as_slice()) => return Ok(files),
            Ok(files) if Instant::now() > deadline => {
                let layout: Vec<String> = files
                    .iter()
                    .map(|f| format!("{} ({} lines)", f.path.display(), f.lines.len()))
                    .collect();
                bail!("the report log did not complete within 10 s: {layout:?}");
            }
            Err(e) if Instant::now() > deadline => return Err(e),
            Ok(_) | Err(_) => {}
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The `firstFrameMs` of every line, in file order.
fn first_frame_sequence(files: &[LogFile]) -> Vec<u64> {
    files
        .iter()
        .flat_map(|f| &f.lines)
        .map(|l| l["report"]["firstFrameMs"].as_u64().unwrap_or(u64::MAX))
        .collect()
}

fn last_first_frame(files: &[LogFile]) -> Option<u64> {
    files
        .last()
        .and_then(|f| f.lines.last())
        .and_then(|l| l["report"]["firstFrameMs"].as_u64())
}

/// A report log size that holds about nine first-frame lines (each ≈ 200 bytes).
const ROTATING_LOG_BYTES: u64 = 1800;

/// Sends first-frame reports `1..=count` ms of one pulled session (each taken: errcode 0) and
/// waits until the quality worker has judged them all.
async fn send_numbered_reports(base: &str, stream: &str, count: u64) -> Result<()> {
    let url = format!("webrtc://d/live/{stream}");
    let svrsig = pull(base, &url).await?;
    for ms in 1..=count {
        let reply = leb(
            base,
            "firstframeusetime",
            &first_frame_report(&url, &svrsig, ms),
        )
        .await?;
        ensure!(reply.errcode() == Some(0), "report {ms}: {}", reply.json);
    }
    wait_for_metric(
        base,
        &reports_total(stream, "first-frame", "accepted", count),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_report_log_rotates_into_keep_files_without_losing_a_report() {
    run("report_log_rotation", async {
        const REPORTS: u64 = 60;

        // keep = 10 is more than 60 reports at ~9 lines per file need: nothing is lost, and
        // the files oldest first (.N … .1, live) hold reports 1..=60 in order.
        let dir = scratch_dir("rotation")?;
        let log = dir.join("reports.jsonl");
        let log_path = log.clone();
        let gw = start_gateway(move |c| {
            c.leb.report_log = Some(log_path);
            c.leb.report_log_max_bytes = ROTATING_LOG_BYTES;
            c.leb.report_log_keep = 10;
            c.webrtc.connect_timeout_secs = PATIENT_CONNECT_SECS;
        })
        .await?;
        let base = gw.base_url();
        send_numbered_reports(&base, "rot", REPORTS).await?;
        let files = wait_for_log(&log, 12, |f| last_first_frame(f) == Some(REPORTS)).await?;
        let layout: Vec<String> = files
            .iter()
            .map(|f| {
                format!(
                    "{}: {} lines, {} B",
                    f.path.display(),
                    f.lines.len(),
                    f.bytes
                )
            })
            .collect();
        let sequence = first_frame_sequence(&files);
        ensure!(
            sequence == (1..=REPORTS).collect::<Vec<_>>(),
            "reports lost, doubled or out of order across {layout:#?}: {sequence:?}"
        );
        ensure!(
            files.len() >= 4 && !rotated(&log, 11).exists(),
            "wanted several rotated files, at most 10: {layout:#?}"
        );
        ensure!(
            files.iter().all(|f| f.bytes <= ROTATING_LOG_BYTES),
            "a file grew past report_log_max_bytes: {layout:#?}"
        );
        ensure!(
            files
                .iter()
                .flat_map(|f| &f.lines)
                .all(|l| l["stream"] == "rot" && l["result"] == "accepted"),
            "log lines without stream or verdict: {layout:#?}"
        );
        gw.shutdown().await;
        let _ = std::fs::remove_dir_all(&dir);

        // keep = 2: only .1 and .2 remain, holding the newest reports before the live file's.
        let dir = scratch_dir("rotation-keep2")?;
        let log = dir.join("reports.jsonl");
        let log_path = log.clone();
        let gw = start_gateway(move |c| {
            c.leb.report_log = Some(log_path);
            c.leb.report_log_max_bytes = ROTATING_LOG_BYTES;
            c.leb.report_log_keep = 2;
            c.webrtc.connect_timeout_secs = PATIENT_CONNECT_SECS;
        })
        .await?;
        let base = gw.base_url();
        send_numbered_reports(&base, "rot2", REPORTS).await?;
        let files = wait_for_log(&log, 12, |f| last_first_frame(f) == Some(REPORTS)).await?;
        let names: Vec<String> = files.iter().map(|f| f.path.display().to_string()).collect();
        ensure!(
            files.len() == 3
                && rotated(&log, 1).exists()
                && rotated(&log, 2).exists()
                && !rotated(&log, 3).exists(),
            "keep = 2 left {names:?}"
        );
        let sequence = first_frame_sequence(&files);
        let first = sequence.first().copied().unwrap_or(0);
        ensure!(
            first > 1 && sequence == (first..=REPORTS).collect::<Vec<_>>(),
            "keep = 2 should hold the newest reports, in order: {sequence:?} in {names:?}"
        );
        gw.shutdown().await;
        let _ = std::fs::remove_dir_all(&dir);
        Ok(())
    })
    .await;
}

/// Every report taken is logged with the policy's verdict (`result`, README): one the
/// quality policy rejects is logged as `rejected` and leaves the gauges alone; one no policy
/// judged is logged as `dropped`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_the_quality_policy_rejects_are_logged_with_their_verdict() {
    run("report_verdicts", async {
        let dir = scratch_dir("verdicts")?;
        let log = dir.join("reports.jsonl");
        let log_path = log.clone();
        let gw = start_gateway(move |c| {
            c.leb.report_log = Some(log_path);
            c.webrtc.connect_timeout_secs = PATIENT_CONNECT_SECS;
        })
        .await?;
        let base = gw.base_url();
        let url = "webrtc://d/live/judged";
        let svrsig = pull(&base, url).await?;
        // Accepted: no video loss. Then one whose interval ends before it begins (with 50 %
        // loss): taken (errcode 0, it is queued), rejected by quality-report.
        for body in [
            quality_report(url, &svrsig, (1000, 3000), (100, 0)),
            quality_report(url, &svrsig, (3000, 1000), (50, 50)),
        ] {
            let reply = leb(&base, "reportquality", &body).await?;
            ensure!(reply.errcode() == Some(0), "reportquality: {}", reply.json);
        }
        wait_for_metric(&base, &reports_total("judged", "quality", "rejected", 1)).await?;
        let text = metrics(&base).await?;
        for wanted in [
            reports_total("judged", "quality", "accepted", 1),
            // the accepted report's 0 %, not the rejected one's 50 %
            "leb_loss_percent{kind=\"video\",stream=\"judged\"} 0".to_owned(),
        ] {
            ensure!(
                text.lines().any(|l| l == wanted),
                "no `{wanted}` in /metrics: {:#?}",
                leb_series(&text, "judged")
            );
        }
        let files = wait_for_log(&log, 0, |f| {
            f.iter().map(|f| f.lines.len()).sum::<usize>() >= 2
        })
        .await?;
        let lines: Vec<&Value> = files.iter().flat_map(|f| &f.lines).collect();
        ensure!(
            lines.len() == 2
                && lines[0]["result"] == "accepted"
                && lines[0]["report"]["beginMs"] == 1000
                && lines[1]["result"] == "rejected"
                && lines[1]["report"]["type"] == "quality"
                && lines[1]["report"]["beginMs"] == 3000
                && lines[1]["report"]["endMs"] == 1000
                && lines[1]["stream"] == "judged",
            "report log: {lines:#?}"
        );
        gw.shutdown().await;
        let _ = std::fs::remove_dir_all(&dir);

        // No quality module: the report is still taken and logged, as dropped.
        let dir = scratch_dir("verdicts-dropped")?;
        let log = dir.join("reports.jsonl");
        let log_path = log.clone();
        let gw = start_gateway(move |c| {
            c.leb.report_log = Some(log_path);
            c.policies.quality = String::new();
            c.webrtc.connect_timeout_secs = PATIENT_CONNECT_SECS;
        })
        .await?;
        let base = gw.base_url();
        let url = "webrtc://d/live/unjudged";
        let svrsig = pull(&base, url).await?;
        let reply = leb(&base, "reporticestate", &ice_report(url, &svrsig)).await?;
        ensure!(reply.errcode() == Some(0), "reporticestate: {}", reply.json);
        wait_for_metric(&base, &reports_total("unjudged", "ice-state", "dropped", 1)).await?;
        let files = wait_for_log(&log, 0, |f| f.iter().any(|f| !f.lines.is_empty())).await?;
        let lines: Vec<&Value> = files.iter().flat_map(|f| &f.lines).collect();
        ensure!(
            lines.len() == 1
                && lines[0]["result"] == "dropped"
                && lines[0]["report"]["type"] == "ice-state"
                && lines[0]["stream"] == "unjudged",
            "report log: {lines:#?}"
        );
        gw.shutdown().await;
        let _ = std::fs::remove_dir_all(&dir);
        Ok(())
    })
    .await;
}
