//! End-to-end encrypted media over Janus (janus.js sets `e2ee` in the jsep when it uses
//! insertable streams): a room with `require_e2ee` takes only publishers that say so, their
//! answers and their subscribers' offers say so too, and no subscription mixes encrypted and
//! plain feeds (438), as in Janus. janus.js in Chromium with a frame transform on both sides
//! decodes the publisher's frames through the gateway and through Janus 1.1.2 alike.

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use gatehouse_e2e::{bounded, media_lock, offers, spawn_janusjs, start_gateway};
use serde_json::{Value, json};

use crate::janus_api::{Janus, plugin_error};
use crate::janus_real_clients::NamespacedJanus;

const LIMIT: Duration = Duration::from_secs(60);

/// Joins `room` as a publisher on a new handle of a new session, with a jsep that says
/// `e2ee` or not: the event and the answer's jsep.
async fn publish(j: &Janus, room: u64, e2ee: bool) -> Result<(Value, Value)> {
    let (session, handle) = j.session_and_handle().await?;
    let offer = &offers().await?.whip[0];
    let mut jsep = json!({"type": "offer", "sdp": offer});
    if e2ee {
        jsep["e2ee"] = json!(true);
    }
    let join = json!({"request": "joinandconfigure", "ptype": "publisher", "room": room});
    j.message(session, handle, join, Some(jsep)).await
}

/// Joins `room` as a subscriber of `feeds` on a new handle: its session, handle, event and
/// offer.
async fn subscribe(j: &Janus, room: u64, feeds: &[u64]) -> Result<(u64, u64, Value, Value)> {
    let (session, handle) = j.session_and_handle().await?;
    let streams: Vec<Value> = feeds.iter().map(|f| json!({"feed": f})).collect();
    let join = json!({"request": "join", "ptype": "subscriber", "room": room, "streams": streams});
    let (event, jsep) = j.message(session, handle, join, None).await?;
    Ok((session, handle, event, jsep))
}

fn id_of(joined: &Value) -> Result<u64> {
    joined["id"]
        .as_u64()
        .with_context(|| format!("joined: {joined}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_room_requiring_e2ee_takes_only_publishers_that_say_so_and_offers_their_subscribers_e2ee()
{
    let result: Result<()> = bounded("janus_require_e2ee", LIMIT, async {
        let gw = start_gateway(|_| {}).await?;
        let j = Janus {
            base: gw.base_url().to_owned(),
        };
        let (session, handle) = j.session_and_handle().await?;
        let create = json!({"request": "create", "room": 9191, "require_e2ee": true});
        let (created, _) = j.message(session, handle, create, None).await?;
        ensure!(created["videoroom"] == "created", "{created}");
        let (listed, _) = j
            .message(session, handle, json!({"request": "list"}), None)
            .await?;
        ensure!(
            listed["list"][0]["require_e2ee"] == true,
            "list shows it: {listed}"
        );

        let (plain, answer) = publish(&j, 9191, false).await?;
        println!("plain publisher: {plain}");
        ensure!(
            plugin_error(&plain) == 433,
            "plain publisher refused: {plain}"
        );
        ensure!(answer.is_null(), "no answer for it: {answer}");

        let (joined, answer) = publish(&j, 9191, true).await?;
        ensure!(joined["videoroom"] == "joined", "{joined}");
        ensure!(
            answer["type"] == "answer" && answer["e2ee"] == true,
            "the answer says e2ee: {}",
            answer["e2ee"]
        );
        let (_, _, attached, offer) = subscribe(&j, 9191, &[id_of(&joined)?]).await?;
        ensure!(attached["videoroom"] == "attached", "{attached}");
        ensure!(
            offer["type"] == "offer" && offer["e2ee"] == true,
            "the subscriber's offer says e2ee: {}",
            offer["e2ee"]
        );
        gw.shutdown().await;
        Ok(())
    })
    .await;
    if let Err(e) = result {
        panic!(
            "a_room_requiring_e2ee_takes_only_publishers_that_say_so_and_offers_their_subscribers_e2ee: {e:#}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscription_never_mixes_encrypted_and_plain_feeds() {
    let result: Result<()> = bounded("janus_e2ee_mix", LIMIT, async {
        let gw = start_gateway(|_| {}).await?;
        let j = Janus {
            base: gw.base_url().to_owned(),
        };
        let (session, handle) = j.session_and_handle().await?;
        let create = json!({"request": "create", "room": 9292});
        let (created, _) = j.message(session, handle, create, None).await?;
        ensure!(created["videoroom"] == "created", "{created}");
        let (encrypted, answer) = publish(&j, 9292, true).await?;
        let encrypted = id_of(&encrypted)?;
        ensure!(answer["e2ee"] == true, "{answer}");
        let (plain, answer) = publish(&j, 9292, false).await?;
        let plain = id_of(&plain)?;
        ensure!(answer.get("e2ee").is_none(), "{answer}");

        let (_, _, mixed, offer) = subscribe(&j, 9292, &[encrypted, plain]).await?;
        println!("both at once: {mixed}");
        ensure!(plugin_error(&mixed) == 438 && offer.is_null(), "{mixed}");

        let (s, h, attached, offer) = subscribe(&j, 9292, &[plain]).await?;
        ensure!(attached["videoroom"] == "attached", "{attached}");
        ensure!(offer.get("e2ee").is_none(), "a plain subscription: {offer}");
        for request in [
            json!({"request": "update", "subscribe": [{"feed": encrypted}]}),
            json!({"request": "switch", "streams": [{"feed": encrypted}]}),
        ] {
            let (refused, _) = j.message(s, h, request.clone(), None).await?;
            println!("{}: {refused}", request["request"]);
            ensure!(plugin_error(&refused) == 438, "{request}: {refused}");
        }

        let (_, _, attached, offer) = subscribe(&j, 9292, &[encrypted]).await?;
        ensure!(attached["videoroom"] == "attached", "{attached}");
        ensure!(offer["e2ee"] == true, "an encrypted subscription: {offer}");
        gw.shutdown().await;
        Ok(())
    })
    .await;
    if let Err(e) = result {
        panic!("a_subscription_never_mixes_encrypted_and_plain_feeds: {e:#}");
    }
}

/// janus.js publishes and plays through `server` with insertable streams (`--e2ee`) in a
/// room requiring them: the jseps say `e2ee` and the transformed frames decode. Janus 1.1.2
/// does not yet say it in a subscriber's offer (later Janus does, as the gateway); janus.js
/// does not read it there.
async fn janusjs_plays_encrypted(server: &str, against: &str, offer_says_it: bool) -> Result<()> {
    let run = spawn_janusjs(server, 4646, &["--e2ee"])?.finish().await?;
    let said = &run.json["jsep_e2ee"];
    println!(
        "janus.js e2ee vs {against}: {} frames decoded at {}x{}; jsep e2ee {said}",
        run.json["frames_decoded"], run.json["width"], run.json["height"]
    );
    ensure!(run.ok(), "{}", run.describe());
    for jsep in ["pub_offer", "pub_answer", "sub_answer"] {
        ensure!(said[jsep] == true, "{jsep} does not say e2ee: {said}");
    }
    ensure!(
        said["sub_offer"] == offer_says_it,
        "the subscriber's offer: {said}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn janusjs_with_insertable_streams_publishes_and_plays_in_a_room_requiring_e2ee() {
    let _guard = media_lock().await;
    let result: Result<()> = bounded("janusjs_e2ee", Duration::from_secs(150), async {
        let gw = start_gateway(|_| {}).await?;
        let outcome =
            janusjs_plays_encrypted(&format!("{}/janus", gw.base_url()), "gatehouse", true).await;
        gw.shutdown().await;
        outcome
    })
    .await;
    if let Err(e) = result {
        panic!(
            "janusjs_with_insertable_streams_publishes_and_plays_in_a_room_requiring_e2ee: {e:#}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn janusjs_with_insertable_streams_plays_the_same_against_debian_janus_1_1_2() {
    let _guard = media_lock().await;
    let result: Result<()> = bounded("janusjs_e2ee_real_janus", Duration::from_secs(150), async {
        let janus = NamespacedJanus::start(8188, 8088)?;
        let server = format!("http://{}:8088/janus", janus.janus_ip);
        let outcome = janusjs_plays_encrypted(&server, "Janus 1.1.2", false).await;
        drop(janus);
        outcome
    })
    .await;
    if let Err(e) = result {
        panic!("janusjs_with_insertable_streams_plays_the_same_against_debian_janus_1_1_2: {e:#}");
    }
}
