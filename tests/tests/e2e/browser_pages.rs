//! Headless Chromium (Debian package, driven by playwright-core) on Gatehouse's own pages:
//! publish.html (fake camera + mic, WHIP) → Gatehouse → play.html (WHEP).

use std::time::Duration;

use anyhow::{Result, ensure};
use gatehouse_e2e::{
    Client, Play, bounded, browser_dir, browser_tools, http, media_lock, offers,
    spawn_browser_pages, spawn_browser_pages_with, spawn_leb_player, start_gateway,
};

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

/// Each video codec Chromium can send (publish.html?video=…) is forwarded and decoded: the
/// player negotiates the publisher's codec (VP8 is covered by the test above).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_h264_vp9_and_av1_publishers_are_decoded_by_chromium_players() {
    let name = "chromium_h264_vp9_and_av1_publishers_are_decoded_by_chromium_players";
    let _guard = media_lock().await;
    let body = async {
        let gw = start_gateway(|_| {}).await?;
        let base = gw.base_url();
        for codec in ["h264", "vp9", "av1"] {
            let stream = format!("codec-{codec}");
            let run = spawn_browser_pages_with(&base, &stream, 3.0, &["--video", codec])?
                .finish()
                .await?;
            let decoded = run.str("video_codec").unwrap_or("").to_ascii_lowercase();
            println!(
                "chromium {codec}: decoded codec={decoded} frames={} first_frame_ms={}",
                run.u64("frames_decoded"),
                run.json["first_frame_ms"]
            );
            ensure!(
                decoded == codec,
                "player decoded {decoded:?}: {}",
                run.describe()
            );
            ensure!(
                run.u64("frames_decoded") >= 20,
                "{codec}: play.html decoded {} frames: {}",
                run.u64("frames_decoded"),
                run.describe()
            );
        }
        gw.shutdown().await;
        Ok::<_, anyhow::Error>(())
    };
    if let Err(e) = bounded(name, Duration::from_secs(150), body).await {
        panic!("{name}: {e:#}");
    }
}

/// ICE restart (RFC 9725 §4.3.2) from the pages themselves (`window.gatehouse.restartIce()`):
/// first the player's, then the publisher's. After each, the browser's selected candidate pair
/// must be on the server's NEW ICE credentials (remote candidate ufrag == new ETag unquoted) and
/// the player must keep decoding.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_ice_restart_keeps_media_flowing_on_the_new_ice_session() {
    let name = "chromium_ice_restart_keeps_media_flowing_on_the_new_ice_session";
    let _guard = media_lock().await;
    let body = async {
        let gw = start_gateway(|_| {}).await?;
        let base = gw.base_url();
        let (node, script) = browser_tools()?;
        // --seconds bounds the wait for the first 20 decoded frames; each restartIce() call is
        // bounded by the driver (10 s) and followed by 3 s of watching.
        let args: Vec<String> = vec![
            script.display().to_string(),
            "--base".into(),
            base.clone(),
            "--stream".into(),
            "browser-ice-restart".into(),
            "--seconds".into(),
            "15".into(),
            "--ice-restart".into(),
            "--timeout".into(),
            "75".into(),
        ];
        let run = Client::spawn(
            "run_pages.mjs --ice-restart",
            &node,
            &args,
            &browser_dir(),
            Duration::from_secs(85),
        )?
        .finish()
        .await?;
        let j = &run.json;
        let r = &j["restart"];
        println!(
            "chromium ICE restart: frames at restart={} +3s after player restart={} \
             +3s after publisher restart={}; player etag {} -> {} (selected remote ufrag {} -> {}, \
             switched after {} ms); publisher etag {} -> {} (selected remote ufrag {} -> {}, \
             switched after {} ms); state after={} publisher state after={}; \
             restart errors={} page errors={}",
            r["frames_at_restart"],
            r["frames_3s_after_player_restart"],
            r["frames_3s_after_publisher_restart"],
            r["player_etag_before"],
            r["player_etag_after"],
            r["player_selected_remote_ufrag_before"],
            r["player_selected_remote_ufrag"],
            r["player_switch_ms"],
            r["publisher_etag_before"],
            r["publisher_etag_after"],
            r["publisher_selected_remote_ufrag_before"],
            r["publisher_selected_remote_ufrag"],
            r["publisher_switch_ms"],
            r["state_after"],
            r["publisher_state_after"],
            r["errors"],
            j["errors"],
        );
        println!(
            "  player frames after player restart [ms, frames]: {}\n  \
             player frames after publisher restart [ms, frames]: {}",
            r["player_timeline"], r["publisher_timeline"]
        );
        ensure!(!run.timed_out, "driver timed out: {}", run.describe());
        ensure!(r.is_object(), "no restart report: {}", run.describe());
        ensure!(
            r["errors"].as_array().is_some_and(Vec::is_empty),
            "restart errors: {}",
            run.describe()
        );

        let s = |k: &str| r[k].as_str().unwrap_or("");
        let quoted = |t: &str| t.len() > 2 && t.starts_with('"') && t.ends_with('"');
        let unquote = |t: &str| t.trim_matches('"').to_string();
        for who in ["player", "publisher"] {
            let (before, after) = (
                s(&format!("{who}_etag_before")),
                s(&format!("{who}_etag_after")),
            );
            ensure!(
                quoted(after),
                "{who} restartIce() resolved to {after:?}, expected a non-empty quoted ETag: {}",
                run.describe()
            );
            ensure!(
                quoted(before) && before != after,
                "{who} ETag did not change on ICE restart ({before} -> {after}): {}",
                run.describe()
            );
            let selected = s(&format!("{who}_selected_remote_ufrag"));
            ensure!(
                selected == unquote(after),
                "{who}: the selected candidate pair's remote ufrag is {selected:?} 3 s after the \
                 restart, expected the server's new ufrag {:?} (ETag {after}): {}",
                unquote(after),
                run.describe()
            );
        }
        ensure!(
            s("player_etag_after") != s("publisher_etag_after"),
            "player and publisher got the same ETag: {}",
            run.describe()
        );

        let n = |k: &str| r[k].as_u64().unwrap_or(0);
        let (at, after_player, after_publisher) = (
            n("frames_at_restart"),
            n("frames_3s_after_player_restart"),
            n("frames_3s_after_publisher_restart"),
        );
        ensure!(
            at > 20,
            "player decoded {at} frames before the restart: {}",
            run.describe()
        );
        // A restart that breaks the path stalls the player (a few frames at most); a working
        // one keeps decoding at whatever rate the box allows (20 fps idle, 10 fps seen under a
        // loaded test run). So: at least 5 fps over each 3 s window, and still decoding in its
        // last second (the new ICE path carries the media, not leftovers from the old one).
        let still_decoding = |timeline: &str| {
            let samples: Vec<(u64, u64)> = r[timeline]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|p| Some((p[0].as_u64()?, p[1].as_u64()?)))
                        .collect()
                })
                .unwrap_or_default();
            let last = samples.last().copied().unwrap_or((0, 0));
            let second_before = samples
                .iter()
                .rev()
                .find(|(ms, _)| *ms + 900 <= last.0)
                .copied()
                .unwrap_or(last);
            last.1 >= second_before.1 + 3
        };
        ensure!(
            after_player >= at + 15 && still_decoding("player_timeline"),
            "player decoded {} frames in the 3 s after its ICE restart, expected >= 15 and \
             still decoding at the end: {}",
            after_player.saturating_sub(at),
            run.describe()
        );
        ensure!(
            after_publisher >= after_player + 15 && still_decoding("publisher_timeline"),
            "player decoded {} frames in the 3 s after the publisher's ICE restart, \
             expected >= 15 and still decoding at the end: {}",
            after_publisher.saturating_sub(after_player),
            run.describe()
        );
        for k in [
            "state_after_player_restart",
            "state_after",
            "publisher_state_after",
        ] {
            ensure!(
                s(k) == "connected",
                "{k} is {:?}, expected \"connected\": {}",
                s(k),
                run.describe()
            );
        }
        // Any console error (a 412 from a trickle PATCH racing the restart included), page
        // exception or window.gatehouse.error fails the test.
        let errors: Vec<&str> = j["errors"]
            .as_array()
            .map(|a| a.iter().filter_map(|e| e.as_str()).collect())
            .unwrap_or_default();
        ensure!(
            errors.is_empty(),
            "page errors {errors:?}: {}",
            run.describe()
        );
        ensure!(run.ok(), "driver reported failure: {}", run.describe());
        gw.shutdown().await;
        Ok::<_, anyhow::Error>(())
    };
    if let Err(e) = bounded(name, Duration::from_secs(150), body).await {
        panic!("{name}: {e:#}");
    }
}

/// The layer list (`GET …/layer`) as seen by any subscriber session of `stream`.
async fn listed_layers(base: &str, stream: &str) -> Result<String> {
    let streams = http()
        .get(format!("{base}/api/streams/{stream}"))
        .send()
        .await?
        .text()
        .await?;
    let listed: serde_json::Value = serde_json::from_str(&streams).unwrap_or_default();
    let session = listed
        .pointer("/subscribe/sessions")
        .and_then(|s| s.as_array())
        .and_then(|s| s.iter().find_map(|s| s["id"].as_str().map(str::to_owned)));
    Ok(match session {
        Some(id) => {
            http()
                .get(format!("{base}/session/{stream}/{id}/layer"))
                .send()
                .await?
                .text()
                .await?
        }
        None => String::new(),
    })
}

/// A Chromium publisher sends simulcast layers (q, h, f of 1280x720; f once its bandwidth
/// estimate allows); an aiortc player starts on the best one sent, the layers are listed, and
/// it switches to `q` through Live777's layer extension: the decoded width drops to 320 and
/// frames keep coming. LEB's tabrctl switches a pulled session the same way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulcast_subscriber_switches_layers_through_the_layer_extension() {
    let _guard = media_lock().await;
    let result: Result<()> = bounded("simulcast", Duration::from_secs(90), async {
        let gw = start_gateway(|_| {}).await?;
        let base = gw.base_url();
        let pages = spawn_browser_pages_with(&base, "layers", 24.0, &["--simulcast"])?;
        // Chromium opens its layers as its bandwidth estimate grows (q first): wait, bounded,
        // until it sends at least q and h, as listed to the play page's session.
        let deadline = std::time::Instant::now() + Duration::from_secs(15);
        let layers = loop {
            let layers = listed_layers(&base, "layers").await?;
            if ["q", "h"]
                .iter()
                .all(|r| layers.contains(&format!("\"encodingId\":\"{r}\"")))
                || std::time::Instant::now() > deadline
            {
                break layers;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        };
        let player = Play {
            min_video_frames: 20,
            switch_layer: Some("q@2".into()),
            ..Play::for_seconds(8.0)
        }
        .spawn(&format!("{base}/whep/layers"))?;
        // Alongside it, LEB's ABR call (tabrctl) switches a pulled player to the low layer.
        let leb_player = spawn_leb_player(
            &base,
            "webrtc://d/live/layers",
            8.0,
            20,
            &["--tabrctl", "q@2"],
        )?;
        let player = player.finish().await?.expect_ok()?;
        let leb_player = leb_player.finish().await?.expect_ok()?;
        // A WHEP answer points at the layer extension while the publisher sends simulcast.
        let whep =
            gatehouse_e2e::post_sdp(&format!("{base}/whep/layers"), &offers().await?.whep[0])
                .await?;
        let links = gatehouse_e2e::header(&whep, "link");
        ensure!(
            whep.status() == 201
                && links.contains("/layer>; rel=\"urn:ietf:params:whep:ext:core:layer\""),
            "WHEP links: {links}"
        );
        // LEB's ABR call refuses a layer the publisher does not send (403, "not allowed").
        let viewer = offers().await?.whep[0].clone();
        let leb = |endpoint: &str, body: serde_json::Value| {
            http()
                .post(format!("{base}/webrtc/v1/{endpoint}"))
                .body(body.to_string())
                .send()
        };
        let pulled: serde_json::Value = serde_json::from_str(
            &leb(
                "pullstream",
                serde_json::json!({"streamurl": "webrtc://d/live/layers", "sessionid": "s",
                    "clientinfo": "t", "localsdp": {"type": "offer", "sdp": viewer}}),
            )
            .await?
            .text()
            .await?,
        )?;
        let svrsig = pulled["svrsig"].as_str().unwrap_or_default().to_owned();
        let mut abr = Vec::new();
        for name in ["x"] {
            let reply: serde_json::Value = serde_json::from_str(
                &leb(
                    "tabrctl",
                    serde_json::json!({"svrsig": svrsig, "seq": 1, "bitrate_name": name}),
                )
                .await?
                .text()
                .await?,
            )?;
            abr.push(reply["errcode"].as_u64());
        }
        let _ = pages.finish().await;
        gw.shutdown().await;
        ensure!(abr == [Some(403)], "tabrctl x: {abr:?} (pull {pulled})");
        println!(
            "LEB tabrctl: width {} before, {} after; {} frames",
            leb_player.u64("width_before_switch"),
            leb_player.u64("width"),
            leb_player.u64("video_frames")
        );
        ensure!(
            leb_player.json["tabrctl"]["errcode"] == 0
                && leb_player.json["tabrctl"]["seq"] == 7
                && [640, 1280].contains(&leb_player.u64("width_before_switch"))
                && leb_player.u64("width") == 320
                && leb_player.u64("video_frames") > leb_player.u64("frames_before_switch") + 10,
            "{}",
            leb_player.describe()
        );
        println!(
            "simulcast: layers {layers}; width {} before the switch, {} after; {} frames",
            player.u64("width_before_switch"),
            player.u64("width"),
            player.u64("video_frames")
        );
        // Chromium sends q and h at least (f too once its bandwidth estimate allows).
        ensure!(
            ["q", "h"]
                .iter()
                .all(|r| layers.contains(&format!("\"encodingId\":\"{r}\""))),
            "layers: {layers}"
        );
        ensure!(
            player.u64("switch_status") == 200
                && [640, 1280].contains(&player.u64("width_before_switch"))
                && player.u64("width") == 320
                && player.u64("video_frames") > player.u64("frames_before_switch") + 10,
            "{}",
            player.describe()
        );
        Ok(())
    })
    .await;
    if let Err(e) = result {
        panic!("simulcast_subscriber_switches_layers_through_the_layer_extension: {e:#}");
    }
}
