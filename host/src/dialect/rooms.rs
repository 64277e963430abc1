//! The rooms API of LessUp/go-live (seed 003, specs/dialects.md §5): publish and play by room
//! name, the room list, the operator's room close and recordings (`/healthz` and `/metrics`
//! are the gateway's own, in `ops`).
//!
//! Errors follow go-live exactly: plain text with a newline from the HTTP layer (`invalid
//! room`, `unauthorized`, `not found`, …), JSON `{"error": …}` from the SFU layer (409, 404,
//! 403, and 400 for an offer it cannot use). Per-IP rate limit (429) on publish, play, rooms,
//! bootstrap and records; go-live's CORS rules on every route here.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::UNIX_EPOCH;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use serde::Serialize;

use crate::config::IceServerConfig;
use crate::gate::{Gate, GateError, RequestFacts};
use crate::media::MediaError;
use crate::ops::rate_limit::ClientRateLimit;

/// What the rooms routes need.
#[derive(Clone)]
pub struct RoomsState {
    pub gate: Gate,
    pub max_body_bytes: usize,
    /// The recordings directory, when recording is on.
    pub records: Option<PathBuf>,
    /// `[rooms] allowed_origin`.
    pub allowed_origin: Arc<str>,
    pub rate_limit: Option<Arc<ClientRateLimit>>,
    /// What `/api/bootstrap` tells clients.
    pub bootstrap: Arc<Bootstrap>,
}

/// `/api/bootstrap`'s facts, fixed at start.
pub struct Bootstrap {
    pub auth_enabled: bool,
    pub ice_servers: Vec<IceServerConfig>,
}

pub fn routes(state: RoomsState) -> Router {
    let mut router = Router::new()
        .route("/api/whip/publish/{room}", any(publish))
        .route("/api/whep/play/{room}", any(play))
        .route("/api/rooms", get(list_rooms))
        .route("/api/bootstrap", get(bootstrap))
        // go-live checks admin before CORS: even a preflight gets 401.
        .route("/api/records", get(list_records).options(list_records))
        .route("/api/admin/rooms/{room}/close", post(close_room));
    if let Some(dir) = &state.records {
        router = router.nest_service("/records", tower_http::services::ServeDir::new(dir));
    }
    router
        .layer(axum::middleware::from_fn_with_state(
            state.allowed_origin.clone(),
            cors,
        ))
        .with_state(state)
}

/// go-live's CORS: `*`, or the request's `Origin` echoed when it is the configured origin or
/// has its host (with `Vary: Origin` and credentials); the same methods and headers always.
async fn cors(
    State(allowed): State<Arc<str>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let origin = request
        .headers()
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let mut response = next.run(request).await;
    if response.extensions().get::<BeforeCors>().is_some() {
        return response;
    }
    let headers = response.headers_mut();
    let mut set = |name: header::HeaderName, value: &str| {
        if let Ok(value) = HeaderValue::from_str(value) {
            headers.insert(name, value);
        }
    };
    if &*allowed == "*" {
        set(header::ACCESS_CONTROL_ALLOW_ORIGIN, "*");
    } else if let Some(origin) = origin.filter(|o| origin_allowed(&allowed, o)) {
        set(header::ACCESS_CONTROL_ALLOW_ORIGIN, &origin);
        set(header::VARY, "Origin");
        set(header::ACCESS_CONTROL_ALLOW_CREDENTIALS, "true");
    }
    set(header::ACCESS_CONTROL_ALLOW_METHODS, "GET, POST, OPTIONS");
    set(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        "Content-Type, Authorization, X-Auth-Token",
    );
    response
}

/// Marks a response go-live sends before its CORS headers (an invalid room name).
#[derive(Clone, Copy)]
struct BeforeCors;

/// The origin equals the setting, or has the same host.
fn origin_allowed(allowed: &str, origin: &str) -> bool {
    let host = |o: &str| {
        let rest = o.split_once("://").map_or(o, |(_, r)| r);
        rest.split(['/', ':'])
            .next()
            .unwrap_or("")
            .to_ascii_lowercase()
    };
    origin == allowed || (!host(origin).is_empty() && host(origin) == host(allowed))
}

/// 429 when `client` is over its rate.
fn rate_limited(state: &RoomsState, client: SocketAddr) -> Result<(), RoomsError> {
    match &state.rate_limit {
        Some(limit) if !limit.allow(client.ip()) => Err(RoomsError::Text(
            StatusCode::TOO_MANY_REQUESTS,
            "too many requests",
        )),
        _ => Ok(()),
    }
}

/// A rooms-API failure, in go-live's two body formats.
#[derive(Debug, thiserror::Error)]
enum RoomsError {
    /// Plain text from the HTTP layer.
    #[error("{1}")]
    Text(StatusCode, &'static str),
    /// `{"error": …}` from the SFU layer.
    #[error("{1}")]
    Json(StatusCode, String),
    #[error("{0}")]
    Unavailable(String),
    /// A CORS preflight, answered 204 (the CORS layer adds the headers).
    #[error("preflight")]
    Preflight,
    /// A room name go-live refuses: 400 `invalid room`, before any CORS header.
    #[error("invalid room")]
    InvalidRoom,
}

impl From<GateError> for RoomsError {
    fn from(e: GateError) -> Self {
        match e {
            GateError::StreamNotFound(_) => {
                RoomsError::Json(StatusCode::NOT_FOUND, "no active publisher in room".into())
            }
            GateError::Denied(denial) if denial.status == 401 => {
                RoomsError::Text(StatusCode::UNAUTHORIZED, "unauthorized")
            }
            GateError::Denied(denial) => RoomsError::Json(
                StatusCode::from_u16(denial.status).unwrap_or(StatusCode::FORBIDDEN),
                denial.reason,
            ),
            GateError::Media(MediaError::PublisherExists(_)) => RoomsError::Json(
                StatusCode::CONFLICT,
                "publisher already exists in this room".into(),
            ),
            GateError::Media(MediaError::RoomNotFound(_)) => {
                RoomsError::Text(StatusCode::NOT_FOUND, "not found")
            }
            GateError::Media(
                e @ (MediaError::Stopped | MediaError::Internal(_) | MediaError::Overloaded { .. }),
            ) => RoomsError::Unavailable(e.to_string()),
            GateError::Media(e) => RoomsError::Json(StatusCode::BAD_REQUEST, e.to_string()),
            GateError::Remote(e) => RoomsError::Unavailable(e.to_string()),
        }
    }
}

impl IntoResponse for RoomsError {
    fn into_response(self) -> Response {
        match self {
            RoomsError::Text(status, text) => (status, format!("{text}\n")).into_response(),
            RoomsError::Json(status, error) => {
                (status, Json(serde_json::json!({ "error": error }))).into_response()
            }
            RoomsError::Unavailable(text) => {
                (StatusCode::SERVICE_UNAVAILABLE, format!("{text}\n")).into_response()
            }
            RoomsError::Preflight => StatusCode::NO_CONTENT.into_response(),
            RoomsError::InvalidRoom => {
                let mut response = (StatusCode::BAD_REQUEST, "invalid room\n").into_response();
                response.extensions_mut().insert(BeforeCors);
                response
            }
        }
    }
}

/// go-live's room names: `^[A-Za-z0-9_-]{1,64}$`.
fn valid_room(room: &str) -> bool {
    (1..=64).contains(&room.len())
        && room
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

fn facts(client: SocketAddr, method: &Method, uri: &Uri, headers: &HeaderMap) -> RequestFacts {
    RequestFacts::from_http("rooms", client, method, uri, headers)
}

fn client_of(request: &axum::extract::Request) -> SocketAddr {
    request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(SocketAddr::from(([0, 0, 0, 0], 0)), |c| c.0)
}

/// What go-live checks before the policies, in its order: room name, preflight, method, rate.
fn precheck(
    state: &RoomsState,
    room: &str,
    request: &axum::extract::Request,
) -> Result<RequestFacts, RoomsError> {
    if !valid_room(room) {
        return Err(RoomsError::InvalidRoom);
    }
    if request.method() == Method::OPTIONS {
        return Err(RoomsError::Preflight);
    }
    if request.method() != Method::POST {
        return Err(RoomsError::Text(
            StatusCode::METHOD_NOT_ALLOWED,
            "method not allowed",
        ));
    }
    let client = client_of(request);
    rate_limited(state, client)?;
    Ok(facts(
        client,
        request.method(),
        request.uri(),
        request.headers(),
    ))
}

/// The offer, read only after the policies said yes (go-live: 401 before 413).
async fn offer_of(
    state: &RoomsState,
    request: axum::extract::Request,
) -> Result<String, RoomsError> {
    let body: Bytes = axum::body::to_bytes(request.into_body(), state.max_body_bytes)
        .await
        .map_err(|_| RoomsError::Text(StatusCode::PAYLOAD_TOO_LARGE, "request body too large"))?;
    String::from_utf8(body.to_vec())
        .ok()
        .filter(|o| !o.trim().is_empty())
        .ok_or(RoomsError::Text(
            StatusCode::BAD_REQUEST,
            "invalid request body",
        ))
}

fn answer(sdp: String) -> Response {
    (
        StatusCode::CREATED,
        [(header::CONTENT_TYPE, "application/sdp")],
        sdp,
    )
        .into_response()
}

/// `POST /api/whip/publish/{room}`.
async fn publish(
    State(state): State<RoomsState>,
    Path(room): Path<String>,
    request: axum::extract::Request,
) -> Result<Response, RoomsError> {
    let facts = precheck(&state, &room, &request)?;
    let admitted = state.gate.admit_publish(&facts, &room).await?;
    let offer = offer_of(&state, request).await?;
    let session = state.gate.open_admitted(admitted, offer).await?;
    Ok(answer(session.answer_sdp))
}

/// `POST /api/whep/play/{room}`: only while the room has a publisher.
async fn play(
    State(state): State<RoomsState>,
    Path(room): Path<String>,
    request: axum::extract::Request,
) -> Result<Response, RoomsError> {
    let facts = precheck(&state, &room, &request)?;
    let admitted = state.gate.admit_play(&facts, &room).await?;
    let offer = offer_of(&state, request).await?;
    let session = state.gate.open_admitted(admitted, offer).await?;
    Ok(answer(session.answer_sdp))
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RoomJson {
    name: String,
    has_publisher: bool,
    tracks: usize,
    subscribers: usize,
}

/// `GET /api/rooms`.
async fn list_rooms(
    State(state): State<RoomsState>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
) -> Result<Json<Vec<RoomJson>>, RoomsError> {
    rate_limited(&state, client)?;
    let rooms = state.gate.rooms().await?;
    Ok(Json(
        rooms
            .into_iter()
            .map(|r| RoomJson {
                name: r.name,
                has_publisher: r.publishers > 0,
                tracks: r.tracks,
                subscribers: r.subscribers,
            })
            .collect(),
    ))
}

/// `POST /api/admin/rooms/{room}/close`: every session ends; 200 with an empty body.
async fn close_room(
    State(state): State<RoomsState>,
    Path(room): Path<String>,
    request: axum::extract::Request,
) -> Result<StatusCode, RoomsError> {
    let facts = facts(
        client_of(&request),
        request.method(),
        request.uri(),
        request.headers(),
    );
    state.gate.delete_stream(&facts, &room).await?;
    Ok(StatusCode::OK)
}

/// `GET /api/bootstrap[?room=R]`. Unlike go-live, which hands TURN credentials to anyone who
/// asks, a gateway with auth on gives them only to callers whose token the policies accept
/// (for room `R` when named: room tokens prove nothing without a room) and to operators; an
/// open gateway (anyone may use it anyway) gives them to all.
async fn bootstrap(
    State(state): State<RoomsState>,
    request: axum::extract::Request,
) -> Result<Response, RoomsError> {
    let client = client_of(&request);
    rate_limited(&state, client)?;
    let facts = facts(client, request.method(), request.uri(), request.headers());
    let room = request.uri().query().and_then(|q| {
        form_urlencoded::parse(q.as_bytes())
            .find(|(key, value)| key == "room" && valid_room(value))
            .map(|(_, value)| value.into_owned())
    });
    let trusted = !state.bootstrap.auth_enabled
        || match room {
            Some(room) => state.gate.authorize_player(&facts, &room).await.is_ok(),
            None => state.gate.authenticated_user(&facts).await,
        }
        || state.gate.authorize_admin(&facts).await.is_ok();
    let ice_servers: Vec<serde_json::Value> = state
        .bootstrap
        .ice_servers
        .iter()
        .map(|server| {
            let mut entry = serde_json::json!({ "urls": server.urls });
            if trusted {
                if let Some(username) = &server.username {
                    entry["username"] = username.clone().into();
                }
                if let Some(credential) = &server.credential {
                    entry["credential"] = credential.clone().into();
                }
            }
            entry
        })
        .collect();
    Ok(Json(serde_json::json!({
        "authEnabled": state.bootstrap.auth_enabled,
        "recordEnabled": state.records.is_some(),
        "iceServers": ice_servers,
        "features": { "rooms": true, "records": true },
    }))
    .into_response())
}

#[derive(Debug, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
struct RecordJson {
    name: String,
    size: u64,
    mod_time: String,
    url: String,
}

/// `GET /api/records` (admin): `.ivf`/`.ogg` files, newest first then by name; `[]` without a
/// directory, `null` for a directory with none (go-live's nil slice).
async fn list_records(
    State(state): State<RoomsState>,
    request: axum::extract::Request,
) -> Result<Response, RoomsError> {
    let facts = facts(
        client_of(&request),
        request.method(),
        request.uri(),
        request.headers(),
    );
    rate_limited(&state, client_of(&request))?;
    state.gate.authorize_admin(&facts).await?;
    let Some(dir) = state.records.clone() else {
        return Ok(Json(Vec::<RecordJson>::new()).into_response());
    };
    let records = tokio::task::spawn_blocking(move || read_records(&dir))
        .await
        .map_err(|e| RoomsError::Unavailable(e.to_string()))?;
    Ok(match records {
        None => Json(Vec::<RecordJson>::new()).into_response(),
        Some(list) if list.is_empty() => Json(serde_json::Value::Null).into_response(),
        Some(list) => Json(list).into_response(),
    })
}

/// The recordings in `dir`, or `None` when it cannot be read.
fn read_records(dir: &std::path::Path) -> Option<Vec<RecordJson>> {
    // Sorted on the modTime as shown (whole seconds), then by name: a client re-sorting what
    // it sees gets the same order.
    let mut records: Vec<(u64, RecordJson)> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let name = entry.file_name().into_string().ok()?;
            if !(name.ends_with(".ivf") || name.ends_with(".ogg")) {
                return None;
            }
            let meta = entry.metadata().ok().filter(|m| m.is_file())?;
            let modified = meta.modified().ok()?;
            let seconds = modified.duration_since(UNIX_EPOCH).ok()?.as_secs();
            Some((
                seconds,
                RecordJson {
                    url: format!("/records/{name}"),
                    mod_time: humantime::format_rfc3339_seconds(modified).to_string(),
                    size: meta.len(),
                    name,
                },
            ))
        })
        .collect();
    records.sort_by(|(ta, a), (tb, b)| tb.cmp(ta).then_with(|| a.name.cmp(&b.name)));
    Some(records.into_iter().map(|(_, r)| r).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_match_exactly_or_by_host() {
        assert!(origin_allowed("https://app.example", "https://app.example"));
        assert!(origin_allowed(
            "https://app.example",
            "http://app.example:8080"
        ));
        assert!(!origin_allowed(
            "https://app.example",
            "https://evil.example"
        ));
    }

    #[test]
    fn room_names_follow_go_live() {
        assert!(valid_room("demo_1-A"));
        assert!(!valid_room(""));
        assert!(!valid_room("a/b"));
        assert!(!valid_room(&"x".repeat(65)));
    }

    #[test]
    fn records_are_media_files_newest_first_then_by_name() {
        let dir = std::env::temp_dir().join(format!("gatehouse-records-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        assert_eq!(read_records(&dir), Some(vec![]));
        for name in ["b.ivf", "a.ogg", "notes.txt"] {
            std::fs::write(dir.join(name), b"x").unwrap();
        }
        let names: Vec<String> = read_records(&dir)
            .unwrap()
            .into_iter()
            .map(|r| r.name)
            .collect();
        assert_eq!(names, ["a.ogg", "b.ivf"], "same second: by name");
        assert!(read_records(&dir.join("missing")).is_none());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
