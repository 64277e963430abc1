//! Helpers shared by the contract tests (`records_contract`, `rooms_contract`,
//! `live777_contract`, `leb_errcodes`, `leb_play`, `leb_reports`): running a test within a
//! time limit, raw HTTP calls and their headers, and the LEB dialect's requests (pull, stop,
//! reports) and the `/metrics` series its reports move.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail, ensure};
use gatehouse_e2e::gatehouse::Gateway;
use gatehouse_e2e::{bounded, header, http, offers};
use reqwest::header::HeaderMap;
use serde_json::{Value, json};

// ---------------------------------------------------------------------------------------------
// any dialect

/// Runs `body` within `limit`, panicking with its error.
pub(crate) async fn run(
    name: &str,
    limit: Duration,
    body: impl std::future::Future<Output = Result<()>>,
) {
    if let Err(e) = bounded(name, limit, body).await {
        panic!("{name}: {e:#}");
    }
}

pub(crate) fn table(text: &str) -> toml::Table {
    toml::from_str(text).unwrap_or_default()
}

pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// (status, headers, body) of a request.
pub(crate) async fn call(request: reqwest::RequestBuilder) -> Result<(u16, HeaderMap, String)> {
    let response = request.send().await?;
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    Ok((status, headers, response.text().await?))
}

/// Every value of header `name`, joined with ", " ("" when absent).
pub(crate) fn hdr(headers: &HeaderMap, name: &str) -> String {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect::<Vec<_>>()
        .join(", ")
}

// ---------------------------------------------------------------------------------------------
// LEB

/// The time limit of each LEB contract test.
const LIMIT: Duration = Duration::from_secs(90);

/// HTTP-only pulls never connect: their sessions must outlive the test instead of being reaped
/// by the connect timeout (30 s by default) halfway through a slow run.
pub(crate) const PATIENT_CONNECT_SECS: u64 = 300;

/// Runs `body` within `LIMIT`, panicking with its error (the LEB test files import it as
/// `run`).
pub(crate) async fn run_leb(name: &str, body: impl std::future::Future<Output = Result<()>>) {
    if let Err(e) = bounded(name, LIMIT, body).await {
        panic!("{name}: {e:#}");
    }
}

/// A LEB reply: HTTP status, `Access-Control-Allow-Origin`, `Content-Type` and the JSON body.
pub(crate) struct Reply {
    status: u16,
    cors: String,
    content_type: String,
    pub(crate) json: Value,
}

impl Reply {
    pub(crate) fn errcode(&self) -> Option<u64> {
        self.json["errcode"].as_u64()
    }

    /// Fails unless this is a refusal as Tencent's servers send one (and TXLivePlayer reads):
    /// HTTP 200, CORS on the POST reply itself, JSON `{errcode: <number>, errmsg: <text>}`.
    pub(crate) fn expect_refusal(&self, what: &str, errcode: u64) -> Result<()> {
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
pub(crate) async fn post_leb(base: &str, endpoint: &str, body: String) -> Result<Reply> {
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

pub(crate) async fn leb(base: &str, endpoint: &str, body: &Value) -> Result<Reply> {
    post_leb(base, endpoint, body.to_string()).await
}

pub(crate) fn pull_body(streamurl: &str, offer: &str) -> Value {
    json!({"streamurl": streamurl, "sessionid": "contract", "clientinfo": "gatehouse-e2e",
           "localsdp": {"type": "offer", "sdp": offer}})
}

/// Pulls `streamurl` with a real aiortc offer (no media follows) and returns its svrsig.
pub(crate) async fn pull(base: &str, streamurl: &str) -> Result<String> {
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

pub(crate) async fn stop(base: &str, streamurl: &str, svrsig: &str) -> Result<()> {
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

pub(crate) fn ice_report(streamurl: &str, svrsig: &str) -> Value {
    json!({"streamurl": streamurl, "svrsig": svrsig,
           "iceConnectionState": "connected", "iceGatheringState": "complete"})
}

/// A reportquality body (the Android SDK's fields) over `begin..end` ms with the given video
/// packet counters.
pub(crate) fn quality_report(
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
pub(crate) fn first_frame_report(streamurl: &str, svrsig: &str, ms: u64) -> Value {
    json!({"streamurl": streamurl, "svrsig": svrsig,
           "starttime": "1000", "firstplaytime": (1000 + ms).to_string()})
}

pub(crate) async fn subscribers(gw: &Gateway, room: &str) -> usize {
    gw.room(room).await.map_or(0, |r| r.subscribers)
}

pub(crate) async fn metrics(base: &str) -> Result<String> {
    Ok(http()
        .get(format!("{base}/metrics"))
        .send()
        .await?
        .text()
        .await?)
}

/// The per-stream LEB series of `stream` in a `/metrics` text.
pub(crate) fn leb_series(metrics: &str, stream: &str) -> Vec<String> {
    let label = format!("stream=\"{stream}\"");
    metrics
        .lines()
        .filter(|l| l.starts_with("leb_") && l.contains(&label))
        .map(str::to_owned)
        .collect()
}

pub(crate) fn reports_total(stream: &str, kind: &str, result: &str, count: u64) -> String {
    format!("leb_reports_total{{stream=\"{stream}\",type=\"{kind}\",result=\"{result}\"}} {count}")
}

/// Waits (10 s at most) until `/metrics` has exactly the line `line`: reports are judged on
/// the quality worker, after the HTTP reply.
pub(crate) async fn wait_for_metric(base: &str, line: &str) -> Result<()> {
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
