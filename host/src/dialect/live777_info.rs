//! Live777's read-only operations endpoints (specs/dialects.md §2.1): `GET /api/info`,
//! `GET /api/strategy/` (the effective strategy, snake_case) and `GET /api/sse/streams`
//! (the `[Stream]` array of `GET /api/streams/` as server-sent events, on every change).

use std::convert::Infallible;
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::{RawQuery, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::routing::get;
use futures_util::Stream;
use serde::Serialize;

use super::streams::{StreamJson, require_operator, stream_filter, stream_json};
use crate::gate::Gate;

/// How often the SSE stream looks for changes (Live777 ticks every 2 s; a change shows sooner).
const SSE_POLL: Duration = Duration::from_millis(500);

pub fn routes(gate: Gate) -> Router {
    let operator = || axum::middleware::from_fn_with_state(gate.clone(), require_operator);
    Router::new()
        .route("/api/info", get(info))
        .route("/api/strategy/", get(strategy).route_layer(operator()))
        .route("/api/sse/streams", get(sse_streams).route_layer(operator()))
        .with_state(gate)
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Info {
    version: &'static str,
    git_hash: &'static str,
    build_time: &'static str,
    features: Vec<&'static str>,
}

/// `GET /api/info` (no auth, as Live777): what this server is and what it can do.
async fn info() -> Json<Info> {
    Json(Info {
        version: env!("CARGO_PKG_VERSION"),
        git_hash: option_env!("GATEHOUSE_GIT_HASH").unwrap_or("unknown"),
        build_time: option_env!("GATEHOUSE_BUILD_TIME").unwrap_or("unknown"),
        features: vec!["cascade", "runner365", "rooms", "wasm-policies"],
    })
}

/// Live777's strategy keys, with the values this gateway actually follows.
#[derive(Serialize)]
struct Strategy {
    auto_create_whip: bool,
    auto_create_whep: bool,
    /// A stream is removed as soon as its last session leaves.
    auto_delete_whip: i64,
    auto_delete_whep: i64,
    /// Not enforced by a Live777 node either; admission policies cap subscribers here.
    each_stream_max_sub: u16,
    /// A push leaves local viewers connected.
    cascade_push_close_sub: bool,
}

async fn strategy(State(gate): State<Gate>) -> Json<Strategy> {
    let configured = gate.strategy();
    Json(Strategy {
        auto_create_whip: configured.auto_create_whip,
        auto_create_whep: configured.auto_create_whep,
        auto_delete_whip: 0,
        auto_delete_whep: 0,
        each_stream_max_sub: u16::MAX,
        cascade_push_close_sub: false,
    })
}

/// `GET /api/sse/streams[?streams=a&streams=b]`: one `data:` event with the stream array at
/// once and whenever it changes.
async fn sse_streams(
    State(gate): State<Gate>,
    RawQuery(query): RawQuery,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let wanted = stream_filter(query.as_deref());
    let state = (gate, wanted, None::<String>);
    let events = futures_util::stream::unfold(state, |(gate, wanted, last)| async move {
        loop {
            if last.is_some() {
                tokio::time::sleep(SSE_POLL).await;
            }
            let Ok(rooms) = gate.rooms().await else {
                return None; // the media core stopped: end the stream
            };
            let streams: Vec<StreamJson> = rooms
                .into_iter()
                .filter(|r| wanted.is_empty() || wanted.contains(&r.name))
                .map(stream_json)
                .collect();
            let data = serde_json::to_string(&streams).unwrap_or_else(|_| "[]".into());
            if last.as_deref() != Some(data.as_str()) {
                let event = Event::default().data(data.clone());
                return Some((Ok(event), (gate, wanted, Some(data))));
            }
        }
    });
    Sse::new(events).keep_alive(KeepAlive::default())
}
