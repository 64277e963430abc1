//! Live777's stream listing, `GET /api/streams/` (and `?streams=a&streams=b`), in its exact
//! JSON shape (specs/dialects.md §2.2).

use axum::Json;
use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Serialize;

use crate::gate::Gate;
use crate::media::{Role, RoomSnapshot};

/// `GET /api/streams/` (the trailing slash is part of Live777's path).
pub fn routes(gate: Gate) -> Router {
    Router::new()
        .route("/api/streams/", get(list_streams))
        .with_state(gate)
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct StreamJson {
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
}

fn stream_json(room: RoomSnapshot) -> StreamJson {
    let sessions = |role: Role| {
        room.sessions
            .iter()
            .filter(|s| s.role == role)
            .map(|s| SessionJson {
                id: s.id.clone(),
                created_at: s.created_at_ms,
                state: s.state.clone(),
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
fn stream_filter(query: Option<&str>) -> Vec<String> {
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

    #[test]
    fn repeated_streams_parameters_form_the_filter() {
        assert_eq!(
            stream_filter(Some("streams=a&streams=b%2D1&x=1")),
            ["a", "b-1"]
        );
        assert!(stream_filter(None).is_empty());
    }
}
