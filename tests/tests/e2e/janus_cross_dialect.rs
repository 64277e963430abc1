//! Janus on the one stream model: a WHIP publisher is a publisher of Janus room `N` (listed by
//! `listparticipants`, subscribed to like any other), and a Janus publisher plays over WHEP
//! and over Tencent LEB. A subscriber's `configure {video:false}` stops its video only, and
//! `moderate` mutes a publisher's video for every player (WHEP included). Media is aiortc everywhere, frames decoded by the players; Janus
//! signaling is `clients/janus_http.py` (janus.js's HTTP long-poll requests).

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use gatehouse_e2e::{
    Client, ClientResult, Play, Publish, bounded, http, media_lock, spawn_leb_player,
    start_gateway, wait_for_media,
};
use serde_json::{Value, json};

const LIMIT: Duration = Duration::from_secs(120);

pub(crate) fn janus_client(
    base: &str,
    room: u64,
    mode: &str,
    seconds: f64,
    extra: &[&str],
) -> Result<Client> {
    let mut args = vec![
        "--url".to_owned(),
        format!("{base}/janus"),
        "--room".into(),
        room.to_string(),
        format!("--{mode}"),
        "--seconds".into(),
        seconds.to_string(),
    ];
    args.extend(extra.iter().map(|a| (*a).to_owned()));
    Client::python(
        "janus_http.py",
        &args,
        Duration::from_secs_f64(seconds + 40.0),
    )
}

/// POSTs one Janus request to `base` + `path`: the JSON reply.
async fn janus_post(base: &str, path: &str, body: Value) -> Result<Value> {
    let reply = http()
        .post(format!("{base}{path}"))
        .body(body.to_string())
        .send()
        .await?;
    Ok(serde_json::from_str(&reply.text().await?)?)
}

/// A Janus session with one VideoRoom handle: `(session, handle)`.
async fn janus_handle(base: &str) -> Result<(u64, u64)> {
    let created = janus_post(
        base,
        "/janus",
        json!({"janus": "create", "transaction": "c"}),
    )
    .await?;
    let session = created["data"]["id"].as_u64().context("session")?;
    let attach = json!({"janus": "attach", "plugin": "janus.plugin.videoroom", "transaction": "a"});
    let attached = janus_post(base, &format!("/janus/{session}"), attach).await?;
    Ok((session, attached["data"]["id"].as_u64().context("handle")?))
}

/// One synchronous VideoRoom request in a fresh Janus session: its `plugindata.data`.
pub(crate) async fn janus_sync(base: &str, body: Value) -> Result<Value> {
    let (session, handle) = janus_handle(base).await?;
    let message = json!({"janus": "message", "transaction": "m", "body": body});
    let reply = janus_post(base, &format!("/janus/{session}/{handle}"), message).await?;
    Ok(reply["plugindata"]["data"].clone())
}

/// WHIP publishers nobody watches, one per room, all at once for `seconds`: what each saw.
pub(crate) async fn whip_publishers(
    base: &str,
    rooms: &[&str],
    seconds: f64,
) -> Result<Vec<ClientResult>> {
    let publishers = rooms
        .iter()
        .map(|room| {
            Publish {
                seconds,
                ..Default::default()
            }
            .spawn(&format!("{base}/v1/whip/{room}"))
        })
        .collect::<Result<Vec<_>>>()?;
    let mut results = Vec::new();
    for publisher in publishers {
        results.push(publisher.finish().await?.expect_ok()?);
    }
    Ok(results)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_whip_publisher_is_a_janus_publisher_and_a_janus_publisher_plays_over_whep_and_leb() {
    let _guard = media_lock().await;
    let result: Result<()> = bounded("janus_cross", LIMIT, async {
        let gw = start_gateway(|_| {}).await?;
        let base = gw.base_url();

        // WHIP → Janus: the subscriber finds the WHIP feed with listparticipants.
        let whip = Publish {
            seconds: 12.0,
            ..Default::default()
        }
        .spawn(&format!("{base}/v1/whip/5151"))?;
        wait_for_media(&gw, "5151", Duration::from_secs(10)).await?;
        let janus_player = janus_client(&base, 5151, "play", 3.0, &["--mute-video-for", "1.5"])?
            .finish()
            .await?;
        println!(
            "WHIP → Janus: participants {}, {} frames at {}x{}",
            janus_player.json["participants"],
            janus_player.u64("video_frames"),
            janus_player.json["width"],
            janus_player.json["height"]
        );
        let janus_player = janus_player.expect_ok()?;
        ensure!(janus_player.json["width"] == 640, "decoded size");
        // configure {video:false}: video stops while audio goes on; {video:true} resumes it.
        let muted = &janus_player.json["muted"];
        println!("configure video off/on: {muted}");
        ensure!(
            muted["video_growth"].as_u64().is_some_and(|g| g <= 2)
                && muted["audio_growth"].as_u64().is_some_and(|g| g >= 40)
                && muted["video_growth_after_unmute"]
                    .as_u64()
                    .is_some_and(|g| g >= 10),
            "configure video off/on: {muted}"
        );
        whip.finish().await?.expect_ok()?;

        // Janus → WHEP and LEB.
        let janus_publisher = janus_client(&base, 6161, "publish", 18.0, &[])?;
        wait_for_media(&gw, "6161", Duration::from_secs(15)).await?;
        let whep = Play {
            min_video_frames: 30,
            ..Play::for_seconds(3.0)
        }
        .spawn(&format!("{base}/v1/whep/6161"))?;
        let leb = spawn_leb_player(&base, "webrtc://play.example.com/live/6161", 3.0, 30, &[])?;
        let whep = whep.finish().await?.expect_ok()?;
        let leb = leb.finish().await?.expect_ok()?;
        println!(
            "Janus → WHEP {} frames, → LEB {} frames",
            whep.u64("video_frames"),
            leb.u64("video_frames")
        );
        // `moderate` mutes the publisher's video for everyone: a new player gets audio only;
        // unmuted, the next one decodes video again.
        let feed = janus_sync(&base, json!({"request": "listparticipants", "room": 6161}))
            .await?["participants"][0]["id"]
            .as_u64()
            .context("the Janus publisher's id")?;
        let mute = |on: bool| {
            janus_sync(
                &base,
                json!({"request": "moderate", "room": 6161, "id": feed,
                "mute_video": on}),
            )
        };
        ensure!(mute(true).await?["videoroom"] == "success", "moderate mute");
        let muted = Play::for_seconds(3.0)
            .spawn(&format!("{base}/v1/whep/6161"))?
            .finish()
            .await?
            .expect_ok()?;
        ensure!(
            mute(false).await?["videoroom"] == "success",
            "moderate unmute"
        );
        let unmuted = Play {
            min_video_frames: 30,
            ..Play::for_seconds(3.0)
        }
        .spawn(&format!("{base}/v1/whep/6161"))?
        .finish()
        .await?
        .expect_ok()?;
        println!(
            "moderate: muted player {} video / {} audio frames, unmuted player {} video frames",
            muted.u64("video_frames"),
            muted.u64("audio_frames"),
            unmuted.u64("video_frames")
        );
        ensure!(
            muted.u64("video_frames") == 0 && muted.u64("audio_frames") >= 50,
            "muted video: {}",
            muted.json
        );
        let publisher = janus_publisher.finish().await?.expect_ok()?;
        ensure!(
            publisher.json["joined"]["videoroom"] == "joined",
            "{}",
            publisher.json
        );
        gw.shutdown().await;
        Ok(())
    })
    .await;
    if let Err(e) = result {
        panic!(
            "a_whip_publisher_is_a_janus_publisher_and_a_janus_publisher_plays_over_whep_and_leb: {e:#}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rtp_forward_sends_a_publishers_video_as_plain_rtp_with_the_asked_ssrc_and_pt() {
    let _guard = media_lock().await;
    let result: Result<()> = bounded("janus_rtp_forward", LIMIT, async {
        let gw = start_gateway(|c| {
            let table = toml::from_str("admin_token = \"adm\"").unwrap_or_default();
            c.policies.config.insert("token-auth".into(), table);
        })
        .await?;
        let base = gw.base_url();
        let publisher = janus_client(&base, 8181, "publish", 10.0, &[])?;
        wait_for_media(&gw, "8181", Duration::from_secs(15)).await?;
        let feed = janus_sync(&base, json!({"request": "listparticipants", "room": 8181}))
            .await?["participants"][0]["id"]
            .as_u64()
            .context("the publisher's id")?;
        let sink = std::net::UdpSocket::bind("127.0.0.1:0")?;
        sink.set_read_timeout(Some(Duration::from_millis(200)))?;
        let port = sink.local_addr()?.port();
        let forward = |token: Option<&str>| {
            let mut body = json!({"request": "rtp_forward", "room": 8181, "publisher_id": feed,
                "host": "127.0.0.1", "streams": [{"mid": "0", "port": port, "pt": 100, "ssrc": 4242}]});
            if let Some(token) = token {
                body["token"] = json!(token);
            }
            janus_sync(&base, body)
        };
        let refused = forward(None).await?;
        ensure!(refused["error_code"] == 433, "rtp_forward without the admin token: {refused}");
        let started = forward(Some("adm")).await?;
        let stream = started["forwarders"][0]["stream_id"]
            .as_u64()
            .with_context(|| format!("rtp_forward: {started}"))?;

        // Plain RTP: version 2, the asked payload type and SSRC, readable VP8 payloads.
        let receive = |window: Duration| -> (usize, Vec<(u8, u32)>) {
            let deadline = std::time::Instant::now() + window;
            let (mut count, mut headers) = (0, Vec::new());
            let mut buf = [0u8; 2048];
            while std::time::Instant::now() < deadline {
                if let Ok(n) = sink.recv(&mut buf)
                    && n >= 12
                    && buf[0] >> 6 == 2
                {
                    count += 1;
                    let ssrc = u32::from_be_bytes([buf[8], buf[9], buf[10], buf[11]]);
                    headers.push((buf[1] & 0x7f, ssrc));
                }
            }
            (count, headers)
        };
        let (count, headers) = tokio::task::block_in_place(|| receive(Duration::from_secs(2)));
        let listed = janus_sync(&base, json!({"request": "listforwarders", "room": 8181})).await?;
        let stopped = janus_sync(&base, json!({"request": "stop_rtp_forward", "room": 8181,
            "publisher_id": feed, "stream_id": stream, "token": "adm"}))
        .await?;
        // What was sent before the stop may still be queued in the socket: drain it first.
        tokio::time::sleep(Duration::from_millis(300)).await;
        sink.set_nonblocking(true)?;
        let mut scratch = [0u8; 2048];
        while sink.recv(&mut scratch).is_ok() {}
        sink.set_nonblocking(false)?;
        let (after_stop, _) = tokio::task::block_in_place(|| receive(Duration::from_secs(1)));
        println!(
            "rtp_forward: {count} packets in 2 s (first {:?}), {after_stop} after stop; listed {listed}",
            headers.first()
        );
        ensure!(count >= 30, "only {count} forwarded packets in 2 s");
        ensure!(headers.iter().all(|h| *h == (100, 4242)), "pt/ssrc: {:?}", &headers[..3.min(headers.len())]);
        ensure!(
            listed["publishers"][0]["publisher_id"] == feed
                && listed["publishers"][0]["forwarders"][0]["port"] == port,
            "listforwarders: {listed}"
        );
        ensure!(stopped["videoroom"] == "stop_rtp_forward", "{stopped}");
        ensure!(after_stop == 0, "{after_stop} packets after stop_rtp_forward");
        publisher.finish().await?.expect_ok()?;
        gw.shutdown().await;
        Ok(())
    })
    .await;
    if let Err(e) = result {
        panic!(
            "rtp_forward_sends_a_publishers_video_as_plain_rtp_with_the_asked_ssrc_and_pt: {e:#}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_talking_publisher_is_announced_in_a_room_with_audiolevel_event() {
    let _guard = media_lock().await;
    let result: Result<()> = bounded("janus_talking", LIMIT, async {
        let gw = start_gateway(|_| {}).await?;
        let base = gw.base_url();
        let created = janus_sync(
            &base,
            json!({"request": "create", "room": 9191,
            "audiolevel_event": true, "audio_active_packets": 50}),
        )
        .await?;
        ensure!(created["videoroom"] == "created", "{created}");
        // A participant that only listens for the room's events (long poll).
        let (session, handle) = janus_handle(&base).await?;
        let join = json!({"janus": "message", "transaction": "j",
            "body": {"request": "join", "ptype": "publisher", "room": 9191, "display": "ear"}});
        janus_post(&base, &format!("/janus/{session}/{handle}"), join).await?;

        // aiortc sends RFC 6464 levels of its 440 Hz tone (about -15 dBov): it talks.
        let publisher = janus_client(&base, 9191, "publish", 8.0, &[])?;
        let deadline = std::time::Instant::now() + Duration::from_secs(12);
        let mut talking = None;
        while talking.is_none() && std::time::Instant::now() < deadline {
            let events: Value = serde_json::from_str(
                &http()
                    .get(format!("{base}/janus/{session}?maxev=10"))
                    .send()
                    .await?
                    .text()
                    .await?,
            )?;
            talking = events.as_array().into_iter().flatten().find_map(|e| {
                let data = &e["plugindata"]["data"];
                (data["videoroom"] == "talking").then(|| data.clone())
            });
        }
        let talking = talking.context("no talking event within 12 s")?;
        println!("talking event: {talking}");
        let listed =
            janus_sync(&base, json!({"request": "listparticipants", "room": 9191})).await?;
        let speaker = listed["participants"]
            .as_array()
            .and_then(|p| p.iter().find(|p| p["id"] == talking["id"]).cloned())
            .context("the talking participant")?;
        ensure!(
            speaker["talking"] == true && speaker["publisher"] == true,
            "{listed}"
        );
        ensure!(
            talking["audio-level-dBov-avg"]
                .as_u64()
                .is_some_and(|l| l <= 25),
            "{talking}"
        );
        publisher.finish().await?.expect_ok()?;
        gw.shutdown().await;
        Ok(())
    })
    .await;
    if let Err(e) = result {
        panic!("a_talking_publisher_is_announced_in_a_room_with_audiolevel_event: {e:#}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_room_with_fir_freq_asks_its_publishers_for_keyframes_periodically() {
    let _guard = media_lock().await;
    let result: Result<()> = bounded("janus_fir_freq", LIMIT, async {
        let gw = start_gateway(|_| {}).await?;
        let base = gw.base_url();
        let created = janus_sync(
            &base,
            json!({"request": "create", "room": 7272, "fir_freq": 1}),
        )
        .await?;
        ensure!(created["videoroom"] == "created", "{created}");
        // Two WHIP publishers nobody watches: only the room's fir_freq asks for keyframes.
        let [with_fir, without] =
            <[ClientResult; 2]>::try_from(whip_publishers(&base, &["7272", "7373"], 5.0).await?)
                .map_err(|_| anyhow::anyhow!("two publishers"))?;
        println!(
            "keyframe requests in 5 s: fir_freq 1 room {}, plain room {}",
            with_fir.u64("keyframe_requests"),
            without.u64("keyframe_requests")
        );
        ensure!(with_fir.u64("keyframe_requests") >= 3, "{}", with_fir.json);
        ensure!(without.u64("keyframe_requests") == 0, "{}", without.json);
        gw.shutdown().await;
        Ok(())
    })
    .await;
    if let Err(e) = result {
        panic!("a_room_with_fir_freq_asks_its_publishers_for_keyframes_periodically: {e:#}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rooms_videocodec_decides_what_a_janus_publisher_sends() {
    let _guard = media_lock().await;
    let result: Result<()> = bounded("janus_room_codec", LIMIT, async {
        let gw = start_gateway(|_| {}).await?;
        let base = gw.base_url();
        let created = janus_sync(
            &base,
            json!({"request": "create", "room": 6262,
            "videocodec": "h264"}),
        )
        .await?;
        ensure!(created["videoroom"] == "created", "{created}");
        // aiortc offers VP8 first and H.264 too: the room admits H.264 only.
        let publisher = janus_client(&base, 6262, "publish", 6.0, &["--video-codec", "any"])?;
        wait_for_media(&gw, "6262", Duration::from_secs(15)).await?;
        let player = Play {
            min_video_frames: 30,
            ..Play::for_seconds(3.0)
        }
        .spawn(&format!("{base}/v1/whep/6262"))?
        .finish()
        .await?
        .expect_ok()?;
        let publisher = publisher.finish().await?.expect_ok()?;
        let joined = &publisher.json["joined"];
        println!(
            "room videocodec h264: publisher's video_codec {}, WHEP player {} frames",
            joined["video_codec"],
            player.u64("video_frames")
        );
        ensure!(joined["video_codec"] == "h264", "{joined}");
        gw.shutdown().await;
        Ok(())
    })
    .await;
    if let Err(e) = result {
        panic!("a_rooms_videocodec_decides_what_a_janus_publisher_sends: {e:#}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rooms_record_flag_records_its_publishers_into_its_rec_dir() {
    use crate::records_contract::{finished_recordings, record_dir, recordings};
    let _guard = media_lock().await;
    let result: Result<()> = bounded("janus_record", LIMIT, async {
        // `[record]` off: only the rooms that ask are recorded, under its dir.
        let dir = record_dir("janus_record")?;
        let base_dir = dir.clone();
        let gw = start_gateway(move |c| c.record.dir = base_dir).await?;
        let base = gw.base_url();
        let escape = janus_sync(
            &base,
            json!({"request": "create", "room": 7671, "record": true, "rec_dir": "../out"}),
        )
        .await?;
        ensure!(escape["error_code"] == 430, "rec_dir outside: {escape}");
        for create in [
            json!({"request": "create", "room": 7676, "record": true, "rec_dir": "rooms/7676"}),
            json!({"request": "create", "room": 7677}),
            json!({"request": "create", "room": 7678}),
        ] {
            let created = janus_sync(&base, create).await?;
            ensure!(created["videoroom"] == "created", "{created}");
        }
        let enabled = janus_sync(
            &base,
            json!({"request": "enable_recording", "room": 7678, "record": true}),
        )
        .await?;
        ensure!(
            enabled["videoroom"] == "success",
            "enable_recording: {enabled}"
        );
        whip_publishers(&base, &["7676", "7677", "7678"], 3.0).await?;
        let wanted = [("ivf", "vp8"), ("ogg", "opus")];
        let own = finished_recordings(&dir.join("rooms/7676"), "7676", &wanted, 1.0).await?;
        let enabled = finished_recordings(&dir, "7678", &wanted, 1.0).await?;
        println!(
            "room recordings: 7676 {:?}, 7678 {:?}",
            own.iter()
                .map(|(f, p)| (f.file_name(), p.duration))
                .collect::<Vec<_>>(),
            enabled
                .iter()
                .map(|(f, p)| (f.file_name(), p.duration))
                .collect::<Vec<_>>()
        );
        ensure!(
            recordings(&dir, "7677")?.is_empty() && recordings(&dir, "7676")?.is_empty(),
            "a room recorded where it should not be"
        );
        gw.shutdown().await;
        let _ = std::fs::remove_dir_all(&dir);
        Ok(())
    })
    .await;
    if let Err(e) = result {
        panic!("a_rooms_record_flag_records_its_publishers_into_its_rec_dir: {e:#}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publishers_own_configure_turns_its_video_off_and_on_for_every_player() {
    let _guard = media_lock().await;
    let result: Result<()> = bounded("janus_publisher_configure", LIMIT, async {
        let gw = start_gateway(|_| {}).await?;
        let base = gw.base_url();
        // The Janus publisher sends `configure {video:false}` 2 s after connecting and
        // `{video:true}` at 9 s; WHEP players watch the room inside and after that window.
        let publisher = janus_client(&base, 5858, "publish", 14.0, &["--video-off", "2:9"])?;
        wait_for_media(&gw, "5858", Duration::from_secs(15)).await?;
        tokio::time::sleep(Duration::from_secs(3)).await;
        let during = Play::for_seconds(3.0)
            .spawn(&format!("{base}/v1/whep/5858"))?
            .finish()
            .await?
            .expect_ok()?;
        tokio::time::sleep(Duration::from_millis(2500)).await;
        let after = Play {
            min_video_frames: 20,
            ..Play::for_seconds(2.0)
        }
        .spawn(&format!("{base}/v1/whep/5858"))?
        .finish()
        .await?
        .expect_ok()?;
        let publisher = publisher.finish().await?.expect_ok()?;
        println!(
            "publisher's own configure: video off → player {} video / {} audio frames; on → {} video frames",
            during.u64("video_frames"),
            during.u64("audio_frames"),
            after.u64("video_frames")
        );
        ensure!(
            publisher.json["video_off"]["configured"] == "ok"
                && publisher.json["video_on"]["configured"] == "ok",
            "{}",
            publisher.json
        );
        ensure!(
            during.u64("video_frames") == 0 && during.u64("audio_frames") >= 50,
            "while the publisher's video is off: {}",
            during.json
        );
        gw.shutdown().await;
        Ok(())
    })
    .await;
    if let Err(e) = result {
        panic!("a_publishers_own_configure_turns_its_video_off_and_on_for_every_player: {e:#}");
    }
}
