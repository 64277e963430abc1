//! Janus's API (specs/janus.md): the core protocol over HTTP long-poll and over WebSocket
//! (subprotocol `janus-protocol`) at `/janus`, and the VideoRoom plugin, so janus.js and Janode
//! work unchanged. Every JSON reply is HTTP 200, errors included, as Janus does.

mod core;
mod protocol;
mod sessions;
mod streams;
mod videoroom;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use self::core::{JanusCore, Origin};
use crate::gate::{Gate, RequestFacts};

pub use videoroom::RoomConfig;

/// The WebSocket subprotocol Janus clients ask for.
const SUBPROTOCOL: &str = "janus-protocol";
/// How long a long poll is held before it answers `keepalive`.
const LONG_POLL_HOLD: Duration = Duration::from_secs(30);
/// Most events one long poll returns.
const MAX_EVENTS_PER_POLL: usize = 100;

/// The Janus API: one set of sessions and rooms, served on the gateway's port and on
/// `[janus] listen`.
#[derive(Clone)]
pub struct JanusApi {
    core: Arc<JanusCore>,
}

impl JanusApi {
    /// The API with `[janus]`'s rooms and those of its rooms file; `Err` names a rooms file
    /// that cannot be read. `permanent` rooms go to `[janus] rooms_file`, else back into the
    /// gateway's config file `source` (whose `[[janus.rooms]]` are then permanent).
    pub fn new(
        gate: Gate,
        config: &crate::config::JanusConfig,
        source: Option<&std::path::Path>,
    ) -> Result<Self, String> {
        let timeout = Duration::from_secs(config.session_timeout_secs);
        let file = match (&config.rooms_file, source) {
            (Some(path), _) => Some(videoroom::PermanentRooms::new(path.clone())),
            (None, Some(source)) => Some(videoroom::PermanentRooms::in_gateway_config(
                source.to_owned(),
            )),
            (None, None) => None,
        };
        let (configured, saved) = match &file {
            Some(_) if config.rooms_file.is_none() => (Vec::new(), config.rooms.clone()),
            Some(file) => (config.rooms.clone(), file.load()?),
            None => (config.rooms.clone(), Vec::new()),
        };
        let rooms = videoroom::Rooms {
            configured,
            saved,
            file,
            admin_key: config.admin_key.clone(),
            lock_rtp_forward: config.lock_rtp_forward,
        };
        Ok(Self {
            core: JanusCore::new(gate, rooms, timeout, config.slowlink_threshold),
        })
    }

    /// The routes under `/janus`, for the gateway's own port.
    pub fn routes(&self) -> Router {
        routes(self.core.clone())
    }

    /// A whole listener as Janus's transports serve it: `/janus` plus the WebSocket (and
    /// `POST`) at `/`.
    pub fn standalone_routes(&self) -> Router {
        Router::new()
            .route("/", post(root).get(root_get).options(preflight))
            .with_state(self.core.clone())
            .merge(routes(self.core.clone()))
    }
}

fn routes(core: Arc<JanusCore>) -> Router {
    Router::new()
        .route(
            "/janus",
            post(root)
                .get(root_get)
                .options(preflight)
                .fallback(unsupported_method),
        )
        .route(
            "/janus/info",
            get(info).options(preflight).fallback(unsupported_method),
        )
        .route(
            "/janus/{session}",
            post(session_post)
                .get(long_poll)
                .options(preflight)
                .fallback(unsupported_method),
        )
        .route(
            "/janus/{session}/{handle}",
            post(handle_post)
                .get(handle_get)
                .options(preflight)
                .fallback(unsupported_method),
        )
        .with_state(core)
}

/// Any other method: HTTP 200 with error 450, as Janus's HTTP transport answers.
async fn unsupported_method(method: Method) -> Response {
    let e = protocol::CoreError::new(
        protocol::code::TRANSPORT_SPECIFIC,
        format!("Unsupported method {method}"),
    );
    json_reply(protocol::error(None, None, &e))
}

fn json_reply(value: Value) -> Response {
    let mut response = (StatusCode::OK, axum::Json(value)).into_response();
    response.headers_mut().insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    response
}

fn facts(client: SocketAddr, method: &Method, uri: &Uri, headers: &HeaderMap) -> RequestFacts {
    RequestFacts::from_http("janus", client, method, uri, headers)
}

/// Runs one HTTP request through the core; async work starts once the ack is ready.
async fn run(core: &JanusCore, body: &str, origin: Origin) -> Response {
    let (reply, work) = core.handle(body, &origin).await;
    if let Some(work) = work {
        tokio::spawn(work);
    }
    json_reply(reply)
}

/// A path id that is not a number is a session or handle that does not exist.
fn path_id(text: &str, what: u16) -> Result<u64, protocol::CoreError> {
    text.parse()
        .map_err(|_| protocol::CoreError::new(what, format!("Invalid id {text}")))
}

fn path_error(e: &protocol::CoreError) -> Response {
    json_reply(protocol::error(None, None, e))
}

async fn root(
    State(core): State<Arc<JanusCore>>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: String,
) -> Response {
    let origin = Origin {
        path_session: None,
        path_handle: None,
        sink: None,
        facts: facts(client, &method, &uri, &headers),
    };
    run(&core, &body, origin).await
}

/// `GET /janus`: the WebSocket transport, or an error for plain GETs.
async fn root_get(
    State(core): State<Arc<JanusCore>>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let Ok(upgrade) = upgrade else {
        let e = protocol::CoreError::new(protocol::code::TRANSPORT_SPECIFIC, "Unsupported method");
        return json_reply(protocol::error(None, None, &e));
    };
    let facts = facts(client, &method, &uri, &headers);
    upgrade
        .protocols([SUBPROTOCOL])
        .on_upgrade(move |socket| serve_socket(core, socket, facts))
}

async fn info(State(core): State<Arc<JanusCore>>) -> Response {
    json_reply(protocol::server_info(None, core.timeout_secs()))
}

async fn session_post(
    State(core): State<Arc<JanusCore>>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    Path(session): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: String,
) -> Response {
    let session = match path_id(&session, protocol::code::SESSION_NOT_FOUND) {
        Ok(id) => id,
        Err(e) => return path_error(&e),
    };
    let origin = Origin {
        path_session: Some(session),
        path_handle: None,
        sink: None,
        facts: facts(client, &method, &uri, &headers),
    };
    run(&core, &body, origin).await
}

async fn handle_post(
    State(core): State<Arc<JanusCore>>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    Path((session, handle)): Path<(String, String)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: String,
) -> Response {
    let ids = path_id(&session, protocol::code::SESSION_NOT_FOUND)
        .and_then(|s| Ok((s, path_id(&handle, protocol::code::HANDLE_NOT_FOUND)?)));
    let (session, handle) = match ids {
        Ok(ids) => ids,
        Err(e) => return path_error(&e),
    };
    let origin = Origin {
        path_session: Some(session),
        path_handle: Some(handle),
        sink: None,
        facts: facts(client, &method, &uri, &headers),
    };
    run(&core, &body, origin).await
}

#[derive(Deserialize)]
struct PollQuery {
    maxev: Option<usize>,
}

/// `GET /janus/{session}`: the long poll (30 s, then `keepalive`); arrays when `maxev` > 1.
async fn long_poll(
    State(core): State<Arc<JanusCore>>,
    Path(session): Path<String>,
    Query(query): Query<PollQuery>,
) -> Response {
    let Some(session) = session.parse().ok().and_then(|id| core.sessions.get(id)) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    session.touch();
    let maxev = query.maxev.unwrap_or(1).clamp(1, MAX_EVENTS_PER_POLL);
    let mut events = session.poll(maxev, LONG_POLL_HOLD).await;
    session.touch();
    if events.is_empty() {
        events.push(json!({"janus": "keepalive"}));
    }
    if maxev == 1 {
        json_reply(events.swap_remove(0))
    } else {
        json_reply(Value::Array(events))
    }
}

/// `GET /janus/{session}/{handle}` redirects to the session's long poll, as Janus does.
async fn handle_get(Path((session, _)): Path<(String, String)>) -> Response {
    let location = format!("/janus/{session}");
    match HeaderValue::from_str(&location) {
        Ok(value) => (StatusCode::FOUND, [(header::LOCATION, value)]).into_response(),
        Err(_) => StatusCode::NOT_FOUND.into_response(),
    }
}

/// CORS preflight: the requested method and headers are echoed.
async fn preflight(headers: HeaderMap) -> Response {
    let echo = |name: header::HeaderName, fallback: &'static str| {
        headers
            .get(name)
            .cloned()
            .unwrap_or_else(|| HeaderValue::from_static(fallback))
    };
    let methods = echo(header::ACCESS_CONTROL_REQUEST_METHOD, "GET, POST, OPTIONS");
    let allowed = echo(header::ACCESS_CONTROL_REQUEST_HEADERS, "content-type");
    (
        StatusCode::OK,
        [
            (
                header::ACCESS_CONTROL_ALLOW_ORIGIN,
                HeaderValue::from_static("*"),
            ),
            (header::ACCESS_CONTROL_ALLOW_METHODS, methods),
            (header::ACCESS_CONTROL_ALLOW_HEADERS, allowed),
        ],
    )
        .into_response()
}

/// One WebSocket: each text frame is a request; replies and the events of the sessions
/// created (or claimed) on it go back on it. Closing it destroys those it still owns.
async fn serve_socket(core: Arc<JanusCore>, mut socket: WebSocket, facts: RequestFacts) {
    let (sink, mut outgoing) = mpsc::unbounded_channel::<Value>();
    let origin = Origin {
        path_session: None,
        path_handle: None,
        sink: Some(sink.clone()),
        facts,
    };
    let mut created = Vec::new();
    loop {
        tokio::select! {
            message = outgoing.recv() => {
                let Some(message) = message else { break };
                if socket.send(Message::Text(message.to_string().into())).await.is_err() {
                    break;
                }
            }
            frame = socket.recv() => {
                let text = match frame {
                    Some(Ok(Message::Text(text))) => text.to_string(),
                    Some(Ok(Message::Binary(bytes))) => String::from_utf8_lossy(&bytes).into_owned(),
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                    Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break,
                };
                let (reply, work) = core.handle(&text, &origin).await;
                if reply["janus"] == "success"
                    && let Some(id) = reply["data"]["id"].as_u64()
                    && reply.get("session_id").is_none()
                {
                    created.push(id);
                }
                // A session claimed on this socket is this socket's from now on.
                if reply["janus"] == "success"
                    && let Some(id) = reply["session_id"].as_u64()
                    && text.contains("\"claim\"")
                    && !created.contains(&id)
                {
                    created.push(id);
                }
                let _ = sink.send(reply);
                if let Some(work) = work {
                    tokio::spawn(work);
                }
            }
        }
    }
    for id in created {
        // A session claimed by another transport since lives on there.
        let owned = core.sessions.get(id).is_some_and(|s| s.bound_to(&sink));
        if owned && let Some(session) = core.sessions.remove(id) {
            tracing::debug!(session = id, "janus socket closed: session destroyed");
            core.end_session(&session).await;
        }
    }
}
