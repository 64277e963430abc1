//! The LEB dialect's refusals (specs/dialects.md §4; errcodes as documented in
//! host/src/dialect/leb/mod.rs): every error path is HTTP 200 with CORS on the POST reply and
//! `{errcode, errmsg}`, and a svrsig proves one live session of one stream and nothing else
//! (forged, foreign, stopped or reaped ones are refused and change nothing, not even
//! `/metrics`).

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use gatehouse_e2e::{offers, start_gateway};
use gatehouse_sdk::crypto::{base64url_encode, hmac_sha256};
use serde_json::json;

use crate::contract_support::{
    PATIENT_CONNECT_SECS, first_frame_report, ice_report, leb, leb_series, metrics, post_leb, pull,
    pull_body, quality_report, reports_total, run_leb as run, stop, subscribers, wait_for_metric,
};

/// Queues a genuine report for `stream` and waits until it is its `count`th accepted
/// ice-state report. The quality worker takes reports in order, so whatever was queued
/// before it has been counted by then: a barrier for "nothing else was counted".
async fn report_barrier(base: &str, stream: &str, svrsig: &str, count: u64) -> Result<()> {
    let url = format!("webrtc://d/live/{stream}");
    let reply = leb(base, "reporticestate", &ice_report(&url, svrsig)).await?;
    ensure!(reply.errcode() == Some(0), "barrier report: {}", reply.json);
    wait_for_metric(base, &reports_total(stream, "ice-state", "accepted", count)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_leb_error_path_is_http_200_with_cors_and_its_documented_errcode() {
    run("leb_error_paths", async {
        let admission: toml::Table = toml::from_str("room.capped.max_subscribers = 1")?;
        let gw = start_gateway(move |c| {
            c.policies.config.insert("room-admission".into(), admission);
            c.webrtc.connect_timeout_secs = PATIENT_CONNECT_SECS;
        })
        .await?;
        let base = gw.base_url();
        let o = offers().await?;
        let viewer = o.whep[0].clone();

        // Not JSON, or JSON that is no object: 400001 on every endpoint.
        for endpoint in [
            "pullstream",
            "stopstream",
            "reportquality",
            "reporticestate",
            "firstframeusetime",
            "tabrctl",
        ] {
            for body in ["{not json", "", "[1, 2]", "\"text\""] {
                post_leb(&base, endpoint, body.to_owned())
                    .await?
                    .expect_refusal(&format!("{endpoint} with body {body:?}"), 400_001)?;
            }
        }

        // A body past the LEB limit (256 KiB) is a bad request, still HTTP 200 (not 413:
        // TXLivePlayer would retry a non-200).
        let huge = json!({"streamurl": "webrtc://d/live/huge", "sessionid": "s",
                          "clientinfo": "c", "localsdp": {"type": "offer", "sdp": viewer},
                          "pad": "p".repeat(300 * 1024)});
        for endpoint in ["pullstream", "reportquality"] {
            leb(&base, endpoint, &huge)
                .await?
                .expect_refusal(&format!("{endpoint} with a 300 KiB body"), 400_001)?;
        }
        ensure!(
            subscribers(&gw, "huge").await == 0,
            "an oversized pull opened a session"
        );

        // A pull without one of its required fields: 400001.
        for (what, body) in [
            (
                "no sessionid",
                json!({"streamurl": "webrtc://d/live/cam", "clientinfo": "c",
                       "localsdp": {"type": "offer", "sdp": viewer}}),
            ),
            (
                "no streamurl",
                json!({"sessionid": "s", "localsdp": {"type": "offer", "sdp": viewer}}),
            ),
            (
                "empty localsdp.sdp",
                json!({"streamurl": "webrtc://d/live/cam", "sessionid": "s",
                       "localsdp": {"type": "offer", "sdp": ""}}),
            ),
        ] {
            leb(&base, "pullstream", &body)
                .await?
                .expect_refusal(&format!("pullstream, {what}"), 400_001)?;
        }

        // Offers no player session can be made of: 400003, and no session stays.
        for (what, sdp) in [
            ("not SDP", "x".to_owned()),
            ("data channel only", o.datachannel[0].clone()),
            ("sendonly (a publisher's offer)", o.whip[0].clone()),
        ] {
            leb(
                &base,
                "pullstream",
                &pull_body("webrtc://d/live/unusable", &sdp),
            )
            .await?
            .expect_refusal(&format!("pullstream, offer {what}"), 400_003)?;
        }
        ensure!(
            subscribers(&gw, "unusable").await == 0,
            "an unusable offer left a session"
        );

        // The admit policy's refusal (this room's subscriber cap): 403001, its reason in errmsg.
        pull(&base, "webrtc://d/live/capped").await?;
        let reply = leb(
            &base,
            "pullstream",
            &pull_body("webrtc://d/live/capped", &viewer),
        )
        .await?;
        reply.expect_refusal("second subscriber of a room capped at one", 403_001)?;
        ensure!(
            reply.json["errmsg"]
                .as_str()
                .is_some_and(|m| m.contains("subscriber limit")),
            "admission errmsg: {}",
            reply.json
        );
        ensure!(
            subscribers(&gw, "capped").await == 1,
            "a refused pull opened a session"
        );

        // Session-bound calls without a svrsig (absent or empty): 403003.
        let url = "webrtc://d/live/open";
        let svrsig = pull(&base, url).await?;
        for endpoint in [
            "stopstream",
            "reportquality",
            "reporticestate",
            "firstframeusetime",
            "tabrctl",
        ] {
            let fields = json!({"streamurl": url, "iceConnectionState": "connected",
                                "starttime": "1000", "firstplaytime": "1200",
                                "seq": 1, "bitrate_name": "hd"});
            let mut empty = fields.clone();
            empty["svrsig"] = json!("");
            for (what, body) in [("no svrsig", fields), ("an empty svrsig", empty)] {
                leb(&base, endpoint, &body)
                    .await?
                    .expect_refusal(&format!("{endpoint} with {what}"), 403_003)?;
            }
        }
        ensure!(
            subscribers(&gw, "open").await == 1,
            "a stopstream without svrsig ended the session"
        );

        // A genuine svrsig, but a required field missing or wrong: 400001.
        for (endpoint, body) in [
            (
                "reporticestate",
                json!({"streamurl": url, "svrsig": svrsig, "iceGatheringState": "complete"}),
            ),
            (
                "reporticestate",
                json!({"streamurl": url, "svrsig": svrsig, "iceConnectionState": ""}),
            ),
            (
                "firstframeusetime",
                json!({"streamurl": url, "svrsig": svrsig, "firstplaytime": "1200"}),
            ),
            (
                "firstframeusetime",
                json!({"streamurl": url, "svrsig": svrsig, "starttime": "1200",
                       "firstplaytime": "1000"}),
            ),
            ("tabrctl", json!({"svrsig": svrsig, "seq": 4})),
        ] {
            let reply = leb(&base, endpoint, &body).await?;
            reply.expect_refusal(&format!("{endpoint} {body}"), 400_001)?;
            if endpoint == "tabrctl" {
                ensure!(reply.json["seq"] == 4, "tabrctl echoes seq: {}", reply.json);
            }
        }
        // A streamurl that is no play URL, next to a genuine svrsig: 400002.
        for endpoint in ["stopstream", "reportquality"] {
            leb(
                &base,
                endpoint,
                &json!({"streamurl": "rtmp://d/live/open", "svrsig": svrsig}),
            )
            .await?
            .expect_refusal(&format!("{endpoint} with an rtmp:// streamurl"), 400_002)?;
        }
        ensure!(
            subscribers(&gw, "open").await == 1,
            "a refused stopstream ended the session"
        );

        // After stopstream the session is gone: tabrctl for it is 404001 (seq still echoed).
        stop(&base, url, &svrsig).await?;
        ensure!(
            subscribers(&gw, "open").await == 0,
            "stopstream left its session"
        );
        let reply = leb(
            &base,
            "tabrctl",
            &json!({"svrsig": svrsig, "seq": 9, "bitrate_name": "hd"}),
        )
        .await?;
        reply.expect_refusal("tabrctl after stopstream", 404_001)?;
        ensure!(reply.json["seq"] == 9, "tabrctl echoes seq: {}", reply.json);
        gw.shutdown().await;
        Ok(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_svrsig_proves_only_its_own_session_of_its_own_stream() {
    run("svrsig_matrix", async {
        let gw = start_gateway(|c| c.webrtc.connect_timeout_secs = PATIENT_CONNECT_SECS).await?;
        let base = gw.base_url();
        let (alpha_url, beta_url) = ("webrtc://d/live/alpha", "webrtc://d/live/beta");
        let alpha = pull(&base, alpha_url).await?;
        let beta = pull(&base, beta_url).await?;
        // Forgeries (svrsig = payload "." MAC, leb-svrsig's documented form): a mangled MAC,
        // garbage, alpha's claims under beta's MAC, alpha's claims signed with another key.
        let (alpha_payload, _) = alpha.split_once('.').context("svrsig without '.'")?;
        let (_, beta_mac) = beta.split_once('.').context("svrsig without '.'")?;
        let forgeries = [
            format!("{alpha}x"),
            "garbage".to_owned(),
            format!("{alpha_payload}.{beta_mac}"),
            format!(
                "{alpha_payload}.{}",
                base64url_encode(&hmac_sha256(b"not-the-key", alpha_payload.as_bytes()))
            ),
        ];

        for (seq, forged) in forgeries.iter().enumerate() {
            let reply = leb(
                &base,
                "tabrctl",
                &json!({"svrsig": forged, "seq": seq, "bitrate_name": "hd"}),
            )
            .await?;
            reply.expect_refusal(&format!("tabrctl with forgery {forged:?}"), 403_003)?;
            ensure!(
                reply.json["seq"] == json!(seq),
                "tabrctl seq: {}",
                reply.json
            );
            leb(
                &base,
                "stopstream",
                &json!({"streamurl": alpha_url, "svrsig": forged}),
            )
            .await?
            .expect_refusal(&format!("stopstream with forgery {forged:?}"), 403_003)?;
        }
        // alpha's genuine svrsig presented to stop beta.
        leb(
            &base,
            "stopstream",
            &json!({"streamurl": beta_url, "svrsig": alpha}),
        )
        .await?
        .expect_refusal("stopstream of beta with alpha's svrsig", 403_003)?;
        ensure!(
            subscribers(&gw, "alpha").await == 1 && subscribers(&gw, "beta").await == 1,
            "a refused stopstream ended a session"
        );

        // Forged or foreign quality reports are refused before the quality policy: alpha's
        // series do not move. One genuine report each first, so the series exist.
        report_barrier(&base, "alpha", &alpha, 1).await?;
        report_barrier(&base, "beta", &beta, 1).await?;
        let before = leb_series(&metrics(&base).await?, "alpha");
        for presented in forgeries.iter().chain(std::iter::once(&beta)) {
            // 50 % video loss: would show in leb_loss_percent if it were taken.
            let body = quality_report(alpha_url, presented, (1000, 3000), (50, 50));
            leb(&base, "reportquality", &body)
                .await?
                .expect_refusal(&format!("reportquality with svrsig {presented:?}"), 403_003)?;
        }
        report_barrier(&base, "beta", &beta, 2).await?;
        let text = metrics(&base).await?;
        let after = leb_series(&text, "alpha");
        ensure!(
            before == after,
            "refused reports moved alpha's series:\nbefore {before:#?}\nafter {after:#?}"
        );
        let beta_quality: Vec<String> = leb_series(&text, "beta")
            .into_iter()
            .filter(|l| l.contains("type=\"quality\"") || l.starts_with("leb_loss_percent"))
            .collect();
        ensure!(
            beta_quality.is_empty(),
            "beta's svrsig on alpha's report was counted for beta: {beta_quality:?}"
        );
        gw.shutdown().await;
        Ok(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_and_tabrctl_after_stopstream_get_404001_and_are_not_counted() {
    run("stopped_svrsig", async {
        let gw = start_gateway(|c| c.webrtc.connect_timeout_secs = PATIENT_CONNECT_SECS).await?;
        let base = gw.base_url();
        let url = "webrtc://d/live/stopped";
        let svrsig = pull(&base, url).await?;
        let marker = pull(&base, "webrtc://d/live/marker").await?;
        // While the session lives, its reports are taken.
        let reply = leb(&base, "reporticestate", &ice_report(url, &svrsig)).await?;
        ensure!(reply.errcode() == Some(0), "live report: {}", reply.json);
        wait_for_metric(&base, &reports_total("stopped", "ice-state", "accepted", 1)).await?;
        let before = leb_series(&metrics(&base).await?, "stopped");

        stop(&base, url, &svrsig).await?;
        ensure!(
            subscribers(&gw, "stopped").await == 0,
            "stopstream left its session"
        );
        // The svrsig still verifies (it is a signature), but its session is gone: 404001,
        // whether or not the call names the stream.
        for (endpoint, body) in [
            (
                "reportquality",
                quality_report(url, &svrsig, (1000, 3000), (100, 0)),
            ),
            ("reporticestate", ice_report(url, &svrsig)),
            ("firstframeusetime", first_frame_report(url, &svrsig, 300)),
            (
                "tabrctl",
                json!({"streamurl": url, "svrsig": svrsig, "seq": 11, "bitrate_name": "hd"}),
            ),
        ] {
            let mut bare = body.clone();
            if let Some(map) = bare.as_object_mut() {
                map.remove("streamurl");
            }
            for (what, body) in [("with streamurl", body), ("svrsig only", bare)] {
                let reply = leb(&base, endpoint, &body).await?;
                reply.expect_refusal(&format!("{endpoint} after stopstream, {what}"), 404_001)?;
                if endpoint == "tabrctl" {
                    ensure!(reply.json["seq"] == 11, "tabrctl seq: {}", reply.json);
                }
            }
        }
        // Nothing of that reached the quality worker.
        report_barrier(&base, "marker", &marker, 1).await?;
        let after = leb_series(&metrics(&base).await?, "stopped");
        ensure!(
            before == after,
            "reports after stopstream were counted:\nbefore {before:#?}\nafter {after:#?}"
        );
        gw.shutdown().await;
        Ok(())
    })
    .await;
}

/// A player that vanished without stopstream is reaped by the media core; its svrsig then
/// serves nothing either.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_svrsig_whose_session_was_reaped_gets_404001() {
    run("reaped_svrsig", async {
        let gw = start_gateway(|c| c.webrtc.connect_timeout_secs = 1).await?;
        let base = gw.base_url();
        let url = "webrtc://d/live/lapsed";
        let svrsig = pull(&base, url).await?;
        // Nobody connects: the connect timeout (1 s) ends the session.
        let deadline = Instant::now() + Duration::from_secs(15);
        while subscribers(&gw, "lapsed").await != 0 {
            if Instant::now() > deadline {
                bail!("an unconnected session outlived the 1 s connect timeout by 15 s");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // The gate learns of the ending from the media core's events: wait for the first
        // 404001 (tabrctl changes nothing, whatever its answer).
        let tabrctl = json!({"svrsig": svrsig, "seq": 1, "bitrate_name": "hd"});
        loop {
            let reply = leb(&base, "tabrctl", &tabrctl).await?;
            if reply.errcode() == Some(404_001) {
                reply.expect_refusal("tabrctl of a reaped session", 404_001)?;
                break;
            }
            if Instant::now() > deadline {
                bail!("tabrctl of a reaped session: {}", reply.json);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        for (endpoint, body) in [
            (
                "reportquality",
                quality_report(url, &svrsig, (1000, 3000), (100, 0)),
            ),
            ("reporticestate", ice_report(url, &svrsig)),
            ("firstframeusetime", first_frame_report(url, &svrsig, 300)),
        ] {
            leb(&base, endpoint, &body)
                .await?
                .expect_refusal(&format!("{endpoint} of a reaped session"), 404_001)?;
        }
        gw.shutdown().await;
        Ok(())
    })
    .await;
}
