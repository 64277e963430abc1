//! WHIP (RFC 9725) and WHEP, in two path families over one translator:
//!
//! - standard: `POST /v1/whip/{stream}`, `POST /v1/whep/{stream}`, session `/v1/session/{stream}/{id}`
//!   (DELETE → 200, `If-Match` required on PATCH);
//! - Live777: `POST /whip/{stream}`, `POST /whep/{stream}`, session `/session/{stream}/{id}`
//!   (DELETE → 204, unknown session on a live stream → 204, publisher DELETE closes the stream's
//!   subscribers, `If-Match` optional).
//!
//! Every client mistake is a 4xx with a short text body; errors map to statuses in one place,
//! [`WhipError::into_response`].

use axum::Router;
use axum::body::Bytes;
use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{patch, post};

use super::sdpfrag::{self, SdpFrag};
use crate::config::IceServerConfig;
use crate::gate::{Gate, GateError, RequestFacts};
use crate::media::{MediaError, PublisherLeave, RemoteCandidate, Role};

/// Which path family a request came through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flavor {
    Standard,
    Live777,
}

impl Flavor {
    fn session_prefix(self) -> &'static str {
        match self {
            Flavor::Standard => "/v1/session",
            Flavor::Live777 => "/session",
        }
    }
}

/// Who sent a request on an existing session, for its authorization.
struct Caller {
    client: SocketAddr,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
}

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Caller {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _state: &S,
    ) -> Result<Self, Self::Rejection> {
        let client = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map_or(SocketAddr::from(([0, 0, 0, 0], 0)), |c| c.0);
        Ok(Caller {
            client,
            method: parts.method.clone(),
            uri: parts.uri.clone(),
            headers: parts.headers.clone(),
        })
    }
}

impl Caller {
    /// The policies must let the caller use `stream` (see [`Gate::authorize_session_control`]).
    async fn may_control(
        &self,
        gate: &Gate,
        flavor: Flavor,
        stream: &str,
    ) -> Result<(), WhipError> {
        let facts = request_facts(flavor, self.client, &self.method, &self.uri, &self.headers);
        gate.authorize_session_control(&facts, stream)
            .await
            .map_err(|e| WhipError::from(e).for_flavor(flavor))
    }
}

/// Shared state of the WHIP/WHEP handlers.
#[derive(Clone)]
pub struct WhipState {
    pub gate: Gate,
    /// Largest accepted body (413 beyond).
    pub max_body_bytes: usize,
    /// Pre-rendered `Link: <…>; rel="ice-server"` values.
    pub ice_links: Vec<HeaderValue>,
}

impl WhipState {
    pub fn new(gate: Gate, ice_servers: &[IceServerConfig], max_body_bytes: usize) -> Self {
        let ice_links = ice_servers
            .iter()
            .flat_map(|server| server.urls.iter().map(move |url| ice_link(url, server)))
            .filter_map(|link| HeaderValue::from_str(&link).ok())
            .collect();
        Self {
            gate,
            max_body_bytes,
            ice_links,
        }
    }
}

fn ice_link(url: &str, server: &IceServerConfig) -> String {
    let mut link = format!("<{url}>; rel=\"ice-server\"");
    if let (Some(user), Some(credential)) = (&server.username, &server.credential) {
        link.push_str(&format!(
            "; username=\"{user}\"; credential=\"{credential}\"; credential-type=\"password\""
        ));
    }
    link
}

/// The WHIP/WHEP routes of both families.
pub fn routes(state: WhipState) -> Router {
    let create_route = |role, flavor| {
        post(move |state, path, request| create(state, path, request, role, flavor))
            .options(endpoint_options)
    };
    let patch_route = |flavor| {
        patch(move |state, path, caller, body| patch_session(state, path, caller, body, flavor))
            .options(session_options)
    };
    Router::new()
        .route(
            "/v1/whip/{stream}",
            create_route(Role::Publisher, Flavor::Standard),
        )
        .route(
            "/v1/whep/{stream}",
            create_route(Role::Subscriber, Flavor::Standard).head(whep_head),
        )
        .route(
            "/v1/session/{stream}/{session}",
            patch_route(Flavor::Standard).delete(standard_delete),
        )
        .route(
            "/whip/{stream}",
            create_route(Role::Publisher, Flavor::Live777),
        )
        .route(
            "/whep/{stream}",
            create_route(Role::Subscriber, Flavor::Live777).head(whep_head),
        )
        .route(
            "/session/{stream}/{session}",
            patch_route(Flavor::Live777).delete(live777_delete),
        )
        .with_state(state)
}

/// A WHIP/WHEP request that cannot be served, and its status.
#[derive(Debug, thiserror::Error)]
pub enum WhipError {
    #[error("Content-Type must be {0}")]
    UnsupportedMediaType(&'static str),
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("If-Match does not match the current ICE session")]
    PreconditionFailed,
    #[error("If-Match is required")]
    PreconditionRequired,
    #[error("request body too large")]
    PayloadTooLarge,
    /// A policy decision; the status is the policy's.
    #[error("{reason}")]
    Denied { status: StatusCode, reason: String },
    /// A policy decision in Live777's words: 401 with an empty body, 403 `Don't permission`.
    #[error("{}", live777_denial_text(*.0))]
    Live777Denied(StatusCode),
    #[error("{0}")]
    Unavailable(String),
    /// The media thread is saturated; the client may retry (503 with Retry-After).
    #[error("{0}")]
    Overloaded(String),
    #[error("{0}")]
    Internal(String),
}

fn live777_denial_text(status: StatusCode) -> &'static str {
    match status {
        StatusCode::UNAUTHORIZED => "",
        StatusCode::FORBIDDEN => "Don't permission",
        _ => "denied",
    }
}

impl WhipError {
    /// The error as the path family's server says it (Live777's bare denials).
    fn for_flavor(self, flavor: Flavor) -> Self {
        match (self, flavor) {
            (WhipError::Denied { status, reason }, Flavor::Live777) => {
                tracing::info!(%status, %reason, "Live777 request denied");
                WhipError::Live777Denied(status)
            }
            (other, _) => other,
        }
    }
}

/// Seconds a client refused for overload is told to wait.
const OVERLOAD_RETRY_AFTER_SECS: u64 = 5;

impl From<GateError> for WhipError {
    fn from(e: GateError) -> Self {
        match e {
            GateError::StreamNotFound(_) => WhipError::NotFound(e.to_string()),
            GateError::Denied(denial) => WhipError::Denied {
                status: StatusCode::from_u16(denial.status).unwrap_or(StatusCode::FORBIDDEN),
                reason: denial.reason,
            },
            GateError::Media(m) => match m {
                MediaError::RoomNotFound(_)
                | MediaError::FeedNotFound { .. }
                | MediaError::SessionNotFound(_) => WhipError::NotFound(m.to_string()),
                MediaError::PublisherExists(_) | MediaError::RoomExists(_) => {
                    WhipError::Conflict(m.to_string())
                }
                MediaError::MalformedOffer(_)
                | MediaError::UnusableOffer(_)
                | MediaError::IceRestart(_) => WhipError::BadRequest(m.to_string()),
                MediaError::Stopped => WhipError::Unavailable(m.to_string()),
                MediaError::Overloaded { .. } => WhipError::Overloaded(m.to_string()),
                MediaError::Internal(_) => WhipError::Internal(m.to_string()),
            },
            GateError::Remote(r) => WhipError::Unavailable(r.to_string()),
        }
    }
}

impl IntoResponse for WhipError {
    fn into_response(self) -> Response {
        let status = match self {
            WhipError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            WhipError::BadRequest(_) => StatusCode::BAD_REQUEST,
            WhipError::NotFound(_) => StatusCode::NOT_FOUND,
            WhipError::Conflict(_) => StatusCode::CONFLICT,
            WhipError::PreconditionFailed => StatusCode::PRECONDITION_FAILED,
            WhipError::PreconditionRequired => StatusCode::PRECONDITION_REQUIRED,
            WhipError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            WhipError::Denied { status, .. } => status,
            WhipError::Live777Denied(StatusCode::UNAUTHORIZED) => {
                return StatusCode::UNAUTHORIZED.into_response();
            }
            WhipError::Live777Denied(status) => status,
            WhipError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            WhipError::Overloaded(_) => {
                let retry_after = [(header::RETRY_AFTER, OVERLOAD_RETRY_AFTER_SECS.to_string())];
                let body = format!("{self}\n");
                return (StatusCode::SERVICE_UNAVAILABLE, retry_after, body).into_response();
            }
            WhipError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        if status.is_server_error() {
            tracing::error!(error = %self, "WHIP/WHEP request failed");
        }
        (status, format!("{self}\n")).into_response()
    }
}

/// Stream names are path segments: letters, digits and `_ - . ~`, at most 128 characters.
fn check_stream_name(stream: &str) -> Result<(), WhipError> {
    let ok = !stream.is_empty()
        && stream.len() <= 128
        && stream
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b'~'));
    if ok {
        Ok(())
    } else {
        Err(WhipError::BadRequest(
            "stream name must be 1-128 characters of A-Z a-z 0-9 _ - . ~".into(),
        ))
    }
}

fn content_type_is(headers: &HeaderMap, expected: &str) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case(expected))
}

fn utf8_body(body: Bytes) -> Result<String, WhipError> {
    String::from_utf8(body.to_vec())
        .map_err(|_| WhipError::BadRequest("body is not UTF-8 text".into()))
}

/// The dialect-neutral facts of a request, for the policies.
fn request_facts(
    flavor: Flavor,
    client: SocketAddr,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
) -> RequestFacts {
    let dialect = match flavor {
        Flavor::Standard => "whip",
        Flavor::Live777 => "live777",
    };
    RequestFacts::from_http(dialect, client, method, uri, headers)
}

async fn create(
    State(state): State<WhipState>,
    Path(stream): Path<String>,
    request: axum::extract::Request,
    role: Role,
    flavor: Flavor,
) -> Result<Response, WhipError> {
    let client = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(SocketAddr::from(([0, 0, 0, 0], 0)), |c| c.0);
    let (parts, body) = request.into_parts();
    let headers = parts.headers;
    check_stream_name(&stream)?;
    if !content_type_is(&headers, "application/sdp") {
        return Err(WhipError::UnsupportedMediaType("application/sdp"));
    }
    let body = axum::body::to_bytes(body, state.max_body_bytes)
        .await
        .map_err(|_| WhipError::PayloadTooLarge)?;
    let offer = utf8_body(body)?;
    let facts = request_facts(flavor, client, &parts.method, &parts.uri, &headers);
    let answer = match role {
        Role::Publisher => state.gate.publish(&facts, &stream, offer).await,
        Role::Subscriber => state.gate.subscribe(&facts, &stream, offer).await,
    }
    .map_err(|e| WhipError::from(e).for_flavor(flavor))?;
    let location = format!("{}/{stream}/{}", flavor.session_prefix(), answer.session_id);
    let mut response = (StatusCode::CREATED, answer.answer_sdp).into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/sdp"),
    );
    h.insert(
        header::LOCATION,
        HeaderValue::from_str(&location).map_err(|e| WhipError::Internal(e.to_string()))?,
    );
    h.insert(
        header::ETAG,
        HeaderValue::from_str(&answer.etag).map_err(|e| WhipError::Internal(e.to_string()))?,
    );
    h.insert(
        "accept-patch",
        HeaderValue::from_static(sdpfrag::CONTENT_TYPE),
    );
    for link in &state.ice_links {
        h.append(header::LINK, link.clone());
    }
    // The WHEP layer extension, when the publisher sends simulcast layers (as Live777 does).
    if role == Role::Subscriber
        && let Ok(layers) = state.gate.session_layers(&stream, &answer.session_id).await
        && !layers.is_empty()
        && let Ok(link) = HeaderValue::from_str(&format!(
            "<{location}/layer>; rel=\"urn:ietf:params:whep:ext:core:layer\""
        ))
    {
        response.headers_mut().append(header::LINK, link);
    }
    Ok(response)
}

async fn patch_session(
    State(state): State<WhipState>,
    Path((stream, session)): Path<(String, String)>,
    caller: Caller,
    body: Bytes,
    flavor: Flavor,
) -> Result<Response, WhipError> {
    caller.may_control(&state.gate, flavor, &stream).await?;
    let headers = caller.headers;
    if !content_type_is(&headers, sdpfrag::CONTENT_TYPE) {
        return Err(WhipError::UnsupportedMediaType(sdpfrag::CONTENT_TYPE));
    }
    let text = utf8_body(body)?;
    let frag = sdpfrag::parse(&text).map_err(|e| WhipError::BadRequest(e.to_string()))?;
    let ice = state.gate.session_ice(&stream, &session).await?;
    let if_match = headers.get(header::IF_MATCH).and_then(|v| v.to_str().ok());
    let restart = frag
        .ice_ufrag
        .as_deref()
        .is_some_and(|u| Some(u) != ice.remote_ufrag.as_deref());
    match (if_match.map(str::trim), flavor) {
        (None, Flavor::Standard) => return Err(WhipError::PreconditionRequired),
        (None, Flavor::Live777) => {}
        (Some("*" | "\"*\""), _) => {}
        (Some(tag), _) if tag == ice.etag => {}
        (Some(_), _) => return Err(WhipError::PreconditionFailed),
    }
    let candidates = remote_candidates(&frag);
    if !restart {
        state.gate.trickle(&stream, &session, candidates).await?;
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    let (Some(ufrag), Some(pwd)) = (frag.ice_ufrag, frag.ice_pwd) else {
        return Err(WhipError::BadRequest(
            "an ICE restart needs both a=ice-ufrag and a=ice-pwd".into(),
        ));
    };
    let answer = state
        .gate
        .ice_restart(&stream, &session, ufrag, pwd, candidates)
        .await?;
    let body =
        sdpfrag::answer_fragment(&answer.ufrag, &answer.pwd, &answer.candidates, &answer.mid);
    let mut response = (StatusCode::OK, body).into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(sdpfrag::CONTENT_TYPE),
    );
    h.insert(
        header::ETAG,
        HeaderValue::from_str(&answer.etag).map_err(|e| WhipError::Internal(e.to_string()))?,
    );
    Ok(response)
}

/// Candidates the media core can use; mDNS `.local` names cannot be resolved here and are
/// dropped (the peer-reflexive address from STUN checks replaces them).
fn remote_candidates(frag: &SdpFrag) -> Vec<RemoteCandidate> {
    frag.candidates
        .iter()
        .filter(|c| !c.is_mdns())
        .map(|c| RemoteCandidate {
            candidate: c.candidate.clone(),
            mid: c.mid.clone(),
            mline_index: c.mline_index,
        })
        .collect()
}

async fn standard_delete(
    State(state): State<WhipState>,
    Path((stream, session)): Path<(String, String)>,
    caller: Caller,
) -> Result<Response, WhipError> {
    caller
        .may_control(&state.gate, Flavor::Standard, &stream)
        .await?;
    state
        .gate
        .end_session(&stream, &session, PublisherLeave::IdleSubscribers)
        .await?;
    Ok(StatusCode::OK.into_response())
}

async fn live777_delete(
    State(state): State<WhipState>,
    Path((stream, session)): Path<(String, String)>,
    caller: Caller,
) -> Result<Response, WhipError> {
    caller
        .may_control(&state.gate, Flavor::Live777, &stream)
        .await?;
    match state
        .gate
        .end_session(&stream, &session, PublisherLeave::CloseSubscribers)
        .await
    {
        Ok(_) => Ok(StatusCode::NO_CONTENT.into_response()),
        // Live777 answers 204 for an unknown session of a stream that exists.
        Err(GateError::Media(MediaError::SessionNotFound(_)))
            if state.gate.room(&stream).await?.is_some() =>
        {
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        Err(e) => Err(e.into()),
    }
}

async fn endpoint_options() -> Response {
    let mut response = StatusCode::NO_CONTENT.into_response();
    response
        .headers_mut()
        .insert("accept-post", HeaderValue::from_static("application/sdp"));
    response
}

async fn session_options() -> Response {
    let mut response = StatusCode::NO_CONTENT.into_response();
    response.headers_mut().insert(
        "accept-patch",
        HeaderValue::from_static(sdpfrag::CONTENT_TYPE),
    );
    response
}

/// WHEP player discovery (`HEAD` → 200 with the SDP content type, no body).
async fn whep_head() -> Response {
    let mut response = StatusCode::OK.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/sdp"),
    );
    response
}
