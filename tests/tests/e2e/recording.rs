//! Recording (`[record] enabled`, go-live's RECORD_ENABLED): a real publisher's VP8 and Opus
//! become `.ivf` and `.ogg` files that ffprobe reads (codec and duration), both when the
//! publisher leaves and when a gateway process gets SIGTERM mid-stream.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use gatehouse_e2e::{GatewayProcess, Publish, bounded, media_lock, start_gateway};
use serde_json::Value;

const LIMIT: Duration = Duration::from_secs(60);

fn record_dir(name: &str) -> Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("gatehouse-rec-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// The recordings of `room`, by extension.
fn recordings(dir: &Path, room: &str) -> Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&format!("{room}_")))
        })
        .collect();
    files.sort();
    Ok(files)
}

/// (codec name, duration in seconds) as ffprobe reads them.
async fn probe(file: &Path) -> Result<(String, f64)> {
    let output = tokio::process::Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "stream=codec_name:format=duration",
        ])
        .args(["-of", "json"])
        .arg(file)
        .kill_on_drop(true)
        .output()
        .await
        .context("running ffprobe (tests/setup.sh installs ffmpeg)")?;
    if !output.status.success() {
        bail!(
            "ffprobe {}: {}",
            file.display(),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let json: Value = serde_json::from_slice(&output.stdout)?;
    let codec = json["streams"][0]["codec_name"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let duration = json["format"]["duration"]
        .as_str()
        .and_then(|d| d.parse().ok())
        .unwrap_or(0.0);
    Ok((codec, duration))
}

/// Waits for an `.ivf` and an `.ogg` of `room` that ffprobe accepts, longer than `min_secs`.
async fn expect_valid_recordings(dir: &Path, room: &str, min_secs: f64) -> Result<()> {
    let mut last_error = None;
    for _ in 0..30 {
        let files = recordings(dir, room)?;
        let mut found = Vec::new();
        for file in &files {
            match probe(file).await {
                Ok(probe) => found.push((file.clone(), probe)),
                Err(e) => last_error = Some(e),
            }
        }
        let has = |ext: &str, codec: &str| {
            found.iter().any(|(f, (c, d))| {
                f.extension().is_some_and(|e| e == ext) && c == codec && *d >= min_secs
            })
        };
        if has("ivf", "vp8") && has("ogg", "opus") {
            println!("{room}: {found:?}");
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    bail!(
        "no valid vp8 .ivf and opus .ogg of {min_secs}+ s for {room} in {}: {:?} (last ffprobe error: {last_error:?})",
        dir.display(),
        recordings(dir, room)?
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publishers_tracks_are_recorded_to_files_ffprobe_reads() {
    let _guard = media_lock().await;
    let result: Result<()> = bounded("recording", LIMIT, async {
        let dir = record_dir("leave")?;
        let gw = start_gateway(|c| {
            c.record.enabled = true;
            c.record.dir = dir.clone();
        })
        .await?;
        let base = gw.base_url();

        // 1. The publisher leaves (DELETE): its files are finalized.
        Publish {
            seconds: 3.0,
            ..Default::default()
        }
        .spawn(&format!("{base}/v1/whip/left"))?
        .finish()
        .await?
        .expect_ok()?;
        expect_valid_recordings(&dir, "left", 2.0).await?;

        gw.shutdown().await;

        // 2. A gateway process gets SIGTERM while a publisher is live (recording switched on
        //    by go-live's environment variables): its files are finalized too.
        let record_dir = dir.to_string_lossy().into_owned();
        let node = GatewayProcess::start_with_env(
            env!("CARGO_BIN_EXE_gateway_node"),
            &[("RECORD_ENABLED", "1"), ("RECORD_DIR", &record_dir)],
        )
        .await?;
        let live = Publish {
            seconds: 8.0,
            ..Default::default()
        }
        .spawn(&format!("{}/v1/whip/cut", node.base_url()))?;
        tokio::time::sleep(Duration::from_millis(3000)).await;
        node.terminate().await?;
        let _ = live.finish().await; // its connection was cut: an error is expected
        expect_valid_recordings(&dir, "cut", 1.5).await?;
        let _ = std::fs::remove_dir_all(&dir);
        Ok(())
    })
    .await;
    if let Err(e) = result {
        panic!("a_publishers_tracks_are_recorded_to_files_ffprobe_reads: {e:#}");
    }
}
