//! Trickled candidates that arrive early are kept, as Janus queues them: one sent on a handle
//! before it joined (no PeerConnection yet), for a subscriber whose answer comes later (rtc
//! takes remote candidates only once the answer is applied), still gets the gateway's
//! connectivity checks once the subscriber answers with `start`.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use gatehouse_e2e::{bounded, media_lock, start_gateway};
use serde_json::{Value, json};
use tokio::net::UdpSocket;

use crate::janus_api::Janus;
use crate::janus_cross_dialect::{janus_client, janus_sync};

const LIMIT: Duration = Duration::from_secs(90);
const ROOM: u64 = 7979;
const ANSWER_UFRAG: &str = "earlyufrag";

/// An answer to the gateway's subscriber offer without any candidate: each m-line received
/// with its first codec. DTLS never completes (nobody holds the fingerprint's key); the
/// gateway's ICE checks, which are what this test watches, do not need it.
fn answer_without_candidates(offer: &str) -> String {
    let mut mids = Vec::new();
    let mut media = String::new();
    for section in offer.split("\r\nm=").skip(1) {
        let lines: Vec<&str> = section.lines().collect();
        let Some(m_line) = lines.first() else {
            continue;
        };
        let fields: Vec<&str> = m_line.split(' ').collect();
        let (Some(kind), Some(pt)) = (fields.first(), fields.get(3)) else {
            continue;
        };
        let mid = lines
            .iter()
            .find_map(|l| l.strip_prefix("a=mid:"))
            .unwrap_or("0");
        let rtpmap = lines
            .iter()
            .find(|l| l.starts_with(&format!("a=rtpmap:{pt} ")))
            .copied()
            .unwrap_or_default();
        mids.push(mid.to_owned());
        media.push_str(&format!(
            "m={kind} 9 UDP/TLS/RTP/SAVPF {pt}\r\nc=IN IP4 0.0.0.0\r\na=mid:{mid}\r\n\
             a=ice-ufrag:{ANSWER_UFRAG}\r\na=ice-pwd:earlypasswordearlypassword\r\n\
             a=fingerprint:sha-256 {fingerprint}\r\na=setup:active\r\na=recvonly\r\n\
             a=rtcp-mux\r\n{rtpmap}\r\n",
            fingerprint = ["AB"; 32].join(":"),
        ));
    }
    format!(
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE {}\r\n{media}",
        mids.join(" ")
    )
}

/// The first publisher listed in the room, once one is.
async fn wait_for_publisher(base: &str) -> Result<u64> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let listed = janus_sync(base, json!({"request": "listparticipants", "room": ROOM})).await?;
        let feed = listed["participants"]
            .as_array()
            .and_then(|ps| ps.iter().find(|p| p["publisher"] == true))
            .and_then(|p| p["id"].as_u64());
        if let Some(feed) = feed {
            return Ok(feed);
        }
        ensure!(Instant::now() < deadline, "no publisher listed: {listed}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The USERNAME of a STUN Binding request, `None` for anything else.
fn binding_request_username(datagram: &[u8]) -> Option<String> {
    if datagram.len() < 20 || datagram[0..2] != [0, 1] || datagram[4..8] != [0x21, 0x12, 0xA4, 0x42]
    {
        return None;
    }
    let mut i = 20;
    while i + 4 <= datagram.len() {
        let kind = u16::from_be_bytes([datagram[i], datagram[i + 1]]);
        let len = u16::from_be_bytes([datagram[i + 2], datagram[i + 3]]) as usize;
        let value = datagram.get(i + 4..i + 4 + len)?;
        if kind == 0x0006 {
            return String::from_utf8(value.to_vec()).ok();
        }
        i += 4 + ((len + 3) & !3);
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_candidate_trickled_before_join_gets_the_gateways_checks_after_start() {
    let _guard = media_lock().await;
    let result: Result<()> = bounded("janus_early_trickle", LIMIT, async {
        let gw = start_gateway(|_| {}).await?;
        let base = gw.base_url().to_owned();
        let created = janus_sync(&base, json!({"request": "create", "room": ROOM})).await?;
        ensure!(created["videoroom"] == "created", "{created}");
        let publisher = janus_client(&base, ROOM, "publish", 12.0, &[])?;
        let feed = wait_for_publisher(&base).await?;

        let j = Janus { base: base.clone() };
        let (session, handle) = j.session_and_handle().await?;
        let watched = UdpSocket::bind("127.0.0.1:0").await?;
        let port = watched.local_addr()?.port();
        let candidate = format!("candidate:1 1 udp 2130706431 127.0.0.1 {port} typ host");
        // Before the handle joined: nothing to give the candidate to yet.
        let trickled = j
            .post(
                &format!("/janus/{session}/{handle}"),
                &json!({"janus": "trickle", "transaction": "t",
                        "candidate": {"candidate": candidate, "sdpMid": "0", "sdpMLineIndex": 0}}),
            )
            .await?;
        ensure!(trickled["janus"] == "ack", "{trickled}");
        let (joined, offer) = j
            .message(
                session,
                handle,
                json!({"request": "join", "ptype": "subscriber", "room": ROOM,
                       "streams": [{"feed": feed}]}),
                None,
            )
            .await?;
        ensure!(joined["videoroom"] == "attached", "{joined}");
        let offer_sdp = offer["sdp"].as_str().context("subscriber offer")?;
        let answer = answer_without_candidates(offer_sdp);
        let (started, _) = j
            .message(
                session,
                handle,
                json!({"request": "start"}),
                Some(json!({"type": "answer", "sdp": answer})),
            )
            .await?;
        ensure!(started["started"] == "ok", "{started}: answer {answer}");

        let mut buf = [0u8; 1500];
        let username = tokio::time::timeout(Duration::from_secs(5), async {
            loop {
                let (n, _) = watched.recv_from(&mut buf).await?;
                if let Some(username) = binding_request_username(&buf[..n]) {
                    return Ok::<_, anyhow::Error>(username);
                }
            }
        })
        .await
        .context("no connectivity check reached the early candidate in 5 s")??;
        println!("check to the early candidate: USERNAME {username}");
        ensure!(
            username.starts_with(&format!("{ANSWER_UFRAG}:")),
            "{username}"
        );
        let _ = j
            .post(
                &format!("/janus/{session}"),
                &json!({"janus": "destroy", "transaction": "d"}),
            )
            .await;
        let _: Value = publisher.finish().await?.json;
        gw.shutdown().await;
        Ok(())
    })
    .await;
    if let Err(e) = result {
        panic!("a_candidate_trickled_before_join_gets_the_gateways_checks_after_start: {e:#}");
    }
}
