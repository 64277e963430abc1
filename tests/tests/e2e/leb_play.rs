//! How a LEB play lands (specs/dialects.md §4): SRS's JSON play form obeys the same anti-leech
//! keys (`txSecret`) as pullstream and carries media, and `[leb] room_from` decides which room
//! a stream URL plays (for pullstream, the svrsig and SRS's form alike).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, ensure};
use gatehouse_e2e::gatehouse::config::LebRoomFrom;
use gatehouse_e2e::{
    Publish, http, media_lock, offers, spawn_leb_player, start_gateway, wait_for_media,
};
use gatehouse_sdk::crypto::md5_hex;
use serde_json::{Value, json};

use crate::contract_support::{
    PATIENT_CONNECT_SECS, leb, pull, pull_body, run_leb as run, stop, subscribers,
};

fn now_secs() -> Result<u64> {
    Ok(SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs())
}

/// POSTs SRS's JSON play form; its reply is always HTTP 200.
async fn srs_play(base: &str, sdp: &str, streamurl: &str) -> Result<Value> {
    let response = http()
        .post(format!("{base}/rtc/v1/play/"))
        .header("Content-Type", "application/json")
        .body(json!({"sdp": sdp, "streamurl": streamurl}).to_string())
        .send()
        .await?;
    ensure!(
        response.status() == 200,
        "SRS play {streamurl}: HTTP {}",
        response.status()
    );
    let text = response.text().await?;
    serde_json::from_str(&text).with_context(|| format!("SRS play {streamurl}: {text:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn srs_play_checks_tx_secret_like_pullstream() {
    run("srs_tx_secret", async {
        let key = "srs-anti-leech";
        let svrsig_config: toml::Table =
            toml::from_str(&format!("tx_key.\"secure.example.com\" = \"{key}\""))?;
        let gw = start_gateway(move |c| {
            c.policies.config.insert("leb-svrsig".into(), svrsig_config);
            c.webrtc.connect_timeout_secs = PATIENT_CONNECT_SECS;
        })
        .await?;
        let base = gw.base_url();
        let viewer = offers().await?.whep[0].clone();
        let now = now_secs()?;
        // txSecret = md5(key + stream + txTime), txTime = hex expiry (specs/dialects.md §4.4).
        let signed = |key: &str, tx_time: String| {
            let secret = md5_hex(format!("{key}cam{tx_time}").as_bytes());
            format!("webrtc://secure.example.com/live/cam?txSecret={secret}&txTime={tx_time}")
        };
        let unsigned = "webrtc://secure.example.com/live/cam".to_owned();
        for (what, url) in [
            ("no txSecret", unsigned.clone()),
            ("txTime only", format!("{unsigned}?txTime={:X}", now + 600)),
            (
                "a wrong key",
                signed("wrong-key", format!("{:X}", now + 600)),
            ),
            ("an expired txTime", signed(key, format!("{:X}", now - 5))),
        ] {
            let reply = srs_play(&base, &viewer, &url).await?;
            ensure!(reply == json!({"code": 400}), "SRS play, {what}: {reply}");
        }
        ensure!(
            subscribers(&gw, "cam").await == 0,
            "a refused SRS play opened a session"
        );
        // Signed (txTime in either case): played. A domain without a key is not checked.
        for url in [
            signed(key, format!("{:X}", now + 600)),
            signed(key, format!("{:x}", now + 600)),
            "webrtc://open.example.com:1985/live/cam".to_owned(),
        ] {
            let reply = srs_play(&base, &viewer, &url).await?;
            ensure!(
                reply["code"] == 0
                    && reply["sdp"].as_str().is_some_and(|s| s.starts_with("v=0"))
                    && reply["sessionid"].is_string(),
                "SRS play {url}: {reply}"
            );
        }
        ensure!(
            subscribers(&gw, "cam").await == 3,
            "the SRS plays opened no sessions"
        );
        // pullstream agrees on the same URLs.
        leb(&base, "pullstream", &pull_body(&unsigned, &viewer))
            .await?
            .expect_refusal("pullstream without txSecret", 403_002)?;
        pull(&base, &signed(key, format!("{:X}", now + 600))).await?;
        gw.shutdown().await;
        Ok(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn srs_play_of_a_whip_stream_decodes_video() {
    let _guard = media_lock().await;
    run("srs_media", async {
        let gw = start_gateway(|_| {}).await?;
        let base = gw.base_url();
        let publisher = Publish {
            seconds: 12.0,
            ..Default::default()
        }
        .spawn(&format!("{base}/v1/whip/srscam"))?;
        wait_for_media(&gw, "srscam", Duration::from_secs(15)).await?;
        // srs.sdk.js's URL form, with the API port (the port is not part of the room).
        let url = "webrtc://127.0.0.1:1985/live/srscam";
        let player = spawn_leb_player(&base, url, 4.0, 10, &["--srs"])?
            .finish()
            .await?
            .expect_ok()?;
        println!(
            "SRS play: {} video frames ({:?}x{:?}), {}",
            player.u64("video_frames"),
            player.json["width"],
            player.json["height"],
            player.json["srs"]
        );
        ensure!(
            player.u64("video_frames") >= 10 && player.json["srs"]["code"] == 0,
            "{}",
            player.describe()
        );
        publisher.finish().await?.expect_ok()?;
        gw.shutdown().await;
        Ok(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn room_from_app_stream_plays_the_app_prefixed_room_and_the_default_the_last_segment() {
    let _guard = media_lock().await;
    run("leb_room_from", async {
        let viewer = offers().await?.whep[0].clone();

        // Default: the last path segment is the room, whatever the domain and app.
        let gw = start_gateway(|c| c.webrtc.connect_timeout_secs = PATIENT_CONNECT_SECS).await?;
        let base = gw.base_url();
        let svrsig = pull(&base, "webrtc://d/live/cam").await?;
        ensure!(
            subscribers(&gw, "cam").await == 1 && gw.room("live_cam").await.is_none(),
            "default mapping: webrtc://d/live/cam did not land in room `cam`"
        );
        // Another app of the same stream name is the same room, so the svrsig serves it.
        stop(&base, "webrtc://other.example.com/another/cam", &svrsig).await?;
        ensure!(
            subscribers(&gw, "cam").await == 0,
            "stopstream left its session"
        );
        gw.shutdown().await;

        // app_stream: the app joins the room name.
        let gw = start_gateway(|c| {
            c.leb.room_from = LebRoomFrom::AppStream;
            c.webrtc.connect_timeout_secs = PATIENT_CONNECT_SECS;
        })
        .await?;
        let base = gw.base_url();
        let publisher = Publish {
            seconds: 14.0,
            ..Default::default()
        }
        .spawn(&format!("{base}/v1/whip/live_cam"))?;
        wait_for_media(&gw, "live_cam", Duration::from_secs(15)).await?;
        for (url, room) in [
            ("webrtc://d/live/cam", "live_cam"),
            ("webrtc://d/a/b/cam", "a_b_cam"),
            ("webrtc://d/cam", "cam"),
        ] {
            let before = subscribers(&gw, room).await;
            let svrsig = pull(&base, url).await?;
            ensure!(
                subscribers(&gw, room).await == before + 1,
                "app_stream: {url} did not land in room `{room}`"
            );
            // The svrsig names the mapped room: the same stream under another app is another.
            leb(
                &base,
                "stopstream",
                &json!({"streamurl": "webrtc://d/other/cam", "svrsig": svrsig}),
            )
            .await?
            .expect_refusal(&format!("svrsig of {url} presented for other/cam"), 403_003)?;
            stop(&base, url, &svrsig).await?;
            ensure!(
                subscribers(&gw, room).await == before,
                "stopstream of {url} left its session"
            );
        }
        // SRS's play form maps its streamurl the same way.
        let before = subscribers(&gw, "live_cam").await;
        let reply = srs_play(&base, &viewer, "webrtc://h:1985/live/cam").await?;
        ensure!(reply["code"] == 0, "SRS play under app_stream: {reply}");
        ensure!(
            subscribers(&gw, "live_cam").await == before + 1,
            "SRS play of live/cam did not land in room `live_cam`"
        );

        // And media flows: a LEB player of live/cam decodes the publisher of room live_cam.
        let player = spawn_leb_player(&base, "webrtc://play.example.com/live/cam", 4.0, 10, &[])?
            .finish()
            .await?
            .expect_ok()?;
        println!(
            "LEB live/cam under app_stream: {} video frames, stop {}",
            player.u64("video_frames"),
            player.json["stop"]
        );
        ensure!(
            player.u64("video_frames") >= 10 && player.json["stop"]["errcode"] == 0,
            "{}",
            player.describe()
        );
        publisher.finish().await?.expect_ok()?;
        gw.shutdown().await;
        Ok(())
    })
    .await;
}
