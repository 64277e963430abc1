//! A Janus publisher renegotiates its PeerConnection without restarting ICE (janus.js adds a
//! track with a new offer and `configure`): the gateway answers on the same session, and the
//! added video reaches a player that was already watching and a subscriber that joins after.

use std::time::Duration;

use anyhow::{Result, ensure};
use gatehouse_e2e::{Play, bounded, media_lock, start_gateway, wait_for_media};
use serde_json::json;

use crate::janus_cross_dialect::{janus_client, janus_sync};

const LIMIT: Duration = Duration::from_secs(120);
const ROOM: u64 = 8181;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publisher_that_adds_video_by_a_new_offer_is_answered_and_its_video_forwarded() {
    let _guard = media_lock().await;
    let result: Result<()> = bounded("janus_publisher_renegotiation", LIMIT, async {
        let gw = start_gateway(|_| {}).await?;
        let base = gw.base_url();
        let created = janus_sync(&base, json!({"request": "create", "room": ROOM})).await?;
        ensure!(created["videoroom"] == "created", "{created}");
        // Audio only at first; video joins by a new offer 3 s after connecting.
        let publisher = janus_client(&base, ROOM, "publish", 14.0, &["--add-video-at", "3"])?;
        wait_for_media(&gw, &ROOM.to_string(), Duration::from_secs(15)).await?;
        // Watching before the video exists: the video must reach it once it is added.
        let early = Play {
            min_video_frames: 30,
            ..Play::for_seconds(7.0)
        }
        .spawn(&format!("{base}/v1/whep/{ROOM}"))?
        .finish()
        .await?;
        // Joining after: the subscriber's offer carries the added video.
        let late = janus_client(&base, ROOM, "play", 2.0, &[])?
            .finish()
            .await?;
        let publisher = publisher.finish().await?;
        println!(
            "renegotiated: {}; WHEP player {} video frames; Janus subscriber {} ({:?})",
            publisher.json["renegotiated"],
            early.u64("video_frames"),
            late.u64("video_frames"),
            late.json["attached"]
        );
        let publisher = publisher.expect_ok()?;
        let renegotiated = &publisher.json["renegotiated"];
        ensure!(renegotiated["configured"] == "ok", "{renegotiated}");
        let kinds: Vec<&str> = renegotiated["streams"]
            .as_array()
            .map(|s| s.iter().filter_map(|s| s["type"].as_str()).collect())
            .unwrap_or_default();
        ensure!(
            kinds.contains(&"audio") && kinds.contains(&"video"),
            "the answer's streams: {renegotiated}"
        );
        early.expect_ok()?;
        let late = late.expect_ok()?;
        ensure!(late.json["width"] == 640, "decoded size: {}", late.json);
        gw.shutdown().await;
        Ok(())
    })
    .await;
    if let Err(e) = result {
        panic!(
            "a_publisher_that_adds_video_by_a_new_offer_is_answered_and_its_video_forwarded: {e:#}"
        );
    }
}

/// The other way: a publisher's new offer turns its video section inactive (janus.js removing
/// a track). The gateway answers it instead of refusing a section it no longer receives, and
/// the audio goes on to a player that joins after.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publisher_that_stops_sending_video_by_a_new_offer_has_it_listed_disabled_and_its_audio_goes_on()
 {
    let _guard = media_lock().await;
    let result: Result<()> = bounded("janus_publisher_idle_video", LIMIT, async {
        let gw = start_gateway(|_| {}).await?;
        let base = gw.base_url();
        let created = janus_sync(&base, json!({"request": "create", "room": 8383})).await?;
        ensure!(created["videoroom"] == "created", "{created}");
        let publisher = janus_client(&base, 8383, "publish", 9.0, &["--idle-video-at", "2"])?;
        wait_for_media(&gw, "8383", Duration::from_secs(15)).await?;
        tokio::time::sleep(Duration::from_secs(4)).await;
        let player = Play {
            min_video_frames: 0,
            ..Play::for_seconds(2.0)
        }
        .spawn(&format!("{base}/v1/whep/8383"))?
        .finish()
        .await?;
        let publisher = publisher.finish().await?;
        println!(
            "idle video: {} answered {}; later player: {} audio, {} video frames",
            publisher.json["renegotiated"],
            publisher.json["renegotiated_answer_video"],
            player.u64("audio_frames"),
            player.u64("video_frames")
        );
        let publisher = publisher.expect_ok()?;
        let renegotiated = &publisher.json["renegotiated"];
        ensure!(renegotiated["configured"] == "ok", "{}", publisher.json);
        // Janus keeps the m-line listed, disabled; audio stays as it was.
        let streams = renegotiated["streams"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let of = |kind: &str| streams.iter().find(|s| s["type"] == kind).cloned();
        ensure!(
            of("video").is_some_and(|v| v["disabled"] == true && v.get("codec").is_none()),
            "video listed disabled: {renegotiated}"
        );
        ensure!(
            of("audio").is_some_and(|a| a["codec"] == "opus" && a.get("disabled").is_none()),
            "audio listed as before: {renegotiated}"
        );
        let player = player.expect_ok()?;
        ensure!(
            player.u64("audio_frames") >= 20,
            "audio goes on: {}",
            player.json
        );
        gw.shutdown().await;
        Ok(())
    })
    .await;
    if let Err(e) = result {
        panic!(
            "a_publisher_that_stops_sending_video_by_a_new_offer_has_it_listed_disabled_and_its_audio_goes_on: {e:#}"
        );
    }
}
