//! runner365 cpp_media_server's publish/subscribe API (specs/dialects.md §3): several uids
//! publish in one room, each a feed of the stream model; a subscriber names the remote uid.
//!
//! Both path forms are served for all four operations: the original
//! `/publish/{roomId}/{uid}`, `/unpublish/{roomId}/{uid}`,
//! `/subscribe/{roomId}/{uid}/{remoteUid}`, `/unsubscribe/{roomId}/{uid}/{remoteUid}`, and the
//! later `/whip/…` form (`/whip/subscribe/{roomId}/{remoteUid}` lets the server name the
//! subscriber; `/whip/unsubscribe/{roomId}/{uid}` closes that subscriber's sessions).
//!
//! As the original, every reply is HTTP 200 with `text/plain;charset=utf-8`: an SDP answer or
//! an error string for publish/subscribe, `{"code":0|400,"desc":…}` for the two closes. Errors
//! map to strings in one place, [`Runner365Error`].

use std::net::SocketAddr;

use axum::Router;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};

use super::with_headers;
use axum::response::{IntoResponse, Response};
use axum::routing::post;

use crate::gate::{Gate, GateError, RequestFacts};
use crate::media::{MediaError, Role, SessionSnapshot};
use crate::policy::Action;

/// Shared state of the runner365 handlers.
#[derive(Clone)]
pub struct Runner365State {
    pub gate: Gate,
    /// Largest accepted offer.
    pub max_body_bytes: usize,
}

/// The four operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Operation {
    Publish,
    Unpublish,
    Subscribe,
    Unsubscribe,
}

/// The path form a request came through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Form {
    Original,
    Whip,
}

/// The names a request's path carries.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Target {
    room: String,
    /// The caller's own uid; `None` when the server names the subscriber.
    uid: Option<String>,
    /// The uid subscribed to (or unsubscribed from); `None` for "every remote".
    remote: Option<String>,
}

/// The runner365 routes, both forms.
pub fn routes(state: Runner365State) -> Router {
    let op = |operation, form| {
        post(move |state, path, request| handle(state, path, request, operation, form))
            .options(preflight)
    };
    Router::new()
        .route("/publish/{*rest}", op(Operation::Publish, Form::Original))
        .route(
            "/unpublish/{*rest}",
            op(Operation::Unpublish, Form::Original),
        )
        .route(
            "/subscribe/{*rest}",
            op(Operation::Subscribe, Form::Original),
        )
        .route(
            "/unsubscribe/{*rest}",
            op(Operation::Unsubscribe, Form::Original),
        )
        .route("/whip/publish/{*rest}", op(Operation::Publish, Form::Whip))
        .route(
            "/whip/unpublish/{*rest}",
            op(Operation::Unpublish, Form::Whip),
        )
        .route(
            "/whip/subscribe/{*rest}",
            op(Operation::Subscribe, Form::Whip),
        )
        .route(
            "/whip/unsubscribe/{*rest}",
            op(Operation::Unsubscribe, Form::Whip),
        )
        .with_state(state)
}

/// Why a runner365 request failed; shown as the original shows it (a string, or a code-400
/// JSON for the closes), always with HTTP 200.
#[derive(Debug, thiserror::Error)]
enum Runner365Error {
    #[error("wrong http path")]
    WrongPath,
    #[error("{0} must be 1-128 characters of A-Z a-z 0-9 _ - . ~")]
    BadName(&'static str),
    #[error("request body too large")]
    BodyTooLarge,
    #[error("sdp offer is not UTF-8 text")]
    NotText,
    #[error("get room error by roomid {0}")]
    RoomNotFound(String),
    /// The remote uid publishes nothing in the room (the original's words, without the uid).
    #[error("live subscriber uid doesn't exist")]
    RemoteNotFound(String),
    #[error("uid {0} is already publishing in this room")]
    AlreadyPublishing(String),
    #[error("publisher uid {0} doesn't exist")]
    NoSuchPublisher(String),
    #[error("subscriber uid {0} doesn't exist")]
    NoSuchSubscriber(String),
    #[error("{0}")]
    Denied(String),
    #[error("{0}")]
    Offer(String),
    #[error("{0}")]
    Server(String),
    /// The media thread is saturated (already logged by the media core).
    #[error("{0}")]
    Overloaded(String),
}

impl Runner365Error {
    fn from_gate(e: GateError, remote: Option<&str>, uid: Option<&str>) -> Self {
        match e {
            GateError::StreamNotFound(room) => Runner365Error::RoomNotFound(room),
            GateError::Denied(denial) => Runner365Error::Denied(denial.reason),
            GateError::Media(m) => match m {
                MediaError::RoomNotFound(room) => Runner365Error::RoomNotFound(room),
                MediaError::FeedNotFound { feed, .. } => Runner365Error::RemoteNotFound(feed),
                MediaError::PublisherExists(_) => {
                    Runner365Error::AlreadyPublishing(uid.unwrap_or_default().to_owned())
                }
                MediaError::SessionNotFound(_) => {
                    Runner365Error::RemoteNotFound(remote.unwrap_or_default().to_owned())
                }
                MediaError::MalformedOffer(_)
                | MediaError::UnusableOffer(_)
                | MediaError::IceRestart(_) => Runner365Error::Offer(m.to_string()),
                MediaError::Overloaded { .. } => Runner365Error::Overloaded(m.to_string()),
                MediaError::RoomExists(_) | MediaError::Internal(_) | MediaError::Stopped => {
                    Runner365Error::Server(m.to_string())
                }
            },
            GateError::Remote(r) => Runner365Error::Server(r.to_string()),
        }
    }

    fn log(&self) {
        if matches!(self, Runner365Error::Server(_)) {
            tracing::error!(error = %self, "runner365 request failed");
        }
    }
}

/// The original's CORS and type headers on every API reply.
fn reply(body: String, location: Option<String>) -> Response {
    let mut response = with_headers(
        (StatusCode::OK, body).into_response(),
        &[
            (header::CONTENT_TYPE, "text/plain;charset=utf-8"),
            (header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"),
            (header::ACCESS_CONTROL_ALLOW_METHODS, "POST"),
            (header::ACCESS_CONTROL_ALLOW_HEADERS, "*"),
            (
                header::ALLOW,
                "GET, HEAD, POST, PUT, DELETE, TRACE, OPTIONS, PATCH",
            ),
            (header::VARY, "Access-Control-Request-Headers"),
        ],
    );
    if let Some(value) = location.and_then(|l| HeaderValue::from_str(&l).ok()) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}

fn close_reply(result: Result<(), Runner365Error>) -> Response {
    let (code, desc) = match result {
        Ok(()) => (0, "ok".to_owned()),
        Err(e) => {
            e.log();
            (400, e.to_string())
        }
    };
    reply(
        serde_json::json!({ "code": code, "desc": desc }).to_string(),
        None,
    )
}

/// `OPTIONS` on any runner365 path, as the original answers it.
async fn preflight() -> Response {
    with_headers(
        StatusCode::OK.into_response(),
        &[
            (header::CONTENT_LENGTH, "0"),
            (header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"),
            (header::ACCESS_CONTROL_ALLOW_METHODS, "GET, POST, PUT"),
            (header::ACCESS_CONTROL_ALLOW_HEADERS, "*"),
            (
                HeaderName::from_static("access-control-allow-private-network"),
                "true",
            ),
        ],
    )
}

/// Room ids and uids are path segments: letters, digits and `_ - . ~`, at most 128.
fn check_name(what: &'static str, name: &str) -> Result<(), Runner365Error> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b'~'));
    ok.then_some(()).ok_or(Runner365Error::BadName(what))
}

/// Reads the names after the operation's prefix; a wrong segment count is the original's
/// `wrong http path`.
fn parse_target(rest: &str, operation: Operation, form: Form) -> Result<Target, Runner365Error> {
    let segments: Vec<&str> = rest.trim_end_matches('/').split('/').collect();
    let owned = |s: &str| Some(s.to_owned());
    let target = match (operation, form, segments.as_slice()) {
        (Operation::Publish | Operation::Unpublish, _, [room, uid]) => Target {
            room: (*room).to_owned(),
            uid: owned(uid),
            remote: None,
        },
        (Operation::Subscribe | Operation::Unsubscribe, _, [room, uid, remote]) => Target {
            room: (*room).to_owned(),
            uid: owned(uid),
            remote: owned(remote),
        },
        (Operation::Subscribe, Form::Whip, [room, remote]) => Target {
            room: (*room).to_owned(),
            uid: None,
            remote: owned(remote),
        },
        (Operation::Unsubscribe, Form::Whip, [room, uid]) => Target {
            room: (*room).to_owned(),
            uid: owned(uid),
            remote: None,
        },
        _ => return Err(Runner365Error::WrongPath),
    };
    check_name("roomId", &target.room)?;
    if let Some(uid) = &target.uid {
        check_name("uid", uid)?;
    }
    if let Some(remote) = &target.remote {
        check_name("remoteUid", remote)?;
    }
    Ok(target)
}

async fn handle(
    State(state): State<Runner365State>,
    Path(rest): Path<String>,
    request: axum::extract::Request,
    operation: Operation,
    form: Form,
) -> Response {
    let client = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(SocketAddr::from(([0, 0, 0, 0], 0)), |c| c.0);
    let (parts, body) = request.into_parts();
    let facts = RequestFacts::from_http(
        "runner365",
        client,
        &parts.method,
        &parts.uri,
        &parts.headers,
    );
    let target = match parse_target(&rest, operation, form) {
        Ok(target) => target,
        // The original writes this one before any CORS or Content-Type header.
        Err(Runner365Error::WrongPath) => {
            return Response::new(axum::body::Body::from("wrong http path"));
        }
        Err(e) if matches!(operation, Operation::Unpublish | Operation::Unsubscribe) => {
            return close_reply(Err(e));
        }
        Err(e) => return reply(e.to_string(), None),
    };
    match operation {
        Operation::Publish | Operation::Subscribe => {
            let offer = match axum::body::to_bytes(body, state.max_body_bytes).await {
                Ok(bytes) => String::from_utf8(bytes.to_vec()).map_err(|_| Runner365Error::NotText),
                Err(_) => Err(Runner365Error::BodyTooLarge),
            };
            match offer {
                Ok(offer) => open(&state.gate, &facts, operation, &target, offer).await,
                Err(e) => reply(e.to_string(), None),
            }
        }
        Operation::Unpublish => close_reply(unpublish(&state.gate, &facts, &target).await),
        Operation::Unsubscribe => close_reply(unsubscribe(&state.gate, &facts, &target).await),
    }
}

/// Publish or subscribe: the SDP answer, or the error string in its place.
async fn open(
    gate: &Gate,
    facts: &RequestFacts,
    operation: Operation,
    target: &Target,
    offer: String,
) -> Response {
    let result = match (operation, &target.uid, &target.remote) {
        (Operation::Publish, Some(uid), _) => {
            gate.publish_feed(facts, &target.room, uid, offer).await
        }
        (Operation::Subscribe, uid, Some(remote)) => {
            // The `/whip/` form lets the server name the subscriber: its session id.
            let label = uid.clone();
            gate.subscribe_feed(facts, &target.room, remote, label.as_deref(), offer)
                .await
        }
        _ => return reply(Runner365Error::WrongPath.to_string(), None),
    };
    match result {
        Ok(answer) => {
            let kind = match operation {
                Operation::Publish => "publisher",
                _ => "subscriber",
            };
            let location = format!("/{kind}/{}", answer.session_id);
            reply(answer.answer_sdp, Some(location))
        }
        Err(e) => {
            let e = Runner365Error::from_gate(e, target.remote.as_deref(), target.uid.as_deref());
            e.log();
            // The original names a session even when it failed (a path nothing routes).
            let kind = match operation {
                Operation::Publish => "publisher",
                _ => "subscriber",
            };
            let location = format!("/{kind}/{}", uuid::Uuid::new_v4().simple());
            reply(e.to_string(), Some(location))
        }
    }
}

async fn unpublish(
    gate: &Gate,
    facts: &RequestFacts,
    target: &Target,
) -> Result<(), Runner365Error> {
    let uid = target.uid.clone().unwrap_or_default();
    let is_publisher = |s: &SessionSnapshot| s.role == Role::Publisher && s.feed == uid;
    end(gate, facts, Action::Publish, target, is_publisher)
        .await?
        .then_some(())
        .ok_or(Runner365Error::NoSuchPublisher(uid.clone()))
}

async fn unsubscribe(
    gate: &Gate,
    facts: &RequestFacts,
    target: &Target,
) -> Result<(), Runner365Error> {
    let uid = target.uid.clone().unwrap_or_default();
    let remote = target.remote.clone();
    let is_subscription = |s: &SessionSnapshot| {
        s.role == Role::Subscriber
            && (s.label.as_deref() == Some(uid.as_str()) || s.id == uid)
            && remote.as_ref().is_none_or(|r| &s.feed == r)
    };
    end(gate, facts, Action::Subscribe, target, is_subscription)
        .await?
        .then_some(())
        .ok_or(Runner365Error::NoSuchSubscriber(uid.clone()))
}

/// Ends the selected sessions; false when there were none.
async fn end(
    gate: &Gate,
    facts: &RequestFacts,
    action: Action,
    target: &Target,
    matches: impl Fn(&SessionSnapshot) -> bool,
) -> Result<bool, Runner365Error> {
    gate.end_sessions_where(facts, action, &target.room, matches)
        .await
        .map(|ended| ended > 0)
        .map_err(|e| Runner365Error::from_gate(e, target.remote.as_deref(), target.uid.as_deref()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(room: &str, uid: Option<&str>, remote: Option<&str>) -> Target {
        Target {
            room: room.into(),
            uid: uid.map(Into::into),
            remote: remote.map(Into::into),
        }
    }

    #[test]
    fn original_subscribe_path_names_room_uid_and_remote() {
        let t = parse_target("2001/6547/4489", Operation::Subscribe, Form::Original);
        assert_eq!(t.ok(), Some(target("2001", Some("6547"), Some("4489"))));
    }

    #[test]
    fn whip_subscribe_path_lets_the_server_name_the_subscriber() {
        let t = parse_target("2001/4489", Operation::Subscribe, Form::Whip);
        assert_eq!(t.ok(), Some(target("2001", None, Some("4489"))));
    }

    #[test]
    fn original_subscribe_with_two_segments_is_a_wrong_path() {
        let t = parse_target("2001/4489", Operation::Subscribe, Form::Original);
        assert!(matches!(t, Err(Runner365Error::WrongPath)));
    }

    #[test]
    fn publish_with_extra_segment_is_a_wrong_path() {
        let t = parse_target("2001/6547/x", Operation::Publish, Form::Whip);
        assert!(matches!(t, Err(Runner365Error::WrongPath)));
    }

    #[test]
    fn uid_with_a_space_is_rejected_by_name() {
        let t = parse_target("2001/a b", Operation::Publish, Form::Original);
        assert_eq!(
            t.err().map(|e| e.to_string()),
            Some("uid must be 1-128 characters of A-Z a-z 0-9 _ - . ~".into())
        );
    }

    #[test]
    fn whip_unsubscribe_takes_room_and_own_uid() {
        let t = parse_target("2001/6547/", Operation::Unsubscribe, Form::Whip);
        assert_eq!(t.ok(), Some(target("2001", Some("6547"), None)));
    }
}
