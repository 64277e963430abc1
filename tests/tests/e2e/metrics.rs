//! `GET /metrics`: valid Prometheus text whose traffic counters follow real media (aiortc
//! publisher and player), under go-live's, Live777's and Gatehouse's names.

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use gatehouse_e2e::{Play, Publish, bounded, http, media_lock, start_gateway};

const LIMIT: Duration = Duration::from_secs(60);

/// Scrapes and parses `/metrics`; `value(name, label)` reads one sample.
async fn scrape(base: &str) -> Result<prometheus_parse::Scrape> {
    let response = http().get(format!("{base}/metrics")).send().await?;
    ensure!(
        response.status() == 200,
        "/metrics -> {}",
        response.status()
    );
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    ensure!(
        content_type.starts_with("text/plain"),
        "content type {content_type}"
    );
    let body = response.text().await?;
    let lines = body.lines().map(|l| Ok(l.to_owned()));
    prometheus_parse::Scrape::parse(lines).context("not Prometheus text")
}

fn value(scrape: &prometheus_parse::Scrape, name: &str, label: Option<(&str, &str)>) -> f64 {
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == name)
        .filter(|s| label.is_none_or(|(k, v)| s.labels.get(k) == Some(v)))
        .map(|s| match s.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => v,
            _ => f64::NAN,
        })
        .sum()
}

/// The sample of `name` carrying every one of `labels`.
fn labelled(scrape: &prometheus_parse::Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == name)
        .filter(|s| labels.iter().all(|(k, v)| s.labels.get(k) == Some(v)))
        .map(|s| match s.value {
            prometheus_parse::Value::Counter(v) | prometheus_parse::Value::Gauge(v) => v,
            _ => f64::NAN,
        })
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_parse_and_their_rtp_counters_move_with_media() {
    let _guard = media_lock().await;
    let result: Result<()> = bounded("metrics", LIMIT, async {
        let gw = start_gateway(|_| {}).await?;
        let base = gw.base_url();
        let before = scrape(&base).await?;
        ensure!(
            value(&before, "webrtc_rooms", None) == 0.0,
            "rooms before any session"
        );
        ensure!(
            value(
                &before,
                "gatehouse_rtp_packets_total",
                Some(("direction", "in"))
            ) == 0.0,
            "packets before any session"
        );

        let publisher = Publish {
            seconds: 6.0,
            ..Default::default()
        }
        .spawn(&format!("{base}/v1/whip/metered"))?;
        tokio::time::sleep(Duration::from_millis(1000)).await;
        let player = Play {
            min_video_frames: 10,
            delete: true,
            ..Play::for_seconds(3.0)
        }
        .spawn(&format!("{base}/v1/whep/metered"))?;
        tokio::time::sleep(Duration::from_millis(2500)).await;
        let during = scrape(&base).await?;
        let player = player.finish().await?.expect_ok()?;
        publisher.finish().await?.expect_ok()?;
        // Both sessions were deleted: the room goes once the media thread has processed that.
        let mut after = scrape(&base).await?;
        for _ in 0..50 {
            if value(&after, "webrtc_rooms", None) == 0.0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
            after = scrape(&base).await?;
        }
        gw.shutdown().await;

        let room = Some(("room", "metered"));
        println!(
            "during: rooms {}, subscribers {}, room packets {}, out {}; player decoded {} frames",
            value(&during, "webrtc_rooms", None),
            value(&during, "webrtc_subscribers", room),
            value(&during, "webrtc_rtp_packets_total", room),
            value(
                &during,
                "gatehouse_rtp_packets_total",
                Some(("direction", "out"))
            ),
            player.u64("video_frames"),
        );
        ensure!(value(&during, "webrtc_rooms", None) == 1.0, "webrtc_rooms");
        ensure!(value(&during, "live_rooms", None) == 1.0, "live_rooms");
        ensure!(
            value(&during, "webrtc_subscribers", room) == 1.0,
            "subscribers"
        );
        ensure!(
            value(&during, "live777_publish", None) == 1.0,
            "live777_publish"
        );
        let whip_sessions = |role| {
            labelled(
                &during,
                "gatehouse_sessions",
                &[("dialect", "whip"), ("role", role)],
            )
        };
        ensure!(
            whip_sessions("publisher") == 1.0 && whip_sessions("subscriber") == 1.0,
            "gatehouse_sessions by dialect and role"
        );
        ensure!(
            value(&during, "webrtc_rtp_packets_total", room) > 50.0,
            "room ingress"
        );
        ensure!(
            value(&during, "live_rtp_bytes_total", room)
                == value(&during, "webrtc_rtp_bytes_total", room),
            "live_* mirrors webrtc_*"
        );
        let out = |s| value(s, "gatehouse_rtp_packets_total", Some(("direction", "out")));
        ensure!(out(&during) > 20.0, "nothing handed to the subscriber");
        ensure!(out(&after) > out(&during), "egress did not grow");
        ensure!(
            value(&after, "gatehouse_keyframe_requests_total", None) >= 1.0,
            "the join's keyframe request was not counted"
        );
        // The room is gone, its totals stay in the gateway-wide counters.
        ensure!(
            value(&after, "webrtc_rooms", None) == 0.0,
            "room still listed"
        );
        ensure!(
            value(
                &after,
                "gatehouse_rtp_packets_total",
                Some(("direction", "in"))
            ) >= value(&during, "webrtc_rtp_packets_total", room),
            "totals lost the removed room"
        );
        ensure!(
            value(&after, "gatehouse_policy_decisions_total", None) >= 2.0,
            "policy decisions missing"
        );
        Ok(())
    })
    .await;
    if let Err(e) = result {
        panic!("metrics_parse_and_their_rtp_counters_move_with_media: {e:#}");
    }
}
