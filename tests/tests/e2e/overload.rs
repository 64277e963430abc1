//! Past saturation the media thread refuses new subscribers (`[webrtc] max_loop_load`) rather
//! than fall behind for every subscriber it already serves: WHEP and Live777 get 503 with
//! `Retry-After`, LEB errcode 503001, `/metrics` counts the refusals, and the publisher keeps
//! streaming. The limit is set below any real work, so a streaming publisher alone exceeds it.

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use gatehouse_e2e::{
    Publish, bounded, http, media_lock, offers, post_sdp, start_gateway, wait_for_media,
};
use serde_json::{Value, json};

const LIMIT: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribers_are_refused_with_503_while_the_media_thread_is_over_its_load_limit() {
    let _guard = media_lock().await;
    let result: Result<()> = bounded("overload", LIMIT, async {
        let gw = start_gateway(|c| c.webrtc.max_loop_load = 1e-6).await?;
        let base = gw.base_url();
        let publisher = Publish {
            seconds: 5.0,
            ..Default::default()
        }
        .spawn(&format!("{base}/v1/whip/busy"))?;
        wait_for_media(&gw, "busy", Duration::from_secs(10)).await?;
        // One load window (1 s) closes with the publisher's work in it.
        tokio::time::sleep(Duration::from_millis(1200)).await;

        let viewer = &offers().await?.whep[0];
        for url in [format!("{base}/v1/whep/busy"), format!("{base}/whep/busy")] {
            let response = post_sdp(&url, viewer).await?;
            let status = response.status().as_u16();
            let retry_after = response
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned();
            let body = response.text().await?;
            println!(
                "{url} -> {status}, Retry-After {retry_after:?}: {}",
                body.trim()
            );
            ensure!(status == 503, "{url}: {status} {body}");
            ensure!(retry_after == "5", "{url}: Retry-After {retry_after:?}");
            ensure!(body.contains("overloaded"), "{url}: {body}");
        }

        let pull = json!({
            "streamurl": "webrtc://localhost/live/busy",
            "sessionid": "overload-test",
            "clientinfo": "test",
            "localsdp": {"type": "offer", "sdp": viewer},
        });
        let reply: Value = serde_json::from_str(
            &http()
                .post(format!("{base}/webrtc/v1/pullstream"))
                .body(pull.to_string())
                .send()
                .await?
                .text()
                .await?,
        )?;
        println!("pullstream -> {reply}");
        ensure!(reply["errcode"] == 503001, "pullstream: {reply}");

        let metrics = http()
            .get(format!("{base}/metrics"))
            .send()
            .await?
            .text()
            .await?;
        let sample = |name: &str| -> Result<f64> {
            metrics
                .lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l.rsplit(' ').next())
                .and_then(|v| v.parse().ok())
                .with_context(|| format!("{name} missing from /metrics"))
        };
        let refused = sample("gatehouse_subscribers_refused_total{reason=\"overload\"}")?;
        let load = sample("gatehouse_media_loop_load")?;
        println!("refused {refused}, loop load {load}");
        ensure!(refused == 3.0, "refusals counted: {refused}");
        ensure!(load > 0.0, "loop load {load}");

        let room = gw.room("busy").await.context("room gone")?;
        ensure!(
            room.subscribers == 0,
            "a refused subscriber was left behind"
        );
        publisher.finish().await?.expect_ok()?;
        gw.shutdown().await;
        Ok(())
    })
    .await;
    if let Err(e) = result {
        panic!(
            "subscribers_are_refused_with_503_while_the_media_thread_is_over_its_load_limit: {e:#}"
        );
    }
}
