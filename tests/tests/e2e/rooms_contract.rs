//! What operators and their tools rely on in go-live's rooms API (specs/dialects.md §5): its
//! CORS, room-name, admission-order, rate-limit, answer and bootstrap (TURN secrets) rules.

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use gatehouse_e2e::{http, offers, start_gateway, wait_room};
use gatehouse_sdk::jwt::{Algorithm, Claims, sign};
use reqwest::Method;
use serde_json::{Value, json};

use crate::contract_support::{call, hdr, run, table, unix_now};

const APP_ORIGIN: &str = "https://app.example";
const TURN_URL: &str = "turn:turn.example:3478";

/// `ALLOWED_ORIGIN="*"` (the default) answers `*` without `Vary: Origin`; a configured origin
/// is echoed on an actual request, with `Vary: Origin` and credentials.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rooms_cors_is_a_wildcard_by_default_and_echoes_the_configured_origin_with_credentials() {
    run("rooms_cors", Duration::from_secs(60), async {
        let client = http();
        let open = start_gateway(|_| {}).await?;
        for origin in [None, Some("https://anywhere.example")] {
            let mut request = client.get(format!("{}/api/rooms", open.base_url()));
            if let Some(origin) = origin {
                request = request.header("origin", origin);
            }
            let (s, h, _) = call(request).await?;
            ensure!(
                s == 200 && hdr(&h, "access-control-allow-origin") == "*",
                "GET /api/rooms with origin {origin:?}: {s} {h:?}"
            );
            ensure!(
                !hdr(&h, "vary").to_ascii_lowercase().contains("origin"),
                "a wildcard answer varies by Origin: {h:?}"
            );
        }
        open.shutdown().await;

        let pinned = start_gateway(|c| {
            c.rooms
                .apply_env(|v| (v == "ALLOWED_ORIGIN").then(|| APP_ORIGIN.to_owned()))
                .unwrap_or_default();
        })
        .await?;
        let request = client
            .get(format!("{}/api/rooms", pinned.base_url()))
            .header("origin", APP_ORIGIN);
        let (s, h, _) = call(request).await?;
        ensure!(
            s == 200
                && hdr(&h, "access-control-allow-origin") == APP_ORIGIN
                && hdr(&h, "vary").contains("Origin")
                && hdr(&h, "access-control-allow-credentials") == "true",
            "GET /api/rooms from the configured origin: {s} {h:?}"
        );
        pinned.shutdown().await;
        Ok(())
    })
    .await;
}

/// A room name outside `^[A-Za-z0-9_-]{1,64}$` is 400 `invalid room` sent before go-live's
/// CORS headers (preflight included), whatever the origin setting.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rooms_invalid_room_names_are_400_text_without_cors_headers() {
    run("rooms_invalid_room", Duration::from_secs(60), async {
        let client = http();
        let offer = offers().await?.whip[0].clone();
        let long = "x".repeat(65);
        for allowed in ["*", APP_ORIGIN] {
            let gw = start_gateway(|c| c.rooms.allowed_origin = allowed.into()).await?;
            let base = gw.base_url();
            let cases = [
                (Method::POST, format!("{base}/api/whip/publish/bad!name")),
                (Method::POST, format!("{base}/api/whep/play/{long}")),
                (Method::OPTIONS, format!("{base}/api/whip/publish/bad!name")),
                (Method::OPTIONS, format!("{base}/api/whep/play/{long}")),
            ];
            for (method, url) in cases {
                let mut request = client
                    .request(method.clone(), url.as_str())
                    .header("origin", APP_ORIGIN);
                request = if method == Method::OPTIONS {
                    request.header("access-control-request-method", "POST")
                } else {
                    request.body(offer.clone())
                };
                let (s, h, body) = call(request).await?;
                ensure!(
                    s == 400 && body == "invalid room\n",
                    "{method} {url} (ALLOWED_ORIGIN {allowed}): {s} {body:?}"
                );
                ensure!(
                    hdr(&h, "access-control-allow-origin").is_empty()
                        && hdr(&h, "access-control-allow-credentials").is_empty(),
                    "{method} {url} (ALLOWED_ORIGIN {allowed}): CORS headers on an invalid room: {h:?}"
                );
            }
            // 64 characters is a valid name: its other errors do carry CORS headers.
            let request = client
                .post(format!("{base}/api/whip/publish/{}", "x".repeat(64)))
                .header("origin", APP_ORIGIN);
            let (s, h, body) = call(request).await?;
            ensure!(
                s == 400
                    && body == "invalid request body\n"
                    && !hdr(&h, "access-control-allow-origin").is_empty(),
                "64-character room, empty body (ALLOWED_ORIGIN {allowed}): {s} {body:?} {h:?}"
            );
            gw.shutdown().await;
        }
        Ok(())
    })
    .await;
}

/// A room a Live777 WHEP subscriber created (no publisher) at `MAX_SUBS_PER_ROOM=1`: a rooms
/// play gets 403 `subscriber limit reached`, checked before the 404 of a room without
/// publisher; a room under its cap gets the 404.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rooms_play_over_the_subscriber_cap_is_403_before_the_404_of_a_room_without_publisher() {
    run("rooms_cap_before_404", Duration::from_secs(60), async {
        let gw = start_gateway(|c| {
            c.policies
                .apply_env(|v| (v == "MAX_SUBS_PER_ROOM").then(|| "1".to_owned()))
                .unwrap_or_default();
        })
        .await?;
        let base = gw.base_url();
        let client = http();
        let o = offers().await?;
        let waiting = client
            .post(format!("{base}/whep/lonely"))
            .header("Content-Type", "application/sdp")
            .body(o.whep[0].clone());
        let (s, _, body) = call(waiting).await?;
        ensure!(
            s == 201,
            "Live777 WHEP on a new stream (auto_create_whep): {s} {body:?}"
        );
        let (settled, snapshot) = wait_room(&gw, "lonely", Duration::from_secs(3), |r| {
            r.is_some_and(|r| r.publishers == 0 && r.subscribers == 1)
        })
        .await;
        ensure!(settled, "room lonely: {snapshot:?}");

        let play = client
            .post(format!("{base}/api/whep/play/lonely"))
            .body(o.whep[1].clone());
        let (s, h, body) = call(play).await?;
        let reply: Value = serde_json::from_str(&body).unwrap_or_default();
        ensure!(
            s == 403
                && hdr(&h, "content-type").starts_with("application/json")
                && reply == json!({"error": "subscriber limit reached"}),
            "play over the cap in a room without publisher: {s} {body:?}"
        );
        let play = client
            .post(format!("{base}/api/whep/play/nobody"))
            .body(o.whep[2].clone());
        let (s, _, body) = call(play).await?;
        let reply: Value = serde_json::from_str(&body).unwrap_or_default();
        ensure!(
            s == 404 && reply == json!({"error": "no active publisher in room"}),
            "play in an unknown room under the cap: {s} {body:?}"
        );
        gw.shutdown().await;
        Ok(())
    })
    .await;
}

/// Publish, play, bootstrap and records each answer 429 `too many requests` past the burst
/// (one gateway each: the bucket is per client IP, shared by the routes); healthz, metrics and
/// the admin close are never limited.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rooms_rate_limit_covers_publish_play_bootstrap_records_not_healthz_metrics_close() {
    run("rooms_rate_limit", Duration::from_secs(90), async {
        let client = http();
        let routes = [
            ("publish", Method::POST, "/api/whip/publish/rl"),
            ("play", Method::POST, "/api/whep/play/rl"),
            ("bootstrap", Method::GET, "/api/bootstrap"),
            ("records", Method::GET, "/api/records"),
        ];
        let mut last: Option<gatehouse::Gateway> = None;
        for (what, method, path) in routes {
            let gw = start_gateway(|c| {
                c.rooms.rate_limit_rps = 0.05;
                c.rooms.rate_limit_burst = 2;
                c.policies
                    .config
                    .insert("token-auth".into(), table("admin_token = \"ops\""));
            })
            .await?;
            let url = format!("{}{path}", gw.base_url());
            let request = || {
                client
                    .request(method.clone(), url.as_str())
                    .header("x-auth-token", "ops")
            };
            for n in 1..=2 {
                let (s, _, body) = call(request()).await?;
                ensure!(
                    s != 429,
                    "{what}: request {n} of a burst of 2 was limited: {body:?}"
                );
            }
            let (s, _, body) = call(request()).await?;
            ensure!(
                s == 429 && body == "too many requests\n",
                "{what}: third request: {s} {body:?}"
            );
            if let Some(previous) = last.replace(gw) {
                previous.shutdown().await;
            }
        }
        let gw = last.context("no gateway")?;
        let base = gw.base_url();
        for _ in 0..4 {
            let (s, _, _) = call(client.get(format!("{base}/healthz"))).await?;
            ensure!(s == 200, "/healthz of a limited client: {s}");
            let (s, _, _) = call(client.get(format!("{base}/metrics"))).await?;
            ensure!(s == 200, "/metrics of a limited client: {s}");
            let close = client
                .post(format!("{base}/api/admin/rooms/rl/close"))
                .header("x-auth-token", "ops");
            let (s, _, body) = call(close).await?;
            ensure!(
                s == 404 && body == "not found\n",
                "admin close of a limited client: {s} {body:?}"
            );
        }
        let (s, _, _) = call(client.get(format!("{base}/api/bootstrap"))).await?;
        ensure!(s == 429, "the client's bucket should still be empty: {s}");
        gw.shutdown().await;
        Ok(())
    })
    .await;
}

/// The 201 of a rooms publish and of a rooms play is the SDP answer as `application/sdp`,
/// without a session resource.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rooms_publish_and_play_answer_201_with_application_sdp() {
    run("rooms_answer_type", Duration::from_secs(60), async {
        let gw = start_gateway(|_| {}).await?;
        let base = gw.base_url();
        let client = http();
        let o = offers().await?;
        for (what, path, offer) in [
            ("publish", "/api/whip/publish/ctype", &o.whip[1]),
            ("play", "/api/whep/play/ctype", &o.whep[2]),
        ] {
            let (s, h, body) =
                call(client.post(format!("{base}{path}")).body(offer.clone())).await?;
            ensure!(
                s == 201
                    && hdr(&h, "content-type").starts_with("application/sdp")
                    && body.starts_with("v=0")
                    && hdr(&h, "location").is_empty(),
                "{what}: {s} {h:?} {}",
                body.chars().take(120).collect::<String>()
            );
        }
        gw.shutdown().await;
        Ok(())
    })
    .await;
}

fn turn_server() -> gatehouse::config::IceServerConfig {
    gatehouse::config::IceServerConfig {
        urls: vec![TURN_URL.into()],
        username: Some("turn-user".into()),
        credential: Some("turn-secret".into()),
    }
}

/// `/api/bootstrap{query}` as a caller presenting `header` sees it, and whether it holds the
/// TURN username and credential.
async fn bootstrap_as(
    base: &str,
    query: &str,
    header: Option<(&str, &str)>,
) -> Result<(Value, bool)> {
    let mut request = http().get(format!("{base}/api/bootstrap{query}"));
    if let Some((name, value)) = header {
        request = request.header(name, value);
    }
    let (s, _, body) = call(request).await?;
    ensure!(s == 200, "bootstrap{query} with {header:?}: {s} {body:?}");
    let boot: Value = serde_json::from_str(&body)?;
    let server = &boot["iceServers"][0];
    ensure!(
        server["urls"][0] == TURN_URL,
        "bootstrap lost the TURN URL: {body}"
    );
    let username = server.get("username").is_some();
    let credential = server.get("credential").is_some();
    ensure!(
        username == credential,
        "TURN username and credential go together: {body}"
    );
    if credential {
        ensure!(
            server["username"] == "turn-user" && server["credential"] == "turn-secret",
            "TURN secrets: {body}"
        );
    }
    Ok((boot, credential))
}

fn jwt(secret: &str, claims: Value) -> String {
    let claims: Claims = claims.as_object().cloned().unwrap_or_default();
    sign(Algorithm::Hs256, &claims, secret.as_bytes())
}

/// A bootstrap case: what the caller is, the query, the header it presents, and whether it
/// must get the TURN credentials.
type BootstrapCase = (
    &'static str,
    &'static str,
    Option<(&'static str, String)>,
    bool,
);

async fn expect_bootstrap(base: &str, setup: &str, cases: Vec<BootstrapCase>) -> Result<()> {
    for (what, query, header, expected) in cases {
        let presented = header.as_ref().map(|(n, v)| (*n, v.as_str()));
        let (boot, secrets) = bootstrap_as(base, query, presented).await?;
        ensure!(
            secrets == expected,
            "{setup}, {what} (bootstrap{query}): TURN credentials given = {secrets}, \
             expected {expected}: {boot}"
        );
    }
    Ok(())
}

/// With auth on, TURN credentials go only to callers presenting a token valid for some
/// configured credential (a room token, the auth or admin token, a valid JWT); anonymous and
/// wrong-token callers get the URLs alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rooms_bootstrap_gives_turn_credentials_only_to_callers_with_a_valid_token() {
    run("rooms_bootstrap", Duration::from_secs(60), async {
        let bearer = |t: &str| Some(("authorization", format!("Bearer {t}")));
        let x_auth = |t: &str| Some(("x-auth-token", t.to_owned()));
        let now = unix_now() as i64;
        let demo = "?room=demo";

        // Only room tokens: auth is on although no AUTH_TOKEN is set.
        let rooms_only = start_gateway(|c| {
            c.webrtc.ice_servers = vec![turn_server()];
            c.policies
                .apply_env(|v| (v == "ROOM_TOKENS").then(|| "demo:tok".to_owned()))
                .unwrap_or_default();
        })
        .await?;
        let (boot, _) = bootstrap_as(&rooms_only.base_url(), "", None).await?;
        ensure!(
            boot["authEnabled"] == true
                && boot["recordEnabled"] == false
                && boot["features"] == json!({"rooms": true, "records": true}),
            "bootstrap: {boot}"
        );
        let agreed: Vec<BootstrapCase> = vec![
            ("anonymous", "", None, false),
            ("a wrong token", "", bearer("nope"), false),
            ("anonymous", demo, None, false),
            ("a wrong token", demo, bearer("nope"), false),
            ("the room token as Bearer", demo, bearer("tok"), true),
            ("the room token as X-Auth-Token", demo, x_auth("tok"), true),
        ];
        expect_bootstrap(&rooms_only.base_url(), "room tokens only", agreed).await?;

        let every_kind = start_gateway(|c| {
            c.webrtc.ice_servers = vec![turn_server()];
            c.policies.config.insert(
                "token-auth".into(),
                table(
                    "room_tokens = \"demo:tok\"\nauth_token = \"all\"\n\
                     admin_token = \"ops\"\njwt_secret = \"k3y\"",
                ),
            );
        })
        .await?;
        let agreed: Vec<BootstrapCase> = vec![
            ("anonymous", "", None, false),
            ("a wrong token", "", bearer("nope"), false),
            ("the auth token as Bearer", "", bearer("all"), true),
            ("the auth token as X-Auth-Token", "", x_auth("all"), true),
            ("the admin token", "", x_auth("ops"), true),
            (
                "a valid JWT for any room",
                "",
                bearer(jwt("k3y", json!({"exp": now + 600})).as_str()),
                true,
            ),
            (
                "a valid JWT for room demo",
                demo,
                bearer(jwt("k3y", json!({"room": "demo", "exp": now + 600})).as_str()),
                true,
            ),
            ("the room token", demo, x_auth("tok"), true),
            (
                "a JWT signed with another key",
                "",
                bearer(jwt("other", json!({"exp": now + 600})).as_str()),
                false,
            ),
            (
                "an expired JWT",
                "",
                bearer(jwt("k3y", json!({"exp": now - 3600})).as_str()),
                false,
            ),
        ];
        expect_bootstrap(&every_kind.base_url(), "every credential kind", agreed).await?;

        // A room token proves nothing without its room: the policies cannot tell it from a
        // guess for a gateway whose other rooms are open.
        let alone: Vec<BootstrapCase> =
            vec![("a room token without ?room=", "", bearer("tok"), false)];
        expect_bootstrap(&rooms_only.base_url(), "room tokens only", alone).await?;
        rooms_only.shutdown().await;
        every_kind.shutdown().await;
        Ok(())
    })
    .await;
}

/// go-live's `TLS_CERT_FILE`/`TLS_KEY_FILE` (and `HTTP_ADDR`) from the environment: the API
/// answers over HTTPS with that certificate, and plain HTTP on the port gets no answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn go_live_tls_variables_serve_the_api_over_https() {
    run("rooms_tls", Duration::from_secs(60), async {
        let dir = std::env::temp_dir().join(format!("gatehouse-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
        let made = tokio::process::Command::new("openssl")
            .args([
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
            ])
            .args(["-nodes", "-days", "1", "-subj", "/CN=127.0.0.1"])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .output()
            .await
            .context("openssl")?;
        ensure!(made.status.success(), "openssl: {made:?}");
        let (cert_path, key_path) = (cert.display().to_string(), key.display().to_string());
        let gw = start_gateway(|c| {
            let env = |name: &str| match name {
                "HTTP_ADDR" => Some("127.0.0.1:0".to_owned()),
                "TLS_CERT_FILE" => Some(cert_path.clone()),
                "TLS_KEY_FILE" => Some(key_path.clone()),
                _ => None,
            };
            c.apply_go_live_env(env).unwrap_or_default();
        })
        .await?;
        let base = gw.base_url();
        ensure!(base.starts_with("https://127.0.0.1:"), "{base}");
        let client = reqwest::Client::builder()
            .danger_accept_invalid_certs(true)
            .timeout(Duration::from_secs(5))
            .build()?;
        let (s, _, body) = call(client.get(format!("{base}/healthz"))).await?;
        ensure!(
            s == 200 && body.starts_with("ok"),
            "healthz over https: {s} {body:?}"
        );
        let offer = offers().await?.whip[0].clone();
        let (s, h, body) = call(
            client
                .post(format!("{base}/api/whip/publish/tls"))
                .body(offer),
        )
        .await?;
        ensure!(
            s == 201 && hdr(&h, "content-type") == "application/sdp" && body.starts_with("v=0"),
            "publish over https: {s} {body:?}"
        );
        let plain = base.replacen("https://", "http://", 1);
        let refused = http().get(format!("{plain}/healthz")).send().await;
        ensure!(
            !refused.is_ok_and(|r| r.status() == 200),
            "plain HTTP was served on the TLS port"
        );
        gw.shutdown().await;
        let _ = std::fs::remove_dir_all(&dir);
        Ok(())
    })
    .await;
}
