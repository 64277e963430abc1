//! runner365 cpp_media_server's API (specs/dialects.md §3): several uids publishing in one room
//! (feeds of the stream model), subscribers naming the remote uid, always-200 replies with
//! text/plain error strings and `{"code","desc"}` closes, CORS `*`.

use std::time::Duration;

use anyhow::{Result, ensure};
use gatehouse_e2e::{Play, Publish, bounded, http, media_lock, offers, start_gateway};
use serde_json::Value;

const LIMIT: Duration = Duration::from_secs(90);

async fn run(name: &str, body: impl std::future::Future<Output = Result<()>>) {
    if let Err(e) = bounded(name, LIMIT, body).await {
        panic!("{name}: {e:#}");
    }
}

/// (status, headers, body) of a request.
async fn call(
    request: reqwest::RequestBuilder,
) -> Result<(u16, reqwest::header::HeaderMap, String)> {
    let response = request.send().await?;
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    Ok((status, headers, response.text().await?))
}

fn header<'a>(headers: &'a reqwest::header::HeaderMap, name: &str) -> &'a str {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

fn json(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or(Value::Null)
}

/// Two uids publish in one room (different codecs and sizes); each subscriber gets the remote
/// uid it named (the decoded size proves which), through both path forms; closes answer code 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_uids_publish_in_one_room_and_each_subscriber_receives_the_uid_it_named() {
    let _guard = media_lock().await;
    run("runner365_media", async {
        let gw = start_gateway(|_| {}).await?;
        let base = gw.base_url();
        let publish = |uid: &str, codec: &'static str, size, form: &str| -> Result<_> {
            Publish {
                seconds: 6.0,
                video_codec: codec,
                size,
                runner365_close: Some(format!("{base}/unpublish/2001/{uid}")),
                ..Default::default()
            }
            .spawn(&format!("{base}{form}/publish/2001/{uid}"))
        };
        let alice = publish("alice", "vp8", (640, 480), "")?;
        let bob = publish("bob", "h264", (320, 240), "/whip")?;
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let watch_alice = Play {
            min_video_frames: 10,
            runner365_close: Some(format!("{base}/unsubscribe/2001/carol/alice")),
            ..Play::for_seconds(3.0)
        }
        .spawn(&format!("{base}/subscribe/2001/carol/alice"))?;
        let watch_bob = Play {
            min_video_frames: 10,
            runner365_close: Some(format!("{base}/whip/unsubscribe/2001/dave")),
            ..Play::for_seconds(3.0)
        }
        .spawn(&format!("{base}/whip/subscribe/2001/dave/bob"))?;
        let watch_alice = watch_alice.finish().await?.expect_ok()?;
        let watch_bob = watch_bob.finish().await?.expect_ok()?;
        let alice = alice.finish().await?.expect_ok()?;
        let bob = bob.finish().await?.expect_ok()?;
        gw.shutdown().await;

        // Each publisher's frame size tells whose stream a subscriber decoded.
        for (who, player, width) in [("carol", &watch_alice, 640), ("dave", &watch_bob, 320)] {
            println!(
                "runner365: {who} decoded {} frames of {}x{}",
                player.u64("video_frames"),
                player.u64("width"),
                player.u64("height")
            );
            ensure!(
                player.u64("video_frames") >= 10 && player.u64("width") == width,
                "{who} should decode {width}-wide frames: {}",
                player.describe()
            );
        }
        for (who, client) in [
            ("alice", &alice),
            ("bob", &bob),
            ("carol", &watch_alice),
            ("dave", &watch_bob),
        ] {
            let reply = json(client.str("close_reply").unwrap_or_default());
            ensure!(
                reply == serde_json::json!({"code": 0, "desc": "ok"}),
                "{who} close: {}",
                client.describe()
            );
        }
        Ok(())
    })
    .await;
}

/// Every reply is 200 and text/plain; mistakes are the original's strings or code-400 JSON.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runner365_mistakes_get_200_with_the_originals_strings() {
    run("runner365_mistakes", async {
        let gw = start_gateway(|_| {}).await?;
        let base = gw.base_url();
        let client = http();
        let offer = offers().await?.whip[0].clone();
        let viewer_offer = offers().await?.whep[0].clone();
        let post = |path: &str, body: String| {
            client
                .post(format!("{base}{path}"))
                .header("Content-Type", "text/plain;charset=utf-8")
                .body(body)
        };

        let (s, h, body) = call(post("/publish/2001", offer.clone())).await?;
        ensure!(s == 200 && body == "wrong http path", "{s} {body:?}");
        // The original writes it before its headers: no Content-Type, no CORS.
        ensure!(header(&h, "content-type").is_empty(), "{h:?}");
        let (s, h, body) = call(post("/subscribe/2001/u1/alice", viewer_offer.clone())).await?;
        ensure!(
            header(&h, "content-type") == "text/plain;charset=utf-8",
            "{h:?}"
        );
        ensure!(
            s == 200 && body == "get room error by roomid 2001",
            "{s} {body:?}"
        );
        let (s, _, body) = call(post("/unpublish/2001/alice", String::new())).await?;
        ensure!(
            s == 200
                && json(&body)
                    == serde_json::json!({"code": 400, "desc": "get room error by roomid 2001"}),
            "{s} {body:?}"
        );

        let (s, h, answer) = call(post("/publish/2001/alice", offer.clone())).await?;
        ensure!(s == 200 && answer.starts_with("v=0"), "{s} {answer:?}");
        ensure!(
            header(&h, "access-control-allow-origin") == "*"
                && header(&h, "location").starts_with("/publisher/"),
            "{h:?}"
        );
        let (s, _, body) = call(post("/whip/publish/2001/alice", offer.clone())).await?;
        ensure!(
            s == 200 && body == "uid alice is already publishing in this room",
            "{s} {body:?}"
        );
        let (s, _, body) = call(post("/subscribe/2001/u1/zed", viewer_offer.clone())).await?;
        ensure!(
            s == 200 && body == "live subscriber uid doesn't exist",
            "{s} {body:?}"
        );
        let (s, _, body) = call(post("/publish/2001/bob", "not sdp".into())).await?;
        ensure!(
            s == 200 && body.starts_with("malformed SDP offer"),
            "{s} {body:?}"
        );
        let (s, _, body) = call(post("/publish/2001/b%20b", offer.clone())).await?;
        ensure!(
            s == 200 && body == "uid must be 1-128 characters of A-Z a-z 0-9 _ - . ~",
            "{s} {body:?}"
        );
        // The `/whip/` subscribe form names the subscriber itself; its session id closes it.
        let (s, h, answer) = call(post("/whip/subscribe/2001/alice", viewer_offer.clone())).await?;
        ensure!(s == 200 && answer.starts_with("v=0"), "{s} {answer:?}");
        let session = header(&h, "location")
            .strip_prefix("/subscriber/")
            .unwrap_or_default()
            .to_owned();
        let (s, _, body) = call(post(
            &format!("/whip/unsubscribe/2001/{session}"),
            String::new(),
        ))
        .await?;
        ensure!(
            s == 200 && json(&body) == serde_json::json!({"code": 0, "desc": "ok"}),
            "{s} {body:?}"
        );
        let (s, _, body) = call(post("/unsubscribe/2001/u1/alice", String::new())).await?;
        ensure!(
            s == 200
                && json(&body)
                    == serde_json::json!({"code": 400, "desc": "subscriber uid u1 doesn't exist"}),
            "{s} {body:?}"
        );
        let (s, _, body) = call(post("/unpublish/2001/alice", String::new())).await?;
        ensure!(
            s == 200 && json(&body) == serde_json::json!({"code": 0, "desc": "ok"}),
            "{s} {body:?}"
        );

        let (s, h, body) = call(client.request(
            reqwest::Method::OPTIONS,
            format!("{base}/subscribe/2001/a/b"),
        ))
        .await?;
        ensure!(
            s == 200
                && body.is_empty()
                && header(&h, "access-control-allow-origin") == "*"
                && header(&h, "access-control-allow-methods") == "GET, POST, PUT"
                && header(&h, "access-control-allow-private-network") == "true",
            "{s} {h:?}"
        );
        gw.shutdown().await;
        Ok(())
    })
    .await;
}
