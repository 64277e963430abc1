//! VP8 temporal layers over Janus: a Chromium publisher sends L1T3 over WHIP, an aiortc
//! subscriber joins the same-named Janus room and asks for fewer layers with `configure
//! {temporal}`; the frame rate it decodes follows.

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use gatehouse_e2e::{bounded, media_lock, spawn_browser_pages_with, start_gateway, wait_for_media};
use serde_json::Value;

use crate::janus_cross_dialect::janus_client;

const LIMIT: Duration = Duration::from_secs(120);

/// The `fps` of each `temporal_steps` entry the subscriber reported.
fn step_rates(steps: &Value) -> Result<Vec<f64>> {
    steps
        .as_array()
        .context("no temporal_steps")?
        .iter()
        .map(|s| s["fps"].as_f64().context("a step without fps"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configure_temporal_drops_vp8_temporal_layers_and_restores_them() {
    let _guard = media_lock().await;
    let result: Result<()> = bounded("janus_temporal", LIMIT, async {
        let gw = start_gateway(|_| {}).await?;
        let base = gw.base_url();
        let pages = spawn_browser_pages_with(&base, "8282", 24.0, &["--temporal-layers", "3"])?;
        wait_for_media(&gw, "8282", Duration::from_secs(20)).await?;
        // Every layer for 3 s, then layer 0 only, then up to layer 2 (all of L1T3) again.
        let player = janus_client(&base, 8282, "play", 3.0, &["--temporal-steps", "0,2"])?
            .finish()
            .await?
            .expect_ok()?;
        let steps = &player.json["temporal_steps"];
        println!("temporal layers: decoded frame rates {steps}");
        let rates = step_rates(steps)?;
        ensure!(rates.len() == 3, "{steps}");
        let (all, base_layer, restored) = (rates[0], rates[1], rates[2]);
        // L1T3: the base layer is a quarter of the frames, layers 0-1 a half.
        ensure!(all >= 8.0, "too few frames to judge: {steps}");
        ensure!(
            base_layer <= 0.6 * all,
            "temporal 0 kept the frame rate: {steps}"
        );
        ensure!(base_layer >= 1.0, "temporal 0 stopped the video: {steps}");
        ensure!(
            restored >= 1.5 * base_layer,
            "temporal 2 did not restore it: {steps}"
        );
        pages.finish().await?.expect_ok()?;
        gw.shutdown().await;
        Ok(())
    })
    .await;
    if let Err(e) = result {
        panic!("configure_temporal_drops_vp8_temporal_layers_and_restores_them: {e:#}");
    }
}
