//! Live777's cascade (`POST /api/cascade/{stream}`, specs/dialects.md §2.3) between two
//! gatehouse processes: an origin in its own process (`gateway_node`) and an edge in this one.
//! Pull brings the origin's stream to the edge; push sends the edge's stream to the origin.
//! aiortc publishes and plays; frames must decode on the far side.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use gatehouse_e2e::{GatewayProcess, Play, Publish, bounded, http, media_lock, start_gateway};
use serde_json::{Value, json};

const LIMIT: Duration = Duration::from_secs(90);

async fn run(name: &str, body: impl std::future::Future<Output = Result<()>>) {
    if let Err(e) = bounded(name, LIMIT, body).await {
        panic!("{name}: {e:#}");
    }
}

async fn origin() -> Result<GatewayProcess> {
    GatewayProcess::start(env!("CARGO_BIN_EXE_gateway_node")).await
}

/// `(status, body)` of `POST /api/cascade/{stream}`.
async fn cascade(base: &str, stream: &str, body: Value) -> Result<(u16, String)> {
    let response = http()
        .post(format!("{base}/api/cascade/{stream}"))
        .header("Content-Type", "application/json")
        .body(body.to_string())
        .send()
        .await?;
    Ok((response.status().as_u16(), response.text().await?))
}

/// The Live777 JSON of one stream.
async fn stream(base: &str, stream: &str) -> Result<Value> {
    let response = http()
        .get(format!("{base}/api/streams/{stream}"))
        .send()
        .await?;
    ensure!(
        response.status() == 200,
        "GET stream {stream}: {}",
        response.status()
    );
    Ok(serde_json::from_str(&response.text().await?)?)
}

fn sessions<'a>(stream: &'a Value, side: &str) -> &'a [Value] {
    stream
        .pointer(&format!("/{side}/sessions"))
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

/// Polls until `stream`'s `side` has `count` sessions.
async fn wait_sessions(base: &str, name: &str, side: &str, count: usize) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let json = stream(base, name).await?;
        if sessions(&json, side).len() == count {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("{name} {side} sessions never became {count}: {json}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cascade_pull_plays_an_origin_stream_at_the_edge_and_delete_frees_the_origin() {
    let _guard = media_lock().await;
    run("cascade_pull", async {
        let origin = origin().await?;
        let edge = start_gateway(|_| {}).await?;
        let (origin_url, edge_url) = (origin.base_url().to_owned(), edge.base_url());
        let publisher = Publish {
            seconds: 6.0,
            ..Default::default()
        }
        .spawn(&format!("{origin_url}/whip/cam"))?;
        tokio::time::sleep(Duration::from_millis(1000)).await;
        let source_url = format!("{origin_url}/whep/cam");
        let (status, body) = cascade(&edge_url, "cam", json!({ "sourceUrl": source_url })).await?;
        ensure!(
            status == 200 && body.is_empty(),
            "cascade pull: {status} {body:?}"
        );

        let player = Play {
            min_video_frames: 10,
            ..Play::for_seconds(2.5)
        }
        .spawn(&format!("{edge_url}/whep/cam"))?
        .finish()
        .await?
        .expect_ok()?;
        println!(
            "cascade pull: edge player decoded {} frames",
            player.u64("video_frames")
        );
        ensure!(player.u64("video_frames") >= 10, "{}", player.describe());

        let at_edge = stream(&edge_url, "cam").await?;
        let link = sessions(&at_edge, "publish")
            .first()
            .and_then(|s| s.get("cascade"))
            .with_context(|| format!("edge publish session has no cascade: {at_edge}"))?;
        ensure!(
            link.get("sourceUrl") == Some(&json!(source_url))
                && link
                    .get("sessionUrl")
                    .and_then(Value::as_str)
                    .is_some_and(|u| u.starts_with(&format!("{origin_url}/session/cam/"))),
            "cascade object: {link}"
        );
        wait_sessions(&origin_url, "cam", "subscribe", 1).await?;
        // Deleting the edge stream ends the cascade session, and its origin side with it.
        let deleted = http()
            .delete(format!("{edge_url}/api/streams/cam"))
            .send()
            .await?;
        ensure!(
            deleted.status() == 204,
            "DELETE edge stream: {}",
            deleted.status()
        );
        wait_sessions(&origin_url, "cam", "subscribe", 0).await?;

        publisher.finish().await?.expect_ok()?;
        edge.shutdown().await;
        origin.stop().await
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cascade_push_sends_an_edge_stream_to_the_origin() {
    let _guard = media_lock().await;
    run("cascade_push", async {
        let origin = origin().await?;
        let edge = start_gateway(|_| {}).await?;
        let (origin_url, edge_url) = (origin.base_url().to_owned(), edge.base_url());
        let publisher = Publish {
            seconds: 6.0,
            video_codec: "h264",
            ..Default::default()
        }
        .spawn(&format!("{edge_url}/v1/whip/stage"))?;
        tokio::time::sleep(Duration::from_millis(1000)).await;
        let target_url = format!("{origin_url}/whip/stage");
        let (status, body) =
            cascade(&edge_url, "stage", json!({ "targetUrl": target_url })).await?;
        ensure!(status == 200, "cascade push: {status} {body:?}");

        let player = Play {
            min_video_frames: 10,
            ..Play::for_seconds(2.5)
        }
        .spawn(&format!("{origin_url}/v1/whep/stage"))?
        .finish()
        .await?
        .expect_ok()?;
        println!(
            "cascade push: origin player decoded {} frames",
            player.u64("video_frames")
        );
        ensure!(player.u64("video_frames") >= 10, "{}", player.describe());
        let at_edge = stream(&edge_url, "stage").await?;
        ensure!(
            sessions(&at_edge, "subscribe")
                .iter()
                .any(|s| s.pointer("/cascade/targetUrl") == Some(&json!(target_url))),
            "edge subscribe sessions show no push: {at_edge}"
        );
        publisher.finish().await?.expect_ok()?;
        edge.shutdown().await;
        origin.stop().await
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cascade_mistakes_are_4xx_and_a_failed_remote_leaves_nothing_behind() {
    run("cascade_mistakes", async {
        let edge = start_gateway(|_| {}).await?;
        let base = edge.base_url();
        let both = json!({ "sourceUrl": "http://127.0.0.1:9/whep/a", "targetUrl": "http://127.0.0.1:9/whip/a" });
        let (status, _) = cascade(&base, "a", both).await?;
        ensure!(status == 400, "both URLs: {status}");
        let (status, _) = cascade(&base, "a", json!({ "token": "t" })).await?;
        ensure!(status == 400, "no URL: {status}");
        let response = http()
            .post(format!("{base}/api/cascade/a"))
            .body("{not json")
            .send()
            .await?;
        ensure!(response.status() == 400, "bad JSON: {}", response.status());
        let (status, _) = cascade(&base, "a", json!({ "sourceUrl": "ftp://x/whep/a" })).await?;
        ensure!(status == 400, "non-http source: {status}");
        // Nothing listens on port 9 (discard): the pull fails and leaves no stream behind.
        let (status, body) = cascade(&base, "a", json!({ "sourceUrl": "http://127.0.0.1:9/whep/a" })).await?;
        ensure!(status == 502, "unreachable source: {status} {body:?}");
        let listing: Value = serde_json::from_str(
            &http()
                .get(format!("{base}/api/streams/"))
                .send()
                .await?
                .text()
                .await?,
        )?;
        ensure!(listing == json!([]), "a failed pull left {listing}");
        let (status, _) = cascade(&base, "nobody", json!({ "targetUrl": "http://127.0.0.1:9/whip/a" })).await?;
        ensure!(status == 404, "push of a stream that does not exist: {status}");
        edge.shutdown().await;
        Ok(())
    })
    .await;
}
