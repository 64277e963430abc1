//! Recording (`[record] enabled`, go-live's RECORD_ENABLED): a real publisher's VP8 and Opus
//! become `.ivf` and `.ogg` files that ffprobe reads (codec and duration), both when the
//! publisher leaves and when a gateway process gets SIGTERM mid-stream.

use std::path::Path;
use std::time::Duration;

use anyhow::Result;
use gatehouse_e2e::{GatewayProcess, Publish, bounded, media_lock, start_gateway};

use crate::records_contract::{finished_recordings, record_dir};

const LIMIT: Duration = Duration::from_secs(60);

/// Waits for an `.ivf` and an `.ogg` of `room` that ffprobe reads as VP8 and Opus, longer than
/// `min_secs`.
async fn expect_valid_recordings(dir: &Path, room: &str, min_secs: f64) -> Result<()> {
    let found =
        finished_recordings(dir, room, &[("ivf", "vp8"), ("ogg", "opus")], min_secs).await?;
    println!("{room}: {found:?}");
    Ok(())
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
