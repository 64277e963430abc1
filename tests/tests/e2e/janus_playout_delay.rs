//! A Janus subscriber's `configure {min_delay, max_delay}` reaches its player: janus.js in
//! Chromium asks for 0.5–1 s and Chromium's jitter buffer targets at least that (its
//! `jitterBufferTargetDelay`), through the gateway as through Janus 1.1.2. A publisher's
//! reaches its subscribers the same way.

use std::time::Duration;

use anyhow::{Result, ensure};
use gatehouse_e2e::{bounded, media_lock, spawn_janusjs, start_gateway};

use crate::janus_real_clients::NamespacedJanus;

const LIMIT: Duration = Duration::from_secs(150);

/// janus.js plays through `server`, and its subscriber (or publisher, `by`) asks for a
/// playout delay of 50–100 (× 10 ms).
async fn janusjs_delays_playout(server: &str, against: &str, by: &str) -> Result<()> {
    let args = ["--playout-delay", "50:100", "--playout-delay-by", by];
    let run = spawn_janusjs(server, 4747, &args)?.finish().await?;
    let delay = &run.json["playout_delay"];
    println!("janus.js playout delay vs {against}: {delay}");
    ensure!(run.ok(), "{}", run.describe());
    let ms = |k: &str| delay[k].as_u64();
    ensure!(
        ms("before_ms").is_some_and(|b| b < 300),
        "a short buffer before: {delay}"
    );
    ensure!(
        ms("after_ms").is_some_and(|a| a >= 450),
        "the player buffers at least the 500 ms asked: {delay}"
    );
    ensure!(
        ms("frames_after").is_some_and(|f| f > 30),
        "video goes on: {delay}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscribers_min_delay_makes_chromium_buffer_at_least_that_long() {
    let _guard = media_lock().await;
    let result: Result<()> = bounded("janusjs_playout_delay", LIMIT, async {
        let gw = start_gateway(|_| {}).await?;
        let outcome = janusjs_delays_playout(
            &format!("{}/janus", gw.base_url()),
            "gatehouse",
            "subscriber",
        )
        .await;
        gw.shutdown().await;
        outcome
    })
    .await;
    if let Err(e) = result {
        panic!("a_subscribers_min_delay_makes_chromium_buffer_at_least_that_long: {e:#}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn janus_1_1_2_makes_chromium_buffer_the_same_way() {
    let _guard = media_lock().await;
    let result: Result<()> = bounded("janusjs_playout_delay_real_janus", LIMIT, async {
        let janus = NamespacedJanus::start(8188, 8088)?;
        let server = format!("http://{}:8088/janus", janus.janus_ip);
        let outcome = janusjs_delays_playout(&server, "Janus 1.1.2", "subscriber").await;
        drop(janus);
        outcome
    })
    .await;
    if let Err(e) = result {
        panic!("janus_1_1_2_makes_chromium_buffer_the_same_way: {e:#}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publishers_min_delay_reaches_its_subscribers_players() {
    let _guard = media_lock().await;
    let result: Result<()> = bounded("janusjs_publisher_playout_delay", LIMIT, async {
        let gw = start_gateway(|_| {}).await?;
        let outcome = janusjs_delays_playout(
            &format!("{}/janus", gw.base_url()),
            "gatehouse",
            "publisher",
        )
        .await;
        gw.shutdown().await;
        outcome
    })
    .await;
    if let Err(e) = result {
        panic!("a_publishers_min_delay_reaches_its_subscribers_players: {e:#}");
    }
}
