//! Loss repair on the wire: a lossy relay (`tests/clients/lossy_relay.py`) sits in front of the
//! gateway's media port, which advertises the relay's address through `[webrtc] public_ips`
//! (NAT 1:1). The relay drops every Nth RTP packet in both directions and watches the RTP
//! headers (clear under SRTP) for the repairs.

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use gatehouse_e2e::{Client, ClientResult, Play, Publish, bounded, media_lock, start_gateway};
use serde_json::Value;

use crate::janus_cross_dialect::janus_client;

const LIMIT: Duration = Duration::from_secs(90);
const DROP_EVERY: u64 = 12;
/// Drops that may go unrepaired because the receiver stopped right after them.
const TAIL_ALLOWANCE: u64 = 2;

/// Waits until the relay has bound `addr` (our own bind attempt then fails).
async fn wait_bound(addr: SocketAddr) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if UdpSocket::bind(addr).is_err() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    bail!("relay did not bind {addr}")
}

/// `(rtp, dropped, missing)` the relay saw for one SSRC in one direction.
fn stream(relay: &ClientResult, direction: &str, ssrc: u64) -> Result<(u64, u64, u64)> {
    let s = relay
        .json
        .get(direction)
        .and_then(|d| d.get(ssrc.to_string()))
        .with_context(|| format!("relay saw no {direction} SSRC {ssrc}: {}", relay.json))?;
    let n = |k: &str| s.get(k).and_then(Value::as_u64).unwrap_or(0);
    Ok((n("rtp"), n("dropped"), n("missing")))
}

fn ssrcs(client: &ClientResult, key: &str) -> Result<(u64, u64)> {
    let s = client.json.get(key);
    let get = |k: &str| s.and_then(|v| v.get(k)).and_then(Value::as_u64);
    match (get("primary"), get("rtx")) {
        (Some(p), Some(r)) => Ok((p, r)),
        _ => bail!("no {key} with primary and rtx SSRCs: {}", client.describe()),
    }
}

/// Starts the lossy relay in front of `gw`'s media port (the address its candidates name).
async fn spawn_relay(gw: &gatehouse::Gateway, seconds: f64) -> Result<Client> {
    let media = *gw.udp_addrs().first().context("no media socket")?;
    let relay_addr = SocketAddr::new("127.0.0.2".parse()?, media.port());
    let relay = Client::python(
        "lossy_relay.py",
        &[
            "--listen".into(),
            relay_addr.to_string(),
            "--upstream".into(),
            media.to_string(),
            "--drop-every".into(),
            DROP_EVERY.to_string(),
            "--seconds".into(),
            seconds.to_string(),
        ],
        Duration::from_secs_f64(seconds + 16.0),
    )?;
    wait_bound(relay_addr).await?;
    Ok(relay)
}

/// `[janus] slowlink_threshold`: a Janus publisher hears of the loss on what it sends
/// (`uplink: true`), a Janus subscriber of the loss on what it receives (`uplink: false`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn janus_handles_losing_packets_get_slowlink_events() {
    let _guard = media_lock().await;
    let result = bounded("slowlink", LIMIT, async {
        let gw = start_gateway(|c| {
            c.webrtc.public_ips = vec!["127.0.0.2".parse().unwrap()];
            c.janus.slowlink_threshold = 1;
        })
        .await?;
        let relay = spawn_relay(&gw, 12.0).await?;
        let base = gw.base_url();
        let publisher = janus_client(&base, 9393, "publish", 9.0, &[])?;
        tokio::time::sleep(Duration::from_millis(2000)).await;
        let player = janus_client(&base, 9393, "play", 4.0, &[])?;
        let player = player.finish().await?.expect_ok()?;
        let publisher = publisher.finish().await?.expect_ok()?;
        relay.finish().await?;
        gw.shutdown().await;
        let (up, down) = (&publisher.json["slowlinks"], &player.json["slowlinks"]);
        println!("slowlink: publisher {up}, player {down}");
        let has = |events: &Value, uplink: bool| {
            events.as_array().is_some_and(|e| {
                e.iter().any(|e| {
                    e["uplink"] == uplink
                        && e["media"] == "video"
                        && e["mid"].is_string()
                        && e["lost"].as_u64().is_some_and(|n| n >= 1)
                })
            })
        };
        ensure!(has(up, true), "publisher: {up}");
        ensure!(has(down, false), "player: {down}");
        Ok(())
    })
    .await;
    if let Err(e) = result {
        panic!("janus_handles_losing_packets_get_slowlink_events: {e:#}");
    }
}

/// The gateway answers the player's NACKs from its retransmit buffer (RTX), and its own NACKs
/// make the publisher repair upstream loss, without asking again for repaired packets.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_packets_are_repaired_by_nack_in_both_directions() {
    let _guard = media_lock().await;
    let result = bounded("nack", LIMIT, async {
        let gw =
            start_gateway(|c| c.webrtc.public_ips = vec!["127.0.0.2".parse().unwrap()]).await?;
        let relay = spawn_relay(&gw, 14.0).await?;
        let base = gw.base_url();
        let publisher = Publish {
            seconds: 11.0,
            ..Default::default()
        }
        .spawn(&format!("{base}/v1/whip/lossy"))?;
        tokio::time::sleep(Duration::from_millis(1500)).await;
        // The player DELETEs at the end, so nothing is sent (and dropped) after it stops.
        let player = Play {
            delete: true,
            ..Play::for_seconds(7.0)
        }
        .spawn(&format!("{base}/v1/whep/lossy"))?;
        let player = player.finish().await?.expect_ok()?;
        let publisher = publisher.finish().await?.expect_ok()?;
        let relay = relay.finish().await?;
        let metrics = gatehouse_e2e::http()
            .get(format!("{base}/metrics"))
            .send()
            .await?
            .text()
            .await?;
        gw.shutdown().await;
        let nack_requests: u64 = metrics
            .lines()
            .find_map(|l| l.strip_prefix("gatehouse_nack_requests_total "))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);

        let (up_primary, up_rtx) = ssrcs(&publisher, "offer_video_ssrcs")?;
        let (down_primary, down_rtx) = ssrcs(&player, "answer_video_ssrcs")?;
        let (up_rtp, up_dropped, _) = stream(&relay, "up", up_primary)?;
        let (up_repairs, _, _) = stream(&relay, "up", up_rtx).unwrap_or((0, 0, 0));
        let (down_rtp, down_dropped, down_missing) = stream(&relay, "down", down_primary)?;
        let (down_repairs, _, _) = stream(&relay, "down", down_rtx).unwrap_or((0, 0, 0));
        println!(
            "nack: up video rtp={up_rtp} dropped={up_dropped} publisher RTX={up_repairs}; \
             down video rtp={down_rtp} dropped={down_dropped} gateway RTX={down_repairs} \
             unrepaired gaps={down_missing}; player decoded {} frames",
            player.u64("video_frames")
        );
        ensure!(
            up_dropped >= 8 && down_dropped >= 8,
            "too little loss to judge: {}",
            relay.json
        );
        // The player NACKs what the relay dropped downstream; the gateway retransmits it. A
        // drop in the player's last moments cannot be repaired before it stops.
        ensure!(
            down_repairs + TAIL_ALLOWANCE >= down_dropped,
            "gateway retransmitted {down_repairs} of {down_dropped} lost packets: {}",
            relay.json
        );
        // The gateway NACKs what the relay dropped upstream; each loss is asked for about once
        // (rtc's generator alone re-asked for repaired packets: ~30 RTX per loss).
        ensure!(
            up_repairs + TAIL_ALLOWANCE >= up_dropped && up_repairs <= up_dropped * 3,
            "publisher sent {up_repairs} RTX for {up_dropped} lost packets: {}",
            relay.json
        );
        // Upstream repairs reached the player: its stream has no gaps beyond the relay's own
        // downstream drops (which it repairs over RTX).
        ensure!(
            down_missing <= down_dropped,
            "{down_missing} sequence gaps downstream, only {down_dropped} dropped there: {}",
            relay.json
        );
        // Every retransmission answered a NACK the metrics counted.
        ensure!(
            nack_requests >= down_repairs,
            "gatehouse_nack_requests_total {nack_requests} < {down_repairs} retransmissions"
        );
        ensure!(
            player.u64("video_frames") >= 120,
            "player decoded {} frames: {}",
            player.u64("video_frames"),
            player.describe()
        );
        Ok(())
    })
    .await;
    if let Err(e) = result {
        panic!("lost_packets_are_repaired_by_nack_in_both_directions: {e:#}");
    }
}
