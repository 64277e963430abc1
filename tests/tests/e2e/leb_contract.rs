//! The LEB dialect's contract beyond the happy path (specs/dialects.md §4; errcodes as
//! documented in host/src/dialect/leb/mod.rs): every refusal is HTTP 200 with CORS on the POST
//! reply and `{errcode, errmsg}`; a svrsig proves one live session of one stream and nothing
//! else (forged, foreign or stopped ones change nothing, not even `/metrics`); SRS's play form
//! obeys the same anti-leech keys and carries media; `[leb] room_from` decides the room; the
//! report log rotates into `report_log_keep` files without losing a report and records the
//! quality policy's verdict.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail, ensure};
use gatehouse_e2e::gatehouse::Gateway;
use gatehouse_e2e::gatehouse::config::LebRoomFrom;
use gatehouse_e2e::{
    Client, Publish, bounded, header, http, media_lock, offers, start_gateway, wait_for_media,
};
use gatehouse_sdk::crypto::{base64url_encode, hmac_sha256, md5_hex};
use serde_json::{Value, json};

const LIMIT: Duration = Duration::from_secs(90);

/// HTTP-only pulls never connect: their sessions must outlive the test instead of being reaped
/// by the connect timeout (30 s by default) halfway through a slow run.
const PATIENT_CONNECT_SECS: u64 = 300;

async fn run(name: &str, body: impl std::future::Future<Output = Result<()>>) {
    if let Err(e) = bounded(name, LIMIT, body).await {
        panic!("{name}: {e:#}");
    }
}

/// A LEB reply: HTTP status, `Access-Control-Allow-Origin`, `Content-Type` and the JSON body.
struct Reply {
    status: u16,
    cors: String,
    content_type: String,
    json: Value,
}

impl Reply {
    fn errcode(&self) -> Option<u64> {
        self.json["errcode"].as_u64()
    }

    /// Fails unless this is a refusal as Tencent's servers send one (and TXLivePlayer reads):
    /// HTTP 200, CORS on the POST reply itself, JSON `{errcode: <number>, errmsg: <text>}`.
    fn expect_refusal(&self, what: &str, errcode: u64) -> Result<()> {
        ensure!(
            self.status == 200
                && self.cors == "*"
                && self.content_type.starts_with("application/json")
                && self.errcode() == Some(errcode)
                && self.json["errmsg"].as_str().is_some_and(|m| !m.is_empty()),
            "{what}: wanted HTTP 200 + CORS + errcode {errcode} with an errmsg, got HTTP {} \
             (ACAO {:?}, Content-Type {:?}) {}",
            self.status,
            self.cors,
            self.content_type,
            self.json
        );
        Ok(())
    }
}

/// POSTs `body` to `/webrtc/v1/{endpoint}` as the web SDK does (JSON text as text/plain).
async fn post_leb(base: &str, endpoint: &str, body: String) -> Result<Reply> {
    let response = http()
        .post(format!("{base}/webrtc/v1/{endpoint}"))
        .header("Content-Type", "text/plain;charset=utf-8")
        .body(body)
        .send()
        .await
        .with_context(|| format!("POST /webrtc/v1/{endpoint}"))?;
    let status = response.status().as_u16();
    let cors = header(&response, "access-control-allow-origin");
    let content_type = header(&response, "content-type");
    let text = response.text().await?;
    Ok(Reply {
        status,
        cors,
        content_type,
        json: serde_json::from_str(&text).unwrap_or(json!({ "raw": text })),
    })
}

async fn leb(base: &str, endpoint: &str, body: &Value) -> Result<Reply> {
    post_leb(base, endpoint, body.to_string()).await
}

fn pull_body(streamurl: &str, offer: &str) -> Value {
    json!({"streamurl": streamurl, "sessionid": "contract", "clientinfo": "gatehouse-e2e",
           "localsdp": {"type": "offer", "sdp": offer}})
}

/// Pulls `streamurl` with a real aiortc offer (no media follows) and returns its svrsig.
async fn pull(base: &str, streamurl: &str) -> Result<String> {
    let viewer = &offers().await?.whep[0];
    let reply = leb(base, "pullstream", &pull_body(streamurl, viewer)).await?;
    let svrsig = reply.json["svrsig"].as_str().unwrap_or_default().to_owned();
    ensure!(
        reply.errcode() == Some(0)
            && !svrsig.is_empty()
            && reply.json["remotesdp"]["type"] == "answer",
        "pull {streamurl}: {}",
        reply.json
    );
    Ok(svrsig)
}

async fn stop(base: &str, streamurl: &str, svrsig: &str) -> Result<()> {
    let reply = leb(
        base,
        "stopstream",
        &json!({"streamurl": streamurl, "svrsig": svrsig}),
    )
    .await?;
    ensure!(
        reply.json == json!({"errcode": 0, "errmsg": "stop stream succ!"}),
        "stopstream {streamurl}: {}",
        reply.json
    );
    Ok(())
}

fn ice_report(streamurl: &str, svrsig: &str) -> Value {
    json!({"streamurl": streamurl, "svrsig": svrsig,
           "iceConnectionState": "connected", "iceGatheringState": "complete"})
}

/// A reportquality body (the Android SDK's fields) over `begin..end` ms with the given video
/// packet counters.
fn quality_report(
    streamurl: &str,
    svrsig: &str,
    (begin, end): (u64, u64),
    (video_received, video_lost): (u64, u64),
) -> Value {
    json!({"streamurl": streamurl, "svrsig": svrsig,
           "beginutime": begin.to_string(), "endutime": end.to_string(),
           "audiossrc": 1, "audiocodec": "opus", "audiopktrecv": 100, "audiobyterecv": 8000,
           "audiopktlost": 0, "videossrc": 2, "videocodec": "vp8",
           "videopktrecv": video_received, "videobyterecv": 250_000, "videopktlost": video_lost,
           "videowidth": 640, "videoheight": 480, "videoframedec": 30, "videoframerecv": 30})
}

/// A firstframeusetime body whose first frame took `ms` (the report log shows it as
/// `firstFrameMs`, so it doubles as a sequence number).
fn first_frame_report(streamurl: &str, svrsig: &str, ms: u64) -> Value {
    json!({"streamurl": streamurl, "svrsig": svrsig,
           "starttime": "1000", "firstplaytime": (1000 + ms).to_string()})
}

async fn subscribers(gw: &Gateway, room: &str) -> usize {
    gw.room(room).await.map_or(0, |r| r.subscribers)
}

async fn metrics(base: &str) -> Result<String> {
    Ok(http()
        .get(format!("{base}/metrics"))
        .send()
        .await?
        .text()
        .await?)
}

/// The per-stream LEB series of `stream` in a `/metrics` text.
fn leb_series(metrics: &str, stream: &str) -> Vec<String> {
    let label = format!("stream=\"{stream}\"");
    metrics
        .lines()
        .filter(|l| l.starts_with("leb_") && l.contains(&label))
        .map(str::to_owned)
        .collect()
}

fn reports_total(stream: &str, kind: &str, result: &str, count: u64) -> String {
    format!("leb_reports_total{{stream=\"{stream}\",type=\"{kind}\",result=\"{result}\"}} {count}")
}

/// Waits (10 s at most) until `/metrics` has exactly the line `line`: reports are judged on
/// the quality worker, after the HTTP reply.
async fn wait_for_metric(base: &str, line: &str) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = metrics(base).await?;
        if text.lines().any(|l| l == line) {
            return Ok(());
        }
        if Instant::now() > deadline {
            let series: Vec<&str> = text.lines().filter(|l| l.starts_with("leb_")).collect();
            bail!(
                "no `{line}` in /metrics within 10 s; LEB series:\n{}",
                series.join("\n")
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Queues a genuine report for `stream` and waits until it is its `count`th accepted
/// ice-state report. The quality worker takes reports in order, so whatever was queued
/// before it has been counted by then: a barrier for "nothing else was counted".
async fn report_barrier(base: &str, stream: &str, svrsig: &str, count: u64) -> Result<()> {
    let url = format!("webrtc://d/live/{stream}");
    let reply = leb(base, "reporticestate", &ice_report(&url, svrsig)).await?;
    ensure!(reply.errcode() == Some(0), "barrier report: {}", reply.json);
    wait_for_metric(base, &reports_total(stream, "ice-state", "accepted", count)).await
}

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

fn scratch_dir(name: &str) -> Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!(
        "gatehouse-leb-contract-{name}-{}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// `<log>.n`, a rotated report log.
fn rotated(log: &Path, n: usize) -> PathBuf {
    let mut name = log.as_os_str().to_owned();
    name.push(format!(".{n}"));
    PathBuf::from(name)
}

/// One file of the report log.
struct LogFile {
    path: PathBuf,
    bytes: u64,
    lines: Vec<Value>,
}

/// The report log's files that exist, oldest first (`.probe` … `.1`, then the live file).
fn read_log(log: &Path, probe: usize) -> Result<Vec<LogFile>> {
    let paths = (1..=probe)
        .rev()
        .map(|n| rotated(log, n))
        .chain(std::iter::once(log.to_path_buf()));
    let mut files = Vec::new();
    for path in paths.filter(|p| p.exists()) {
        let text = std::fs::read_to_string(&path).with_context(|| format!("{}", path.display()))?;
        let lines = text
            .lines()
            .map(|l| {
                serde_json::from_str::<Value>(l)
                    .with_context(|| format!("{}: {l:?}", path.display()))
            })
            .collect::<Result<Vec<Value>>>()?;
        files.push(LogFile {
            path,
            bytes: text.len() as u64,
            lines,
        });
    }
    Ok(files)
}

/// Waits (10 s at most) until the log's files satisfy `done` (the worker flushes once its
/// queue is empty; a half-flushed file does not parse and is read again).
async fn wait_for_log(
    log: &Path,
    probe: usize,
    done: impl Fn(&[LogFile]) -> bool,
) -> Result<Vec<LogFile>> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match read_log(log, probe) {
            Ok(files) if done(files.as_slice()) => return Ok(files),
            Ok(files) if Instant::now() > deadline => {
                let layout: Vec<String> = files
                    .iter()
                    .map(|f| format!("{} ({} lines)", f.path.display(), f.lines.len()))
                    .collect();
                bail!("the report log did not complete within 10 s: {layout:?}");
            }
            Err(e) if Instant::now() > deadline => return Err(e),
            Ok(_) | Err(_) => {}
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The `firstFrameMs` of every line, in file order.
fn first_frame_sequence(files: &[LogFile]) -> Vec<u64> {
    files
        .iter()
        .flat_map(|f| &f.lines)
        .map(|l| l["report"]["firstFrameMs"].as_u64().unwrap_or(u64::MAX))
        .collect()
}

fn last_first_frame(files: &[LogFile]) -> Option<u64> {
    files
        .last()
        .and_then(|f| f.lines.last())
        .and_then(|l| l["report"]["firstFrameMs"].as_u64())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_leb_error_path_is_http_200_with_cors_and_its_documented_errcode() {
    run("leb_error_paths", async {
        let admission: toml::Table = toml::from_str("room.capped.max_subscribers = 1")?;
        let gw = start_gateway(move |c| {
            c.policies.config.insert("room-admission".into(), admission);
            c.webrtc.connect_timeout_secs = PATIENT_CONNECT_SECS;
        })
        .await?;
        let base = gw.base_url();
        let o = offers().await?;
        let viewer = o.whep[0].clone();

        // Not JSON, or JSON that is no object: 400001 on every endpoint.
        for endpoint in [
            "pullstream",
            "stopstream",
            "reportquality",
            "reporticestate",
            "firstframeusetime",
            "tabrctl",
        ] {
            for body in ["{not json", "", "[1, 2]", "\"text\""] {
                post_leb(&base, endpoint, body.to_owned())
                    .await?
                    .expect_refusal(&format!("{endpoint} with body {body:?}"), 400_001)?;
            }
        }

        // A body past the LEB limit (256 KiB) is a bad request, still HTTP 200 (not 413:
        // TXLivePlayer would retry a non-200).
        let huge = json!({"streamurl": "webrtc://d/live/huge", "sessionid": "s",
                          "clientinfo": "c", "localsdp": {"type": "offer", "sdp": viewer},
                          "pad": "p".repeat(300 * 1024)});
        for endpoint in ["pullstream", "reportquality"] {
            leb(&base, endpoint, &huge)
                .await?
                .expect_refusal(&format!("{endpoint} with a 300 KiB body"), 400_001)?;
        }
        ensure!(
            subscribers(&gw, "huge").await == 0,
            "an oversized pull opened a session"
        );

        // A pull without one of its required fields: 400001.
        for (what, body) in [
            (
                "no sessionid",
                json!({"streamurl": "webrtc://d/live/cam", "clientinfo": "c",
                       "localsdp": {"type": "offer", "sdp": viewer}}),
            ),
            (
                "no streamurl",
                json!({"sessionid": "s", "localsdp": {"type": "offer", "sdp": viewer}}),
            ),
            (
                "empty localsdp.sdp",
                json!({"streamurl": "webrtc://d/live/cam", "sessionid": "s",
                       "localsdp": {"type": "offer", "sdp": ""}}),
            ),
        ] {
            leb(&base, "pullstream", &body)
                .await?
                .expect_refusal(&format!("pullstream, {what}"), 400_001)?;
        }

        // Offers no player session can be made of: 400003, and no session stays.
        for (what, sdp) in [
            ("not SDP", "x".to_owned()),
            ("data channel only", o.datachannel[0].clone()),
            ("sendonly (a publisher's offer)", o.whip[0].clone()),
        ] {
            leb(
                &base,
                "pullstream",
                &pull_body("webrtc://d/live/unusable", &sdp),
            )
            .await?
            .expect_refusal(&format!("pullstream, offer {what}"), 400_003)?;
        }
        ensure!(
            subscribers(&gw, "unusable").await == 0,
            "an unusable offer left a session"
        );

        // The admit policy's refusal (this room's subscriber cap): 403001, its reason in errmsg.
        pull(&base, "webrtc://d/live/capped").await?;
        let reply = leb(
            &base,
            "pullstream",
            &pull_body("webrtc://d/live/capped", &viewer),
        )
        .await?;
        reply.expect_refusal("second subscriber of a room capped at one", 403_001)?;
        ensure!(
            reply.json["errmsg"]
                .as_str()
                .is_some_and(|m| m.contains("subscriber limit")),
            "admission errmsg: {}",
            reply.json
        );
        ensure!(
            subscribers(&gw, "capped").await == 1,
            "a refused pull opened a session"
        );

        // Session-bound calls without a svrsig (absent or empty): 403003.
        let url = "webrtc://d/live/open";
        let svrsig = pull(&base, url).await?;
        for endpoint in [
            "stopstream",
            "reportquality",
            "reporticestate",
            "firstframeusetime",
            "tabrctl",
        ] {
            let fields = json!({"streamurl": url, "iceConnectionState": "connected",
                                "starttime": "1000", "firstplaytime": "1200",
                                "seq": 1, "bitrate_name": "hd"});
            let mut empty = fields.clone();
            empty["svrsig"] = json!("");
            for (what, body) in [("no svrsig", fields), ("an empty svrsig", empty)] {
                leb(&base, endpoint, &body)
                    .await?
                    .expect_refusal(&format!("{endpoint} with {what}"), 403_003)?;
            }
        }
        ensure!(
            subscribers(&gw, "open").await == 1,
            "a stopstream without svrsig ended the session"
        );

        // A genuine svrsig, but a required field missing or wrong: 400001.
        for (endpoint, body) in [
            (
                "reporticestate",
                json!({"streamurl": url, "svrsig": svrsig, "iceGatheringState": "complete"}),
            ),
            (
                "reporticestate",
                json!({"streamurl": url, "svrsig": svrsig, "iceConnectionState": ""}),
            ),
            (
                "firstframeusetime",
                json!({"streamurl": url, "svrsig": svrsig, "firstplaytime": "1200"}),
            ),
            (
                "firstframeusetime",
                json!({"streamurl": url, "svrsig": svrsig, "starttime": "1200",
                       "firstplaytime": "1000"}),
            ),
            ("tabrctl", json!({"svrsig": svrsig, "seq": 4})),
        ] {
            let reply = leb(&base, endpoint, &body).await?;
            reply.expect_refusal(&format!("{endpoint} {body}"), 400_001)?;
            if endpoint == "tabrctl" {
                ensure!(reply.json["seq"] == 4, "tabrctl echoes seq: {}", reply.json);
            }
        }
        // A streamurl that is no play URL, next to a genuine svrsig: 400002.
        for endpoint in ["stopstream", "reportquality"] {
            leb(
                &base,
                endpoint,
                &json!({"streamurl": "rtmp://d/live/open", "svrsig": svrsig}),
            )
            .await?
            .expect_refusal(&format!("{endpoint} with an rtmp:// streamurl"), 400_002)?;
        }
        ensure!(
            subscribers(&gw, "open").await == 1,
            "a refused stopstream ended the session"
        );

        // After stopstream the session is gone: tabrctl for it is 404001 (seq still echoed).
        stop(&base, url, &svrsig).await?;
        ensure!(
            subscribers(&gw, "open").await == 0,
            "stopstream left its session"
        );
        let reply = leb(
            &base,
            "tabrctl",
            &json!({"svrsig": svrsig, "seq": 9, "bitrate_name": "hd"}),
        )
        .await?;
        reply.expect_refusal("tabrctl after stopstream", 404_001)?;
        ensure!(reply.json["seq"] == 9, "tabrctl echoes seq: {}", reply.json);
        gw.shutdown().await;
        Ok(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_svrsig_proves_only_its_own_session_of_its_own_stream() {
    run("svrsig_matrix", async {
        let gw = start_gateway(|c| c.webrtc.connect_timeout_secs = PATIENT_CONNECT_SECS).await?;
        let base = gw.base_url();
        let (alpha_url, beta_url) = ("webrtc://d/live/alpha", "webrtc://d/live/beta");
        let alpha = pull(&base, alpha_url).await?;
        let beta = pull(&base, beta_url).await?;
        // Forgeries (svrsig = payload "." MAC, leb-svrsig's documented form): a mangled MAC,
        // garbage, alpha's claims under beta's MAC, alpha's claims signed with another key.
        let (alpha_payload, _) = alpha.split_once('.').context("svrsig without '.'")?;
        let (_, beta_mac) = beta.split_once('.').context("svrsig without '.'")?;
        let forgeries = [
            format!("{alpha}x"),
            "garbage".to_owned(),
            format!("{alpha_payload}.{beta_mac}"),
            format!(
                "{alpha_payload}.{}",
                base64url_encode(&hmac_sha256(b"not-the-key", alpha_payload.as_bytes()))
            ),
        ];

        for (seq, forged) in forgeries.iter().enumerate() {
            let reply = leb(
                &base,
                "tabrctl",
                &json!({"svrsig": forged, "seq": seq, "bitrate_name": "hd"}),
            )
            .await?;
            reply.expect_refusal(&format!("tabrctl with forgery {forged:?}"), 403_003)?;
            ensure!(
                reply.json["seq"] == json!(seq),
                "tabrctl seq: {}",
                reply.json
            );
            leb(
                &base,
                "stopstream",
                &json!({"streamurl": alpha_url, "svrsig": forged}),
            )
            .await?
            .expect_refusal(&format!("stopstream with forgery {forged:?}"), 403_003)?;
        }
        // alpha's genuine svrsig presented to stop beta.
        leb(
            &base,
            "stopstream",
            &json!({"streamurl": beta_url, "svrsig": alpha}),
        )
        .await?
        .expect_refusal("stopstream of beta with alpha's svrsig", 403_003)?;
        ensure!(
            subscribers(&gw, "alpha").await == 1 && subscribers(&gw, "beta").await == 1,
            "a refused stopstream ended a session"
        );

        // Forged or foreign quality reports are refused before the quality policy: alpha's
        // series do not move. One genuine report each first, so the series exist.
        report_barrier(&base, "alpha", &alpha, 1).await?;
        report_barrier(&base, "beta", &beta, 1).await?;
        let before = leb_series(&metrics(&base).await?, "alpha");
        for presented in forgeries.iter().chain(std::iter::once(&beta)) {
            // 50 % video loss: would show in leb_loss_percent if it were taken.
            let body = quality_report(alpha_url, presented, (1000, 3000), (50, 50));
            leb(&base, "reportquality", &body)
                .await?
                .expect_refusal(&format!("reportquality with svrsig {presented:?}"), 403_003)?;
        }
        report_barrier(&base, "beta", &beta, 2).await?;
        let text = metrics(&base).await?;
        let after = leb_series(&text, "alpha");
        ensure!(
            before == after,
            "refused reports moved alpha's series:\nbefore {before:#?}\nafter {after:#?}"
        );
        let beta_quality: Vec<String> = leb_series(&text, "beta")
            .into_iter()
            .filter(|l| l.contains("type=\"quality\"") || l.starts_with("leb_loss_percent"))
            .collect();
        ensure!(
            beta_quality.is_empty(),
            "beta's svrsig on alpha's report was counted for beta: {beta_quality:?}"
        );
        gw.shutdown().await;
        Ok(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_and_tabrctl_after_stopstream_get_404001_and_are_not_counted() {
    run("stopped_svrsig", async {
        let gw = start_gateway(|c| c.webrtc.connect_timeout_secs = PATIENT_CONNECT_SECS).await?;
        let base = gw.base_url();
        let url = "webrtc://d/live/stopped";
        let svrsig = pull(&base, url).await?;
        let marker = pull(&base, "webrtc://d/live/marker").await?;
        // While the session lives, its reports are taken.
        let reply = leb(&base, "reporticestate", &ice_report(url, &svrsig)).await?;
        ensure!(reply.errcode() == Some(0), "live report: {}", reply.json);
        wait_for_metric(&base, &reports_total("stopped", "ice-state", "accepted", 1)).await?;
        let before = leb_series(&metrics(&base).await?, "stopped");

        stop(&base, url, &svrsig).await?;
        ensure!(
            subscribers(&gw, "stopped").await == 0,
            "stopstream left its session"
        );
        // The svrsig still verifies (it is a signature), but its session is gone: 404001,
        // whether or not the call names the stream.
        for (endpoint, body) in [
            (
                "reportquality",
                quality_report(url, &svrsig, (1000, 3000), (100, 0)),
            ),
            ("reporticestate", ice_report(url, &svrsig)),
            ("firstframeusetime", first_frame_report(url, &svrsig, 300)),
            (
                "tabrctl",
                json!({"streamurl": url, "svrsig": svrsig, "seq": 11, "bitrate_name": "hd"}),
            ),
        ] {
            let mut bare = body.clone();
            if let Some(map) = bare.as_object_mut() {
                map.remove("streamurl");
            }
            for (what, body) in [("with streamurl", body), ("svrsig only", bare)] {
                let reply = leb(&base, endpoint, &body).await?;
                reply.expect_refusal(&format!("{endpoint} after stopstream, {what}"), 404_001)?;
                if endpoint == "tabrctl" {
                    ensure!(reply.json["seq"] == 11, "tabrctl seq: {}", reply.json);
                }
            }
        }
        // Nothing of that reached the quality worker.
        report_barrier(&base, "marker", &marker, 1).await?;
        let after = leb_series(&metrics(&base).await?, "stopped");
        ensure!(
            before == after,
            "reports after stopstream were counted:\nbefore {before:#?}\nafter {after:#?}"
        );
        gw.shutdown().await;
        Ok(())
    })
    .await;
}

/// A player that vanished without stopstream is reaped by the media core; its svrsig then
/// serves nothing either.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_svrsig_whose_session_was_reaped_gets_404001() {
    run("reaped_svrsig", async {
        let gw = start_gateway(|c| c.webrtc.connect_timeout_secs = 1).await?;
        let base = gw.base_url();
        let url = "webrtc://d/live/lapsed";
        let svrsig = pull(&base, url).await?;
        // Nobody connects: the connect timeout (1 s) ends the session.
        let deadline = Instant::now() + Duration::from_secs(15);
        while subscribers(&gw, "lapsed").await != 0 {
            if Instant::now() > deadline {
                bail!("an unconnected session outlived the 1 s connect timeout by 15 s");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // The gate learns of the ending from the media core's events: wait for the first
        // 404001 (tabrctl changes nothing, whatever its answer).
        let tabrctl = json!({"svrsig": svrsig, "seq": 1, "bitrate_name": "hd"});
        loop {
            let reply = leb(&base, "tabrctl", &tabrctl).await?;
            if reply.errcode() == Some(404_001) {
                reply.expect_refusal("tabrctl of a reaped session", 404_001)?;
                break;
            }
            if Instant::now() > deadline {
                bail!("tabrctl of a reaped session: {}", reply.json);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        for (endpoint, body) in [
            (
                "reportquality",
                quality_report(url, &svrsig, (1000, 3000), (100, 0)),
            ),
            ("reporticestate", ice_report(url, &svrsig)),
            ("firstframeusetime", first_frame_report(url, &svrsig, 300)),
        ] {
            leb(&base, endpoint, &body)
                .await?
                .expect_refusal(&format!("{endpoint} of a reaped session"), 404_001)?;
        }
        gw.shutdown().await;
        Ok(())
    })
    .await;
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
        let args = [
            "--url",
            base.as_str(),
            "--srs",
            "--stream-url",
            "webrtc://127.0.0.1:1985/live/srscam",
            "--seconds",
            "4",
            "--min-video-frames",
            "10",
        ]
        .map(String::from);
        let player = Client::python("leb_play.py", &args, Duration::from_secs(40))?
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
        let args = [
            "--url",
            base.as_str(),
            "--stream-url",
            "webrtc://play.example.com/live/cam",
            "--seconds",
            "4",
            "--min-video-frames",
            "10",
        ]
        .map(String::from);
        let player = Client::python("leb_play.py", &args, Duration::from_secs(40))?
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

/// A report log size that holds about nine first-frame lines (each ≈ 200 bytes).
const ROTATING_LOG_BYTES: u64 = 1800;

/// Sends first-frame reports `1..=count` ms of one pulled session (each taken: errcode 0) and
/// waits until the quality worker has judged them all.
async fn send_numbered_reports(base: &str, stream: &str, count: u64) -> Result<()> {
    let url = format!("webrtc://d/live/{stream}");
    let svrsig = pull(base, &url).await?;
    for ms in 1..=count {
        let reply = leb(
            base,
            "firstframeusetime",
            &first_frame_report(&url, &svrsig, ms),
        )
        .await?;
        ensure!(reply.errcode() == Some(0), "report {ms}: {}", reply.json);
    }
    wait_for_metric(
        base,
        &reports_total(stream, "first-frame", "accepted", count),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_report_log_rotates_into_keep_files_without_losing_a_report() {
    run("report_log_rotation", async {
        const REPORTS: u64 = 60;

        // keep = 10 is more than 60 reports at ~9 lines per file need: nothing is lost, and
        // the files oldest first (.N … .1, live) hold reports 1..=60 in order.
        let dir = scratch_dir("rotation")?;
        let log = dir.join("reports.jsonl");
        let log_path = log.clone();
        let gw = start_gateway(move |c| {
            c.leb.report_log = Some(log_path);
            c.leb.report_log_max_bytes = ROTATING_LOG_BYTES;
            c.leb.report_log_keep = 10;
            c.webrtc.connect_timeout_secs = PATIENT_CONNECT_SECS;
        })
        .await?;
        let base = gw.base_url();
        send_numbered_reports(&base, "rot", REPORTS).await?;
        let files = wait_for_log(&log, 12, |f| last_first_frame(f) == Some(REPORTS)).await?;
        let layout: Vec<String> = files
            .iter()
            .map(|f| {
                format!(
                    "{}: {} lines, {} B",
                    f.path.display(),
                    f.lines.len(),
                    f.bytes
                )
            })
            .collect();
        let sequence = first_frame_sequence(&files);
        ensure!(
            sequence == (1..=REPORTS).collect::<Vec<_>>(),
            "reports lost, doubled or out of order across {layout:#?}: {sequence:?}"
        );
        ensure!(
            files.len() >= 4 && !rotated(&log, 11).exists(),
            "wanted several rotated files, at most 10: {layout:#?}"
        );
        ensure!(
            files.iter().all(|f| f.bytes <= ROTATING_LOG_BYTES),
            "a file grew past report_log_max_bytes: {layout:#?}"
        );
        ensure!(
            files
                .iter()
                .flat_map(|f| &f.lines)
                .all(|l| l["stream"] == "rot" && l["result"] == "accepted"),
            "log lines without stream or verdict: {layout:#?}"
        );
        gw.shutdown().await;
        let _ = std::fs::remove_dir_all(&dir);

        // keep = 2: only .1 and .2 remain, holding the newest reports before the live file's.
        let dir = scratch_dir("rotation-keep2")?;
        let log = dir.join("reports.jsonl");
        let log_path = log.clone();
        let gw = start_gateway(move |c| {
            c.leb.report_log = Some(log_path);
            c.leb.report_log_max_bytes = ROTATING_LOG_BYTES;
            c.leb.report_log_keep = 2;
            c.webrtc.connect_timeout_secs = PATIENT_CONNECT_SECS;
        })
        .await?;
        let base = gw.base_url();
        send_numbered_reports(&base, "rot2", REPORTS).await?;
        let files = wait_for_log(&log, 12, |f| last_first_frame(f) == Some(REPORTS)).await?;
        let names: Vec<String> = files.iter().map(|f| f.path.display().to_string()).collect();
        ensure!(
            files.len() == 3
                && rotated(&log, 1).exists()
                && rotated(&log, 2).exists()
                && !rotated(&log, 3).exists(),
            "keep = 2 left {names:?}"
        );
        let sequence = first_frame_sequence(&files);
        let first = sequence.first().copied().unwrap_or(0);
        ensure!(
            first > 1 && sequence == (first..=REPORTS).collect::<Vec<_>>(),
            "keep = 2 should hold the newest reports, in order: {sequence:?} in {names:?}"
        );
        gw.shutdown().await;
        let _ = std::fs::remove_dir_all(&dir);
        Ok(())
    })
    .await;
}

/// Every report taken is logged with the policy's verdict (`result`, README): one the
/// quality policy rejects is logged as `rejected` and leaves the gauges alone; one no policy
/// judged is logged as `dropped`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_the_quality_policy_rejects_are_logged_with_their_verdict() {
    run("report_verdicts", async {
        let dir = scratch_dir("verdicts")?;
        let log = dir.join("reports.jsonl");
        let log_path = log.clone();
        let gw = start_gateway(move |c| {
            c.leb.report_log = Some(log_path);
            c.webrtc.connect_timeout_secs = PATIENT_CONNECT_SECS;
        })
        .await?;
        let base = gw.base_url();
        let url = "webrtc://d/live/judged";
        let svrsig = pull(&base, url).await?;
        // Accepted: no video loss. Then one whose interval ends before it begins (with 50 %
        // loss): taken (errcode 0, it is queued), rejected by quality-report.
        for body in [
            quality_report(url, &svrsig, (1000, 3000), (100, 0)),
            quality_report(url, &svrsig, (3000, 1000), (50, 50)),
        ] {
            let reply = leb(&base, "reportquality", &body).await?;
            ensure!(reply.errcode() == Some(0), "reportquality: {}", reply.json);
        }
        wait_for_metric(&base, &reports_total("judged", "quality", "rejected", 1)).await?;
        let text = metrics(&base).await?;
        for wanted in [
            reports_total("judged", "quality", "accepted", 1),
            // the accepted report's 0 %, not the rejected one's 50 %
            "leb_loss_percent{kind=\"video\",stream=\"judged\"} 0".to_owned(),
        ] {
            ensure!(
                text.lines().any(|l| l == wanted),
                "no `{wanted}` in /metrics: {:#?}",
                leb_series(&text, "judged")
            );
        }
        let files = wait_for_log(&log, 0, |f| {
            f.iter().map(|f| f.lines.len()).sum::<usize>() >= 2
        })
        .await?;
        let lines: Vec<&Value> = files.iter().flat_map(|f| &f.lines).collect();
        ensure!(
            lines.len() == 2
                && lines[0]["result"] == "accepted"
                && lines[0]["report"]["beginMs"] == 1000
                && lines[1]["result"] == "rejected"
                && lines[1]["report"]["type"] == "quality"
                && lines[1]["report"]["beginMs"] == 3000
                && lines[1]["report"]["endMs"] == 1000
                && lines[1]["stream"] == "judged",
            "report log: {lines:#?}"
        );
        gw.shutdown().await;
        let _ = std::fs::remove_dir_all(&dir);

        // No quality module: the report is still taken and logged, as dropped.
        let dir = scratch_dir("verdicts-dropped")?;
        let log = dir.join("reports.jsonl");
        let log_path = log.clone();
        let gw = start_gateway(move |c| {
            c.leb.report_log = Some(log_path);
            c.policies.quality = String::new();
            c.webrtc.connect_timeout_secs = PATIENT_CONNECT_SECS;
        })
        .await?;
        let base = gw.base_url();
        let url = "webrtc://d/live/unjudged";
        let svrsig = pull(&base, url).await?;
        let reply = leb(&base, "reporticestate", &ice_report(url, &svrsig)).await?;
        ensure!(reply.errcode() == Some(0), "reporticestate: {}", reply.json);
        wait_for_metric(&base, &reports_total("unjudged", "ice-state", "dropped", 1)).await?;
        let files = wait_for_log(&log, 0, |f| f.iter().any(|f| !f.lines.is_empty())).await?;
        let lines: Vec<&Value> = files.iter().flat_map(|f| &f.lines).collect();
        ensure!(
            lines.len() == 1
                && lines[0]["result"] == "dropped"
                && lines[0]["report"]["type"] == "ice-state"
                && lines[0]["stream"] == "unjudged",
            "report log: {lines:#?}"
        );
        gw.shutdown().await;
        let _ = std::fs::remove_dir_all(&dir);
        Ok(())
    })
    .await;
}
