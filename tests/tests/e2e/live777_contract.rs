//! What operators and their tools rely on in the Live777 and runner365 dialects: Live777's token
//! on reads and session changes and its listing (specs/dialects.md §2.1, §2.5), a cascade
//! pulling from a token-protected origin (§2.3), and runner365's failure strings and `Location`
//! (§3.2).

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use gatehouse_e2e::{
    GatewayProcess, Play, Publish, absolute, http, ice_credentials, media_lock, offers, sdpfrag,
    start_gateway, wait_for_media, wait_room,
};
use reqwest::header::HeaderMap;
use serde_json::{Value, json};

use crate::contract_support::{call, hdr, run, table};

// ---------------------------------------------------------------------------------------------
// Live777

/// Live777's `[auth] tokens = ["ops"]`: a static token has every right, so in token-auth terms
/// it is both the auth token (publish, play, a session's PATCH and DELETE) and the admin token
/// (listings, strategy, SSE, stream administration).
const LIVE777_TOKEN: &str = "auth_token = \"ops\"\nadmin_token = \"ops\"";

/// Whether `room` still has session `id`.
async fn has_session(gw: &gatehouse::Gateway, room: &str, id: &str) -> bool {
    gw.room(room)
        .await
        .is_some_and(|r| r.sessions.iter().any(|s| s.id == id))
}

/// Once a token is configured, Live777's reads (streams, one stream, SSE, strategy) are 401
/// with an empty body without it and 200 with it; `/api/info` and `/metrics` stay open; a
/// session's PATCH and DELETE need it too, and the session survives the refused ones.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live777_reads_and_session_changes_need_the_token_once_one_is_configured() {
    run("live777_token", Duration::from_secs(60), async {
        let gw = start_gateway(|c| {
            c.policies
                .config
                .insert("token-auth".into(), table(LIVE777_TOKEN));
        })
        .await?;
        let base = gw.base_url();
        let client = http();
        let (s, _, body) = call(
            client
                .post(format!("{base}/api/streams/a"))
                .bearer_auth("ops"),
        )
        .await?;
        ensure!(s == 204, "create stream a as admin: {s} {body:?}");

        for path in ["/api/streams/", "/api/streams/a", "/api/strategy/"] {
            let (s, _, body) = call(client.get(format!("{base}{path}"))).await?;
            ensure!(
                s == 401 && body.is_empty(),
                "GET {path} without the token: {s} {body:?}"
            );
            let (s, _, body) =
                call(client.get(format!("{base}{path}")).bearer_auth("guess")).await?;
            ensure!(
                s == 401 && body.is_empty(),
                "GET {path} with a wrong token: {s} {body:?}"
            );
            let (s, _, body) = call(client.get(format!("{base}{path}")).bearer_auth("ops")).await?;
            ensure!(s == 200, "GET {path} with the token: {s} {body:?}");
        }
        // The SSE stream never ends: read a body only once it is known to be the 401.
        let sse = client.get(format!("{base}/api/sse/streams")).send().await?;
        let status = sse.status().as_u16();
        ensure!(
            status == 401,
            "GET /api/sse/streams without the token: {status}"
        );
        let body = sse.text().await?;
        ensure!(
            body.is_empty(),
            "401 of the SSE stream has a body: {body:?}"
        );
        let sse = client
            .get(format!("{base}/api/sse/streams"))
            .bearer_auth("ops")
            .send()
            .await?;
        ensure!(
            sse.status() == 200
                && hdr(sse.headers(), "content-type").starts_with("text/event-stream"),
            "GET /api/sse/streams with the token: {} {:?}",
            sse.status(),
            sse.headers()
        );
        drop(sse);
        for path in ["/api/info", "/metrics"] {
            let (s, _, _) = call(client.get(format!("{base}{path}"))).await?;
            ensure!(s == 200, "GET {path} needs no token: {s}");
        }

        let offer = offers().await?.whip[0].clone();
        let publish = client
            .post(format!("{base}/whip/s1"))
            .header("Content-Type", "application/sdp")
            .bearer_auth("ops")
            .body(offer.clone());
        let (s, h, body) = call(publish).await?;
        ensure!(s == 201, "WHIP with the token: {s} {body:?}");
        let location = hdr(&h, "location");
        let id = location
            .strip_prefix("/session/s1/")
            .filter(|id| !id.is_empty())
            .with_context(|| format!("Location {location:?}"))?
            .to_owned();
        let session_url = absolute(&base, &location);
        let (ufrag, pwd) = ice_credentials(&offer);
        let frag = sdpfrag(
            &offer,
            &ufrag.unwrap_or_default(),
            &pwd.unwrap_or_default(),
            true,
        );
        let patch = |token: Option<&str>| {
            let request = client
                .patch(session_url.as_str())
                .header("Content-Type", "application/trickle-ice-sdpfrag")
                .body(frag.clone());
            match token {
                Some(token) => request.bearer_auth(token),
                None => request,
            }
        };

        let (s, _, body) = call(patch(None)).await?;
        ensure!(s == 401, "PATCH without the token: {s} {body:?}");
        ensure!(
            has_session(&gw, "s1", &id).await,
            "the session ended on a refused PATCH"
        );
        let (s, _, body) = call(client.delete(session_url.as_str())).await?;
        ensure!(s == 401, "DELETE without the token: {s} {body:?}");
        ensure!(
            has_session(&gw, "s1", &id).await,
            "the session ended on a refused DELETE"
        );
        let (s, _, body) = call(patch(Some("ops"))).await?;
        ensure!(s == 204, "PATCH with the token: {s} {body:?}");
        let (s, _, body) = call(client.delete(session_url.as_str()).bearer_auth("ops")).await?;
        ensure!(s == 204, "DELETE with the token: {s} {body:?}");
        let (gone, snapshot) = wait_room(&gw, "s1", Duration::from_secs(3), |r| {
            r.is_none_or(|r| r.sessions.iter().all(|s| s.id != id))
        })
        .await;
        ensure!(gone, "the session survived its DELETE: {snapshot:?}");
        gw.shutdown().await;
        Ok(())
    })
    .await;
}

/// `GET /api/streams/` needs its trailing slash (404 without), and `?streams=a&streams=b`
/// lists only those streams.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live777_stream_listing_needs_its_trailing_slash_and_filters_by_repeated_streams() {
    run("live777_listing", Duration::from_secs(60), async {
        let gw = start_gateway(|c| {
            c.policies
                .config
                .insert("token-auth".into(), table(LIVE777_TOKEN));
        })
        .await?;
        let base = gw.base_url();
        let client = http();
        for id in ["a", "b", "c"] {
            let (s, _, body) = call(
                client
                    .post(format!("{base}/api/streams/{id}"))
                    .bearer_auth("ops"),
            )
            .await?;
            ensure!(s == 204, "create stream {id}: {s} {body:?}");
        }
        let ids = |body: &str| -> Result<Vec<String>> {
            let list: Value = serde_json::from_str(body)?;
            let mut ids: Vec<String> = list
                .as_array()
                .with_context(|| format!("not a list: {body}"))?
                .iter()
                .filter_map(|s| s["id"].as_str().map(str::to_owned))
                .collect();
            ids.sort();
            Ok(ids)
        };
        let (s, _, body) = call(
            client
                .get(format!("{base}/api/streams/"))
                .bearer_auth("ops"),
        )
        .await?;
        ensure!(
            s == 200 && ids(&body)? == ["a", "b", "c"],
            "all streams: {s} {body}"
        );
        let filtered = client
            .get(format!("{base}/api/streams/?streams=a&streams=b"))
            .bearer_auth("ops");
        let (s, _, body) = call(filtered).await?;
        ensure!(
            s == 200 && ids(&body)? == ["a", "b"],
            "?streams=a&streams=b: {s} {body}"
        );
        let (s, _, body) =
            call(client.get(format!("{base}/api/streams")).bearer_auth("ops")).await?;
        ensure!(s == 404, "GET /api/streams without the slash: {s} {body:?}");
        gw.shutdown().await;
        Ok(())
    })
    .await;
}

// ---------------------------------------------------------------------------------------------
// cascade

/// `(status, body)` of `POST /api/cascade/{stream}`.
async fn cascade(base: &str, stream: &str, body: Value) -> Result<(u16, String)> {
    let request = http()
        .post(format!("{base}/api/cascade/{stream}"))
        .header("Content-Type", "application/json")
        .body(body.to_string());
    let (status, _, text) = call(request).await?;
    Ok((status, text))
}

/// Polls `GET /api/streams/{stream}` of an open gateway until its publisher is connected.
async fn wait_connected_publisher(base: &str, stream: &str, limit: Duration) -> Result<()> {
    let deadline = Instant::now() + limit;
    loop {
        let (s, _, body) = call(http().get(format!("{base}/api/streams/{stream}"))).await?;
        let state = serde_json::from_str::<Value>(&body).ok().and_then(|json| {
            json.pointer("/publish/sessions/0/state")
                .and_then(Value::as_str)
                .map(str::to_owned)
        });
        if s == 200 && state.as_deref() == Some("connected") {
            return Ok(());
        }
        if Instant::now() >= deadline {
            bail!("{stream} at {base} has no connected publisher after {limit:?}: {s} {body}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// An origin with an auth token (go-live's `AUTH_TOKEN`): an edge's pull without the token (or
/// with a wrong one) fails and leaves nothing on either side; with it, media reaches a player
/// at the edge and the edge's stream shows the link. The aiortc publisher cannot present a
/// token, so it publishes to an open feeder process that pushes to the origin with the token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cascade_pull_from_an_origin_with_an_auth_token_needs_the_token_and_then_carries_media() {
    let _guard = media_lock().await;
    run("cascade_token", Duration::from_secs(120), async {
        const TOKEN: &str = "origin-t0ken";
        let feeder = GatewayProcess::start(env!("CARGO_BIN_EXE_gateway_node")).await?;
        // In process: gateway_node applies only go-live's RECORD_* variables, not AUTH_TOKEN.
        let origin = start_gateway(|c| {
            c.policies
                .apply_env(|v| (v == "AUTH_TOKEN").then(|| TOKEN.to_owned()))
                .unwrap_or_default();
        })
        .await?;
        let edge = start_gateway(|_| {}).await?;
        let (feeder_url, origin_url, edge_url) = (
            feeder.base_url().to_owned(),
            origin.base_url(),
            edge.base_url(),
        );

        let publisher = Publish {
            seconds: 15.0,
            ..Default::default()
        }
        .spawn(&format!("{feeder_url}/whip/cam"))?;
        wait_connected_publisher(&feeder_url, "cam", Duration::from_secs(15)).await?;
        let push = json!({ "targetUrl": format!("{origin_url}/whip/cam"), "token": TOKEN });
        let (status, body) = cascade(&feeder_url, "cam", push).await?;
        ensure!(
            status == 200,
            "feeder push to the origin with the token: {status} {body:?}"
        );
        wait_for_media(&origin, "cam", Duration::from_secs(10)).await?;

        let source_url = format!("{origin_url}/whep/cam");
        for (what, body) in [
            ("no token", json!({ "sourceUrl": source_url })),
            (
                "a wrong token",
                json!({ "sourceUrl": source_url, "token": "guess" }),
            ),
        ] {
            let (status, text) = cascade(&edge_url, "cam", body).await?;
            ensure!(
                !(200..300).contains(&status),
                "pull with {what} succeeded: {status} {text:?}"
            );
            let (clean, left) =
                wait_room(&edge, "cam", Duration::from_secs(3), |r| r.is_none()).await;
            ensure!(
                clean,
                "pull with {what} left a stream at the edge: {left:?}"
            );
            let subscribers = origin.room("cam").await.map_or(0, |r| r.subscribers);
            ensure!(
                subscribers == 0,
                "pull with {what} left {subscribers} subscriber(s) at the origin"
            );
        }

        let pull = json!({ "sourceUrl": source_url, "token": TOKEN });
        let (status, body) = cascade(&edge_url, "cam", pull).await?;
        ensure!(
            status == 200 && body.is_empty(),
            "pull with the token: {status} {body:?}"
        );
        let player = Play {
            min_video_frames: 10,
            ..Play::for_seconds(2.5)
        }
        .spawn(&format!("{edge_url}/whep/cam"))?
        .finish()
        .await?
        .expect_ok()?;
        println!(
            "cascade with a token: edge player decoded {} frames",
            player.u64("video_frames")
        );
        ensure!(player.u64("video_frames") >= 10, "{}", player.describe());

        let (s, _, body) = call(http().get(format!("{edge_url}/api/streams/cam"))).await?;
        ensure!(s == 200, "edge stream: {s} {body:?}");
        let at_edge: Value = serde_json::from_str(&body)?;
        let link = at_edge
            .pointer("/publish/sessions/0/cascade")
            .cloned()
            .unwrap_or(Value::Null);
        let session_url = link["sessionUrl"].as_str().unwrap_or_default();
        ensure!(
            link["sourceUrl"] == source_url.as_str()
                && !session_url.is_empty()
                && session_url.starts_with(&format!("{origin_url}/session/cam/")),
            "edge publish session's cascade: {at_edge}"
        );
        // Live777's reforward gauge counts the edge's one cascade session.
        let (_, _, metrics) = call(http().get(format!("{edge_url}/metrics"))).await?;
        ensure!(
            metrics.lines().any(|l| l == "live777_reforward 1"),
            "live777_reforward at the edge: {:?}",
            metrics
                .lines()
                .filter(|l| l.contains("reforward"))
                .collect::<Vec<_>>()
        );

        publisher.finish().await?.expect_ok()?;
        edge.shutdown().await;
        origin.shutdown().await;
        feeder.stop().await
    })
    .await;
}

// ---------------------------------------------------------------------------------------------
// runner365

/// The id after `prefix` in a reply's `Location`, or an error naming `what`.
fn expect_location(headers: &HeaderMap, prefix: &str, what: &str) -> Result<String> {
    let location = hdr(headers, "location");
    let id = location.strip_prefix(prefix).unwrap_or_default();
    ensure!(
        !id.is_empty() && !id.contains('/'),
        "{what}: Location {location:?}, expected {prefix}<id>"
    );
    Ok(id.to_owned())
}

/// runner365 answers 200 whatever happens: a subscribe to a room that does not exist is
/// `get room error by roomid …`, to a uid not publishing `live subscriber uid doesn't exist`;
/// every publish/subscribe reply, success or failure, carries `Location: /publisher/<id>` or
/// `/subscriber/<id>`; a path with the wrong segment count is a bare `wrong http path`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runner365_failures_use_the_originals_strings_and_always_carry_a_location() {
    run("runner365_strings", Duration::from_secs(60), async {
        let gw = start_gateway(|_| {}).await?;
        let base = gw.base_url();
        let client = http();
        let o = offers().await?;
        let post = |path: &str, body: &str| {
            client
                .post(format!("{base}{path}"))
                .header("Content-Type", "text/plain;charset=utf-8")
                .body(body.to_owned())
        };

        for path in ["/subscribe/2001/u1/alice", "/whip/subscribe/2001/alice"] {
            let (s, h, body) = call(post(path, o.whep[0].as_str())).await?;
            ensure!(
                s == 200
                    && body == "get room error by roomid 2001"
                    && hdr(&h, "content-type") == "text/plain;charset=utf-8",
                "{path} (no room): {s} {body:?} {h:?}"
            );
            expect_location(&h, "/subscriber/", path)?;
        }

        let (s, h, answer) = call(post("/publish/2001/alice", o.whip[0].as_str())).await?;
        ensure!(
            s == 200 && answer.starts_with("v=0"),
            "publish alice: {s} {answer:?}"
        );
        expect_location(&h, "/publisher/", "publish alice")?;

        for path in ["/subscribe/2001/u1/zed", "/whip/subscribe/2001/zed"] {
            let (s, h, body) = call(post(path, o.whep[0].as_str())).await?;
            ensure!(
                s == 200 && body == "live subscriber uid doesn't exist",
                "{path} (zed is not publishing): {s} {body:?}"
            );
            expect_location(&h, "/subscriber/", path)?;
        }
        for (what, path, offer) in [
            (
                "alice again",
                "/whip/publish/2001/alice",
                o.whip[0].as_str(),
            ),
            ("a malformed offer", "/publish/2001/bob", "not sdp"),
        ] {
            let (s, h, body) = call(post(path, offer)).await?;
            ensure!(
                s == 200 && !body.is_empty() && !body.starts_with("v=0"),
                "publish of {what}: {s} {body:?}"
            );
            expect_location(&h, "/publisher/", &format!("publish of {what}"))?;
        }
        let (s, h, answer) = call(post("/subscribe/2001/u2/alice", o.whep[1].as_str())).await?;
        ensure!(
            s == 200 && answer.starts_with("v=0"),
            "subscribe to alice: {s} {answer:?}"
        );
        expect_location(&h, "/subscriber/", "subscribe to alice")?;

        for path in [
            "/publish/2001",
            "/whip/publish/2001/a/b",
            "/subscribe/2001/u1",
            "/whip/subscribe/2001",
        ] {
            let (s, h, body) = call(post(path, o.whep[0].as_str())).await?;
            // Written before any CORS or Content-Type header, as the original does.
            ensure!(
                s == 200
                    && body == "wrong http path"
                    && hdr(&h, "access-control-allow-origin").is_empty()
                    && hdr(&h, "content-type").is_empty(),
                "{path}: {s} {h:?} {body:?}"
            );
        }
        gw.shutdown().await;
        Ok(())
    })
    .await;
}
