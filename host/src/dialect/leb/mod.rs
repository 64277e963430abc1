//! Tencent LEB ("快直播") pull signaling (specs/dialects.md §4): `POST /webrtc/v1/pullstream`,
//! `stopstream`, `reportquality`, `reporticestate`, `firstframeusetime` and `tabrctl`.
//!
//! As Tencent's servers: always HTTP 200 with `{"errcode","errmsg",…}`, the body parsed as JSON
//! whatever its Content-Type (the web SDK sends `text/plain`), CORS on the POST reply itself.
//! Codes: `0` success, `100011` invalid `clientip` (Tencent's meanings), and ours, in a private
//! range that reads as HTTP status × 1000 + n:
//!
//! | errcode | meaning |
//! |---|---|
//! | 400001 | body is not JSON, or a required field is missing |
//! | 400002 | invalid `streamurl` |
//! | 400003 | the offer SDP cannot be served |
//! | 401001 / 403001 | refused by the authorize/admit policies (their reason in `errmsg`) |
//! | 403002 | `txSecret`/`txTime` refused (svrsig policy) |
//! | 403003 | `svrsig` missing, forged, foreign or expired |
//! | 403 | `tabrctl` for a layer the publisher does not send ("not allowed", the SDK's code) |
//! | 404001 | the stream does not exist (and the strategy does not create it) |
//! | 429001 | too many quality reports queued: this one was not taken |
//! | 503001 | a policy or the media core is unavailable (fail closed) |
//! | 500001 | internal error |
//!
//! Errors map to codes in one place, [`LebError`].

pub(super) mod streamurl;

use std::net::{IpAddr, SocketAddr};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};

use super::with_headers;
use crate::config::LebRoomFrom;
use crate::gate::{Gate, GateError, PullError, ReportError, RequestFacts};
use crate::media::{LayerChoice, MediaError};
use crate::ops::quality::IngestError;
use crate::policy::{QualityStats, ReportBody};

/// Shared state of the LEB handlers.
#[derive(Clone)]
pub struct LebState {
    pub gate: Gate,
    pub room_from: LebRoomFrom,
}

pub fn routes(state: LebState) -> Router {
    Router::new()
        .route("/webrtc/v1/pullstream", post(pullstream).options(preflight))
        .route("/webrtc/v1/stopstream", post(stopstream).options(preflight))
        .route(
            "/webrtc/v1/reportquality",
            post(reportquality).options(preflight),
        )
        .route(
            "/webrtc/v1/reporticestate",
            post(reporticestate).options(preflight),
        )
        .route(
            "/webrtc/v1/firstframeusetime",
            post(firstframeusetime).options(preflight),
        )
        .route("/webrtc/v1/tabrctl", post(tabrctl).options(preflight))
        .with_state(state)
}

/// A LEB request that failed, and its errcode.
#[derive(Debug, thiserror::Error)]
enum LebError {
    #[error("{0}")]
    BadRequest(String),
    #[error("参数 clientip 为无效IP")]
    InvalidClientIp,
    #[error("invalid streamurl: {0}")]
    StreamUrl(#[from] streamurl::StreamUrlError),
    #[error("{0}")]
    Offer(String),
    #[error("{reason}")]
    Denied { status: u16, reason: String },
    #[error("play URL refused: {0}")]
    TxSecret(String),
    #[error("invalid svrsig: {0}")]
    Svrsig(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Busy(String),
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    Internal(String),
}

impl LebError {
    fn errcode(&self) -> u32 {
        match self {
            LebError::BadRequest(_) => 400_001,
            LebError::InvalidClientIp => 100_011,
            LebError::StreamUrl(_) => 400_002,
            LebError::Offer(_) => 400_003,
            LebError::Denied { status: 401, .. } => 401_001,
            LebError::Denied { status: 503, .. } => 503_001,
            LebError::Denied { .. } => 403_001,
            LebError::TxSecret(_) => 403_002,
            LebError::Svrsig(_) => 403_003,
            LebError::NotFound(_) => 404_001,
            LebError::Busy(_) => 429_001,
            LebError::Unavailable(_) => 503_001,
            LebError::Internal(_) => 500_001,
        }
    }

    /// A gate error of a call that presented a `svrsig`: its denial is about the svrsig.
    fn from_svrsig_check(e: GateError) -> Self {
        match e {
            GateError::Denied(d) if d.status != 503 => LebError::Svrsig(d.reason),
            other => other.into(),
        }
    }

    fn body(&self) -> Value {
        if matches!(self, LebError::Internal(_)) {
            tracing::error!(error = %self, "LEB request failed");
        }
        json!({ "errcode": self.errcode(), "errmsg": self.to_string() })
    }
}

impl From<GateError> for LebError {
    fn from(e: GateError) -> Self {
        match e {
            GateError::StreamNotFound(_) => LebError::NotFound(e.to_string()),
            GateError::Denied(d) => LebError::Denied {
                status: d.status,
                reason: d.reason,
            },
            GateError::Media(m) => match m {
                MediaError::RoomNotFound(_)
                | MediaError::FeedNotFound { .. }
                | MediaError::SessionNotFound(_) => LebError::NotFound(m.to_string()),
                MediaError::MalformedOffer(_)
                | MediaError::UnusableOffer(_)
                | MediaError::IceRestart(_) => LebError::Offer(m.to_string()),
                MediaError::PublisherExists(_) | MediaError::RoomExists(_) => {
                    LebError::BadRequest(m.to_string())
                }
                MediaError::Stopped | MediaError::Overloaded { .. } => {
                    LebError::Unavailable(m.to_string())
                }
                MediaError::Internal(_) => LebError::Internal(m.to_string()),
            },
            GateError::Remote(r) => LebError::Unavailable(r.to_string()),
        }
    }
}

impl From<ReportError> for LebError {
    fn from(e: ReportError) -> Self {
        match e {
            ReportError::Gate(g) => LebError::from_svrsig_check(g),
            ReportError::Ingest(IngestError::QueueFull) => LebError::Busy(e.to_string()),
            ReportError::Ingest(IngestError::Stopped) => LebError::Unavailable(e.to_string()),
        }
    }
}

/// HTTP 200 with `body` and the CORS header browsers need on the POST reply itself.
fn reply(body: Value) -> Response {
    with_headers(
        (StatusCode::OK, axum::Json(body)).into_response(),
        &[(header::ACCESS_CONTROL_ALLOW_ORIGIN, "*")],
    )
}

fn outcome(result: Result<Value, LebError>) -> Response {
    reply(result.unwrap_or_else(|e| e.body()))
}

async fn preflight() -> Response {
    with_headers(
        StatusCode::NO_CONTENT.into_response(),
        &[
            (header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"),
            (header::ACCESS_CONTROL_ALLOW_METHODS, "POST, OPTIONS"),
            (header::ACCESS_CONTROL_ALLOW_HEADERS, "*"),
        ],
    )
}

/// The request body as a JSON object, whatever the Content-Type.
fn json_body(body: &Bytes) -> Result<serde_json::Map<String, Value>, LebError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(LebError::BadRequest("body must be a JSON object".into())),
        Err(e) => Err(LebError::BadRequest(format!("body is not JSON: {e}"))),
    }
}

fn text<'a>(body: &'a serde_json::Map<String, Value>, key: &str) -> Result<&'a str, LebError> {
    body.get(key)
        .and_then(Value::as_str)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| LebError::BadRequest(format!("missing field `{key}`")))
}

/// The `svrsig` a session-bound call presents, and the room of its `streamurl` if it names one
/// (a svrsig of another stream is refused).
fn session_proof<'a>(
    state: &LebState,
    body: &'a serde_json::Map<String, Value>,
) -> Result<(&'a str, Option<String>), LebError> {
    let svrsig = text(body, "svrsig").map_err(|_| LebError::Svrsig("missing".into()))?;
    let room = match body.get("streamurl").and_then(Value::as_str) {
        Some(url) if !url.is_empty() => Some(streamurl::room_of(
            &streamurl::parse(url)?,
            state.room_from,
        )?),
        _ => None,
    };
    Ok((svrsig, room))
}

/// A counter field: a JSON number or a numeric string; absent counts as 0.
fn number(body: &serde_json::Map<String, Value>, key: &str) -> u64 {
    match body.get(key) {
        Some(Value::Number(n)) => n.as_u64().unwrap_or(0),
        Some(Value::String(s)) => s.trim().parse().unwrap_or(0),
        _ => 0,
    }
}

/// The parts of a request every handler needs.
struct LebRequest {
    facts: RequestFacts,
    body: Result<serde_json::Map<String, Value>, LebError>,
}

/// Largest LEB request body (an offer SDP is a few kB).
const MAX_BODY: usize = 256 * 1024;

impl LebRequest {
    async fn read(request: Request) -> Self {
        let client = request
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map_or(SocketAddr::from(([0, 0, 0, 0], 0)), |c| c.0);
        let (parts, body) = request.into_parts();
        let facts =
            RequestFacts::from_http("leb", client, &parts.method, &parts.uri, &parts.headers);
        let body = match axum::body::to_bytes(body, MAX_BODY).await {
            Ok(bytes) => json_body(&bytes),
            Err(_) => Err(LebError::BadRequest("request body too large".into())),
        };
        Self { facts, body }
    }
}

async fn pullstream(State(state): State<LebState>, request: Request) -> Response {
    let request = LebRequest::read(request).await;
    outcome(pull(&state, request).await)
}

async fn pull(state: &LebState, request: LebRequest) -> Result<Value, LebError> {
    let body = request.body?;
    let url = streamurl::parse(text(&body, "streamurl")?)?;
    text(&body, "sessionid")?;
    let offer = body
        .get("localsdp")
        .and_then(|l| l.get("sdp"))
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| LebError::BadRequest("missing field `localsdp.sdp`".into()))?
        .to_owned();
    if let Some(ip) = body.get("clientip").and_then(Value::as_str)
        && !ip.is_empty()
        && ip.parse::<IpAddr>().is_err()
    {
        return Err(LebError::InvalidClientIp);
    }
    let room = streamurl::room_of(&url, state.room_from)?;
    let (answer, svrsig) = state
        .gate
        .leb_pull(&request.facts, url, &room, offer)
        .await
        .map_err(|e| match e {
            PullError::PlayUrl(d) => LebError::TxSecret(d.reason),
            PullError::Gate(g) => g.into(),
        })?;
    Ok(json!({
        "errcode": 0,
        "errmsg": "succ",
        "remotesdp": { "type": "answer", "sdp": answer.answer_sdp },
        "svrsig": svrsig,
    }))
}

async fn stopstream(State(state): State<LebState>, request: Request) -> Response {
    let request = LebRequest::read(request).await;
    let result = async {
        let body = request.body?;
        let (svrsig, room) = session_proof(&state, &body)?;
        state
            .gate
            .leb_stop(svrsig, room.as_deref())
            .await
            .map_err(LebError::from_svrsig_check)?;
        Ok(json!({ "errcode": 0, "errmsg": "stop stream succ!" }))
    };
    outcome(result.await)
}

/// A report endpoint: `parse` turns the body into the report, then it is queued.
async fn report(
    state: &LebState,
    request: LebRequest,
    parse: impl FnOnce(&serde_json::Map<String, Value>) -> Result<ReportBody, LebError>,
) -> Response {
    let result = async {
        let body = request.body?;
        let (svrsig, room) = session_proof(state, &body)?;
        let report = parse(&body)?;
        state
            .gate
            .leb_report(&request.facts, svrsig, room.as_deref(), report)
            .await?;
        Ok(json!({ "errcode": 0, "errmsg": "succ" }))
    };
    outcome(result.await)
}

async fn reportquality(State(state): State<LebState>, request: Request) -> Response {
    let request = LebRequest::read(request).await;
    report(&state, request, |b| {
        let small = |key| u32::try_from(number(b, key)).unwrap_or(u32::MAX);
        Ok(ReportBody::Quality(QualityStats {
            begin_ms: number(b, "beginutime"),
            end_ms: number(b, "endutime"),
            audio_codec: b
                .get("audiocodec")
                .and_then(Value::as_str)
                .unwrap_or("")
                .into(),
            audio_packets_received: number(b, "audiopktrecv"),
            audio_packets_lost: number(b, "audiopktlost"),
            audio_bytes_received: number(b, "audiobyterecv"),
            video_codec: b
                .get("videocodec")
                .and_then(Value::as_str)
                .unwrap_or("")
                .into(),
            video_packets_received: number(b, "videopktrecv"),
            video_packets_lost: number(b, "videopktlost"),
            video_bytes_received: number(b, "videobyterecv"),
            video_width: small("videowidth"),
            video_height: small("videoheight"),
            video_decode_fps: small("videoframedec"),
            video_receive_fps: small("videoframerecv"),
        }))
    })
    .await
}

async fn reporticestate(State(state): State<LebState>, request: Request) -> Response {
    let request = LebRequest::read(request).await;
    report(&state, request, |b| {
        let connection = text(b, "iceConnectionState")?.to_owned();
        let gathering = b
            .get("iceGatheringState")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        Ok(ReportBody::IceState((connection, gathering)))
    })
    .await
}

async fn firstframeusetime(State(state): State<LebState>, request: Request) -> Response {
    let request = LebRequest::read(request).await;
    report(&state, request, |b| {
        let (start, first) = (number(b, "starttime"), number(b, "firstplaytime"));
        if start == 0 || first < start {
            return Err(LebError::BadRequest(
                "starttime and firstplaytime must be times, firstplaytime not before starttime"
                    .into(),
            ));
        }
        Ok(ReportBody::FirstFrame(first - start))
    })
    .await
}

/// ABR: `bitrate_name` names a simulcast layer (rid) of the stream's publisher; the player
/// switches to it from the next keyframe. A name the publisher does not send is "not allowed"
/// (403, the web SDK's documented refusal).
async fn tabrctl(State(state): State<LebState>, request: Request) -> Response {
    let request = LebRequest::read(request).await;
    let seq = request
        .body
        .as_ref()
        .ok()
        .and_then(|b| b.get("seq").cloned())
        .unwrap_or(Value::Null);
    let result = async {
        let body = request.body?;
        let (svrsig, room) = session_proof(&state, &body)?;
        let session = state
            .gate
            .leb_session(svrsig, room.as_deref())
            .await
            .map_err(LebError::from_svrsig_check)?;
        let wanted = text(&body, "bitrate_name")?;
        let layers = state
            .gate
            .session_layers(&session.stream, &session.session_id)
            .await?;
        if !layers.iter().any(|rid| rid == wanted) {
            return Ok(json!({
                "errcode": 403,
                "errmsg": format!("not allowed: the stream has no layer `{wanted}` (layers: {layers:?})"),
            }));
        }
        state
            .gate
            .select_layer(
                &session.stream,
                &session.session_id,
                LayerChoice::Rid(wanted.to_owned()),
            )
            .await?;
        Ok(json!({ "errcode": 0, "errmsg": "succ" }))
    };
    let mut body = result.await.unwrap_or_else(|e: LebError| e.body());
    if let Some(map) = body.as_object_mut() {
        map.insert("seq".into(), seq);
    }
    reply(body)
}
