//! One stream model behind every dialect: a stream published through one API plays through
//! another (aiortc publisher and player, decoded frames). runner365 joins when it lands.

use std::time::Duration;

use anyhow::{Result, ensure};
use gatehouse_e2e::{Play, Publish, bounded, media_lock, start_gateway};

const LIMIT: Duration = Duration::from_secs(90);

/// A dialect's publish and play path prefixes (the stream name follows).
struct Route {
    publish: &'static str,
    play: &'static str,
}

const STANDARD: Route = Route {
    publish: "/v1/whip/",
    play: "/v1/whep/",
};
const LIVE777: Route = Route {
    publish: "/whip/",
    play: "/whep/",
};
const ROOMS: Route = Route {
    publish: "/api/whip/publish/",
    play: "/api/whep/play/",
};

fn no_resource(prefix: &str) -> bool {
    prefix.starts_with("/api/")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_published_through_one_dialect_play_through_another() {
    let _guard = media_lock().await;
    let result: Result<()> = bounded("cross_dialect", LIMIT, async {
        let gw = start_gateway(|_| {}).await?;
        let base = gw.base_url();
        let pairs = [
            ("rooms-to-whep", &ROOMS, &STANDARD),
            ("whip-to-rooms", &STANDARD, &ROOMS),
            ("live777-to-rooms", &LIVE777, &ROOMS),
            ("rooms-to-live777", &ROOMS, &LIVE777),
        ];
        for (room, from, to) in pairs {
            let publisher = Publish {
                seconds: 4.5,
                no_session_resource: no_resource(from.publish),
                ..Default::default()
            }
            .spawn(&format!("{base}{}{room}", from.publish))?;
            tokio::time::sleep(Duration::from_millis(1000)).await;
            let player = Play {
                min_video_frames: 10,
                no_session_resource: no_resource(to.play),
                ..Play::for_seconds(2.5)
            }
            .spawn(&format!("{base}{}{room}", to.play))?;
            let player = player.finish().await?.expect_ok()?;
            publisher.finish().await?.expect_ok()?;
            let frames = player.u64("video_frames");
            println!("{room}: {frames} frames decoded");
            ensure!(frames >= 10, "{room}: {}", player.describe());
        }
        gw.shutdown().await;
        Ok(())
    })
    .await;
    if let Err(e) = result {
        panic!("streams_published_through_one_dialect_play_through_another: {e:#}");
    }
}
