//! Live777's streams API (specs/dialects.md §2.1–2.2): the listing `GET /api/streams/` (and
//! `?streams=a&streams=b`) in its exact JSON shape, `GET /api/streams/{id}`, and the operator's
//! `POST` (create, 204 / 409) and `DELETE` (204 / 404) of a stream, authorized as `admin`, and
//! `POST /api/cascade/{id}` (pull from a WHEP `sourceUrl` or push to a WHIP `targetUrl`).

use axum::Json;
use axum::Router;
use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};

use crate::cascade::RemoteError;
use crate::gate::{CascadeDirection, Gate, GateError, RequestFacts};
use crate::media::{CascadeLink, MediaError, Role, RoomSnapshot};

/// `GET /api/streams/` (the trailing slash is part of Live777's path) and
/// `GET|POST|DELETE /api/streams/{id}`.
pub fn routes(gate: Gate) -> Router {
    let operator = || axum::middleware::from_fn_with_state(gate.clone(), require_operator);
    Router::new()
        .route("/api/streams/", get(list_streams).route_layer(operator()))
        .route(
            "/api/streams/{stream}",
            get(get_stream)
                .route_layer(operator())
                .post(create_stream)
                .delete(delete_stream),
        )
        .route("/api/cascade/{stream}", post(cascade))
        .with_state(gate)
}

/// Live777's reads (listings, strategy, SSE) name every session, and a session id is enough to
/// end it: the policies must grant `admin` (open while no token is configured, as in Live777).
pub(super) async fn require_operator(
    State(gate): State<Gate>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    match gate.authorize_admin(&facts(&request)).await {
        Ok(_) => next.run(request).await,
        Err(e) => StreamsError::from(e).into_response(),
    }
}

/// A Live777 streams-API failure: Live777 answers with a status and a plain-text reason.
#[derive(Debug, thiserror::Error)]
enum StreamsError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    /// The other server of a cascade refused or failed.
    #[error("{0}")]
    BadGateway(String),
    #[error("{reason}")]
    Denied { status: StatusCode, reason: String },
    #[error("{0}")]
    Unavailable(String),
}

impl From<GateError> for StreamsError {
    fn from(e: GateError) -> Self {
        match e {
            GateError::StreamNotFound(_) => StreamsError::NotFound(e.to_string()),
            GateError::Denied(denial) => StreamsError::Denied {
                status: StatusCode::from_u16(denial.status).unwrap_or(StatusCode::FORBIDDEN),
                reason: denial.reason,
            },
            GateError::Media(MediaError::RoomNotFound(_)) => StreamsError::NotFound(e.to_string()),
            GateError::Media(
                MediaError::RoomExists(_)
                | MediaError::PublisherExists(_)
                | MediaError::UnusableOffer(_),
            ) => StreamsError::Conflict(e.to_string()),
            GateError::Media(m) => StreamsError::Unavailable(m.to_string()),
            GateError::Remote(r @ RemoteError::BadUrl(_)) => {
                StreamsError::BadRequest(r.to_string())
            }
            GateError::Remote(r) => StreamsError::BadGateway(r.to_string()),
        }
    }
}

impl IntoResponse for StreamsError {
    fn into_response(self) -> Response {
        let status = match &self {
            StreamsError::BadRequest(_) => StatusCode::BAD_REQUEST,
            StreamsError::NotFound(_) => StatusCode::NOT_FOUND,
            StreamsError::Conflict(_) => StatusCode::CONFLICT,
            StreamsError::BadGateway(_) => StatusCode::BAD_GATEWAY,
            // Live777's own words: 401 with an empty body, 403 `Don't permission`.
            StreamsError::Denied { status, reason } => {
                tracing::info!(%status, %reason, "Live777 request denied");
                return match *status {
                    StatusCode::UNAUTHORIZED => StatusCode::UNAUTHORIZED.into_response(),
                    status => (status, "Don't permission").into_response(),
                };
            }
            StreamsError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        };
        (status, format!("{self}\n")).into_response()
    }
}

fn client_of(request: &axum::extract::Request) -> SocketAddr {
    request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(SocketAddr::from(([0, 0, 0, 0], 0)), |c| c.0)
}

fn facts(request: &axum::extract::Request) -> RequestFacts {
    RequestFacts::from_http(
        "live777",
        client_of(request),
        request.method(),
        request.uri(),
        request.headers(),
    )
}

/// `GET /api/streams/{id}`: one stream, or 404.
async fn get_stream(
    State(gate): State<Gate>,
    Path(stream): Path<String>,
) -> Result<Json<StreamJson>, StreamsError> {
    let rooms = gate.rooms().await?;
    rooms
        .into_iter()
        .find(|r| r.name == stream)
        .map(|r| Json(stream_json(r)))
        .ok_or_else(|| StreamsError::NotFound(format!("stream `{stream}` does not exist")))
}

/// `POST /api/streams/{id}`: an empty stream; 409 if it exists.
async fn create_stream(
    State(gate): State<Gate>,
    Path(stream): Path<String>,
    request: axum::extract::Request,
) -> Result<StatusCode, StreamsError> {
    gate.create_stream(&facts(&request), &stream).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `DELETE /api/streams/{id}`: ends its sessions and removes it; 404 if unknown.
async fn delete_stream(
    State(gate): State<Gate>,
    Path(stream): Path<String>,
    request: axum::extract::Request,
) -> Result<StatusCode, StreamsError> {
    gate.delete_stream(&facts(&request), &stream).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The body of `POST /api/cascade/{id}`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CascadeBody {
    token: Option<String>,
    source_url: Option<String>,
    target_url: Option<String>,
}

/// Exactly one of the two URLs says which way the media goes.
fn cascade_direction(body: CascadeBody) -> Result<CascadeDirection, StreamsError> {
    match (body.source_url, body.target_url) {
        (Some(source_url), None) => Ok(CascadeDirection::Pull { source_url }),
        (None, Some(target_url)) => Ok(CascadeDirection::Push { target_url }),
        _ => Err(StreamsError::BadRequest(
            "give exactly one of sourceUrl (pull) and targetUrl (push)".into(),
        )),
    }
}

/// `POST /api/cascade/{id}`: 200 with an empty body once the remote answered.
async fn cascade(
    State(gate): State<Gate>,
    Path(stream): Path<String>,
    request: axum::extract::Request,
) -> Result<StatusCode, StreamsError> {
    let facts = facts(&request);
    let body = axum::body::to_bytes(request.into_body(), 64 * 1024)
        .await
        .map_err(|_| StreamsError::BadRequest("request body too large".into()))?;
    let body: CascadeBody = serde_json::from_slice(&body)
        .map_err(|e| StreamsError::BadRequest(format!("invalid cascade body: {e}")))?;
    let token = body.token.clone().filter(|t| !t.is_empty());
    let direction = cascade_direction(body)?;
    gate.cascade(&facts, &stream, direction, token).await?;
    Ok(StatusCode::OK)
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct StreamJson {
    id: String,
    created_at: u64,
    publish: PubSubJson,
    subscribe: PubSubJson,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PubSubJson {
    leave_at: u64,
    sessions: Vec<SessionJson>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SessionJson {
    id: String,
    created_at: u64,
    state: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    cascade: Option<CascadeJson>,
}

/// Live777's `cascade` object of a session.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CascadeJson {
    #[serde(skip_serializing_if = "Option::is_none")]
    source_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    target_url: Option<String>,
    session_url: String,
}

impl From<&CascadeLink> for CascadeJson {
    fn from(link: &CascadeLink) -> Self {
        Self {
            source_url: link.source_url.clone(),
            target_url: link.target_url.clone(),
            session_url: link.session_url.clone().unwrap_or_default(),
        }
    }
}

pub(super) fn stream_json(room: RoomSnapshot) -> StreamJson {
    let sessions = |role: Role| {
        room.sessions
            .iter()
            .filter(|s| s.role == role)
            .map(|s| SessionJson {
                id: s.id.clone(),
                created_at: s.created_at_ms,
                state: s.state.clone(),
                cascade: s.cascade.as_ref().map(CascadeJson::from),
            })
            .collect::<Vec<_>>()
    };
    // Live777 reports the creation time as the leave time of a side nobody has joined yet.
    let leave_at = |present: usize, left_at: u64| match (present, left_at) {
        (0, 0) => room.created_at_ms,
        (0, t) => t,
        _ => 0,
    };
    StreamJson {
        publish: PubSubJson {
            leave_at: leave_at(room.publishers, room.publisher_left_at_ms),
            sessions: sessions(Role::Publisher),
        },
        subscribe: PubSubJson {
            leave_at: leave_at(room.subscribers, room.subscriber_left_at_ms),
            sessions: sessions(Role::Subscriber),
        },
        id: room.name.clone(),
        created_at: room.created_at_ms,
    }
}

/// The `streams` query values (`?streams=a&streams=b`); empty means all.
pub(super) fn stream_filter(query: Option<&str>) -> Vec<String> {
    form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .filter(|(key, value)| key == "streams" && !value.is_empty())
        .map(|(_, value)| value.into_owned())
        .collect()
}

async fn list_streams(State(gate): State<Gate>, RawQuery(query): RawQuery) -> Response {
    let wanted = stream_filter(query.as_deref());
    match gate.rooms().await {
        Ok(rooms) => {
            let streams: Vec<StreamJson> = rooms
                .into_iter()
                .filter(|r| wanted.is_empty() || wanted.contains(&r.name))
                .map(stream_json)
                .collect();
            Json(streams).into_response()
        }
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, format!("{e}\n")).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(source: Option<&str>, target: Option<&str>) -> CascadeBody {
        CascadeBody {
            token: None,
            source_url: source.map(Into::into),
            target_url: target.map(Into::into),
        }
    }

    #[test]
    fn cascade_with_both_or_neither_url_is_a_bad_request() {
        assert!(matches!(
            cascade_direction(body(Some("http://a/whep/x"), Some("http://b/whip/x"))),
            Err(StreamsError::BadRequest(_))
        ));
        assert!(matches!(
            cascade_direction(body(None, None)),
            Err(StreamsError::BadRequest(_))
        ));
        assert_eq!(
            cascade_direction(body(Some("http://a/whep/x"), None)).ok(),
            Some(CascadeDirection::Pull {
                source_url: "http://a/whep/x".into()
            })
        );
    }

    #[test]
    fn repeated_streams_parameters_form_the_filter() {
        assert_eq!(
            stream_filter(Some("streams=a&streams=b%2D1&x=1")),
            ["a", "b-1"]
        );
        assert!(stream_filter(None).is_empty());
    }
}
