//! One Janus subscriber, several feeds: a multistream `join` whose `streams` name two
//! publishers gets one offer carrying both, and the client decodes each.

use std::time::Duration;

use anyhow::{Result, ensure};
use gatehouse_e2e::{Publish, bounded, media_lock, start_gateway, wait_for_media};

use crate::janus_cross_dialect::janus_client;

const LIMIT: Duration = Duration::from_secs(120);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_joining_two_feeds_decodes_both_on_one_peerconnection() {
    let _guard = media_lock().await;
    let result: Result<()> = bounded("janus_two_feeds", LIMIT, async {
        let gw = start_gateway(|_| {}).await?;
        let base = gw.base_url();
        // A Janus publisher and a WHIP one in room 6464.
        let janus = janus_client(&base, 6464, "publish", 12.0, &["--display", "janus"])?;
        wait_for_media(&gw, "6464", Duration::from_secs(15)).await?;
        let whip = Publish {
            seconds: 11.0,
            ..Default::default()
        }
        .spawn(&format!("{base}/v1/whip/6464"))?;
        let player = janus_client(&base, 6464, "play", 4.0, &["--min-feeds", "2"])?
            .finish()
            .await?
            .expect_ok()?;
        let streams = &player.json["attached_streams"];
        let frames = &player.json["video_frames_per_track"];
        println!("two feeds: attached {streams}; video frames per track {frames}");
        let feeds: std::collections::BTreeSet<u64> = streams
            .as_array()
            .into_iter()
            .flatten()
            .filter(|s| s["active"] == true)
            .filter_map(|s| s["feed_id"].as_u64())
            .collect();
        ensure!(feeds.len() == 2, "one offer for both feeds: {streams}");
        let per_track: Vec<u64> = frames
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|f| f.as_u64())
            .collect();
        ensure!(
            per_track.len() == 2 && per_track.iter().all(|n| *n >= 30),
            "each feed decoded: {frames}"
        );
        whip.finish().await?.expect_ok()?;
        janus.finish().await?.expect_ok()?;
        gw.shutdown().await;
        Ok(())
    })
    .await;
    if let Err(e) = result {
        panic!("a_subscriber_joining_two_feeds_decodes_both_on_one_peerconnection: {e:#}");
    }
}
