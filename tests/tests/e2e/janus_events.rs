//! What Janus tells a room and a handle when a participant is kicked or hangs up, and the
//! core's refusal of an answer it never asked for: clients that keep a room's roster from
//! these events rely on them being sent as Janus sends them.

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use gatehouse_e2e::{bounded, offers, start_gateway};
use serde_json::{Value, json};

use crate::janus_api::{Janus, core_error, plugin_error};

const LIMIT: Duration = Duration::from_secs(60);

/// The events of `session` (long polls of up to 10) until `done` holds for them or `window`
/// ends: a poll with nothing to return is held 30 s, so the window cuts it short.
async fn events_until(
    j: &Janus,
    session: u64,
    window: Duration,
    done: impl Fn(&[Value]) -> bool,
) -> Result<Vec<Value>> {
    let deadline = tokio::time::Instant::now() + window;
    let mut seen: Vec<Value> = Vec::new();
    while !done(seen.as_slice()) {
        match tokio::time::timeout_at(deadline, j.poll(session, 10)).await {
            Ok(events) => seen.extend(events?.as_array().cloned().unwrap_or_default()),
            Err(_) => break,
        }
    }
    Ok(seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kicked_publisher_is_announced_once_as_kicked_and_attendees_are_listed() {
    let result: Result<()> = bounded("janus_kicked", LIMIT, async {
        let gw = start_gateway(|_| {}).await?;
        let j = Janus {
            base: gw.base_url(),
        };
        let (session, admin) = j.session_and_handle().await?;
        let (created, _) = j
            .message(
                session,
                admin,
                json!({"request": "create", "room": 88, "secret": "s",
                "notify_joining": true}),
                None,
            )
            .await?;
        ensure!(created["videoroom"] == "created", "{created}");
        let a = j.attach(session).await?;
        let (joined, _) = j
            .message(
                session,
                a,
                json!({"request": "join", "ptype": "publisher", "room": 88,
                "id": 1, "display": "a"}),
                None,
            )
            .await?;
        ensure!(joined["videoroom"] == "joined", "A: {joined}");
        // B, in a Janus session of its own, is told of A (who does not publish) as an attendee.
        let (other, b) = j.session_and_handle().await?;
        let (joined, _) = j
            .message(
                other,
                b,
                json!({"request": "join", "ptype": "publisher", "room": 88,
                "id": 2, "display": "b"}),
                None,
            )
            .await?;
        let attendees = joined["attendees"].as_array().context("attendees")?;
        ensure!(
            attendees.contains(&json!({"id": 1, "display": "a"})),
            "B: {joined}"
        );

        let (reply, _) = j
            .message(
                session,
                admin,
                json!({"request": "kick", "room": 88, "secret": "s", "id": 1}),
                None,
            )
            .await?;
        ensure!(reply["videoroom"] == "success", "kick: {reply}");
        // As Janus: the room hears `kicked` for A, and not also `leaving`.
        let is = |e: &Value, key: &str| e["plugindata"]["data"][key] == 1;
        let mut seen = events_until(&j, other, Duration::from_secs(5), |seen| {
            seen.iter().any(|e| is(e, "kicked"))
        })
        .await?;
        // A `leaving` sent after the `kicked` is still wrong: give it a second to show.
        seen.extend(events_until(&j, other, Duration::from_secs(1), |_| false).await?);
        let kicked = seen.iter().filter(|e| is(e, "kicked")).count();
        ensure!(kicked == 1, "B heard `kicked` {kicked} times: {seen:?}");
        ensure!(
            !seen.iter().any(|e| is(e, "leaving")),
            "B also heard `leaving`: {seen:?}"
        );
        gw.shutdown().await;
        Ok(())
    })
    .await;
    if let Err(e) = result {
        panic!("a_kicked_publisher_is_announced_once_as_kicked_and_attendees_are_listed: {e:#}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hangup_request_unpublishes_the_publisher_but_keeps_it_in_the_room() {
    let result: Result<()> = bounded("janus_hangup_request", LIMIT, async {
        let gw = start_gateway(|_| {}).await?;
        let j = Janus {
            base: gw.base_url(),
        };
        let (session, admin) = j.session_and_handle().await?;
        j.message(
            session,
            admin,
            json!({"request": "create", "room": 89}),
            None,
        )
        .await?;
        let watcher = j.attach(session).await?;
        j.message(
            session,
            watcher,
            json!({"request": "join", "ptype": "publisher", "room": 89, "id": 10}),
            None,
        )
        .await?;
        // The publisher, in a Janus session of its own, with a real offer (its client never
        // connects, which does not matter here).
        let (pub_session, publisher) = j.session_and_handle().await?;
        let offer = json!({"type": "offer", "sdp": offers().await?.whip[0]});
        let (joined, answer) = j
            .message(
                pub_session,
                publisher,
                json!({"request": "joinandconfigure", "ptype": "publisher",
                "room": 89, "id": 11,
                "descriptions": [{"mid": "0", "description": "front camera"}]}),
                Some(offer),
            )
            .await?;
        ensure!(
            joined["videoroom"] == "joined" && answer["type"] == "answer",
            "{joined}"
        );
        // Its `descriptions` label the streams Janus lists.
        let described = joined["streams"]
            .as_array()
            .and_then(|s| s.iter().find(|s| s["mid"] == "0").cloned())
            .context("stream 0")?;
        ensure!(described["description"] == "front camera", "{joined}");

        // The core's `hangup`: the PeerConnection closes, the handle stays attached.
        let reply = j
            .post(
                &format!("/janus/{pub_session}/{publisher}"),
                &json!({"janus": "hangup", "transaction": "h"}),
            )
            .await?;
        ensure!(reply["janus"] == "success", "hangup: {reply}");
        let event = tokio::time::timeout(Duration::from_secs(5), j.poll(pub_session, 1))
            .await
            .context("no event after the hangup")??;
        ensure!(
            event["janus"] == "hangup"
                && event["sender"] == publisher
                && event["reason"] == "Janus API",
            "{event}"
        );
        let unpublished = |e: &Value| e["plugindata"]["data"]["unpublished"] == 11;
        let seen = events_until(&j, session, Duration::from_secs(5), |seen| {
            seen.iter().any(unpublished)
        })
        .await?;
        ensure!(
            seen.iter().any(unpublished),
            "the room was not told: {seen:?}"
        );
        // Unpublished, but still a participant.
        let entry = j.participant(session, admin, 89, 11).await?;
        ensure!(entry["publisher"] == false, "{entry}");
        gw.shutdown().await;
        Ok(())
    })
    .await;
    if let Err(e) = result {
        panic!("a_hangup_request_unpublishes_the_publisher_but_keeps_it_in_the_room: {e:#}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_nobody_asked_for_is_469() {
    let result: Result<()> = bounded("janus_unexpected_answer", LIMIT, async {
        let gw = start_gateway(|_| {}).await?;
        let j = Janus {
            base: gw.base_url(),
        };
        let (session, handle) = j.session_and_handle().await?;
        j.message(
            session,
            handle,
            json!({"request": "create", "room": 90}),
            None,
        )
        .await?;
        let (joined, _) = j
            .message(
                session,
                handle,
                json!({"request": "join", "ptype": "publisher", "room": 90}),
                None,
            )
            .await?;
        ensure!(joined["videoroom"] == "joined", "{joined}");
        // A publisher offers; only a subscriber, having been offered to, answers.
        let answer = json!({"type": "answer", "sdp": offers().await?.whip[0]});
        let reply = j
            .post(
                &format!("/janus/{session}/{handle}"),
                &json!({"janus": "message", "transaction": "x",
                "body": {"request": "configure"}, "jsep": answer}),
            )
            .await?;
        ensure!(
            reply["janus"] == "error" && core_error(&reply) == 469,
            "{reply}"
        );
        gw.shutdown().await;
        Ok(())
    })
    .await;
    if let Err(e) = result {
        panic!("an_answer_nobody_asked_for_is_469: {e:#}");
    }
}

/// A WHIP publisher is a Janus publisher to the room's participants: announced with its
/// `streams` (mid and codec of each m-line) when it starts, `unpublished` when it stops.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_whip_publisher_starting_and_stopping_is_announced_to_janus_participants() {
    let _guard = gatehouse_e2e::media_lock().await;
    let result: Result<()> = bounded("janus_foreign_events", LIMIT, async {
        let gw = start_gateway(|_| {}).await?;
        let base = gw.base_url();
        let j = Janus { base: base.clone() };
        let (session, handle) = j.session_and_handle().await?;
        j.message(
            session,
            handle,
            json!({"request": "create", "room": 5353}),
            None,
        )
        .await?;
        let (joined, _) = j
            .message(
                session,
                handle,
                json!({"request": "join", "ptype": "publisher", "room": 5353}),
                None,
            )
            .await?;
        ensure!(joined["publishers"] == json!([]), "{joined}");
        let whip = gatehouse_e2e::Publish {
            seconds: 3.0,
            ..Default::default()
        }
        .spawn(&format!("{base}/v1/whip/5353"))?;
        let data = |e: &Value| e["plugindata"]["data"].clone();
        let announced = |events: &[Value]| {
            events
                .iter()
                .find_map(|e| data(e)["publishers"].as_array()?.first().cloned())
        };
        let events = events_until(&j, session, Duration::from_secs(10), |e| {
            announced(e).is_some()
        })
        .await?;
        let entry = announced(&events).context("no publishers event")?;
        println!("WHIP publisher announced to Janus: {entry}");
        let video = entry["streams"]
            .as_array()
            .and_then(|s| s.iter().find(|s| s["type"] == "video").cloned())
            .with_context(|| format!("no video stream: {entry}"))?;
        ensure!(
            video["codec"] == "vp8" && video["mid"].is_string() && entry["video_codec"] == "vp8",
            "{entry}"
        );
        whip.finish().await?.expect_ok()?;
        let id = entry["id"].clone();
        let gone = events_until(&j, session, Duration::from_secs(10), |e| {
            e.iter().any(|e| data(e)["unpublished"] == id)
        })
        .await?;
        ensure!(
            gone.iter().any(|e| data(e)["unpublished"] == id),
            "no unpublished {id}: {gone:?}"
        );
        gw.shutdown().await;
        Ok(())
    })
    .await;
    if let Err(e) = result {
        panic!("a_whip_publisher_starting_and_stopping_is_announced_to_janus_participants: {e:#}");
    }
}

/// `[janus] admin_key`: `create` without it is 429, with a wrong one 433; with
/// `lock_rtp_forward`, the same for `rtp_forward` and `stop_rtp_forward`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn creating_a_room_and_forwarding_rtp_need_the_admin_key_when_one_is_set() {
    let result: Result<()> = bounded("janus_admin_key", LIMIT, async {
        let gw = start_gateway(|c| {
            c.janus.admin_key = Some("k3y".into());
            c.janus.lock_rtp_forward = true;
        })
        .await?;
        let j = Janus {
            base: gw.base_url(),
        };
        let (session, handle) = j.session_and_handle().await?;
        let create = |extra: Value| {
            let mut body = json!({"request": "create", "room": 91});
            if let Some(key) = extra.as_str() {
                body["admin_key"] = json!(key);
            }
            j.message(session, handle, body, None)
        };
        let (missing, _) = create(Value::Null).await?;
        ensure!(plugin_error(&missing) == 429, "no admin_key: {missing}");
        let (wrong, _) = create(json!("nope")).await?;
        ensure!(plugin_error(&wrong) == 433, "wrong admin_key: {wrong}");
        let (created, _) = create(json!("k3y")).await?;
        ensure!(created["videoroom"] == "created", "{created}");
        // `lock_rtp_forward`: forwarders need the key too; with it, the request gets as far
        // as the room (no such publisher: 428).
        let forward = |key: Option<&str>| {
            let mut body = json!({"request": "rtp_forward", "room": 91, "publisher_id": 5,
                                  "host": "127.0.0.1", "video_port": 5004});
            if let Some(key) = key {
                body["admin_key"] = json!(key);
            }
            j.message(session, handle, body, None)
        };
        let (missing, _) = forward(None).await?;
        ensure!(
            plugin_error(&missing) == 429,
            "rtp_forward, no key: {missing}"
        );
        let (wrong, _) = forward(Some("nope")).await?;
        ensure!(
            plugin_error(&wrong) == 433,
            "rtp_forward, wrong key: {wrong}"
        );
        let (keyed, _) = forward(Some("k3y")).await?;
        ensure!(
            plugin_error(&keyed) == 428,
            "rtp_forward with the key: {keyed}"
        );
        let (stop, _) = j
            .message(
                session,
                handle,
                json!({"request": "stop_rtp_forward", "room": 91, "publisher_id": 5,
                       "stream_id": 1}),
                None,
            )
            .await?;
        ensure!(
            plugin_error(&stop) == 429,
            "stop_rtp_forward, no key: {stop}"
        );
        gw.shutdown().await;
        Ok(())
    })
    .await;
    if let Err(e) = result {
        panic!("creating_a_room_and_forwarding_rtp_need_the_admin_key_when_one_is_set: {e:#}");
    }
}

/// A Janus room's PIN is an admission decision: the `room-admission` module refuses the wrong
/// PIN (its deny counted in `/metrics`), and without any admission module the host still
/// enforces it (turning policies off does not open protected rooms).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_janus_rooms_pin_is_decided_by_the_admission_policy_and_never_dropped() {
    let result: Result<()> = bounded("janus_pin_policy", LIMIT, async {
        for admit in ["room-admission", ""] {
            let gw = start_gateway(|c| c.policies.admit = admit.to_owned()).await?;
            let j = Janus {
                base: gw.base_url(),
            };
            let (session, handle) = j.session_and_handle().await?;
            j.message(
                session,
                handle,
                json!({"request": "create", "room": 92, "pin": "7"}),
                None,
            )
            .await?;
            let join = |pin: &str| {
                j.message(
                    session,
                    handle,
                    json!({"request": "join", "ptype": "publisher", "room": 92, "pin": pin}),
                    None,
                )
            };
            let (wrong, _) = join("8").await?;
            ensure!(plugin_error(&wrong) == 433, "{admit:?}: wrong pin: {wrong}");
            let (joined, _) = join("7").await?;
            ensure!(
                joined["videoroom"] == "joined",
                "{admit:?}: right pin: {joined}"
            );
            let metrics = gatehouse_e2e::http()
                .get(format!("{}/metrics", gw.base_url()))
                .send()
                .await?
                .text()
                .await?;
            let denied_by_module = metrics.lines().any(|l| {
                l.starts_with("gatehouse_policy_decisions_total{")
                    && l.contains("hook=\"admit\"")
                    && l.contains("module=\"room-admission\"")
                    && l.contains("result=\"deny\"")
            });
            let module_configured = !admit.is_empty();
            ensure!(
                denied_by_module == module_configured,
                "{admit:?}: admit denials in /metrics: {denied_by_module}"
            );
            gw.shutdown().await;
        }
        Ok(())
    })
    .await;
    if let Err(e) = result {
        panic!("a_janus_rooms_pin_is_decided_by_the_admission_policy_and_never_dropped: {e:#}");
    }
}

/// Methods the Janus HTTP transport does not serve get HTTP 200 and error 450, as Janus's do.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_http_methods_on_janus_paths_are_error_450_with_http_200() {
    let result: Result<()> = bounded("janus_450", LIMIT, async {
        let gw = start_gateway(|_| {}).await?;
        for path in ["/janus", "/janus/1", "/janus/1/2"] {
            let response = gatehouse_e2e::http()
                .delete(format!("{}{path}", gw.base_url()))
                .send()
                .await?;
            let status = response.status();
            let body: Value = serde_json::from_str(&response.text().await?)?;
            ensure!(
                status == 200 && body["janus"] == "error" && core_error(&body) == 450,
                "DELETE {path}: HTTP {status} {body}"
            );
        }
        gw.shutdown().await;
        Ok(())
    })
    .await;
    if let Err(e) = result {
        panic!("other_http_methods_on_janus_paths_are_error_450_with_http_200: {e:#}");
    }
}

/// Without a rooms file, `permanent` rooms are written back into the `[[janus.rooms]]` of the
/// gateway's own config file, as Janus rewrites its jcfg: the operator's other lines and
/// comments stay, and the rooms survive a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn permanent_rooms_are_written_back_into_the_gateway_config_file() {
    let result: Result<()> = bounded("janus_permanent_config", LIMIT, async {
        let dir = std::env::temp_dir().join(format!("gh-janus-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let path = dir.join("gatehouse.toml");
        std::fs::write(
            &path,
            "# the operator's notes\n[janus]\nsession_timeout_secs = 60 # keep this\n\n\
             [[janus.rooms]]\nroom = 800\ndescription = \"from the file\"\nsecret = \"x\"\n",
        )?;
        let start = || {
            let path = path.clone();
            start_gateway(move |c| {
                let file = gatehouse::config::Config::from_file(&path).expect("test config");
                c.janus = file.janus;
                c.source = file.source;
            })
        };
        let gw = start().await?;
        let j = Janus {
            base: gw.base_url(),
        };
        let (s, h) = j.session_and_handle().await?;
        let (created, _) = j
            .message(
                s,
                h,
                json!({"request": "create", "room": 801, "permanent": true}),
                None,
            )
            .await?;
        ensure!(created["permanent"] == true, "{created}");
        let (gone, _) = j
            .message(
                s,
                h,
                json!({"request": "destroy", "room": 800, "secret": "x", "permanent": true}),
                None,
            )
            .await?;
        ensure!(gone["permanent"] == true, "{gone}");
        gw.shutdown().await;
        let written = std::fs::read_to_string(&path)?;
        println!("config file after create and destroy:\n{written}");
        ensure!(
            written.starts_with(
                "# the operator's notes\n[janus]\nsession_timeout_secs = 60 # keep this\n"
            ),
            "the operator's lines changed:\n{written}"
        );

        let gw = start().await?;
        let j = Janus {
            base: gw.base_url(),
        };
        let (s, h) = j.session_and_handle().await?;
        ensure!(
            crate::janus_api::exists(&j, s, h, 801).await?,
            "the permanent room did not survive"
        );
        ensure!(
            !crate::janus_api::exists(&j, s, h, 800).await?,
            "the destroyed room came back"
        );
        gw.shutdown().await;
        std::fs::remove_dir_all(&dir)?;
        Ok(())
    })
    .await;
    if let Err(e) = result {
        panic!("permanent_rooms_are_written_back_into_the_gateway_config_file: {e:#}");
    }
}

/// `edit` takes `new_lock_record` (listed back) and `new_rec_dir` (a plain relative directory
/// only: anything else is 430).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edit_sets_lock_record_and_a_relative_rec_dir_only() {
    let result: Result<()> = bounded("janus_edit_record", LIMIT, async {
        let gw = start_gateway(|_| {}).await?;
        let j = Janus {
            base: gw.base_url(),
        };
        let (s, h) = j.session_and_handle().await?;
        j.message(
            s,
            h,
            json!({"request": "create", "room": 93, "secret": "s"}),
            None,
        )
        .await?;
        let (edited, _) = j
            .message(
                s,
                h,
                json!({"request": "edit", "room": 93, "secret": "s",
                "new_lock_record": true, "new_rec_dir": "janus-93"}),
                None,
            )
            .await?;
        ensure!(edited["videoroom"] == "edited", "{edited}");
        let (listed, _) = j.message(s, h, json!({"request": "list"}), None).await?;
        let entry = listed["list"]
            .as_array()
            .and_then(|l| l.iter().find(|r| r["room"] == 93).cloned())
            .context("room 93 listed")?;
        ensure!(entry["lock_record"] == true, "{entry}");
        let (escape, _) = j
            .message(
                s,
                h,
                json!({"request": "edit", "room": 93, "secret": "s", "new_rec_dir": "../out"}),
                None,
            )
            .await?;
        ensure!(plugin_error(&escape) == 430, "{escape}");
        gw.shutdown().await;
        Ok(())
    })
    .await;
    if let Err(e) = result {
        panic!("edit_sets_lock_record_and_a_relative_rec_dir_only: {e:#}");
    }
}
