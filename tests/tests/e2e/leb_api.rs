//! Tencent LEB pull signaling (specs/dialects.md §4): an aiortc LEB player plays a stream
//! published over WHIP, reports every 2 s (through the quality policy into `/metrics` and the
//! JSON-lines log) and stopstream frees its session; mistakes, forged svrsigs and txSecret get
//! non-zero errcodes with HTTP 200; SRS's JSON form plays the same streams.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use gatehouse_e2e::{
    Publish, bounded, http, media_lock, offers, spawn_leb_player, spawn_txliveplayer, start_gateway,
};
use serde_json::{Value, json};

const LIMIT: Duration = Duration::from_secs(90);

async fn run(name: &str, body: impl std::future::Future<Output = Result<()>>) {
    if let Err(e) = bounded(name, LIMIT, body).await {
        panic!("{name}: {e:#}");
    }
}

/// `(status, ACAO header, JSON)` of a LEB call, sent as the web SDK sends it.
async fn leb(base: &str, endpoint: &str, body: &Value) -> Result<(u16, String, Value)> {
    let response = http()
        .post(format!("{base}/webrtc/v1/{endpoint}"))
        .header("Content-Type", "text/plain;charset=utf-8")
        .body(body.to_string())
        .send()
        .await?;
    let status = response.status().as_u16();
    let cors = response
        .headers()
        .get("access-control-allow-origin")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let text = response.text().await?;
    Ok((
        status,
        cors,
        serde_json::from_str(&text).unwrap_or(json!({ "raw": text })),
    ))
}

fn report_log(name: &str) -> Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("gatehouse-leb-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    Ok(dir.join("reports.jsonl"))
}

/// Subscribers of `stream` per Live777's listing (0 once the stream is gone).
async fn subscribers(base: &str, stream: &str) -> Result<usize> {
    // go-live's room list: open whatever tokens are set (Live777's listing needs the admin).
    let text = http()
        .get(format!("{base}/api/rooms"))
        .send()
        .await?
        .text()
        .await?;
    let rooms: Value = serde_json::from_str(&text).with_context(|| format!("rooms: {text:?}"))?;
    Ok(rooms
        .as_array()
        .and_then(|rooms| rooms.iter().find(|r| r["name"] == stream))
        .and_then(|r| r["subscribers"].as_u64())
        .map_or(0, |n| n as usize))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leb_player_plays_a_whip_stream_reports_and_stopstream_frees_its_session() {
    let _guard = media_lock().await;
    run("leb_play", async {
        let log = report_log("play")?;
        let log_path = log.clone();
        let gw = start_gateway(move |c| c.leb.report_log = Some(log_path)).await?;
        let base = gw.base_url();
        let publisher = Publish {
            seconds: 9.0,
            ..Default::default()
        }
        .spawn(&format!("{base}/v1/whip/cam"))?;
        tokio::time::sleep(Duration::from_millis(1000)).await;
        let player = spawn_leb_player(&base, "webrtc://play.example.com/live/cam", 5.0, 10, &[])?
            .finish()
            .await?
            .expect_ok()?;
        println!(
            "leb: decoded {} frames, reports {}, stop {}",
            player.u64("video_frames"),
            player.json["reports"],
            player.json["stop"]
        );
        let reports = &player.json["reports"];
        let quality = reports["reportquality"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        ensure!(
            quality.len() >= 2 && quality.iter().all(|c| c == 0),
            "reportquality replies: {reports}"
        );
        ensure!(
            reports["reporticestate"] == json!([0]) && reports["firstframeusetime"] == json!([0]),
            "report replies: {reports}"
        );
        ensure!(
            player.json["stop"] == json!({"errcode": 0, "errmsg": "stop stream succ!"}),
            "stopstream: {}",
            player.json["stop"]
        );
        // stopstream ended the session at once (no orphan flow until consent expires).
        let deadline = Instant::now() + Duration::from_secs(2);
        while subscribers(&base, "cam").await? != 0 {
            if Instant::now() > deadline {
                bail!("the LEB session outlived stopstream");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // The reports went through the quality policy into the metrics and the log.
        let metrics = http()
            .get(format!("{base}/metrics"))
            .send()
            .await?
            .text()
            .await?;
        for wanted in [
            "leb_loss_percent{kind=\"video\",stream=\"cam\"}",
            "leb_video_fps{kind=\"decode\",stream=\"cam\"}",
            "leb_first_frame_ms_count{stream=\"cam\"} 1",
            "leb_reports_total{stream=\"cam\",type=\"quality\",result=\"accepted\"}",
        ] {
            ensure!(
                metrics.lines().any(|l| l.starts_with(wanted)),
                "no `{wanted}` in /metrics"
            );
        }
        let lines = std::fs::read_to_string(&log).context("report log")?;
        let logged: Vec<Value> = lines
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        let expected = quality.len() + 2;
        ensure!(
            logged.len() == expected && logged.iter().all(|r| r["stream"] == "cam"),
            "{} logged reports, {expected} accepted: {lines}",
            logged.len()
        );
        publisher.finish().await?.expect_ok()?;
        gw.shutdown().await;
        let _ = std::fs::remove_dir_all(log.parent().unwrap_or(&log));
        Ok(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leb_mistakes_get_http_200_and_their_errcodes() {
    run("leb_mistakes", async {
        let key = "0123456789abcdef";
        let gw = start_gateway(|c| {
            c.policies.config.insert(
                "leb-svrsig".into(),
                toml::from_str(&format!("tx_key.\"secure.example.com\" = \"{key}\""))
                    .unwrap_or_default(),
            );
        })
        .await?;
        let base = gw.base_url();
        let viewer = offers().await?.whep[0].clone();
        let pull = |url: &str, clientip: &str| {
            json!({"streamurl": url, "sessionid": "s1", "clientinfo": "test",
                   "localsdp": {"type": "offer", "sdp": viewer}, "clientip": clientip})
        };
        let errcode = |v: &Value| v["errcode"].as_u64().unwrap_or(u64::MAX);

        let response = http()
            .post(format!("{base}/webrtc/v1/pullstream"))
            .body("{not json")
            .send()
            .await?;
        ensure!(response.status() == 200, "bad JSON status {}", response.status());
        let cases = [
            (pull("rtmp://d/live/cam", ""), 400_002),
            (pull("webrtc://d/live/cam", "300.1.2.3"), 100_011),
            (json!({"streamurl": "webrtc://d/live/cam"}), 400_001),
            (pull("webrtc://secure.example.com/live/cam", ""), 403_002),
        ];
        for (body, expected) in &cases {
            let (status, cors, reply) = leb(&base, "pullstream", body).await?;
            ensure!(
                status == 200 && cors == "*" && errcode(&reply) == *expected,
                "{body} -> {status} {reply}"
            );
        }
        // txSecret = md5(key + stream + txTime): txTime in either case is accepted; a wrong
        // key or a past txTime is refused.
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_secs();
        let signed_url = |key: &str, tx_time: String| {
            let secret = gatehouse_sdk::crypto::md5_hex(format!("{key}cam{tx_time}").as_bytes());
            format!("webrtc://secure.example.com/live/cam?txSecret={secret}&txTime={tx_time}")
        };
        for (url, expected) in [
            (signed_url("wrong-key", format!("{:X}", now + 600)), 403_002),
            (signed_url(key, format!("{:X}", now - 5)), 403_002),
            (signed_url(key, format!("{:x}", now + 600)), 0),
        ] {
            let (_, _, reply) = leb(&base, "pullstream", &pull(&url, "")).await?;
            ensure!(errcode(&reply) == expected, "{url}: {reply}");
        }
        let signed = signed_url(key, format!("{:X}", now + 600));
        let (_, _, reply) = leb(&base, "pullstream", &pull(&signed, "10.0.0.1")).await?;
        ensure!(errcode(&reply) == 0, "signed pull: {reply}");
        let svrsig = reply["svrsig"].as_str().unwrap_or_default().to_owned();
        ensure!(!svrsig.is_empty() && reply["remotesdp"]["type"] == "answer", "{reply}");
        ensure!(subscribers(&base, "cam").await? == 2, "the pulls opened no sessions");

        // A svrsig names its stream: presented for another one, it is refused.
        let other = json!({"streamurl": "webrtc://d/live/other", "svrsig": svrsig,
                           "iceConnectionState": "connected"});
        let (_, _, reply) = leb(&base, "reporticestate", &other).await?;
        ensure!(errcode(&reply) == 403_003, "svrsig of another stream: {reply}");
        // A forged svrsig changes nothing; the genuine one works, once.
        let forged = format!("{svrsig}x");
        for endpoint in ["stopstream", "reportquality", "reporticestate", "firstframeusetime"] {
            let body = json!({"streamurl": signed, "svrsig": forged, "iceConnectionState": "connected",
                              "starttime": "1", "firstplaytime": "2"});
            let (status, _, reply) = leb(&base, endpoint, &body).await?;
            ensure!(status == 200 && errcode(&reply) == 403_003, "{endpoint}: {reply}");
        }
        ensure!(subscribers(&base, "cam").await? == 2, "forged stop ended a session");
        let (_, _, reply) = leb(&base, "tabrctl", &json!({"svrsig": svrsig, "seq": 7, "bitrate_name": "hd"})).await?;
        ensure!(errcode(&reply) == 403 && reply["seq"] == 7, "tabrctl: {reply}");
        let (_, _, reply) = leb(&base, "firstframeusetime", &json!({"svrsig": svrsig, "starttime": "5", "firstplaytime": "4"})).await?;
        ensure!(errcode(&reply) == 400_001, "first frame before start: {reply}");
        let (_, _, reply) = leb(&base, "stopstream", &json!({"streamurl": signed, "svrsig": svrsig})).await?;
        ensure!(reply == json!({"errcode": 0, "errmsg": "stop stream succ!"}), "stop: {reply}");
        ensure!(subscribers(&base, "cam").await? == 1, "stopstream left its session");

        // SRS's JSON form: an error is HTTP 200 {"code":400}; a play offer is answered.
        let srs = |body: Value| {
            http()
                .post(format!("{base}/rtc/v1/play/"))
                .header("Content-Type", "application/json")
                .body(body.to_string())
                .send()
        };
        let text = srs(json!({"sdp": "x", "streamurl": "webrtc://h/live/cam"})).await?.text().await?;
        let reply: Value = serde_json::from_str(&text).with_context(|| format!("SRS: {text:?}"))?;
        ensure!(reply == json!({"code": 400}), "SRS bad offer: {reply}");
        let text = srs(json!({"sdp": viewer, "streamurl": "webrtc://h:1985/live/cam"})).await?.text().await?;
        let reply: Value = serde_json::from_str(&text).with_context(|| format!("SRS: {text:?}"))?;
        ensure!(
            reply["code"] == 0 && reply["sdp"].as_str().is_some_and(|s| s.starts_with("v=0")),
            "SRS play: {reply}"
        );
        gw.shutdown().await;
        Ok(())
    })
    .await;
}

/// Tencent's own web player plays a WHIP stream through pullstream; `stopPlay()` sends
/// stopstream and the session ends at once. A page closed without stopstream is reaped by ICE
/// consent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn txliveplayer_plays_a_whip_stream_and_its_sessions_end_with_stop_or_consent() {
    let _guard = media_lock().await;
    run("txliveplayer", async {
        let gw = start_gateway(|c| c.webrtc.consent_timeout_secs = 5).await?;
        let base = gw.base_url();
        let publisher = Publish {
            seconds: 20.0,
            ..Default::default()
        }
        .spawn(&format!("{base}/v1/whip/tx"))?;
        tokio::time::sleep(Duration::from_millis(1000)).await;

        let stopped = spawn_txliveplayer(&base, "tx", 6.0, true)?
            .finish()
            .await?
            .expect_ok()?;
        println!(
            "TXLivePlayer: {} frames, first at {:?} ms, calls {}",
            stopped.u64("frames"),
            stopped.f64("first_frame_ms"),
            stopped.json["calls"]
        );
        ensure!(stopped.u64("frames") >= 10, "{}", stopped.describe());
        let calls = stopped.json["calls"].to_string();
        ensure!(
            calls.contains("[\"pullstream\",200,0]") && calls.contains("[\"stopstream\",200,0]"),
            "signaling calls: {calls}"
        );
        // Counted while the page was still open: stopstream itself ended the session.
        ensure!(
            stopped.u64("subscribers_while_playing") == 1
                && stopped.json["subscribers_after_stop"] == 0,
            "stopPlay left the session: {}",
            stopped.describe()
        );

        let closed = spawn_txliveplayer(&base, "tx", 4.0, false)?
            .finish()
            .await?
            .expect_ok()?;
        ensure!(closed.u64("frames") >= 10, "{}", closed.describe());
        // No stopstream: the session outlives the page, until consent (5 s here) runs out.
        ensure!(
            closed.json["subscribers_after_close"] == 1,
            "the closed page's session ended with the page, not by consent: {}",
            closed.describe()
        );
        let deadline = Instant::now() + Duration::from_secs(10);
        while subscribers(&base, "tx").await? != 0 {
            if Instant::now() > deadline {
                bail!("a closed page's session was not reaped by consent");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let _ = publisher.finish().await;
        gw.shutdown().await;
        Ok(())
    })
    .await;
}

/// A svrsig past its lifetime (`svrsig_ttl_secs`) is refused like a forged one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_svrsig_is_refused() {
    run("leb_svrsig_expiry", async {
        let gw = start_gateway(|c| {
            c.policies.config.insert(
                "leb-svrsig".into(),
                toml::from_str("svrsig_key = \"k\"\nsvrsig_ttl_secs = 1").unwrap_or_default(),
            );
        })
        .await?;
        let base = gw.base_url();
        let viewer = offers().await?.whep[0].clone();
        let url = "webrtc://d/live/brief";
        let body = json!({"streamurl": url, "sessionid": "s", "clientinfo": "t",
                          "localsdp": {"type": "offer", "sdp": viewer}});
        let (_, _, reply) = leb(&base, "pullstream", &body).await?;
        let svrsig = reply["svrsig"].as_str().unwrap_or_default().to_owned();
        ensure!(reply["errcode"] == 0 && !svrsig.is_empty(), "pull: {reply}");
        tokio::time::sleep(Duration::from_millis(2100)).await;
        let (_, _, reply) = leb(
            &base,
            "stopstream",
            &json!({"streamurl": url, "svrsig": svrsig}),
        )
        .await?;
        ensure!(reply["errcode"] == 403_003, "expired svrsig: {reply}");
        ensure!(
            subscribers(&base, "brief").await? == 1,
            "an expired svrsig ended the session"
        );
        gw.shutdown().await;
        Ok(())
    })
    .await;
}

/// The remaining error paths, each with its errcode and HTTP 200: a stream the strategy does
/// not create (404001), a policy refusal (401001), signing switched off (503001, fail closed);
/// and SRS's publish form. (A full report queue, 429001, is proven in `ops::quality`'s tests.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_of_strategy_and_policy_have_their_errcodes_and_srs_publishes() {
    run("leb_refusals", async {
        let viewer = offers().await?.whep[0].clone();
        let publish_offer = offers().await?.whip[0].clone();
        let pull = |stream: &str| {
            json!({"streamurl": format!("webrtc://d/live/{stream}"), "sessionid": "s",
                   "clientinfo": "t", "localsdp": {"type": "offer", "sdp": viewer}})
        };
        let gw = start_gateway(|c| {
            c.strategy.auto_create_whep = false;
        })
        .await?;
        let base = gw.base_url();
        let (status, _, reply) = leb(&base, "pullstream", &pull("nobody")).await?;
        ensure!(status == 200 && reply["errcode"] == 404_001, "{reply}");
        // SRS's publish form creates the stream; then a pull of it succeeds.
        let srs: Value = serde_json::from_str(
            &http()
                .post(format!("{base}/rtc/v1/publish/"))
                .body(
                    json!({"sdp": publish_offer, "streamurl": "webrtc://h/live/made"}).to_string(),
                )
                .send()
                .await?
                .text()
                .await?,
        )?;
        ensure!(
            srs["code"] == 0 && srs["sessionid"].is_string(),
            "SRS publish: {srs}"
        );
        let (_, _, reply) = leb(&base, "pullstream", &pull("made")).await?;
        let svrsig = reply["svrsig"].as_str().unwrap_or_default().to_owned();
        ensure!(reply["errcode"] == 0, "{reply}");
        let report = json!({"streamurl": "webrtc://d/live/made", "svrsig": svrsig,
                            "iceConnectionState": "checking", "iceGatheringState": "complete"});
        let (_, _, reply) = leb(&base, "reporticestate", &report).await?;
        ensure!(reply["errcode"] == 0, "report: {reply}");
        gw.shutdown().await;

        let gw = start_gateway(|c| {
            c.policies.config.insert(
                "token-auth".into(),
                toml::from_str("auth_token = \"secret\"").unwrap_or_default(),
            );
            c.policies.config.insert(
                "leb-svrsig".into(),
                toml::from_str("svrsig_key = \"\"").unwrap_or_default(),
            );
        })
        .await?;
        let base = gw.base_url();
        let (_, _, reply) = leb(&base, "pullstream", &pull("cam")).await?;
        ensure!(reply["errcode"] == 401_001, "no token: {reply}");
        let response = http()
            .post(format!("{base}/webrtc/v1/pullstream"))
            .header("Authorization", "Bearer secret")
            .body(pull("cam").to_string())
            .send()
            .await?;
        let reply: Value = serde_json::from_str(&response.text().await?)?;
        ensure!(reply["errcode"] == 503_001, "signing off: {reply}");
        ensure!(
            subscribers(&base, "cam").await? == 0,
            "a refused pull left a session"
        );
        gw.shutdown().await;
        Ok(())
    })
    .await;
}
