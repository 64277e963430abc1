//! Media flows between real aiortc clients through an in-process gateway:
//! WHIP publisher (synthetic 640x480 video + Opus) → Gatehouse → WHEP player counting DECODED frames.
//! The tests of this file run one at a time (`media_lock`): they share 2 cores.

use std::time::Duration;

use anyhow::{Result, ensure};
use gatehouse_e2e::{ClientResult, Play, Publish, bounded, media_lock, start_gateway, wait_room};

const LIMIT: Duration = Duration::from_secs(90);

async fn run_media(name: &str, body: impl std::future::Future<Output = Result<()>>) {
    let _guard = media_lock().await;
    if let Err(e) = bounded(name, LIMIT, body).await {
        panic!("{name}: {e:#}");
    }
}

fn report(what: &str, r: &ClientResult) {
    println!(
        "{what}: video_frames={} audio_frames={} first_frame_ms={:?} size={:?}x{:?} answer_codecs={:?} connected_ms={:?}",
        r.u64("video_frames"),
        r.u64("audio_frames"),
        r.f64("first_frame_ms"),
        r.json.get("width"),
        r.json.get("height"),
        r.json.get("answer_video_codecs"),
        r.f64("connected_ms"),
    );
}

/// Publisher for ~8 s; after 1.5 s a player for 4 s. Returns (publisher, player) results.
async fn publish_then_play(
    base: &str,
    whip: &str,
    whep: &str,
    publish: Publish,
    play: Play,
    delay: Duration,
) -> Result<(ClientResult, ClientResult)> {
    let publisher = publish.spawn(&format!("{base}{whip}"))?;
    tokio::time::sleep(delay).await;
    let player = play.spawn(&format!("{base}{whep}"))?;
    let play_res = player.finish().await?;
    let pub_res = publisher.finish().await?;
    Ok((pub_res, play_res))
}

fn assert_media(play: &ClientResult, min_video: u64, min_audio: u64) -> Result<()> {
    ensure!(play.ok(), "player failed: {}", play.describe());
    ensure!(
        play.u64("video_frames") >= min_video,
        "player decoded {} video frames, expected >= {min_video}: {}",
        play.u64("video_frames"),
        play.describe()
    );
    ensure!(
        play.u64("audio_frames") >= min_audio,
        "player decoded {} audio frames, expected >= {min_audio}: {}",
        play.u64("audio_frames"),
        play.describe()
    );
    ensure!(
        play.u64("width") == 640 && play.u64("height") == 480,
        "decoded frame size is not 640x480: {}",
        play.describe()
    );
    Ok(())
}

fn assert_publisher(publisher: &ClientResult, delete_status: u64) -> Result<()> {
    ensure!(publisher.ok(), "publisher failed: {}", publisher.describe());
    ensure!(
        publisher.u64("status") == 201,
        "publisher POST: {}",
        publisher.describe()
    );
    ensure!(
        publisher.u64("delete_status") == delete_status,
        "publisher DELETE expected {delete_status}: {}",
        publisher.describe()
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whip_aiortc_publisher_is_decoded_by_whep_aiortc_player() {
    run_media(
        "whip_aiortc_publisher_is_decoded_by_whep_aiortc_player",
        async {
            let gw = start_gateway(|_| {}).await?;
            let base = gw.base_url();
            let (publisher, player) = publish_then_play(
                &base,
                "/v1/whip/demo",
                "/v1/whep/demo",
                Publish {
                    seconds: 8.0,
                    ..Default::default()
                },
                Play::for_seconds(4.0),
                Duration::from_millis(1500),
            )
            .await?;
            report("standard paths", &player);
            assert_media(&player, 60, 100)?;
            assert_publisher(&publisher, 200)?;
            gw.shutdown().await;
            Ok(())
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live777_paths_carry_media_from_aiortc_publisher_to_aiortc_player() {
    run_media(
        "live777_paths_carry_media_from_aiortc_publisher_to_aiortc_player",
        async {
            let gw = start_gateway(|_| {}).await?;
            let base = gw.base_url();
            let (publisher, player) = publish_then_play(
                &base,
                "/whip/demo",
                "/whep/demo",
                Publish {
                    seconds: 8.0,
                    ..Default::default()
                },
                Play {
                    delete: true,
                    ..Play::for_seconds(4.0)
                },
                Duration::from_millis(1500),
            )
            .await?;
            report("live777 paths", &player);
            assert_media(&player, 60, 100)?;
            ensure!(
                player
                    .str("location")
                    .unwrap_or("")
                    .starts_with("/session/demo/"),
                "Live777 Location must be /session/demo/<id>: {}",
                player.describe()
            );
            ensure!(
                player.u64("delete_status") == 204,
                "Live777 DELETE must be 204: {}",
                player.describe()
            );
            assert_publisher(&publisher, 204)?;
            gw.shutdown().await;
            Ok(())
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h264_publisher_is_decoded_by_whep_player() {
    run_media("h264_publisher_is_decoded_by_whep_player", async {
        let gw = start_gateway(|_| {}).await?;
        let base = gw.base_url();
        let (publisher, player) = publish_then_play(
            &base,
            "/v1/whip/h264",
            "/v1/whep/h264",
            Publish {
                seconds: 7.0,
                video_codec: "h264",
                ..Default::default()
            },
            Play::for_seconds(4.0),
            Duration::from_millis(1500),
        )
        .await?;
        report("h264", &player);
        ensure!(
            publisher.str("video_codec") == Some("H264"),
            "publisher did not negotiate H264: {}",
            publisher.describe()
        );
        assert_media(&player, 60, 100)?;
        assert_publisher(&publisher, 200)?;
        gw.shutdown().await;
        Ok(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn early_whep_subscriber_receives_media_once_publisher_arrives() {
    run_media(
        "early_whep_subscriber_receives_media_once_publisher_arrives",
        async {
            let gw = start_gateway(|_| {}).await?;
            let base = gw.base_url();
            // The player POSTs first, to a stream that does not exist yet (auto-created).
            let player = Play::for_seconds(6.0).spawn(&format!("{base}/v1/whep/early"))?;
            tokio::time::sleep(Duration::from_secs(1)).await;
            let publisher = Publish {
                seconds: 7.0,
                ..Default::default()
            }
            .spawn(&format!("{base}/v1/whip/early"))?;
            let player = player.finish().await?;
            let publisher = publisher.finish().await?;
            report("early subscriber", &player);
            assert_media(&player, 60, 100)?;
            assert_publisher(&publisher, 200)?;
            gw.shutdown().await;
            Ok(())
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trickle_patch_from_a_real_client_is_accepted() {
    run_media("trickle_patch_from_a_real_client_is_accepted", async {
        let gw = start_gateway(|_| {}).await?;
        let base = gw.base_url();
        let (publisher, player) = publish_then_play(
            &base,
            "/v1/whip/trickle",
            "/v1/whep/trickle",
            Publish {
                seconds: 7.0,
                trickle: true,
                ..Default::default()
            },
            Play {
                trickle: true,
                ..Play::for_seconds(4.0)
            },
            Duration::from_millis(1500),
        )
        .await?;
        report("trickle", &player);
        assert_publisher(&publisher, 200)?;
        ensure!(
            publisher.u64("patch_status") == 204,
            "publisher trickle PATCH: {}",
            publisher.describe()
        );
        ensure!(
            player.u64("patch_status") == 204,
            "player trickle PATCH: {}",
            player.describe()
        );
        assert_media(&player, 60, 100)?;
        gw.shutdown().await;
        Ok(())
    })
    .await;
}

/// Publisher 9 s; player 6 s that restarts ICE after its first 10 decoded frames (`If-Match: "*"`).
/// Returns (publisher, player, the player's `restart` report).
async fn restart_run(stream: &str) -> Result<(ClientResult, ClientResult, serde_json::Value)> {
    let gw = start_gateway(|_| {}).await?;
    let base = gw.base_url();
    let (publisher, player) = publish_then_play(
        &base,
        &format!("/v1/whip/{stream}"),
        &format!("/v1/whep/{stream}"),
        Publish {
            seconds: 9.0,
            ..Default::default()
        },
        Play {
            ice_restart: true,
            ..Play::for_seconds(6.0)
        },
        Duration::from_millis(1500),
    )
    .await?;
    gw.shutdown().await;
    report("ice restart", &player);
    let r = player.json.get("restart").cloned().unwrap_or_default();
    println!("restart: {r}");
    ensure!(
        r.get("status").and_then(|v| v.as_u64()) == Some(200),
        "restart PATCH (If-Match: \"*\") must be 200: {}",
        player.describe()
    );
    Ok((publisher, player, r))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ice_restart_patch_returns_new_credentials_and_etag() {
    run_media(
        "ice_restart_patch_returns_new_credentials_and_etag",
        async {
            let (publisher, player, r) = restart_run("restart").await?;
            ensure!(
                r.get("content_type")
                    .and_then(|v| v.as_str())
                    .is_some_and(|ct| ct.starts_with("application/trickle-ice-sdpfrag")),
                "restart answer Content-Type: {}",
                player.describe()
            );
            ensure!(
                r.get("new_credentials").and_then(|v| v.as_bool()) == Some(true),
                "server ufrag/pwd must change: {r}"
            );
            ensure!(
                r.get("new_etag").and_then(|v| v.as_bool()) == Some(true),
                "restart must return a new ETag: {r}"
            );
            ensure!(
                r.get("server_candidates")
                    .and_then(|v| v.as_u64())
                    .unwrap_or(0)
                    >= 1,
                "restart answer must carry the server candidates: {r}"
            );
            // The server's ICE agent accepts a check made with the new credentials.
            ensure!(
                r.get("nominating_check_ok").and_then(|v| v.as_bool()) == Some(true),
                "Binding request with the new credentials unanswered: {r}"
            );
            assert_publisher(&publisher, 200)?;
            Ok(())
        },
    )
    .await;
}

/// aiortc cannot restart ICE itself: whep_play.py swaps the new credentials into aioice and
/// nominates the pair again (see its docstring). Decoding must go on afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn video_keeps_decoding_after_ice_restart() {
    run_media("video_keeps_decoding_after_ice_restart", async {
        let (publisher, player, r) = restart_run("restart2").await?;
        ensure!(
            r.get("media_checked").and_then(|v| v.as_bool()) == Some(true),
            "restart not completed: {r}"
        );
        let after = r.get("frames_after").and_then(|v| v.as_u64()).unwrap_or(0);
        ensure!(
            after >= 30,
            "only {after} video frames decoded after the ICE restart (expected >= 30): {r}"
        );
        ensure!(player.ok(), "player failed: {}", player.describe());
        assert_publisher(&publisher, 200)?;
        Ok(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_frees_the_session_and_room_subscriber_count_returns_to_zero() {
    run_media(
        "delete_frees_the_session_and_room_subscriber_count_returns_to_zero",
        async {
            let gw = start_gateway(|_| {}).await?;
            let base = gw.base_url();
            let publisher = Publish {
                seconds: 8.0,
                ..Default::default()
            }
            .spawn(&format!("{base}/v1/whip/x"))?;
            tokio::time::sleep(Duration::from_millis(1500)).await;
            let player = Play {
                delete: true,
                ..Play::for_seconds(3.0)
            }
            .spawn(&format!("{base}/v1/whep/x"))?;
            let (seen, snap) = wait_room(&gw, "x", Duration::from_secs(5), |r| {
                r.is_some_and(|r| r.subscribers == 1)
            })
            .await;
            ensure!(
                seen,
                "room x never showed 1 subscriber while playing: {snap:?}"
            );
            let player = player.finish().await?;
            report("delete", &player);
            ensure!(player.ok(), "player failed: {}", player.describe());
            ensure!(
                player.u64("delete_status") == 200,
                "DELETE on the standard path must be 200: {}",
                player.describe()
            );
            let (freed, snap) = wait_room(&gw, "x", Duration::from_secs(3), |r| {
                r.is_none_or(|r| r.subscribers == 0)
            })
            .await;
            ensure!(
                freed,
                "subscriber count did not return to 0 within 3 s after DELETE: {snap:?}"
            );
            ensure!(
                snap.as_ref().is_none_or(|r| r.publishers == 1),
                "the publisher must still be there: {snap:?}"
            );
            let publisher = publisher.finish().await?;
            assert_publisher(&publisher, 200)?;
            gw.shutdown().await;
            Ok(())
        },
    )
    .await;
}
