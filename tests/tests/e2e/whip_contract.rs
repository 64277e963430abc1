//! The HTTP contract of the WHIP/WHEP endpoints (RFC 9725 `/v1/...` and Live777 paths) when
//! requests are right: success headers, CORS, DELETE, trickle, ICE restart, the stream listing.
//! Valid offers are real aiortc offers (`tests/clients/make_offer.py`), generated once per run.

use anyhow::ensure;
use gatehouse_e2e::whip_http::{SDPFRAG, patch, run, session};
use gatehouse_e2e::{header, http, ice_credentials, offers, post_sdp, sdpfrag, start_gateway};

// ---------------------------------------------------------------------------------------------
// success

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn successful_post_is_201_with_sdp_answer_location_etag_and_accept_patch() {
    run(
        "successful_post_is_201_with_sdp_answer_location_etag_and_accept_patch",
        async {
            let o = offers().await?;
            let gw = start_gateway(|_| {}).await?;
            let base = gw.base_url();
            let cases = [
                ("/v1/whip/std", &o.whip[0], "/v1/session/std/"),
                ("/v1/whep/std", &o.whep[0], "/v1/session/std/"),
                ("/whip/l7", &o.whip[1], "/session/l7/"),
                ("/whep/l7", &o.whep[1], "/session/l7/"),
            ];
            for (path, offer, prefix) in cases {
                let r = post_sdp(&format!("{base}{path}"), offer).await?;
                let status = r.status().as_u16();
                let ct = header(&r, "content-type");
                let loc = header(&r, "location");
                let etag = header(&r, "etag");
                let accept_patch = header(&r, "accept-patch");
                let link = header(&r, "link");
                let body = r.text().await?;
                ensure!(status == 201, "POST {path}: {status} {body}");
                ensure!(
                    ct.starts_with("application/sdp"),
                    "POST {path}: Content-Type {ct:?}"
                );
                ensure!(
                    loc.starts_with(prefix) && loc.len() > prefix.len(),
                    "POST {path}: Location {loc:?} should start with {prefix}<id>"
                );
                ensure!(
                    etag.len() >= 3 && etag.starts_with('"') && etag.ends_with('"'),
                    "POST {path}: ETag must be a quoted strong tag, got {etag:?}"
                );
                ensure!(
                    accept_patch.contains(SDPFRAG),
                    "POST {path}: Accept-Patch {accept_patch:?}"
                );
                ensure!(
                    link.is_empty(),
                    "POST {path}: no ICE servers configured, yet Link {link:?}"
                );
                ensure!(
                    body.starts_with("v=0"),
                    "POST {path}: body is not an SDP answer: {body}"
                );
                ensure!(
                    body.contains("a=ice-lite"),
                    "POST {path}: answer is not ICE-lite:\n{body}"
                );
                ensure!(
                    body.lines().any(|l| l.starts_with("a=candidate:")
                        && l.contains(" 127.0.0.1 ")
                        && l.contains(" typ host")),
                    "POST {path}: answer lacks a 127.0.0.1 host candidate:\n{body}"
                );
                let (ufrag, pwd) = ice_credentials(&body);
                ensure!(
                    ufrag.is_some() && pwd.is_some(),
                    "POST {path}: answer lacks ice-ufrag/ice-pwd"
                );
                ensure!(
                    body.contains("a=fingerprint:"),
                    "POST {path}: answer lacks a DTLS fingerprint"
                );
            }
            gw.shutdown().await;
            Ok(())
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn options_preflight_answers_with_cors_headers() {
    run("options_preflight_answers_with_cors_headers", async {
        let o = offers().await?;
        let gw = start_gateway(|_| {}).await?;
        let base = gw.base_url();
        for path in ["/v1/whip/demo", "/v1/whep/demo", "/whip/demo", "/whep/demo"] {
            let r = http()
                .request(reqwest::Method::OPTIONS, format!("{base}{path}"))
                .header("Origin", "http://example.test")
                .header("Access-Control-Request-Method", "POST")
                .header("Access-Control-Request-Headers", "content-type")
                .send()
                .await?;
            let status = r.status().as_u16();
            ensure!(status == 200 || status == 204, "OPTIONS {path}: {status}");
            let origin = header(&r, "access-control-allow-origin");
            ensure!(
                !origin.is_empty(),
                "OPTIONS {path}: no Access-Control-Allow-Origin"
            );
            let methods = header(&r, "access-control-allow-methods").to_ascii_uppercase();
            for m in ["POST", "PATCH", "DELETE"] {
                ensure!(
                    methods.contains(m),
                    "OPTIONS {path}: Allow-Methods {methods:?} lacks {m}"
                );
            }
            let allow_headers = header(&r, "access-control-allow-headers").to_ascii_lowercase();
            ensure!(
                allow_headers.contains("content-type"),
                "OPTIONS {path}: Allow-Headers {allow_headers:?}"
            );
        }
        // A PATCH preflight must allow If-Match.
        let r = http()
            .request(
                reqwest::Method::OPTIONS,
                format!("{base}/v1/session/demo/some-id"),
            )
            .header("Origin", "http://example.test")
            .header("Access-Control-Request-Method", "PATCH")
            .header("Access-Control-Request-Headers", "content-type, if-match")
            .send()
            .await?;
        let allow_headers = header(&r, "access-control-allow-headers").to_ascii_lowercase();
        ensure!(
            r.status().is_success() && allow_headers.contains("if-match"),
            "PATCH preflight: {} Allow-Headers {allow_headers:?}",
            r.status()
        );
        // Expose-Headers belongs on the actual (CORS) response: the page must read Location and ETag.
        let r = http()
            .post(format!("{base}/v1/whep/demo"))
            .header("Origin", "http://example.test")
            .header("Content-Type", "application/sdp")
            .body(o.whep[0].clone())
            .send()
            .await?;
        ensure!(r.status().as_u16() == 201, "CORS POST: {}", r.status());
        ensure!(
            !header(&r, "access-control-allow-origin").is_empty(),
            "CORS POST: no Allow-Origin"
        );
        let expose = header(&r, "access-control-expose-headers").to_ascii_lowercase();
        for h in ["location", "etag"] {
            ensure!(
                expose.contains(h) || expose == "*",
                "CORS POST: Expose-Headers {expose:?} lacks {h}"
            );
        }
        gw.shutdown().await;
        Ok(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_is_200_on_standard_paths_and_204_on_live777_paths() {
    run(
        "delete_is_200_on_standard_paths_and_204_on_live777_paths",
        async {
            let o = offers().await?;
            let gw = start_gateway(|_| {}).await?;
            let base = gw.base_url();
            let (std_url, _, _) = session(&base, "/v1/whep/d", &o.whep[0]).await?;
            let (l7_url, _, _) = session(&base, "/whep/d", &o.whep[1]).await?;
            let r = http().delete(&std_url).send().await?;
            ensure!(
                r.status().as_u16() == 200,
                "DELETE {std_url}: {}",
                r.status()
            );
            let r = http().delete(&l7_url).send().await?;
            ensure!(
                r.status().as_u16() == 204,
                "DELETE {l7_url}: {}",
                r.status()
            );
            // the standard session is gone now
            let r = http().delete(&std_url).send().await?;
            ensure!(
                r.status().as_u16() == 404,
                "second DELETE {std_url}: {}",
                r.status()
            );
            gw.shutdown().await;
            Ok(())
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trickle_patch_with_current_etag_is_204() {
    run("trickle_patch_with_current_etag_is_204", async {
        let o = offers().await?;
        let gw = start_gateway(|_| {}).await?;
        let base = gw.base_url();
        let offer = &o.whep[0];
        let (url, etag, _) = session(&base, "/v1/whep/t", offer).await?;
        let (ufrag, pwd) = ice_credentials(offer);
        let frag = sdpfrag(
            offer,
            &ufrag.unwrap_or_default(),
            &pwd.unwrap_or_default(),
            true,
        );
        let r = patch(&url, SDPFRAG, Some(&etag), frag.clone()).await?;
        let status = r.status().as_u16();
        let new_etag = header(&r, "etag");
        ensure!(
            status == 204,
            "trickle PATCH -> {status}: {}",
            r.text().await?
        );
        ensure!(
            new_etag.is_empty(),
            "a 204 trickle answer carries no ETag, got {new_etag:?}"
        );
        // Live777 session path: plain trickle → 204
        let (l7, _, _) = session(&base, "/whep/t", &o.whep[1]).await?;
        let (u1, p1) = ice_credentials(&o.whep[1]);
        let r = patch(
            &l7,
            SDPFRAG,
            None,
            sdpfrag(
                &o.whep[1],
                &u1.unwrap_or_default(),
                &p1.unwrap_or_default(),
                true,
            ),
        )
        .await?;
        ensure!(
            r.status().as_u16() == 204,
            "Live777 trickle PATCH -> {}",
            r.status()
        );
        gw.shutdown().await;
        Ok(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ice_restart_patch_is_200_with_new_credentials_and_etag_and_old_etag_is_then_stale() {
    run(
        "ice_restart_patch_is_200_with_new_credentials_and_etag_and_old_etag_is_then_stale",
        async {
            let o = offers().await?;
            let gw = start_gateway(|_| {}).await?;
            let base = gw.base_url();
            let offer = &o.whep[0];
            let (url, etag, answer) = session(&base, "/v1/whep/r", offer).await?;
            let (old_ufrag, old_pwd) = ice_credentials(&answer);
            let frag = sdpfrag(offer, "rstUfrag1", "restartPassword0123456789", true);
            let r = patch(&url, SDPFRAG, Some("\"*\""), frag).await?;
            let status = r.status().as_u16();
            let ct = header(&r, "content-type");
            let new_etag = header(&r, "etag");
            let body = r.text().await?;
            ensure!(status == 200, "ICE restart PATCH -> {status}: {body}");
            ensure!(
                ct.starts_with(SDPFRAG),
                "ICE restart answer Content-Type {ct:?}"
            );
            ensure!(
                !new_etag.is_empty() && new_etag != etag,
                "ICE restart must return a new ETag (old {etag}, new {new_etag:?})"
            );
            let (ufrag, pwd) = ice_credentials(&body);
            ensure!(
                ufrag.is_some() && ufrag != old_ufrag,
                "server ice-ufrag must change: {body}"
            );
            ensure!(
                pwd.is_some() && pwd != old_pwd,
                "server ice-pwd must change: {body}"
            );
            ensure!(
                body.contains("a=candidate:"),
                "restart answer must carry the server candidates: {body}"
            );
            // the pre-restart tag no longer matches
            let frag = sdpfrag(offer, "rstUfrag1", "restartPassword0123456789", true);
            let r = patch(&url, SDPFRAG, Some(&etag), frag.clone()).await?;
            ensure!(
                r.status().as_u16() == 412,
                "trickle with the pre-restart ETag -> {}",
                r.status()
            );
            let r = patch(&url, SDPFRAG, Some(&new_etag), frag).await?;
            ensure!(
                r.status().as_u16() == 204,
                "trickle with the new ETag -> {}",
                r.status()
            );
            // RFC 9110 spells the wildcard without quotes: `If-Match: *` restarts too.
            let frag = sdpfrag(offer, "rstUfrag2", "restartPassword9876543210", true);
            let r = patch(&url, SDPFRAG, Some("*"), frag).await?;
            let third = header(&r, "etag");
            ensure!(
                r.status().as_u16() == 200,
                "ICE restart with If-Match: * -> {}",
                r.status()
            );
            ensure!(
                !third.is_empty() && third != new_etag,
                "second restart must return another ETag"
            );
            gw.shutdown().await;
            Ok(())
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_streams_lists_streams_with_publish_and_subscribe_sessions() {
    run(
        "api_streams_lists_streams_with_publish_and_subscribe_sessions",
        async {
            let o = offers().await?;
            let gw = start_gateway(|_| {}).await?;
            let base = gw.base_url();
            session(&base, "/whip/listed", &o.whip[0]).await?;
            session(&base, "/whep/listed", &o.whep[0]).await?;
            let r = http().get(format!("{base}/api/streams/")).send().await?;
            ensure!(
                r.status().as_u16() == 200,
                "GET /api/streams/ -> {}",
                r.status()
            );
            let v: serde_json::Value = serde_json::from_str(&r.text().await?)?;
            let arr = v
                .as_array()
                .ok_or_else(|| anyhow::anyhow!("not an array: {v}"))?;
            let s = arr
                .iter()
                .find(|s| s["id"] == "listed")
                .ok_or_else(|| anyhow::anyhow!("stream 'listed' missing: {v}"))?;
            ensure!(
                s["createdAt"]
                    .as_u64()
                    .is_some_and(|t| t > 1_600_000_000_000),
                "createdAt must be Unix ms: {s}"
            );
            ensure!(
                s["publish"]["leaveAt"].as_u64() == Some(0),
                "publish.leaveAt must be 0 while publishing: {s}"
            );
            let pubs = s["publish"]["sessions"].as_array().map(Vec::len);
            let subs = s["subscribe"]["sessions"].as_array().map(Vec::len);
            ensure!(
                pubs == Some(1) && subs == Some(1),
                "expected 1 publish and 1 subscribe session: {s}"
            );
            let sess = &s["publish"]["sessions"][0];
            ensure!(
                sess["id"].is_string() && sess["createdAt"].is_u64() && sess["state"].is_string(),
                "session shape: {sess}"
            );
            gw.shutdown().await;
            Ok(())
        },
    )
    .await;
}
