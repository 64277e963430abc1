//! One stream model behind every dialect: a stream published through one API plays through
//! every other (aiortc publisher and players, decoded frames): WHIP, Live777, go-live's rooms
//! API and runner365, each publishing and each playing.

use std::time::Duration;

use anyhow::{Result, ensure};
use gatehouse_e2e::{Play, Publish, bounded, media_lock, start_gateway};

const LIMIT: Duration = Duration::from_secs(120);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dialect {
    Standard,
    Live777,
    Rooms,
    Runner365,
}

const ALL: [Dialect; 4] = [
    Dialect::Standard,
    Dialect::Live777,
    Dialect::Rooms,
    Dialect::Runner365,
];

/// The runner365 uid of a runner365 publisher; others publish the room's default feed.
const RUNNER365_UID: &str = "cam";

impl Dialect {
    fn publish_path(self, room: &str) -> String {
        match self {
            Dialect::Standard => format!("/v1/whip/{room}"),
            Dialect::Live777 => format!("/whip/{room}"),
            Dialect::Rooms => format!("/api/whip/publish/{room}"),
            Dialect::Runner365 => format!("/publish/{room}/{RUNNER365_UID}"),
        }
    }

    /// A runner365 player names the remote uid: `default` for single-feed publishers.
    fn play_path(self, room: &str, publisher: Dialect) -> String {
        let remote = match publisher {
            Dialect::Runner365 => RUNNER365_UID,
            _ => gatehouse::media::DEFAULT_FEED,
        };
        match self {
            Dialect::Standard => format!("/v1/whep/{room}"),
            Dialect::Live777 => format!("/whep/{room}"),
            Dialect::Rooms => format!("/api/whep/play/{room}"),
            Dialect::Runner365 => format!("/subscribe/{room}/viewer/{remote}"),
        }
    }

    fn no_session_resource(self) -> bool {
        self == Dialect::Rooms
    }

    fn runner365_close(self, base: &str, path: &str) -> Option<String> {
        (self == Dialect::Runner365).then(|| format!("{base}/un{}", path.trim_start_matches('/')))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_published_through_one_dialect_play_through_every_other() {
    let _guard = media_lock().await;
    let result: Result<()> = bounded("cross_dialect", LIMIT, async {
        let gw = start_gateway(|_| {}).await?;
        let base = gw.base_url();
        for from in ALL {
            let room = format!("{from:?}").to_ascii_lowercase();
            let path = from.publish_path(&room);
            let publisher = Publish {
                seconds: 5.0,
                size: (320, 240),
                no_session_resource: from.no_session_resource(),
                runner365_close: from.runner365_close(&base, &path),
                ..Default::default()
            }
            .spawn(&format!("{base}{path}"))?;
            tokio::time::sleep(Duration::from_millis(1000)).await;
            let mut players = Vec::new();
            for to in ALL {
                let path = to.play_path(&room, from);
                let player = Play {
                    min_video_frames: 10,
                    no_session_resource: to.no_session_resource(),
                    runner365_close: to.runner365_close(&base, &path),
                    ..Play::for_seconds(3.0)
                }
                .spawn(&format!("{base}{path}"))?;
                players.push((to, player));
            }
            for (to, player) in players {
                let player = player.finish().await?.expect_ok()?;
                let frames = player.u64("video_frames");
                println!("{from:?} -> {to:?}: {frames} frames decoded");
                ensure!(frames >= 10, "{from:?} -> {to:?}: {}", player.describe());
            }
            publisher.finish().await?.expect_ok()?;
        }
        gw.shutdown().await;
        Ok(())
    })
    .await;
    if let Err(e) = result {
        panic!("streams_published_through_one_dialect_play_through_every_other: {e:#}");
    }
}
