//! How sessions end and what happens to the others: a publisher replaced under running
//! subscribers, Live777's stream teardown, and sessions reaped by consent or connect timeouts.

use std::time::{Duration, Instant};

use anyhow::{Result, ensure};
use gatehouse_e2e::{
    Play, Publish, bounded, media_lock, offers, post_sdp, start_gateway, wait_room,
};

const LIMIT: Duration = Duration::from_secs(90);

async fn run(name: &str, body: impl std::future::Future<Output = Result<()>>) {
    let _guard = media_lock().await;
    if let Err(e) = bounded(name, LIMIT, body).await {
        panic!("{name}: {e:#}");
    }
}

/// Standard paths idle subscribers when their publisher leaves; a new publisher's media then
/// continues the same stream (rewritten sequence numbers, video restarted on a keyframe).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriber_keeps_decoding_when_the_publisher_is_replaced() {
    run("publisher_replaced", async {
        let gw = start_gateway(|_| {}).await?;
        let base = gw.base_url();
        let first = Publish {
            seconds: 2.5,
            ..Default::default()
        }
        .spawn(&format!("{base}/v1/whip/swap"))?;
        tokio::time::sleep(Duration::from_millis(800)).await;
        let player = Play::for_seconds(10.0).spawn(&format!("{base}/v1/whep/swap"))?;
        let first = first.finish().await?.expect_ok()?;
        let (gone, _) = wait_room(&gw, "swap", Duration::from_secs(3), |r| {
            r.is_some_and(|r| r.publishers == 0 && r.subscribers == 1)
        })
        .await;
        ensure!(
            gone,
            "first publisher did not leave while the subscriber stayed"
        );
        let second = Publish {
            seconds: 6.5,
            ..Default::default()
        }
        .spawn(&format!("{base}/v1/whip/swap"))?;
        let player = player.finish().await?.expect_ok()?;
        second.finish().await?.expect_ok()?;
        gw.shutdown().await;
        // The first publisher was watched for under 2 s (≤ ~60 frames at 30 fps): more than
        // 120 decoded frames means the second publisher's video was decoded too.
        let frames = player.u64("video_frames");
        println!(
            "publisher replaced: first publisher sent {} frames, player decoded {frames}",
            first.u64("video_frames_sent")
        );
        ensure!(
            frames >= 120,
            "player decoded {frames}: {}",
            player.describe()
        );
        Ok(())
    })
    .await;
}

/// Live777: DELETE of the publisher session destroys the stream and closes its subscribers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live777_publisher_delete_closes_the_streams_subscribers() {
    run("live777_teardown", async {
        let gw = start_gateway(|_| {}).await?;
        let base = gw.base_url();
        let publisher = Publish {
            seconds: 3.0,
            ..Default::default()
        }
        .spawn(&format!("{base}/whip/teardown"))?;
        tokio::time::sleep(Duration::from_millis(800)).await;
        let player = Play::for_seconds(8.0).spawn(&format!("{base}/whep/teardown"))?;
        let (joined, _) = wait_room(&gw, "teardown", Duration::from_secs(5), |r| {
            r.is_some_and(|r| r.subscribers == 1)
        })
        .await;
        ensure!(joined, "player never joined");
        let publisher = publisher.finish().await?.expect_ok()?;
        ensure!(
            publisher.u64("delete_status") == 204,
            "Live777 DELETE: {}",
            publisher.describe()
        );
        let started = Instant::now();
        let (closed, snap) =
            wait_room(&gw, "teardown", Duration::from_secs(2), |r| r.is_none()).await;
        ensure!(
            closed,
            "stream still exists after publisher DELETE: {snap:?}"
        );
        println!(
            "live777 teardown: stream gone {:?} after the publisher's DELETE returned",
            started.elapsed()
        );
        drop(player);
        gw.shutdown().await;
        Ok(())
    })
    .await;
}

/// A subscriber that vanishes without DELETE (killed) is ended when consent expires.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vanished_subscriber_is_reaped_by_consent_timeout() {
    run("consent_timeout", async {
        let gw = start_gateway(|c| c.webrtc.consent_timeout_secs = 2).await?;
        let base = gw.base_url();
        let player = Play::for_seconds(30.0).spawn(&format!("{base}/v1/whep/vanish"))?;
        let (connected, snap) = wait_room(&gw, "vanish", Duration::from_secs(10), |r| {
            r.is_some_and(|r| r.sessions.iter().any(|s| s.state == "connected"))
        })
        .await;
        ensure!(connected, "player never connected: {snap:?}");
        drop(player); // SIGKILL: no DELETE, no DTLS close
        let killed = Instant::now();
        let (reaped, snap) =
            wait_room(&gw, "vanish", Duration::from_secs(6), |r| r.is_none()).await;
        let after = killed.elapsed();
        ensure!(
            reaped,
            "session not reaped 6 s after the client vanished: {snap:?}"
        );
        println!("consent timeout 2 s: session reaped {after:?} after the client was killed");
        ensure!(
            after >= Duration::from_millis(1500),
            "reaped after {after:?}: sooner than the consent timeout allows"
        );
        gw.shutdown().await;
        Ok(())
    })
    .await;
}

/// A session whose client never connects (no ICE, no DTLS) is ended by the connect timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_that_never_connects_is_reaped_by_connect_timeout() {
    run("connect_timeout", async {
        let gw = start_gateway(|c| c.webrtc.connect_timeout_secs = 2).await?;
        let offer = &offers().await?.whep[0];
        let response = post_sdp(&format!("{}/v1/whep/silent", gw.base_url()), offer).await?;
        ensure!(response.status() == 201, "POST: {}", response.status());
        let posted = Instant::now();
        let snap = gw.room("silent").await;
        ensure!(
            snap.as_ref().is_some_and(|r| r.subscribers == 1),
            "session not registered: {snap:?}"
        );
        let (reaped, snap) =
            wait_room(&gw, "silent", Duration::from_secs(6), |r| r.is_none()).await;
        ensure!(reaped, "unconnected session still there: {snap:?}");
        let after = posted.elapsed();
        println!("connect timeout 2 s: session reaped {after:?} after its answer");
        ensure!(
            after >= Duration::from_millis(1500),
            "reaped too soon: {after:?}"
        );
        gw.shutdown().await;
        Ok(())
    })
    .await;
}
