//! Janus `media` events for a publisher: its camera stops sending (no RTP at all), the handle
//! hears `receiving: false` for video within about two seconds, and `receiving: true` when the
//! video comes back; audio, which never stopped, is not reported.

use std::time::Duration;

use anyhow::{Result, ensure};
use gatehouse_e2e::{bounded, media_lock, start_gateway};
use serde_json::{Value, json};

use crate::janus_cross_dialect::{janus_client, janus_sync};

const LIMIT: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publisher_whose_video_stops_and_resumes_gets_media_events() {
    let _guard = media_lock().await;
    let result: Result<()> = bounded("janus_media_events", LIMIT, async {
        let gw = start_gateway(|_| {}).await?;
        let base = gw.base_url();
        let created = janus_sync(&base, json!({"request": "create", "room": 8282})).await?;
        ensure!(created["videoroom"] == "created", "{created}");
        let publisher = janus_client(&base, 8282, "publish", 9.0, &["--pause-video", "2:5"])?
            .finish()
            .await?
            .expect_ok()?;
        let events: Vec<&Value> = publisher.json["media_events"]
            .as_array()
            .into_iter()
            .flatten()
            .collect();
        println!("media events: {}", publisher.json["media_events"]);
        let (paused, resumed) = (
            publisher.f64("video_paused_at").unwrap_or(f64::NAN),
            publisher.f64("video_resumed_at").unwrap_or(f64::NAN),
        );
        let at = |e: &Value| e["at"].as_f64().unwrap_or(f64::NAN);
        let stopped = events
            .iter()
            .find(|e| e["type"] == "video" && e["receiving"] == false);
        ensure!(
            stopped.is_some_and(|e| at(e) > paused && at(e) < paused + 3.0 && e["seconds"] == 1),
            "video reported stopped within 3 s of {paused}: {events:?}"
        );
        ensure!(
            events.iter().any(|e| e["type"] == "video"
                && e["receiving"] == true
                && at(e) > resumed
                && at(e) < resumed + 3.0),
            "video reported back within 3 s of {resumed}: {events:?}"
        );
        ensure!(
            !events
                .iter()
                .any(|e| e["type"] == "audio" && e["receiving"] == false),
            "audio never stopped: {events:?}"
        );
        gw.shutdown().await;
        Ok(())
    })
    .await;
    if let Err(e) = result {
        panic!("a_publisher_whose_video_stops_and_resumes_gets_media_events: {e:#}");
    }
}
