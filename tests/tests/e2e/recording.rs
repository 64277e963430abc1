//! Recording (`[record] enabled`, go-live's RECORD_ENABLED): a real publisher's VP8 and Opus
//! become `.ivf` and `.ogg` files that ffprobe reads (codec and duration), both when the
//! publisher leaves and when a gateway process gets SIGTERM mid-stream; a Janus publisher that
//! asks (`record`, `filename`) is recorded on its own.

use std::path::Path;
use std::time::Duration;

use anyhow::Result;
use gatehouse_e2e::{GatewayProcess, Publish, bounded, media_lock, start_gateway};

use crate::records_contract::{finished_recordings, record_dir};

const LIMIT: Duration = Duration::from_secs(60);

/// Waits for an `.ivf` and an `.ogg` of `room` that ffprobe reads as VP8 and Opus, longer than
/// `min_secs`.
async fn expect_valid_recordings(dir: &Path, room: &str, min_secs: f64) -> Result<()> {
    let found =
        finished_recordings(dir, room, &[("ivf", "vp8"), ("ogg", "opus")], min_secs).await?;
    println!("{room}: {found:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publishers_tracks_are_recorded_to_files_ffprobe_reads() {
    let _guard = media_lock().await;
    let result: Result<()> = bounded("recording", LIMIT, async {
        let dir = record_dir("leave")?;
        let gw = start_gateway(|c| {
            c.record.enabled = true;
            c.record.dir = dir.clone();
        })
        .await?;
        let base = gw.base_url();

        // 1. The publisher leaves (DELETE): its files are finalized.
        Publish {
            seconds: 3.0,
            ..Default::default()
        }
        .spawn(&format!("{base}/v1/whip/left"))?
        .finish()
        .await?
        .expect_ok()?;
        expect_valid_recordings(&dir, "left", 2.0).await?;

        gw.shutdown().await;

        // 2. A gateway process gets SIGTERM while a publisher is live (recording switched on
        //    by go-live's environment variables): its files are finalized too.
        let record_dir = dir.to_string_lossy().into_owned();
        let node = GatewayProcess::start_with_env(
            env!("CARGO_BIN_EXE_gateway_node"),
            &[("RECORD_ENABLED", "1"), ("RECORD_DIR", &record_dir)],
        )
        .await?;
        let live = Publish {
            seconds: 8.0,
            ..Default::default()
        }
        .spawn(&format!("{}/v1/whip/cut", node.base_url()))?;
        tokio::time::sleep(Duration::from_millis(3000)).await;
        node.terminate().await?;
        let _ = live.finish().await; // its connection was cut: an error is expected
        expect_valid_recordings(&dir, "cut", 1.5).await?;
        let _ = std::fs::remove_dir_all(&dir);
        Ok(())
    })
    .await;
    if let Err(e) = result {
        panic!("a_publishers_tracks_are_recorded_to_files_ffprobe_reads: {e:#}");
    }
}

/// Janus `record` and `filename` on a publisher's `joinandconfigure` (or a `configure` before
/// it publishes): that publisher alone is recorded, as `{filename}-video.ivf` and `{filename}-audio.ogg` in its room's `rec_dir`; a
/// room with `lock_record` ignores `record` from a request without the room's secret and
/// takes it with the secret.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_janus_publisher_that_asks_is_recorded_under_its_filename() {
    use crate::janus_cross_dialect::{janus_client, janus_sync};
    use crate::records_contract::{files_named, finished_files};
    use anyhow::ensure;
    use serde_json::json;

    let _guard = media_lock().await;
    let result: Result<()> = bounded("janus_publisher_record", Duration::from_secs(90), async {
        let dir = record_dir("janus_own")?;
        let base_dir = dir.clone();
        let gw = start_gateway(move |c| c.record.dir = base_dir).await?;
        let base = gw.base_url().to_owned();
        for create in [
            json!({"request": "create", "room": 8181, "rec_dir": "own", "publishers": 6}),
            json!({"request": "create", "room": 8282, "secret": "s3", "lock_record": true}),
        ] {
            let created = janus_sync(&base, create).await?;
            ensure!(created["videoroom"] == "created", "{created}");
        }
        let asks = |name: &str| format!(r#"{{"record": true, "filename": "{name}"}}"#);
        let (alice, bob, locked) = (asks("alice"), asks("../bob"), asks("carol"));
        let unlocked = r#"{"record": true, "filename": "dave", "secret": "s3"}"#;
        let erin = asks("erin");
        let clients = [
            janus_client(&base, 8181, "publish", 4.0, &["--join-extra", &alice])?,
            janus_client(&base, 8181, "publish", 4.0, &["--display", "unrecorded"])?,
            janus_client(&base, 8181, "publish", 4.0, &["--join-extra", &bob])?,
            janus_client(&base, 8282, "publish", 4.0, &["--join-extra", &locked])?,
            janus_client(&base, 8282, "publish", 4.0, &["--join-extra", unlocked])?,
            // Asked in a configure before publishing: kept for the publication.
            janus_client(&base, 8181, "publish", 4.0, &["--configure-first", &erin])?,
        ];
        for client in clients {
            client.finish().await?.expect_ok()?;
        }
        let wanted = [("ivf", "vp8"), ("ogg", "opus")];
        let own = dir.join("own");
        let alice = finished_files(&own, "alice-", &wanted, 1.0).await?;
        // A filename is a plain name in the room's rec_dir, whatever path it spells.
        let bob = finished_files(&own, "___bob-", &wanted, 1.0).await?;
        finished_files(&own, "erin-", &wanted, 1.0).await?;
        let names = |files: &[(std::path::PathBuf, _)]| -> Vec<String> {
            files
                .iter()
                .filter_map(|(f, _)| Some(f.file_name()?.to_str()?.to_owned()))
                .collect()
        };
        println!(
            "recorded: {:?} {:?}; everything in rec_dir: {:?}",
            names(&alice),
            names(&bob),
            files_named(&own, "")?
        );
        ensure!(
            names(&alice).contains(&"alice-video.ivf".to_owned())
                && names(&alice).contains(&"alice-audio.ogg".to_owned()),
            "{:?}",
            names(&alice)
        );
        ensure!(
            files_named(&own, "")?.len() == 6,
            "only the three publishers that asked are recorded: {:?}",
            files_named(&own, "")?
        );
        finished_files(&dir, "dave-", &wanted, 1.0).await?;
        ensure!(
            files_named(&dir, "carol")?.is_empty() && files_named(&dir, "8282")?.is_empty(),
            "lock_record without the secret still recorded"
        );
        gw.shutdown().await;
        let _ = std::fs::remove_dir_all(&dir);
        Ok(())
    })
    .await;
    if let Err(e) = result {
        panic!("a_janus_publisher_that_asks_is_recorded_under_its_filename: {e:#}");
    }
}
