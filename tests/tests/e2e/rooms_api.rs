//! go-live's rooms API (specs/dialects.md §5): its status codes and text-vs-JSON bodies, auth
//! through the shipped `token-auth`, and media between aiortc clients through publish/play.

use std::time::Duration;

use anyhow::{Result, ensure};
use gatehouse_e2e::{Play, Publish, bounded, http, media_lock, offers, start_gateway};
use serde_json::Value;

const LIMIT: Duration = Duration::from_secs(60);

async fn run(name: &str, body: impl std::future::Future<Output = Result<()>>) {
    if let Err(e) = bounded(name, LIMIT, body).await {
        panic!("{name}: {e:#}");
    }
}

fn table(text: &str) -> toml::Table {
    toml::from_str(text).unwrap_or_default()
}

/// (status, content type, body) of a request.
async fn call(request: reqwest::RequestBuilder) -> Result<(u16, String, String)> {
    let response = request.send().await?;
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    Ok((status, content_type, response.text().await?))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rooms_api_mistakes_get_go_lives_statuses_and_bodies() {
    run("rooms_mistakes", async {
        let gw = start_gateway(|c| {
            c.policies
                .config
                .insert("token-auth".into(), table("admin_token = \"ops\""));
        })
        .await?;
        let base = gw.base_url();
        let client = http();
        let offer = offers().await?.whip[0].clone();
        let publish = |room: &str| format!("{base}/api/whip/publish/{room}");

        let (s, _, body) = call(client.post(publish("bad%20room")).body(offer.clone())).await?;
        ensure!(s == 400 && body == "invalid room\n", "{s} {body:?}");
        let (s, _, body) = call(client.get(publish("demo"))).await?;
        ensure!(s == 405 && body == "method not allowed\n", "{s} {body:?}");
        let (s, _, body) = call(client.post(publish("demo"))).await?;
        ensure!(s == 400 && body == "invalid request body\n", "{s} {body:?}");
        let huge = "v=0\r\n".repeat(300_000);
        let (s, _, body) = call(client.post(publish("demo")).body(huge)).await?;
        ensure!(
            s == 413 && body == "request body too large\n",
            "{s} {body:?}"
        );
        let play = format!("{base}/api/whep/play/empty");
        let (s, ct, body) = call(client.post(&play).body(offer.clone())).await?;
        let json: Value = serde_json::from_str(&body).unwrap_or_default();
        ensure!(
            s == 404
                && ct.starts_with("application/json")
                && json["error"] == "no active publisher in room",
            "{s} {ct} {body:?}"
        );
        let (s, _, body) = call(client.post(publish("demo")).body("not sdp")).await?;
        let json: Value = serde_json::from_str(&body).unwrap_or_default();
        ensure!(
            s == 400 && json["error"].is_string(),
            "bad SDP: {s} {body:?}"
        );

        let close = format!("{base}/api/admin/rooms/demo/close");
        let (s, _, body) = call(client.post(&close)).await?;
        ensure!(s == 401 && body == "unauthorized\n", "{s} {body:?}");
        let (s, _, body) = call(client.post(&close).header("x-auth-token", "ops")).await?;
        ensure!(s == 404 && body.contains("not found"), "{s} {body:?}");
        let records = format!("{base}/api/records");
        let (s, _, _) = call(client.get(&records)).await?;
        ensure!(s == 401, "records without admin: {s}");
        let (s, _, body) = call(client.get(&records).bearer_auth("ops")).await?;
        ensure!(
            s == 200 && body == "[]",
            "records (recording off): {s} {body:?}"
        );
        let (s, _, body) = call(client.get(format!("{base}/healthz"))).await?;
        ensure!(s == 200 && body.trim() == "ok", "{s} {body:?}");
        gw.shutdown().await;
        Ok(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rooms_api_publish_and_play_carry_media_with_go_lives_rules() {
    let _guard = media_lock().await;
    run("rooms_media", async {
        let gw = start_gateway(|c| {
            c.policies
                .config
                .insert("token-auth".into(), table("admin_token = \"ops\""));
            c.policies
                .config
                .insert("room-admission".into(), table("max_subscribers = 1"));
        })
        .await?;
        let base = gw.base_url();
        let client = http();
        let offers = offers().await?;
        let publisher = Publish {
            seconds: 7.0,
            no_session_resource: true,
            ..Default::default()
        }
        .spawn(&format!("{base}/api/whip/publish/show"))?;
        tokio::time::sleep(Duration::from_millis(1500)).await;

        let (s, _, body) = call(client.get(format!("{base}/api/rooms"))).await?;
        let rooms: Value = serde_json::from_str(&body)?;
        ensure!(
            s == 200
                && rooms[0]["name"] == "show"
                && rooms[0]["hasPublisher"] == true
                && rooms[0]["tracks"] == 2
                && rooms[0]["subscribers"] == 0,
            "rooms: {body}"
        );
        let second = client.post(format!("{base}/api/whip/publish/show"));
        let (s, _, body) = call(second.body(offers.whip[2].clone())).await?;
        let json: Value = serde_json::from_str(&body).unwrap_or_default();
        ensure!(
            s == 409 && json["error"] == "publisher already exists in this room",
            "second publisher: {s} {body:?}"
        );

        let player = Play {
            min_video_frames: 10,
            no_session_resource: true,
            ..Play::for_seconds(3.0)
        }
        .spawn(&format!("{base}/api/whep/play/show"))?;
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let extra = client.post(format!("{base}/api/whep/play/show"));
        let (s, _, body) = call(extra.body(offers.whep[1].clone())).await?;
        let json: Value = serde_json::from_str(&body).unwrap_or_default();
        ensure!(
            s == 403 && json["error"] == "subscriber limit reached",
            "second player over MAX_SUBS_PER_ROOM=1: {s} {body:?}"
        );
        let player = player.finish().await?.expect_ok()?;
        println!(
            "rooms API: player decoded {} video frames, first after {:?} ms",
            player.u64("video_frames"),
            player.f64("first_frame_ms")
        );

        let close = client
            .post(format!("{base}/api/admin/rooms/show/close"))
            .header("x-auth-token", "ops");
        let (s, _, body) = call(close).await?;
        ensure!(s == 200 && body.is_empty(), "close: {s} {body:?}");
        let (_, _, body) = call(client.get(format!("{base}/api/rooms"))).await?;
        ensure!(body == "[]", "rooms after close: {body}");
        let _ = publisher.finish().await; // its session was closed under it
        gw.shutdown().await;
        Ok(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rooms_api_rate_limits_answers_cors_and_keeps_turn_secrets_for_users() {
    run("rooms_limits", async {
        let limited = start_gateway(|c| {
            c.rooms.rate_limit_rps = 0.2;
            c.rooms.rate_limit_burst = 2;
        })
        .await?;
        let client = http();
        let rooms = format!("{}/api/rooms", limited.base_url());
        for _ in 0..2 {
            let (s, _, _) = call(client.get(&rooms)).await?;
            ensure!(s == 200, "within the burst: {s}");
        }
        let (s, _, body) = call(client.get(&rooms)).await?;
        ensure!(
            s == 429 && body == "too many requests\n",
            "over the burst: {s} {body:?}"
        );
        let (s, _, _) = call(client.get(format!("{}/healthz", limited.base_url()))).await?;
        ensure!(s == 200, "healthz is exempt: {s}");
        limited.shutdown().await;

        let gw = start_gateway(|c| {
            c.rooms.allowed_origin = "https://app.example".into();
            c.webrtc.ice_servers = vec![gatehouse::config::IceServerConfig {
                urls: vec!["turn:turn.example:3478".into()],
                username: Some("u".into()),
                credential: Some("secret".into()),
            }];
            c.policies
                .config
                .insert("token-auth".into(), table("auth_token = \"t\""));
        })
        .await?;
        let base = gw.base_url();
        let preflight = client
            .request(
                reqwest::Method::OPTIONS,
                format!("{base}/api/whip/publish/demo"),
            )
            .header("origin", "http://app.example:8080")
            .header("access-control-request-method", "POST")
            .send()
            .await?;
        let header = |r: &reqwest::Response, name: &str| {
            r.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned()
        };
        ensure!(
            preflight.status() == 204,
            "preflight -> {}",
            preflight.status()
        );
        ensure!(
            header(&preflight, "access-control-allow-origin") == "http://app.example:8080"
                && header(&preflight, "vary").contains("Origin")
                && header(&preflight, "access-control-allow-credentials") == "true"
                && header(&preflight, "access-control-allow-methods") == "GET, POST, OPTIONS"
                && header(&preflight, "access-control-allow-headers")
                    == "Content-Type, Authorization, X-Auth-Token",
            "preflight headers: {:?}",
            preflight.headers()
        );
        let foreign = client
            .get(format!("{base}/api/rooms"))
            .header("origin", "https://evil.example")
            .send()
            .await?;
        ensure!(
            header(&foreign, "access-control-allow-origin").is_empty(),
            "a foreign origin was allowed"
        );

        // go-live decides on the token before it reads the body.
        let publish = format!("{base}/api/whip/publish/demo");
        let (s, _, body) = call(client.post(&publish)).await?;
        ensure!(
            s == 401 && body == "unauthorized\n",
            "empty body, no token: {s} {body:?}"
        );
        let (s, _, body) = call(client.post(&publish).header("x-auth-token", "t")).await?;
        ensure!(
            s == 400 && body == "invalid request body\n",
            "empty body, token: {s} {body:?}"
        );

        let bootstrap = format!("{base}/api/bootstrap");
        let (s, _, body) = call(client.get(&bootstrap)).await?;
        let anonymous: Value = serde_json::from_str(&body)?;
        ensure!(s == 200 && anonymous["authEnabled"] == true, "{body}");
        ensure!(
            anonymous["iceServers"][0]["urls"][0] == "turn:turn.example:3478"
                && anonymous["iceServers"][0].get("credential").is_none(),
            "TURN credential leaked to an anonymous caller: {body}"
        );
        let (_, _, body) = call(client.get(&bootstrap).header("x-auth-token", "t")).await?;
        let user: Value = serde_json::from_str(&body)?;
        ensure!(
            user["iceServers"][0]["username"] == "u"
                && user["iceServers"][0]["credential"] == "secret",
            "a user gets the TURN credential: {body}"
        );
        gw.shutdown().await;
        Ok(())
    })
    .await;
}
