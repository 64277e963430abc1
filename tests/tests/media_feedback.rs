//! Keyframe requests: a viewer's PLIs reach the publisher, paced to one per 500 ms per track
//! however often viewers ask (DESIGN.md §3).

use std::time::Duration;

use anyhow::{Result, ensure};
use gatehouse_e2e::{Play, Publish, bounded, media_lock, start_gateway};

const LIMIT: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn viewer_keyframe_requests_reach_the_publisher_at_most_every_500ms() {
    let _guard = media_lock().await;
    let result: Result<()> = bounded("pli_relay", LIMIT, async {
        let gw = start_gateway(|c| c.webrtc.keyframe_request_interval_ms = 500).await?;
        let base = gw.base_url();
        let publisher = Publish {
            seconds: 8.0,
            ..Default::default()
        }
        .spawn(&format!("{base}/v1/whip/pli"))?;
        tokio::time::sleep(Duration::from_millis(1000)).await;
        let player = Play {
            pli_interval_ms: 100,
            delete: true,
            ..Play::for_seconds(5.0)
        }
        .spawn(&format!("{base}/v1/whep/pli"))?;
        let player = player.finish().await?.expect_ok()?;
        let publisher = publisher.finish().await?.expect_ok()?;
        gw.shutdown().await;
        let sent = player.u64("plis_sent");
        let received = publisher.u64("keyframe_requests");
        println!("PLI relay: viewer sent {sent} PLIs in ~5 s, publisher received {received}");
        ensure!(
            sent >= 35,
            "viewer sent only {sent} PLIs: {}",
            player.describe()
        );
        // ~5 s of requests at one per 500 ms, plus the one on join: about 10-11.
        ensure!(
            (5..=14).contains(&received),
            "publisher received {received} keyframe requests for {sent} viewer PLIs"
        );
        Ok(())
    })
    .await;
    if let Err(e) = result {
        panic!("viewer_keyframe_requests_reach_the_publisher_at_most_every_500ms: {e:#}");
    }
}
