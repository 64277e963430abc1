//! One Janus subscriber, several feeds: a multistream `join` whose `streams` name two
//! publishers gets one offer carrying both, and the client decodes each.

use std::time::Duration;

use anyhow::{Result, ensure};
use gatehouse_e2e::{Client, Publish, bounded, media_lock, start_gateway, wait_for_media};
use serde_json::Value;

use crate::janus_cross_dialect::janus_client;

const LIMIT: Duration = Duration::from_secs(120);

/// Two publishers in Janus room `room`: a Janus one (`janus_args` after `--publish`, for
/// `janus_secs`) and, once its media flows, a WHIP one for `whip_secs`.
async fn janus_and_whip_publishers(
    gw: &gatehouse::Gateway,
    room: u64,
    (janus_secs, janus_args): (f64, &[&str]),
    whip_secs: f64,
) -> Result<(Client, Client)> {
    let base = gw.base_url();
    let janus = janus_client(&base, room, "publish", janus_secs, janus_args)?;
    wait_for_media(gw, &room.to_string(), Duration::from_secs(15)).await?;
    let whip = Publish {
        seconds: whip_secs,
        ..Default::default()
    }
    .spawn(&format!("{base}/v1/whip/{room}"))?;
    Ok((janus, whip))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_joining_two_feeds_decodes_both_on_one_peerconnection() {
    let _guard = media_lock().await;
    let result: Result<()> = bounded("janus_two_feeds", LIMIT, async {
        let gw = start_gateway(|_| {}).await?;
        let base = gw.base_url();
        let (janus, whip) =
            janus_and_whip_publishers(&gw, 6464, (12.0, &["--display", "janus"]), 11.0).await?;
        let player = janus_client(&base, 6464, "play", 4.0, &["--min-feeds", "2"])?
            .finish()
            .await?
            .expect_ok()?;
        let streams = &player.json["attached_streams"];
        let frames = &player.json["video_frames_per_track"];
        println!("two feeds: attached {streams}; video frames per track {frames}");
        let feeds: std::collections::BTreeSet<u64> = streams
            .as_array()
            .into_iter()
            .flatten()
            .filter(|s| s["active"] == true)
            .filter_map(|s| s["feed_id"].as_u64())
            .collect();
        ensure!(feeds.len() == 2, "one offer for both feeds: {streams}");
        let per_track: Vec<u64> = frames
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|f| f.as_u64())
            .collect();
        ensure!(
            per_track.len() == 2 && per_track.iter().all(|n| *n >= 30),
            "each feed decoded: {frames}"
        );
        whip.finish().await?.expect_ok()?;
        janus.finish().await?.expect_ok()?;
        gw.shutdown().await;
        Ok(())
    })
    .await;
    if let Err(e) = result {
        panic!("a_subscriber_joining_two_feeds_decodes_both_on_one_peerconnection: {e:#}");
    }
}

/// A subscription takes only the m-lines it names: `streams:[{feed, mid}]` with the
/// publisher's video mid, or legacy `feed` with `offer_audio: false`, offer video alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscription_naming_only_the_video_mid_is_offered_video_alone() {
    use crate::janus_api::Janus;
    use serde_json::json;

    let _guard = media_lock().await;
    let result: Result<()> = bounded("janus_mid_choice", LIMIT, async {
        let gw = start_gateway(|_| {}).await?;
        let base = gw.base_url();
        let whip = Publish {
            seconds: 8.0,
            ..Default::default()
        }
        .spawn(&format!("{base}/v1/whip/6565"))?;
        wait_for_media(&gw, "6565", Duration::from_secs(15)).await?;
        let j = Janus { base: base.clone() };
        let (session, lister) = j.session_and_handle().await?;
        let (listed, _) = j
            .message(
                session,
                lister,
                json!({"request": "listparticipants", "room": 6565}),
                None,
            )
            .await?;
        let feed = listed["participants"][0]["id"].clone();
        let (joined, _) = j
            .message(
                session,
                lister,
                json!({"request": "join", "ptype": "publisher", "room": 6565}),
                None,
            )
            .await?;
        let video_mid = joined["publishers"][0]["streams"]
            .as_array()
            .and_then(|s| s.iter().find(|s| s["type"] == "video"))
            .map(|s| s["mid"].clone())
            .ok_or_else(|| anyhow::anyhow!("no video stream listed: {joined}"))?;
        let m_lines = |sdp: &Value| {
            sdp["sdp"]
                .as_str()
                .unwrap_or_default()
                .lines()
                .filter_map(|l| l.strip_prefix("m="))
                .map(|l| l.split(' ').next().unwrap_or_default().to_owned())
                .collect::<Vec<_>>()
        };
        for body in [
            json!({"request": "join", "ptype": "subscriber", "room": 6565,
                "streams": [{"feed": feed, "mid": video_mid}]}),
            json!({"request": "join", "ptype": "subscriber", "room": 6565,
                "feed": feed, "offer_audio": false}),
        ] {
            let handle = j.attach(session).await?;
            let (attached, offer) = j.message(session, handle, body.clone(), None).await?;
            println!("{body}: offer m-lines {:?}", m_lines(&offer));
            ensure!(
                attached["videoroom"] == "attached" && m_lines(&offer) == ["video"],
                "{body}: {attached}"
            );
        }
        whip.finish().await?.expect_ok()?;
        gw.shutdown().await;
        Ok(())
    })
    .await;
    if let Err(e) = result {
        panic!("a_subscription_naming_only_the_video_mid_is_offered_video_alone: {e:#}");
    }
}

/// Janus `autoupdate`: a publisher of a two-feed subscription leaves; the subscriber gets an
/// `updated` event whose offer leaves that feed's m-lines inactive, answers it with `start`,
/// and the other feed's video goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_gets_a_new_offer_without_a_publisher_that_leaves() {
    let _guard = media_lock().await;
    let result: Result<()> = bounded("janus_autoupdate", LIMIT, async {
        let gw = start_gateway(|_| {}).await?;
        let base = gw.base_url();
        let (leaving, staying) =
            janus_and_whip_publishers(&gw, 6565, (7.0, &["--display", "leaving"]), 16.0).await?;
        let player = janus_client(
            &base,
            6565,
            "play",
            3.0,
            &["--min-feeds", "2", "--await-update", "12"],
        )?
        .finish()
        .await?;
        let leaving = leaving.finish().await?.expect_ok()?;
        println!(
            "autoupdate: {}; video growth per track after it {}",
            player.json["update"], player.json["video_growth_after_update"]
        );
        let player = player.expect_ok()?;
        let update = &player.json["update"];
        ensure!(
            update["started"] == "ok",
            "the new offer answered: {update}"
        );
        let gone = leaving.u64("feed");
        let streams: Vec<&Value> = update["streams"].as_array().into_iter().flatten().collect();
        ensure!(
            !streams
                .iter()
                .any(|s| s["active"] == true && s["feed_id"].as_u64() == Some(gone))
                && streams.iter().filter(|s| s["active"] == false).count() == 2
                && streams
                    .iter()
                    .any(|s| s["active"] == true && s["type"] == "video"),
            "the leaving feed inactive, the other active: {update}"
        );
        let growth: Vec<u64> = player.json["video_growth_after_update"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_u64)
            .collect();
        ensure!(
            growth.iter().any(|n| *n >= 20),
            "the staying feed's video goes on after the update: {growth:?}"
        );
        staying.finish().await?.expect_ok()?;
        gw.shutdown().await;
        Ok(())
    })
    .await;
    if let Err(e) = result {
        panic!("a_subscriber_gets_a_new_offer_without_a_publisher_that_leaves: {e:#}");
    }
}

/// `use_msid`: a subscriber asking for it gets each publisher's tracks in a media stream of
/// their own (played in sync); without it, every track is in one stream. Either way no two
/// tracks of an offer share a track id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn use_msid_puts_each_publishers_tracks_in_a_stream_of_their_own() {
    use crate::janus_api::Janus;
    let _guard = media_lock().await;
    let result: Result<()> = bounded("janus_use_msid", LIMIT, async {
        let gw = start_gateway(|_| {}).await?;
        let base = gw.base_url();
        let (janus, whip) =
            janus_and_whip_publishers(&gw, 6767, (10.0, &["--display", "janus"]), 9.0).await?;
        let j = Janus {
            base: base.to_owned(),
        };
        let (session, handle) = j.session_and_handle().await?;
        let mut feeds: Vec<u64> = Vec::new();
        for _ in 0..50 {
            let (listed, _) = j
                .message(
                    session,
                    handle,
                    serde_json::json!({"request": "listparticipants", "room": 6767}),
                    None,
                )
                .await?;
            feeds = listed["participants"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|p| p["publisher"] == true)
                .filter_map(|p| p["id"].as_u64())
                .collect();
            if feeds.len() == 2 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        ensure!(feeds.len() == 2, "two publishers: {feeds:?}");
        // (feed of each m-line, its msid stream, its msid track), per subscriber.
        let mut offers = Vec::new();
        for use_msid in [true, false] {
            let subscriber = j.attach(session).await?;
            let streams: Vec<Value> = feeds
                .iter()
                .map(|f| serde_json::json!({"feed": f}))
                .collect();
            let (attached, jsep) = j
                .message(
                    session,
                    subscriber,
                    serde_json::json!({"request": "join", "ptype": "subscriber", "room": 6767,
                        "streams": streams, "use_msid": use_msid}),
                    None,
                )
                .await?;
            let sdp = jsep["sdp"].as_str().unwrap_or_default();
            let lines: Vec<(u64, String, String)> = sdp
                .split("\r\nm=")
                .skip(1)
                .filter_map(|section| {
                    let mid = section.lines().find_map(|l| l.strip_prefix("a=mid:"))?;
                    let (stream, track) = section
                        .lines()
                        .find_map(|l| l.strip_prefix("a=msid:"))?
                        .split_once(' ')?;
                    let feed = attached["streams"]
                        .as_array()?
                        .iter()
                        .find(|s| s["mid"] == mid)?["feed_id"]
                        .as_u64()?;
                    Some((feed, stream.to_owned(), track.to_owned()))
                })
                .collect();
            println!("use_msid {use_msid}: (feed, stream, track) {lines:?}");
            offers.push(lines);
        }
        for lines in &offers {
            ensure!(lines.len() == 4, "two m-lines per feed: {lines:?}");
            let tracks: std::collections::BTreeSet<&String> = lines.iter().map(|l| &l.2).collect();
            ensure!(tracks.len() == lines.len(), "track ids unique: {lines:?}");
        }
        let stream_of = |lines: &[(u64, String, String)], feed: u64| -> Vec<String> {
            let mut s: Vec<String> = lines
                .iter()
                .filter(|l| l.0 == feed)
                .map(|l| l.1.clone())
                .collect();
            s.dedup();
            s
        };
        let (a, b) = (
            stream_of(&offers[0], feeds[0]),
            stream_of(&offers[0], feeds[1]),
        );
        ensure!(
            a.len() == 1 && b.len() == 1 && a != b,
            "use_msid: one stream per feed: {:?}",
            offers[0]
        );
        let all: std::collections::BTreeSet<&String> = offers[1].iter().map(|l| &l.1).collect();
        ensure!(
            all.len() == 1,
            "without use_msid, one stream: {:?}",
            offers[1]
        );
        whip.finish().await?.expect_ok()?;
        janus.finish().await?.expect_ok()?;
        gw.shutdown().await;
        Ok(())
    })
    .await;
    if let Err(e) = result {
        panic!("use_msid_puts_each_publishers_tracks_in_a_stream_of_their_own: {e:#}");
    }
}
