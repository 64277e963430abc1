//! Headless Chromium (Debian package, driven by playwright-core) on Gatehouse's own pages:
//! publish.html (fake camera + mic, WHIP) → Gatehouse → play.html (WHEP).

use std::time::Duration;

use anyhow::ensure;
use gatehouse_e2e::{bounded, media_lock, spawn_browser_pages, start_gateway};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_publish_page_is_played_by_chromium_play_page() {
    let name = "chromium_publish_page_is_played_by_chromium_play_page";
    let _guard = media_lock().await;
    let body = async {
        let gw = start_gateway(|_| {}).await?;
        let base = gw.base_url();
        let run = spawn_browser_pages(&base, "browser", 5.0)?.finish().await?;
        let j = &run.json;
        println!(
            "chromium: first_frame_ms={} frames_decoded={} publish_state={} play_state={} errors={}",
            j["first_frame_ms"],
            j["frames_decoded"],
            j["publish_state"],
            j["play_state"],
            j["errors"]
        );
        ensure!(!run.timed_out, "driver timed out: {}", run.describe());
        ensure!(
            run.u64("frames_decoded") >= 30,
            "play.html decoded {} frames, expected >= 30: {}",
            run.u64("frames_decoded"),
            run.describe()
        );
        ensure!(
            run.str("play_state") == Some("connected"),
            "play.html state: {}",
            run.describe()
        );
        ensure!(
            run.str("publish_state") == Some("connected"),
            "publish.html state: {}",
            run.describe()
        );
        gw.shutdown().await;
        Ok::<_, anyhow::Error>(())
    };
    if let Err(e) = bounded(name, Duration::from_secs(120), body).await {
        panic!("{name}: {e:#}");
    }
}
