//! A publisher's media choices over Janus: a room's `bitrate` and a publisher's own
//! `configure {bitrate}` reach the encoders as REMB (aiortc's encoder takes the cap as its
//! target), a publisher picks one of the room's codecs (`videocodec`), and its
//! `configure {keyframe}` sends it a PLI, and a room's `opus_fec`/`opus_dtx` reach its Opus
//! encoder through the answer's fmtp.

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

/// A room's `opus_fec` (on unless turned off) and `opus_dtx` reach the publisher's Opus
/// encoder in the answer's fmtp, and `list` says which the room asks for.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rooms_opus_fec_and_dtx_are_asked_in_the_publishers_answer() {
    use crate::janus_api::Janus;
    let result: Result<()> = bounded("janus_opus_params", LIMIT, async {
        let gw = start_gateway(|_| {}).await?;
        let j = Janus {
            base: gw.base_url().to_owned(),
        };
        let (session, handle) = j.session_and_handle().await?;
        for create in [
            json!({"request": "create", "room": 8383}),
            json!({"request": "create", "room": 8484, "opus_fec": false, "opus_dtx": true}),
        ] {
            let (created, _) = j.message(session, handle, create, None).await?;
            ensure!(created["videoroom"] == "created", "{created}");
        }
        let offer = &gatehouse_e2e::offers().await?.whip[0];
        let mut opus_fmtp = Vec::new();
        for room in [8383, 8484] {
            let sdp = publisher_answer(&j, session, room, offer).await?;
            let pt = sdp
                .lines()
                .find_map(|l| {
                    let (pt, enc) = l.strip_prefix("a=rtpmap:")?.split_once(' ')?;
                    enc.to_ascii_lowercase().starts_with("opus/").then_some(pt)
                })
                .unwrap_or_default()
                .to_owned();
            let fmtp = sdp
                .lines()
                .find_map(|l| l.strip_prefix(&format!("a=fmtp:{pt} ")))
                .unwrap_or_default()
                .to_owned();
            opus_fmtp.push(fmtp);
        }
        println!("Opus fmtp in the answers (default room, then FEC off + DTX on): {opus_fmtp:?}");
        ensure!(
            opus_fmtp[0].contains("useinbandfec=1") && !opus_fmtp[0].contains("usedtx"),
            "default room: {}",
            opus_fmtp[0]
        );
        ensure!(
            opus_fmtp[1].contains("usedtx=1") && !opus_fmtp[1].contains("useinbandfec"),
            "fec off, dtx on: {}",
            opus_fmtp[1]
        );
        let (listed, _) = j
            .message(session, handle, json!({"request": "list"}), None)
            .await?;
        let entry = |room: u64| {
            listed["list"]
                .as_array()
                .and_then(|rooms| rooms.iter().find(|r| r["room"] == room).cloned())
                .unwrap_or_default()
        };
        ensure!(
            entry(8383)["opus_fec"] == true
                && entry(8484)["opus_fec"] == false
                && entry(8484)["opus_dtx"] == true,
            "{listed}"
        );
        gw.shutdown().await;
        Ok(())
    })
    .await;
    if let Err(e) = result {
        panic!("a_rooms_opus_fec_and_dtx_are_asked_in_the_publishers_answer: {e:#}");
    }
}

/// A new publisher of `room` on its own handle: the answer to `offer`.
async fn publisher_answer(
    j: &crate::janus_api::Janus,
    session: u64,
    room: u64,
    offer: &str,
) -> Result<String> {
    let publisher = j.attach(session).await?;
    let (joined, answer) = j
        .message(
            session,
            publisher,
            json!({"request": "joinandconfigure", "ptype": "publisher", "room": room}),
            Some(json!({"type": "offer", "sdp": offer})),
        )
        .await?;
    ensure!(joined["videoroom"] == "joined", "{joined}");
    Ok(answer["sdp"].as_str().unwrap_or_default().to_owned())
}

/// A room's `audiolevel_ext` and `transport_wide_cc_ext` (on unless turned off) decide whether
/// publishers negotiate those extensions; `list` says so, with `audio_active_packets` and
/// `bitrate_cap`. Switches the gateway does not implement are refused when turned on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rooms_extension_switches_decide_what_its_publishers_negotiate() {
    use crate::janus_api::Janus;
    const AUDIO_LEVEL_URI: &str = "urn:ietf:params:rtp-hdrext:ssrc-audio-level";
    const TWCC: &str = "transport-wide-cc-extensions";
    let result: Result<()> = bounded("janus_extension_switches", LIMIT, async {
        let gw = start_gateway(|_| {}).await?;
        let j = Janus {
            base: gw.base_url().to_owned(),
        };
        let (session, handle) = j.session_and_handle().await?;
        for create in [
            json!({"request": "create", "room": 8585}),
            json!({"request": "create", "room": 8686, "audiolevel_ext": false,
                   "transport_wide_cc_ext": false, "audio_active_packets": 50,
                   "bitrate": 256000, "bitrate_cap": true}),
        ] {
            let (created, _) = j.message(session, handle, create, None).await?;
            ensure!(created["videoroom"] == "created", "{created}");
        }
        // aiortc offers the audio level, not transport-wide CC: added as browsers offer it.
        let aiortc = &gatehouse_e2e::offers().await?.whip[0];
        ensure!(
            aiortc.contains(AUDIO_LEVEL_URI),
            "aiortc offers the audio level"
        );
        let offer = &aiortc.replacen(
            "a=rtcp-fb:97 nack\r\n",
            &format!(
                "a=rtcp-fb:97 nack\r\na=rtcp-fb:97 transport-cc\r\n\
                 a=extmap:5 http://www.ietf.org/id/draft-holmer-rmcat-{TWCC}-01\r\n"
            ),
            1,
        );
        ensure!(
            offer.contains(TWCC),
            "the offer has transport-wide CC: {offer}"
        );
        let default_answer = publisher_answer(&j, session, 8585, offer).await?;
        let off_answer = publisher_answer(&j, session, 8686, offer).await?;
        let extmaps = |sdp: &str| -> Vec<String> {
            sdp.lines()
                .filter(|l| l.starts_with("a=extmap:") || l.contains("transport-cc"))
                .map(str::to_owned)
                .collect()
        };
        println!(
            "extensions answered: default room {:?}; switched off {:?}",
            extmaps(&default_answer),
            extmaps(&off_answer)
        );
        ensure!(
            default_answer.contains(AUDIO_LEVEL_URI) && default_answer.contains(TWCC),
            "default room: {:?}",
            extmaps(&default_answer)
        );
        ensure!(
            !off_answer.contains(AUDIO_LEVEL_URI)
                && !off_answer.contains(TWCC)
                && !off_answer.contains("transport-cc"),
            "switched off: {:?}",
            extmaps(&off_answer)
        );
        let (listed, _) = j
            .message(session, handle, json!({"request": "list"}), None)
            .await?;
        let entry = listed["list"]
            .as_array()
            .and_then(|rooms| rooms.iter().find(|r| r["room"] == 8686).cloned())
            .unwrap_or_default();
        ensure!(
            entry["audiolevel_ext"] == false
                && entry["transport_wide_cc_ext"] == false
                && entry["audio_active_packets"] == 50
                && entry["bitrate_cap"] == true,
            "{entry}"
        );
        let (refused, _) = j
            .message(
                session,
                handle,
                json!({"request": "create", "room": 8787, "videoorient_ext": true}),
                None,
            )
            .await?;
        ensure!(
            refused["error_code"] == 430
                && refused["error"]
                    .as_str()
                    .is_some_and(|e| e.contains("videoorient_ext")),
            "{refused}"
        );
        gw.shutdown().await;
        Ok(())
    })
    .await;
    if let Err(e) = result {
        panic!("a_rooms_extension_switches_decide_what_its_publishers_negotiate: {e:#}");
    }
}

/// A room's `h264_profile`: of a publisher offering two H.264 profiles, the answer takes the
/// room's; a room whose profile the offer lacks refuses it with 437.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rooms_h264_profile_is_the_one_its_publishers_are_answered_with() {
    use crate::janus_api::Janus;
    let result: Result<()> = bounded("janus_h264_profile", LIMIT, async {
        let gw = start_gateway(|_| {}).await?;
        let j = Janus {
            base: gw.base_url().to_owned(),
        };
        let (session, handle) = j.session_and_handle().await?;
        for (room, profile) in [(8888, "42e01f"), (8989, "640032")] {
            let create = json!({"request": "create", "room": room, "videocodec": "h264",
                "h264_profile": profile});
            let (created, _) = j.message(session, handle, create, None).await?;
            ensure!(created["videoroom"] == "created", "{created}");
        }
        // aiortc's offer with its VP8 turned into two H.264 profiles.
        let aiortc = &gatehouse_e2e::offers().await?.whip[0];
        ensure!(aiortc.contains("a=rtpmap:97 VP8/90000\r\n"), "aiortc offers VP8 as 97");
        let offer = aiortc
            .replacen(" 97 98\r\n", " 97 98 99\r\n", 1)
            .replacen(
                "a=rtpmap:97 VP8/90000\r\n",
                "a=rtpmap:97 H264/90000\r\n\
                 a=fmtp:97 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f\r\n\
                 a=rtpmap:99 H264/90000\r\n\
                 a=fmtp:99 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f\r\n",
                1,
            );
        let answer = publisher_answer(&j, session, 8888, &offer).await?;
        let video: Vec<&str> = answer
            .lines()
            .filter(|l| l.starts_with("m=video") || l.contains("H264") || l.contains("profile"))
            .collect();
        println!("h264_profile 42e01f answered: {video:?}");
        ensure!(
            answer.contains("profile-level-id=42e01f") && !answer.contains("42001f"),
            "{video:?}"
        );
        let publisher = j.attach(session).await?;
        let (refused, _) = j
            .message(
                session,
                publisher,
                json!({"request": "joinandconfigure", "ptype": "publisher", "room": 8989}),
                Some(json!({"type": "offer", "sdp": offer})),
            )
            .await?;
        ensure!(refused["error_code"] == 437, "{refused}");
        gw.shutdown().await;
        Ok(())
    })
    .await;
    if let Err(e) = result {
        panic!("a_rooms_h264_profile_is_the_one_its_publishers_are_answered_with: {e:#}");
    }
}
