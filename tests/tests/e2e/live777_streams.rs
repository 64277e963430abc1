//! Live777's streams API: an operator creates, inspects and deletes streams (specs/dialects.md
//! §2.1); deleting a stream ends its sessions. Admin rights come from the shipped `token-auth`.

use std::time::Duration;

use anyhow::{Result, ensure};
use gatehouse_e2e::{absolute, bounded, header, http, offers, post_sdp, start_gateway};
use serde_json::Value;

const LIMIT: Duration = Duration::from_secs(30);

async fn run(name: &str, body: impl std::future::Future<Output = Result<()>>) {
    if let Err(e) = bounded(name, LIMIT, body).await {
        panic!("{name}: {e:#}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_creates_inspects_and_deletes_a_stream() {
    run("streams_lifecycle", async {
        let gw = start_gateway(|_| {}).await?;
        let base = gw.base_url();
        let client = http();
        let stream = |path: &str| format!("{base}/api/streams/{path}");

        let created = client.post(stream("cam")).send().await?;
        ensure!(created.status() == 204, "create -> {}", created.status());
        let again = client.post(stream("cam")).send().await?;
        ensure!(again.status() == 409, "second create -> {}", again.status());

        let one: Value =
            serde_json::from_str(&client.get(stream("cam")).send().await?.text().await?)?;
        ensure!(one["id"] == "cam", "GET one: {one}");
        ensure!(
            one["publish"]["sessions"] == Value::Array(vec![]),
            "GET one: {one}"
        );
        let missing = client.get(stream("nope")).send().await?;
        ensure!(
            missing.status() == 404,
            "unknown stream -> {}",
            missing.status()
        );

        // A publisher and a player join; deleting the stream ends both sessions.
        let offers = offers().await?;
        let publisher = post_sdp(&format!("{base}/whip/cam"), &offers.whip[0]).await?;
        ensure!(publisher.status() == 201, "WHIP -> {}", publisher.status());
        let publisher_session = absolute(&base, &header(&publisher, "location"));
        let player = post_sdp(&format!("{base}/whep/cam"), &offers.whep[0]).await?;
        ensure!(player.status() == 201, "WHEP -> {}", player.status());
        let player_session = absolute(&base, &header(&player, "location"));
        let listed: Value =
            serde_json::from_str(&client.get(stream("cam")).send().await?.text().await?)?;
        ensure!(
            listed["subscribe"]["sessions"].as_array().map(Vec::len) == Some(1),
            "{listed}"
        );

        let deleted = client.delete(stream("cam")).send().await?;
        ensure!(deleted.status() == 204, "delete -> {}", deleted.status());
        let gone = client.get(stream("cam")).send().await?;
        ensure!(
            gone.status() == 404,
            "deleted stream still listed: {}",
            gone.status()
        );
        for session in [publisher_session, player_session] {
            let status = client.delete(&session).send().await?.status();
            ensure!(
                status == 404,
                "session {session} survived the stream: {status}"
            );
        }
        let twice = client.delete(stream("cam")).send().await?;
        ensure!(twice.status() == 404, "second delete -> {}", twice.status());
        gw.shutdown().await;
        Ok(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_administration_needs_the_admin_token_once_one_is_set() {
    run("streams_admin_token", async {
        let gw = start_gateway(|c| {
            let table = toml::from_str("admin_token = \"ops\"").unwrap_or_default();
            c.policies.config.insert("token-auth".into(), table);
        })
        .await?;
        let base = gw.base_url();
        let client = http();
        let url = format!("{base}/api/streams/locked");
        let anonymous = client.post(&url).send().await?;
        ensure!(
            anonymous.status() == 401,
            "no token -> {}",
            anonymous.status()
        );
        // Live777 answers a failed authentication with an empty body (specs/dialects.md §2.5).
        let body = anonymous.text().await?;
        ensure!(body.is_empty(), "401 with a body: {body:?}");
        let wrong = client.post(&url).bearer_auth("guess").send().await?;
        ensure!(wrong.status() == 401, "wrong token -> {}", wrong.status());
        let operator = client.post(&url).bearer_auth("ops").send().await?;
        ensure!(
            operator.status() == 204,
            "admin token -> {}",
            operator.status()
        );
        let delete = client.delete(&url).send().await?;
        ensure!(
            delete.status() == 401,
            "anonymous delete -> {}",
            delete.status()
        );
        let delete = client.delete(&url).bearer_auth("ops").send().await?;
        ensure!(
            delete.status() == 204,
            "admin delete -> {}",
            delete.status()
        );
        gw.shutdown().await;
        Ok(())
    })
    .await;
}

/// `GET /api/info`, `GET /api/strategy/` (snake_case, the configured strategy) and the SSE
/// stream of `/api/sse/streams`, which sends the stream array at once and on each change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn info_strategy_and_sse_show_what_the_server_does() {
    run("live777_info", async {
        let gw = start_gateway(|c| c.strategy.auto_create_whep = false).await?;
        let base = gw.base_url();
        let client = http();
        let info: Value = serde_json::from_str(
            &client
                .get(format!("{base}/api/info"))
                .send()
                .await?
                .text()
                .await?,
        )?;
        ensure!(
            info["version"].is_string()
                && info["features"]
                    .as_array()
                    .is_some_and(|f| f.contains(&Value::from("cascade"))),
            "info: {info}"
        );
        let strategy: Value = serde_json::from_str(
            &client
                .get(format!("{base}/api/strategy/"))
                .send()
                .await?
                .text()
                .await?,
        )?;
        ensure!(
            strategy["auto_create_whip"] == true && strategy["auto_create_whep"] == false,
            "strategy: {strategy}"
        );

        let mut sse = client
            .get(format!("{base}/api/sse/streams?streams=watched"))
            .timeout(Duration::from_secs(20))
            .send()
            .await?;
        ensure!(
            header(&sse, "content-type").starts_with("text/event-stream"),
            "SSE content type: {}",
            header(&sse, "content-type")
        );
        let mut events = Vec::new();
        let mut buffer = String::new();
        // First event: no stream yet. Then the stream appears and is deleted: two more.
        let steps = async {
            while events.len() < 3 {
                let Some(chunk) = sse.chunk().await? else {
                    break;
                };
                buffer.push_str(&String::from_utf8_lossy(&chunk));
                while let Some(end) = buffer.find("\n\n") {
                    let event: String = buffer.drain(..end + 2).collect();
                    if let Some(data) = event.lines().find_map(|l| l.strip_prefix("data:")) {
                        events.push(serde_json::from_str::<Value>(data.trim())?);
                        match events.len() {
                            1 => {
                                client
                                    .post(format!("{base}/api/streams/other"))
                                    .send()
                                    .await?;
                                client
                                    .post(format!("{base}/api/streams/watched"))
                                    .send()
                                    .await?;
                            }
                            2 => {
                                client
                                    .delete(format!("{base}/api/streams/watched"))
                                    .send()
                                    .await?;
                            }
                            _ => {}
                        }
                    }
                }
            }
            anyhow::Ok(())
        };
        tokio::time::timeout(Duration::from_secs(10), steps).await??;
        let ids = |v: &Value| -> Vec<String> {
            v.as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|s| s["id"].as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default()
        };
        ensure!(
            ids(&events[0]).is_empty()
                && ids(&events[1]) == ["watched"]
                && ids(&events[2]).is_empty(),
            "SSE events: {events:?}"
        );
        gw.shutdown().await;
        Ok(())
    })
    .await;
}
