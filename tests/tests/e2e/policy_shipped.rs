//! The shipped policies end to end over HTTP on the WHIP/WHEP paths: `token-auth` (go-live's
//! rules: room tokens, AUTH_TOKEN, JWT with expiry/audience/room, X-Auth-Token vs Bearer, the
//! Live777 claims option) and `room-admission` (subscriber cap, PIN, allowed tokens).
//!
//! Where only the decision matters the offer is junk: allowed requests then get 400 (bad SDP)
//! and denied ones the policy's status.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Result, ensure};
use gatehouse_e2e::{bounded, http, offers, post_sdp, start_gateway};
use gatehouse_sdk::jwt::{Algorithm, Claims, sign};
use serde_json::json;

const LIMIT: Duration = Duration::from_secs(60);
const ALLOWED: u16 = 400;

async fn run(name: &str, body: impl std::future::Future<Output = Result<()>>) {
    if let Err(e) = bounded(name, LIMIT, body).await {
        panic!("{name}: {e:#}");
    }
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

fn jwt(alg: Algorithm, secret: &str, claims: serde_json::Value) -> String {
    let claims: Claims = claims.as_object().cloned().unwrap_or_default();
    sign(alg, &claims, secret.as_bytes())
}

/// The status of a junk-offer POST to `path` with the given headers.
async fn status(base: &str, path: &str, headers: &[(&str, &str)]) -> Result<u16> {
    let mut request = http()
        .post(format!("{base}{path}"))
        .header("Content-Type", "application/sdp")
        .body("junk");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    Ok(request.send().await?.status().as_u16())
}

fn table(text: &str) -> toml::Table {
    toml::from_str(text).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unconfigured_token_auth_lets_everyone_in() {
    run("open", async {
        let gw = start_gateway(|_| {}).await?;
        ensure!(status(&gw.base_url(), "/v1/whip/any", &[]).await? == ALLOWED);
        gw.shutdown().await;
        Ok(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_token_is_required_from_either_header() {
    run("auth_token", async {
        let gw = start_gateway(|c| {
            c.policies
                .apply_env(|v| (v == "AUTH_TOKEN").then(|| "s3cret".to_owned()))
                .unwrap_or_default();
        })
        .await?;
        let base = gw.base_url();
        ensure!(status(&base, "/v1/whip/a", &[]).await? == 401, "no token");
        ensure!(status(&base, "/whep/a", &[("authorization", "Bearer nope")]).await? == 401);
        ensure!(
            status(&base, "/v1/whip/a", &[("authorization", "bearer s3cret")]).await? == ALLOWED
        );
        ensure!(status(&base, "/whep/a", &[("x-auth-token", "s3cret")]).await? == ALLOWED);
        gw.shutdown().await;
        Ok(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_room_token_replaces_auth_token_for_its_room() {
    run("room_tokens", async {
        let gw = start_gateway(|c| {
            c.policies.config.insert(
                "token-auth".into(),
                table("room_tokens = \"vip:t1; other:t2\"\nauth_token = \"global\""),
            );
        })
        .await?;
        let base = gw.base_url();
        let bearer = |t: &'static str| [("authorization", t)];
        ensure!(status(&base, "/v1/whip/vip", &bearer("Bearer t1")).await? == ALLOWED);
        ensure!(status(&base, "/v1/whip/vip", &bearer("Bearer global")).await? == 401);
        ensure!(status(&base, "/v1/whip/lobby", &bearer("Bearer global")).await? == ALLOWED);
        ensure!(status(&base, "/v1/whip/lobby", &bearer("Bearer t1")).await? == 401);
        gw.shutdown().await;
        Ok(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwt_expiry_audience_room_and_signature_are_enforced() {
    run("jwt", async {
        let gw = start_gateway(|c| {
            c.policies.config.insert(
                "token-auth".into(),
                table("jwt_secret = \"k\"\njwt_audience = \"gatehouse\""),
            );
        })
        .await?;
        let base = gw.base_url();
        let exp = now() + 300;
        let good = jwt(
            Algorithm::Hs256,
            "k",
            json!({"room": "demo", "aud": "gatehouse", "exp": exp}),
        );
        let cases = [
            ("valid HS256", good.clone(), "/v1/whip/demo", ALLOWED),
            (
                "valid HS512, aud list",
                jwt(
                    Algorithm::Hs512,
                    "k",
                    json!({"aud": ["x", "gatehouse"], "exp": exp}),
                ),
                "/whep/any",
                ALLOWED,
            ),
            (
                "valid HS384, no room claim",
                jwt(
                    Algorithm::Hs384,
                    "k",
                    json!({"aud": "gatehouse", "exp": exp}),
                ),
                "/v1/whep/other",
                ALLOWED,
            ),
            ("room mismatch", good.clone(), "/v1/whip/elsewhere", 401),
            (
                "expired beyond leeway",
                jwt(
                    Algorithm::Hs256,
                    "k",
                    json!({"aud": "gatehouse", "exp": now() - 120}),
                ),
                "/v1/whip/demo",
                401,
            ),
            (
                "expired within 30 s leeway",
                jwt(
                    Algorithm::Hs256,
                    "k",
                    json!({"aud": "gatehouse", "exp": now() - 5}),
                ),
                "/v1/whip/demo",
                ALLOWED,
            ),
            (
                "no exp",
                jwt(Algorithm::Hs256, "k", json!({"aud": "gatehouse"})),
                "/v1/whip/demo",
                401,
            ),
            (
                "wrong audience",
                jwt(Algorithm::Hs256, "k", json!({"aud": "other", "exp": exp})),
                "/v1/whip/demo",
                401,
            ),
            (
                "wrong key",
                jwt(
                    Algorithm::Hs256,
                    "x",
                    json!({"aud": "gatehouse", "exp": exp}),
                ),
                "/v1/whip/demo",
                401,
            ),
            ("tampered", format!("{good}x"), "/v1/whip/demo", 401),
        ];
        for (what, token, path, want) in cases {
            let header = format!("Bearer {token}");
            let got = status(&base, path, &[("authorization", header.as_str())]).await?;
            ensure!(got == want, "{what}: got {got}, expected {want}");
        }
        // JWTs count only as Bearer tokens (go-live).
        let got = status(&base, "/v1/whip/demo", &[("x-auth-token", good.as_str())]).await?;
        ensure!(got == 401, "JWT in X-Auth-Token: {got}");
        gw.shutdown().await;
        Ok(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live777_mode_bits_restrict_publish_and_play() {
    run("live777_jwt", async {
        let gw = start_gateway(|c| {
            c.policies.config.insert(
                "token-auth".into(),
                table("jwt_secret = \"k\"\njwt_claims = \"live777\""),
            );
        })
        .await?;
        let base = gw.base_url();
        let read_only = jwt(
            Algorithm::Hs256,
            "k",
            json!({"id": "cam", "mode": 4, "exp": now() + 60}),
        );
        let header = format!("Bearer {read_only}");
        let auth = [("authorization", header.as_str())];
        ensure!(
            status(&base, "/whep/cam", &auth).await? == ALLOWED,
            "read bit allows WHEP"
        );
        ensure!(
            status(&base, "/whip/cam", &auth).await? == 401,
            "no write bit: WHIP denied"
        );
        ensure!(
            status(&base, "/whep/other", &auth).await? == 401,
            "id mismatch denied"
        );
        gw.shutdown().await;
        Ok(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_subs_per_room_caps_subscribers_with_403() {
    run("subscriber_cap", async {
        let gw = start_gateway(|c| {
            c.policies
                .apply_env(|v| (v == "MAX_SUBS_PER_ROOM").then(|| "1".to_owned()))
                .unwrap_or_default();
        })
        .await?;
        let base = gw.base_url();
        let offers = offers().await?;
        let first = post_sdp(&format!("{base}/v1/whep/capped"), &offers.whep[0]).await?;
        ensure!(
            first.status() == 201,
            "first subscriber: {}",
            first.status()
        );
        let second = post_sdp(&format!("{base}/v1/whep/capped"), &offers.whep[1]).await?;
        let code = second.status().as_u16();
        let body = second.text().await?;
        ensure!(
            code == 403 && body.contains("subscriber limit reached"),
            "{code} {body}"
        );
        let elsewhere = post_sdp(&format!("{base}/v1/whep/free"), &offers.whep[2]).await?;
        ensure!(elsewhere.status() == 201, "the cap is per room");
        gw.shutdown().await;
        Ok(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_room_pin_and_allowed_tokens_are_admission_decisions() {
    run("room_rules", async {
        let gw = start_gateway(|c| {
            c.policies.config.insert(
                "room-admission".into(),
                table("[room.locked]\npin = \"1234\"\n[room.club]\nallowed = [\"member\"]\n"),
            );
        })
        .await?;
        let base = gw.base_url();
        // WHIP cannot present a PIN: a PIN room is closed to it.
        ensure!(status(&base, "/v1/whip/locked", &[]).await? == 403);
        ensure!(
            status(
                &base,
                "/v1/whip/club",
                &[("authorization", "Bearer member")]
            )
            .await?
                == ALLOWED
        );
        ensure!(status(&base, "/v1/whip/club", &[("authorization", "Bearer guest")]).await? == 403);
        ensure!(status(&base, "/v1/whip/open", &[]).await? == ALLOWED);
        gw.shutdown().await;
        Ok(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hook_whose_module_is_missing_fails_closed() {
    run("missing_module", async {
        let gw = start_gateway(|c| c.policies.authorize = "no-such-module".into()).await?;
        ensure!(status(&gw.base_url(), "/v1/whip/a", &[]).await? == 503);
        gw.shutdown().await;
        Ok(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_routes_need_the_admin_token_or_an_admin_jwt() {
    run("admin_routes", async {
        let gw = start_gateway(|c| {
            c.policies.config.insert(
                "token-auth".into(),
                table("admin_token = \"ops\"\njwt_secret = \"k\""),
            );
        })
        .await?;
        let base = gw.base_url();
        let exp = now() + 600;
        let admin_jwt = format!(
            "Bearer {}",
            jwt(Algorithm::Hs256, "k", json!({"role": "admin", "exp": exp}))
        );
        let user_jwt = format!(
            "Bearer {}",
            jwt(Algorithm::Hs256, "k", json!({"room": "lobby", "exp": exp}))
        );
        // The go-live operator routes: room close (404 once authorized: no such room) and the
        // recordings list; Live777's stream creation.
        let close_url = format!("{base}/api/admin/rooms/lobby/close");
        let close = |headers: &'static [(&'static str, &'static str)]| {
            let mut request = http().post(close_url.clone());
            for (name, value) in headers {
                request = request.header(*name, *value);
            }
            async move { Ok::<u16, anyhow::Error>(request.send().await?.status().as_u16()) }
        };
        ensure!(close(&[]).await? == 401, "anonymous close");
        ensure!(
            close(&[("x-auth-token", "ops")]).await? == 404,
            "admin token"
        );
        ensure!(
            close(&[("authorization", "Bearer ops")]).await? == 404,
            "admin token, Bearer"
        );
        ensure!(
            close(&[("x-auth-token", "wrong")]).await? == 401,
            "wrong token"
        );
        let with = |auth: &str| {
            http()
                .get(format!("{base}/api/records"))
                .header("authorization", auth.to_owned())
        };
        ensure!(with(&admin_jwt).send().await?.status() == 200, "admin JWT");
        ensure!(
            with(&user_jwt).send().await?.status() == 401,
            "room JWT is not admin"
        );
        let create = http()
            .post(format!("{base}/api/streams/provisioned"))
            .header("authorization", admin_jwt.clone());
        ensure!(
            create.send().await?.status() == 204,
            "admin JWT creates a Live777 stream"
        );
        gw.shutdown().await;
        Ok(())
    })
    .await;
}
