//! SRS's WebRTC JSON API (specs/dialects.md §4.7), what `srs.sdk.js` players and publishers
//! speak: `POST /rtc/v1/play/` and `POST /rtc/v1/publish/` with `{sdp, streamurl, …}`. Success
//! is `{"code":0,"server",…,"sdp","sessionid"}`; any error is HTTP 200 `{"code":400}` as SRS
//! answers (the reason goes to the log). Sessions end by ICE consent (SRS has no stop call).
//! A play URL's `txSecret`/`txTime` is checked as LEB's `pullstream` checks it.

use std::net::SocketAddr;

use axum::Router;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde::Deserialize;
use serde_json::json;

use super::leb::streamurl;
use super::with_headers;
use crate::config::LebRoomFrom;
use crate::gate::{Gate, RequestFacts};
use crate::media::Role;

/// Shared state of the SRS handlers.
#[derive(Clone)]
pub struct SrsState {
    pub gate: Gate,
    pub room_from: LebRoomFrom,
}

pub fn routes(state: SrsState) -> Router {
    let play = || post(|s, r| handle(s, r, Role::Subscriber)).options(preflight);
    let publish = || post(|s, r| handle(s, r, Role::Publisher)).options(preflight);
    Router::new()
        .route("/rtc/v1/play/", play())
        .route("/rtc/v1/play", play())
        .route("/rtc/v1/publish/", publish())
        .route("/rtc/v1/publish", publish())
        .with_state(state)
}

#[derive(Deserialize)]
struct SrsRequest {
    sdp: String,
    streamurl: String,
}

/// JSON with SRS's headers; CORS only when the browser sent an `Origin`.
fn reply(body: serde_json::Value, cors: bool) -> Response {
    let mut response = (StatusCode::OK, axum::Json(body)).into_response();
    let h = response.headers_mut();
    h.insert(header::CONNECTION, HeaderValue::from_static("close"));
    if cors {
        h.insert(
            header::ACCESS_CONTROL_ALLOW_ORIGIN,
            HeaderValue::from_static("*"),
        );
    }
    response
}

async fn preflight() -> Response {
    with_headers(
        StatusCode::OK.into_response(),
        &[
            (header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"),
            (header::ACCESS_CONTROL_ALLOW_METHODS, "*"),
            (header::ACCESS_CONTROL_ALLOW_HEADERS, "*"),
        ],
    )
}

async fn handle(State(state): State<SrsState>, request: Request, role: Role) -> Response {
    let client = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(SocketAddr::from(([0, 0, 0, 0], 0)), |c| c.0);
    let (parts, body) = request.into_parts();
    let cors = parts.headers.contains_key(header::ORIGIN);
    let facts = RequestFacts::from_http("srs", client, &parts.method, &parts.uri, &parts.headers);
    let result: Result<_, String> = async {
        let body = axum::body::to_bytes(body, 256 * 1024)
            .await
            .map_err(|_| "request body too large".to_owned())?;
        let request: SrsRequest =
            serde_json::from_slice(&body).map_err(|e| format!("body: {e}"))?;
        let url = streamurl::parse(&request.streamurl).map_err(|e| e.to_string())?;
        let room = streamurl::room_of(&url, state.room_from).map_err(|e| e.to_string())?;
        let answer = match role {
            Role::Publisher => state.gate.publish(&facts, &room, request.sdp).await,
            // The play URL's txSecret is checked as LEB's pullstream checks it.
            Role::Subscriber => match state.gate.play_url(&facts, url, &room, request.sdp).await {
                Ok(answer) => Ok(answer),
                Err(e) => return Err(e.to_string()),
            },
        }
        .map_err(|e| e.to_string())?;
        Ok(answer)
    }
    .await;
    match result {
        Ok(answer) => reply(
            json!({
                "code": 0,
                "server": "gatehouse",
                "service": &answer.session_id[..8.min(answer.session_id.len())],
                "pid": std::process::id().to_string(),
                "sdp": answer.answer_sdp,
                "sessionid": answer.session_id,
            }),
            cors,
        ),
        Err(reason) => {
            tracing::info!(role = role.as_str(), %reason, "SRS request refused");
            reply(json!({ "code": 400 }), cors)
        }
    }
}
