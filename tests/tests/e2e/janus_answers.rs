//! What a Janus room asks of its publishers in the answer to their offer: Opus FEC and DTX
//! in the fmtp (`opus_fec`, `opus_dtx`), the header extensions it negotiates
//! (`audiolevel_ext`, `transport_wide_cc_ext`), and the one H.264 profile it takes
//! (`h264_profile`); `list` shows each room's choices.

use std::time::Duration;

use anyhow::{Result, ensure};
use gatehouse_e2e::{bounded, start_gateway};
use serde_json::{Value, json};

use crate::janus_api::Janus;

const LIMIT: Duration = Duration::from_secs(60);

/// A gateway with the rooms of `creates` made: it, its Janus API, and a session and handle.
async fn gateway_with_rooms(creates: Vec<Value>) -> Result<(gatehouse::Gateway, Janus, u64, u64)> {
    let gw = start_gateway(|_| {}).await?;
    let j = Janus {
        base: gw.base_url().to_owned(),
    };
    let (session, handle) = j.session_and_handle().await?;
    for create in creates {
        let (created, _) = j.message(session, handle, create, None).await?;
        ensure!(created["videoroom"] == "created", "{created}");
    }
    Ok((gw, j, session, handle))
}

/// A room's `opus_fec` (on unless turned off) and `opus_dtx` reach the publisher's Opus
/// encoder in the answer's fmtp, and `list` says which the room asks for.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rooms_opus_fec_and_dtx_are_asked_in_the_publishers_answer() {
    let result: Result<()> = bounded("janus_opus_params", LIMIT, async {
        let (gw, j, session, handle) = gateway_with_rooms(vec![
            json!({"request": "create", "room": 8383}),
            json!({"request": "create", "room": 8484, "opus_fec": false, "opus_dtx": true}),
        ])
        .await?;
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
async fn publisher_answer(j: &Janus, session: u64, room: u64, offer: &str) -> Result<String> {
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
    const AUDIO_LEVEL_URI: &str = "urn:ietf:params:rtp-hdrext:ssrc-audio-level";
    const TWCC: &str = "transport-wide-cc-extensions";
    let result: Result<()> = bounded("janus_extension_switches", LIMIT, async {
        let (gw, j, session, handle) = gateway_with_rooms(vec![
            json!({"request": "create", "room": 8585}),
            json!({"request": "create", "room": 8686, "audiolevel_ext": false,
                   "transport_wide_cc_ext": false, "audio_active_packets": 50,
                   "bitrate": 256000, "bitrate_cap": true}),
        ])
        .await?;
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
    let result: Result<()> = bounded("janus_h264_profile", LIMIT, async {
        let (gw, j, session, _) = gateway_with_rooms(
            [(8888, "42e01f"), (8989, "640032")]
                .into_iter()
                .map(|(room, profile)| {
                    json!({"request": "create", "room": room, "videocodec": "h264",
                           "h264_profile": profile})
                })
                .collect(),
        )
        .await?;
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
