//! A publisher's media choices over Janus: a room's `bitrate` and a publisher's own
//! `configure {bitrate}` reach the encoders as REMB (aiortc's encoder takes the cap as its
//! target), a publisher picks one of the room's codecs (`videocodec`), and its
//! `configure {keyframe}` sends it a PLI. (What a room asks in the answer: `janus_answers`.)

use std::time::Duration;

use anyhow::{Result, ensure};
use gatehouse_e2e::{ClientResult, bounded, media_lock, start_gateway};
use serde_json::json;

use crate::janus_cross_dialect::{janus_client, janus_sync, whip_publishers};

const LIMIT: Duration = Duration::from_secs(120);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rooms_bitrate_caps_its_publishers_encoders_by_remb() {
    let _guard = media_lock().await;
    let result: Result<()> = bounded("janus_bitrate", LIMIT, async {
        let gw = start_gateway(|_| {}).await?;
        let base = gw.base_url();
        let created = janus_sync(
            &base,
            json!({"request": "create", "room": 7474, "bitrate": 300000}),
        )
        .await?;
        ensure!(created["videoroom"] == "created", "{created}");
        // A WHIP publisher in the capped room and one in a plain room.
        let [capped, plain] =
            <[ClientResult; 2]>::try_from(whip_publishers(&base, &["7474", "7575"], 5.0).await?)
                .map_err(|_| anyhow::anyhow!("two publishers"))?;
        println!(
            "REMB in 5 s: capped room {} (last {} b/s, encoder target {}), plain room {}",
            capped.u64("remb_received"),
            capped.u64("remb_bitrate"),
            capped.json["encoder_target_bitrate"],
            plain.u64("remb_received")
        );
        // Every other second, as Janus does; aiortc's encoder takes the cap as its target.
        ensure!(
            capped.u64("remb_received") >= 2
                && capped.u64("remb_bitrate") == 300_000
                && capped.json["encoder_target_bitrate"] == 300_000,
            "{}",
            capped.json
        );
        ensure!(plain.u64("remb_received") == 0, "{}", plain.json);
        gw.shutdown().await;
        Ok(())
    })
    .await;
    if let Err(e) = result {
        panic!("a_rooms_bitrate_caps_its_publishers_encoders_by_remb: {e:#}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publishers_own_bitrate_replaces_the_rooms_cap_for_it_alone() {
    let _guard = media_lock().await;
    let result: Result<()> = bounded("janus_own_bitrate", LIMIT, async {
        let gw = start_gateway(|_| {}).await?;
        let base = gw.base_url();
        let created = janus_sync(
            &base,
            json!({"request": "create", "room": 7676, "bitrate": 300000}),
        )
        .await?;
        ensure!(created["videoroom"] == "created", "{created}");
        // Two Janus publishers in the capped room: one sets its own cap after 1 s (above
        // aiortc's 250 kb/s VP8 floor, so its encoder can take it).
        let own = janus_client(&base, 7676, "publish", 6.0, &["--bitrate-at", "1:260000"])?;
        let plain = janus_client(&base, 7676, "publish", 6.0, &["--display", "plain"])?;
        let own = own.finish().await?.expect_ok()?;
        let plain = plain.finish().await?.expect_ok()?;
        println!(
            "own cap: {} REMBs, last {} b/s, encoder target {}; room cap: {} REMBs, last {} b/s",
            own.u64("remb_received"),
            own.u64("remb_bitrate"),
            own.json["encoder_target_bitrate"],
            plain.u64("remb_received"),
            plain.u64("remb_bitrate")
        );
        ensure!(
            own.json["bitrate_set"]["configured"] == "ok",
            "configure {{bitrate}}: {}",
            own.json
        );
        ensure!(
            own.u64("remb_received") >= 2
                && own.u64("remb_bitrate") == 260_000
                && own.json["encoder_target_bitrate"] == 260_000,
            "{}",
            own.json
        );
        ensure!(
            plain.u64("remb_received") >= 2 && plain.u64("remb_bitrate") == 300_000,
            "{}",
            plain.json
        );
        gw.shutdown().await;
        Ok(())
    })
    .await;
    if let Err(e) = result {
        panic!("a_publishers_own_bitrate_replaces_the_rooms_cap_for_it_alone: {e:#}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publisher_picks_one_of_the_rooms_codecs() {
    let _guard = media_lock().await;
    let result: Result<()> = bounded("janus_codec_choice", LIMIT, async {
        let gw = start_gateway(|_| {}).await?;
        let base = gw.base_url();
        let created = janus_sync(
            &base,
            json!({"request": "create", "room": 6363, "videocodec": "vp8,h264"}),
        )
        .await?;
        ensure!(created["videoroom"] == "created", "{created}");
        // aiortc offers VP8 first and H.264 too; the room's first would be VP8.
        let publisher = janus_client(
            &base,
            6363,
            "publish",
            3.0,
            &[
                "--video-codec",
                "any",
                "--join-extra",
                r#"{"videocodec": "h264"}"#,
            ],
        )?
        .finish()
        .await?
        .expect_ok()?;
        let joined = &publisher.json["joined"];
        println!("videocodec h264 asked: joined {joined}");
        ensure!(joined["video_codec"] == "h264", "{joined}");
        gw.shutdown().await;
        Ok(())
    })
    .await;
    if let Err(e) = result {
        panic!("a_publisher_picks_one_of_the_rooms_codecs: {e:#}");
    }
}

/// The PLIs in `result["pli_at"]` at or after `from` and before `to` (monotonic seconds).
fn plis_between(result: &ClientResult, from: f64, to: f64) -> usize {
    result.json["pli_at"]
        .as_array()
        .map(|times| {
            times
                .iter()
                .filter_map(serde_json::Value::as_f64)
                .filter(|t| *t >= from && *t < to)
                .count()
        })
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publishers_configure_keyframe_sends_that_publisher_a_pli() {
    let _guard = media_lock().await;
    let result: Result<()> = bounded("janus_configure_keyframe", LIMIT, async {
        let gw = start_gateway(|_| {}).await?;
        let base = gw.base_url();
        let created = janus_sync(&base, json!({"request": "create", "room": 7878})).await?;
        ensure!(created["videoroom"] == "created", "{created}");
        // No subscribers and no fir_freq: a PLI comes only from the request.
        let asking = janus_client(&base, 7878, "publish", 5.0, &["--keyframe-at", "2.5"])?;
        let quiet = janus_client(&base, 7878, "publish", 5.0, &["--display", "quiet"])?;
        let asking = asking.finish().await?.expect_ok()?;
        let quiet = quiet.finish().await?.expect_ok()?;
        let asked_at = asking.f64("keyframe_asked_at").unwrap_or(f64::NAN);
        let (asking_end, quiet_end) = (
            asking.f64("ended_at").unwrap_or(f64::NAN),
            quiet.f64("ended_at").unwrap_or(f64::NAN),
        );
        println!(
            "configure {{keyframe}}: {}; PLIs of the asking publisher {}, of the other {}",
            asking.json["keyframe_asked"], asking.json["pli_at"], quiet.json["pli_at"]
        );
        ensure!(
            asking.json["keyframe_asked"]["configured"] == "ok",
            "{}",
            asking.json
        );
        ensure!(
            plis_between(&asking, asked_at, asked_at + 1.0) >= 1,
            "no PLI within 1 s of the request: {}",
            asking.json
        );
        // The second before the request, and the other publisher's last 2.5 s: none.
        ensure!(
            plis_between(&asking, asked_at - 1.0, asked_at) == 0 && asking_end - asked_at > 2.0,
            "{}",
            asking.json
        );
        ensure!(
            plis_between(&quiet, quiet_end - 2.5, quiet_end + 1.0) == 0,
            "the other publisher was asked too: {}",
            quiet.json
        );
        gw.shutdown().await;
        Ok(())
    })
    .await;
    if let Err(e) = result {
        panic!("a_publishers_configure_keyframe_sends_that_publisher_a_pli: {e:#}");
    }
}
