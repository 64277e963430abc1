//! Janus sessions across transports: `claim` moves a session (its events, and who owns it) to
//! the WebSocket that claims it, as a client reconnecting after a network change does.

use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use futures_util::{SinkExt, StreamExt};
use gatehouse_e2e::{bounded, http, start_gateway};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A WebSocket on `/janus` with Janus's subprotocol.
async fn connect(base: &str) -> Result<Socket> {
    let url = format!("{}/janus", base.replacen("http://", "ws://", 1));
    let mut request = url.into_client_request()?;
    request
        .headers_mut()
        .insert("Sec-WebSocket-Protocol", "janus-protocol".parse()?);
    let (socket, _) = tokio_tungstenite::connect_async(request).await?;
    Ok(socket)
}

async fn send(socket: &mut Socket, message: Value) -> Result<()> {
    socket.send(Message::text(message.to_string())).await?;
    Ok(())
}

/// The next JSON message on `socket` within `limit`; `None` when none came.
async fn next(socket: &mut Socket, limit: Duration) -> Result<Option<Value>> {
    loop {
        let frame = match tokio::time::timeout(limit, socket.next()).await {
            Err(_) => return Ok(None),
            Ok(None) => bail!("socket closed"),
            Ok(Some(frame)) => frame?,
        };
        if let Message::Text(text) = frame {
            return Ok(Some(serde_json::from_str(&text)?));
        }
    }
}

/// The reply (or event) of `transaction`, skipping acks and other messages.
async fn reply_to(socket: &mut Socket, transaction: &str) -> Result<Value> {
    loop {
        let message = next(socket, Duration::from_secs(5))
            .await?
            .with_context(|| format!("no reply to {transaction}"))?;
        if message["transaction"] == transaction && message["janus"] != "ack" {
            return Ok(message);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claimed_session_follows_the_socket_that_claimed_it() {
    let result: Result<()> = bounded("janus_claim", Duration::from_secs(60), async {
        let gw = start_gateway(|_| {}).await?;
        let base = gw.base_url();
        let mut first = connect(&base).await?;
        send(&mut first, json!({"janus": "create", "transaction": "c"})).await?;
        let session = reply_to(&mut first, "c").await?["data"]["id"]
            .as_u64()
            .context("session id")?;
        send(
            &mut first,
            json!({"janus": "attach", "plugin": "janus.plugin.videoroom",
                   "session_id": session, "transaction": "a"}),
        )
        .await?;
        let handle = reply_to(&mut first, "a").await?["data"]["id"]
            .as_u64()
            .context("handle id")?;

        // A second connection claims the session.
        let mut second = connect(&base).await?;
        send(
            &mut second,
            json!({"janus": "claim", "session_id": session, "transaction": "cl"}),
        )
        .await?;
        let claimed = reply_to(&mut second, "cl").await?;
        ensure!(claimed["janus"] == "success", "claim: {claimed}");

        // Its events now arrive there, and not on the first socket.
        let message = |body: Value, transaction: &str| {
            json!({"janus": "message", "session_id": session, "handle_id": handle,
                   "transaction": transaction, "body": body})
        };
        send(
            &mut second,
            message(json!({"request": "create", "room": 4321}), "r"),
        )
        .await?;
        let created = reply_to(&mut second, "r").await?;
        ensure!(
            created["plugindata"]["data"]["videoroom"] == "created",
            "create: {created}"
        );
        send(
            &mut second,
            message(
                json!({"request": "join", "ptype": "publisher", "room": 4321}),
                "j",
            ),
        )
        .await?;
        let joined = reply_to(&mut second, "j").await?;
        ensure!(
            joined["janus"] == "event" && joined["plugindata"]["data"]["videoroom"] == "joined",
            "join event on the claiming socket: {joined}"
        );
        let stray = next(&mut first, Duration::from_millis(500)).await?;
        ensure!(stray.is_none(), "the first socket still got {stray:?}");

        // Closing the first socket no longer destroys the session; closing its owner does.
        first.close(None).await?;
        drop(first);
        tokio::time::sleep(Duration::from_millis(300)).await;
        send(
            &mut second,
            json!({"janus": "keepalive", "session_id": session, "transaction": "k"}),
        )
        .await?;
        let alive = next(&mut second, Duration::from_secs(5)).await?;
        ensure!(
            alive.as_ref().is_some_and(|a| a["janus"] == "ack"),
            "keepalive after the first socket closed: {alive:?}"
        );
        second.close(None).await?;
        drop(second);
        let keepalive = json!({"janus": "keepalive", "transaction": "h"}).to_string();
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        loop {
            let text = http()
                .post(format!("{base}/janus/{session}"))
                .body(keepalive.clone())
                .send()
                .await?
                .text()
                .await?;
            let reply: Value = serde_json::from_str(&text)?;
            if reply["error"]["code"] == 458 {
                break;
            }
            ensure!(
                std::time::Instant::now() < deadline,
                "the owner's socket closed but the session lives: {reply}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        gw.shutdown().await;
        Ok(())
    })
    .await;
    if let Err(e) = result {
        panic!("a_claimed_session_follows_the_socket_that_claimed_it: {e:#}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn detach_over_websocket_answers_success_before_detached() {
    let result: Result<()> = bounded("janus_ws_detach", Duration::from_secs(60), async {
        let gw = start_gateway(|_| {}).await?;
        let mut socket = connect(&gw.base_url()).await?;
        send(&mut socket, json!({"janus": "create", "transaction": "c"})).await?;
        let session = reply_to(&mut socket, "c").await?["data"]["id"]
            .as_u64()
            .context("session id")?;
        send(
            &mut socket,
            json!({"janus": "attach", "session_id": session,
                   "plugin": "janus.plugin.videoroom", "transaction": "a"}),
        )
        .await?;
        let handle = reply_to(&mut socket, "a").await?["data"]["id"]
            .as_u64()
            .context("handle id")?;
        send(
            &mut socket,
            json!({"janus": "detach", "session_id": session, "handle_id": handle,
                   "transaction": "d"}),
        )
        .await?;

        // As Janus: the reply to the detach, then the event, on the same socket.
        let mut seen = Vec::new();
        let mut about = Vec::new();
        while about.len() < 2 {
            let Some(message) = next(&mut socket, Duration::from_secs(5)).await? else {
                bail!("no success and detached after the detach: {seen:?}");
            };
            seen.push(message.clone());
            let ours = message["transaction"] == "d" || message["sender"] == handle;
            if message["janus"] != "ack" && ours {
                about.push(message);
            }
        }
        ensure!(
            about[0]["janus"] == "success"
                && about[0]["transaction"] == "d"
                && about[1]["janus"] == "detached"
                && about[1]["sender"] == handle,
            "expected success, then detached: {seen:?}"
        );
        socket.close(None).await?;
        gw.shutdown().await;
        Ok(())
    })
    .await;
    if let Err(e) = result {
        panic!("detach_over_websocket_answers_success_before_detached: {e:#}");
    }
}
