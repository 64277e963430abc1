//! `GET /metrics`: Prometheus text for the operators of every dialect — go-live's names
//! (`webrtc_*` as implemented, `live_*` as its document names them), Live777's `live777_*`,
//! and Gatehouse's own `gatehouse_*` (sessions by dialect, traffic, keyframe and NACK requests,
//! policy decisions).

use std::collections::BTreeMap;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use prometheus::{
    Encoder, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry, TextEncoder,
};

use crate::gate::Gate;
use crate::media::{Role, RoomSnapshot, Traffic};

/// `GET /metrics` (no authentication, as in go-live and Live777).
pub fn routes(gate: Gate) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .with_state(gate)
}

async fn metrics(State(gate): State<Gate>) -> Response {
    let (rooms, totals) = match (gate.rooms().await, gate.traffic_totals().await) {
        (Ok(rooms), Ok(totals)) => (rooms, totals),
        (Err(e), _) | (_, Err(e)) => {
            return (StatusCode::SERVICE_UNAVAILABLE, format!("{e}\n")).into_response();
        }
    };
    let policy = gate.policy().metrics().snapshot();
    match render(&rooms, &totals, &policy) {
        Ok(mut text) => {
            text.push_str(&gate.quality_figures().exposition());
            text.push_str(&load_exposition(gate.media_load()));
            (
                [(
                    header::CONTENT_TYPE,
                    "text/plain; version=0.0.4; charset=utf-8",
                )],
                text,
            )
                .into_response()
        }
        Err(e) => {
            tracing::error!(error = %e, "metrics rendering failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "metrics unavailable\n").into_response()
        }
    }
}

/// The media thread's load and the subscribers it refused (`[webrtc] max_loop_load`).
fn load_exposition(load: &crate::media::LoadGauge) -> String {
    format!(
        "# HELP gatehouse_media_loop_load Busy fraction of the media thread over the last second\n\
         # TYPE gatehouse_media_loop_load gauge\n\
         gatehouse_media_loop_load {:.3}\n\
         # HELP gatehouse_subscribers_refused_total Subscriber offers refused because the media \
         thread was saturated\n\
         # TYPE gatehouse_subscribers_refused_total counter\n\
         gatehouse_subscribers_refused_total{{reason=\"overload\"}} {}\n",
        load.load(),
        load.refused_subscribers()
    )
}

fn gauge(registry: &Registry, name: &str, help: &str, value: u64) -> prometheus::Result<()> {
    let gauge = IntGauge::new(name, help)?;
    gauge.set(i64::try_from(value).unwrap_or(i64::MAX));
    registry.register(Box::new(gauge))
}

fn counter_vec(
    registry: &Registry,
    name: &str,
    help: &str,
    label: &str,
    values: &[(&str, u64)],
) -> prometheus::Result<()> {
    let counter = IntCounterVec::new(Opts::new(name, help), &[label])?;
    for (label_value, value) in values {
        counter.with_label_values(&[label_value]).inc_by(*value);
    }
    registry.register(Box::new(counter))
}

/// The whole exposition: counters are rebuilt from the media thread's totals at each scrape.
fn render(
    rooms: &[RoomSnapshot],
    totals: &Traffic,
    policy: &BTreeMap<String, f64>,
) -> prometheus::Result<String> {
    let registry = Registry::new();
    let publishers: usize = rooms.iter().map(|r| r.publishers).sum();
    let subscribers: usize = rooms.iter().map(|r| r.subscribers).sum();
    for prefix in ["webrtc", "live"] {
        gauge(
            &registry,
            &format!("{prefix}_rooms"),
            "Rooms that exist",
            rooms.len() as u64,
        )?;
        let per_room = IntGaugeVec::new(
            Opts::new(format!("{prefix}_subscribers"), "Subscribers per room"),
            &["room"],
        )?;
        for room in rooms {
            per_room
                .with_label_values(&[room.name.as_str()])
                .set(room.subscribers as i64);
        }
        registry.register(Box::new(per_room))?;
        let bytes: Vec<(&str, u64)> = rooms
            .iter()
            .map(|r| (r.name.as_str(), r.traffic.ingress_bytes))
            .collect();
        let packets: Vec<(&str, u64)> = rooms
            .iter()
            .map(|r| (r.name.as_str(), r.traffic.ingress_packets))
            .collect();
        let help = "RTP received from the room's publisher";
        counter_vec(
            &registry,
            &format!("{prefix}_rtp_bytes_total"),
            help,
            "room",
            &bytes,
        )?;
        counter_vec(
            &registry,
            &format!("{prefix}_rtp_packets_total"),
            help,
            "room",
            &packets,
        )?;
    }
    gauge(&registry, "live777_stream", "Streams", rooms.len() as u64)?;
    gauge(
        &registry,
        "live777_publish",
        "Publisher sessions",
        publishers as u64,
    )?;
    gauge(
        &registry,
        "live777_subscribe",
        "Subscriber sessions",
        subscribers as u64,
    )?;
    // Live777's reforward: cascade sessions, pulls and pushes.
    let cascades = rooms
        .iter()
        .flat_map(|r| &r.sessions)
        .filter(|s| s.cascade.is_some())
        .count();
    gauge(
        &registry,
        "live777_reforward",
        "Cascade sessions",
        cascades as u64,
    )?;
    let directions = [("in", totals.ingress_bytes), ("out", totals.egress_bytes)];
    counter_vec(
        &registry,
        "live777_rtp_bytes_total",
        "RTP bytes",
        "direction",
        &directions,
    )?;

    let sessions = IntGaugeVec::new(
        Opts::new(
            "gatehouse_sessions",
            "Sessions by signaling dialect and role",
        ),
        &["dialect", "role"],
    )?;
    for role in [Role::Publisher, Role::Subscriber] {
        // Both roles always appear, so a dashboard sees 0 rather than no series.
        sessions.with_label_values(&["whip", role.as_str()]).set(0);
    }
    let mut counts: BTreeMap<(&str, &str), i64> = BTreeMap::new();
    for session in rooms.iter().flat_map(|r| &r.sessions) {
        *counts
            .entry((session.dialect, session.role.as_str()))
            .or_default() += 1;
    }
    for ((dialect, role), count) in counts {
        sessions.with_label_values(&[dialect, role]).set(count);
    }
    registry.register(Box::new(sessions))?;
    let help = "RTP packets since start: in = from publishers, out = handed to subscribers";
    let packets = [
        ("in", totals.ingress_packets),
        ("out", totals.egress_packets),
    ];
    counter_vec(
        &registry,
        "gatehouse_rtp_packets_total",
        help,
        "direction",
        &packets,
    )?;
    let bytes = [("in", totals.ingress_bytes), ("out", totals.egress_bytes)];
    counter_vec(
        &registry,
        "gatehouse_rtp_bytes_total",
        "RTP bytes since start",
        "direction",
        &bytes,
    )?;
    let requests = IntCounter::new(
        "gatehouse_keyframe_requests_total",
        "PLIs sent to publishers",
    )?;
    requests.inc_by(totals.keyframe_requests);
    registry.register(Box::new(requests))?;
    let nacks = IntCounter::new(
        "gatehouse_nack_requests_total",
        "Packets subscribers asked to be retransmitted (NACKed sequence numbers)",
    )?;
    nacks.inc_by(totals.nack_requests);
    registry.register(Box::new(nacks))?;

    let mut text = Vec::new();
    TextEncoder::new().encode(&registry.gather(), &mut text)?;
    let mut text = String::from_utf8(text).map_err(|e| prometheus::Error::Msg(e.to_string()))?;
    append_policy_series(&mut text, policy);
    Ok(text)
}

/// The policy plane's counters (`gatehouse_policy_*{…}` series, already in exposition form).
fn append_policy_series(text: &mut String, policy: &BTreeMap<String, f64>) {
    let mut current = "";
    for (series, value) in policy {
        let name = series.split('{').next().unwrap_or(series);
        if name != current {
            text.push_str(&format!("# TYPE {name} counter\n"));
            current = name;
        }
        text.push_str(&format!("{series} {value}\n"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn room(name: &str, subscribers: usize, ingress_packets: u64) -> RoomSnapshot {
        RoomSnapshot {
            name: name.into(),
            created_at_ms: 0,
            publishers: 1,
            tracks: 2,
            subscribers,
            publisher_left_at_ms: 0,
            subscriber_left_at_ms: 0,
            sessions: vec![crate::media::SessionSnapshot {
                id: "s1".into(),
                role: Role::Subscriber,
                dialect: "runner365",
                feed: "default".into(),
                label: None,
                cascade: None,
                created_at_ms: 0,
                state: "connected".into(),
                answer_sdp: None,
            }],
            traffic: Traffic {
                ingress_packets,
                ingress_bytes: ingress_packets * 1000,
                ..Traffic::default()
            },
        }
    }

    #[test]
    fn exposition_has_go_live_live777_and_own_families() {
        let rooms = [room("demo", 3, 7)];
        let totals = Traffic {
            ingress_packets: 7,
            egress_packets: 21,
            nack_requests: 4,
            ..Traffic::default()
        };
        let policy = BTreeMap::from([(
            "gatehouse_policy_decisions_total{module=\"token-auth\",outcome=\"allow\"}".to_owned(),
            2.0,
        )]);
        let text = render(&rooms, &totals, &policy).unwrap();
        for line in [
            "webrtc_rooms 1",
            "live_rooms 1",
            "webrtc_subscribers{room=\"demo\"} 3",
            "webrtc_rtp_packets_total{room=\"demo\"} 7",
            "live_rtp_bytes_total{room=\"demo\"} 7000",
            "live777_subscribe 3",
            "gatehouse_rtp_packets_total{direction=\"out\"} 21",
            "gatehouse_sessions{dialect=\"runner365\",role=\"subscriber\"} 1",
            "gatehouse_sessions{dialect=\"whip\",role=\"publisher\"} 0",
            "gatehouse_nack_requests_total 4",
            "gatehouse_policy_decisions_total{module=\"token-auth\",outcome=\"allow\"} 2",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing `{line}` in:\n{text}"
            );
        }
    }
}
