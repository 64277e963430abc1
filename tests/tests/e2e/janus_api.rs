//! Janus's core protocol over HTTP (specs/janus.md §1) and the VideoRoom's error codes, each
//! reached by a client mistake: always HTTP 200 with a JSON body (but the long poll of an
//! unknown session: 404), transactions echoed, ack-then-event for async requests, long-poll
//! arrays for `maxev` > 1, and sessions that time out.

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use gatehouse_e2e::{bounded, http, offers, start_gateway};
use serde_json::{Value, json};

const LIMIT: Duration = Duration::from_secs(60);

pub(crate) struct Janus {
    pub(crate) base: String,
}

impl Janus {
    pub(crate) async fn post(&self, path: &str, body: &Value) -> Result<Value> {
        self.post_text(path, &body.to_string()).await
    }

    pub(crate) async fn post_text(&self, path: &str, body: &str) -> Result<Value> {
        let response = http()
            .post(format!("{}{path}", self.base))
            .body(body.to_owned())
            .send()
            .await?;
        ensure!(
            response.status() == 200,
            "POST {path}: HTTP {}",
            response.status()
        );
        Ok(serde_json::from_str(&response.text().await?)?)
    }

    /// One long poll (`maxev`), returning its JSON.
    pub(crate) async fn poll(&self, session: u64, maxev: usize) -> Result<Value> {
        let response = http()
            .get(format!("{}/janus/{session}?maxev={maxev}", self.base))
            .send()
            .await?;
        ensure!(response.status() == 200, "poll: HTTP {}", response.status());
        Ok(serde_json::from_str(&response.text().await?)?)
    }

    /// A plugin message's `plugindata.data` (sync) or, for async requests, the event's data
    /// (and jsep) after the ack.
    pub(crate) async fn message(
        &self,
        session: u64,
        handle: u64,
        body: Value,
        jsep: Option<Value>,
    ) -> Result<(Value, Value)> {
        let mut request = json!({"janus": "message", "transaction": "m", "body": body});
        if let Some(jsep) = jsep {
            request["jsep"] = jsep;
        }
        let reply = self
            .post(&format!("/janus/{session}/{handle}"), &request)
            .await?;
        match reply["janus"].as_str() {
            Some("success") => Ok((reply["plugindata"]["data"].clone(), Value::Null)),
            Some("ack") => {
                let event = self.poll(session, 1).await?;
                ensure!(
                    event["janus"] == "event" && event["transaction"] == "m",
                    "event: {event}"
                );
                Ok((event["plugindata"]["data"].clone(), event["jsep"].clone()))
            }
            _ => anyhow::bail!("message reply: {reply}"),
        }
    }

    pub(crate) async fn session_and_handle(&self) -> Result<(u64, u64)> {
        let created = self
            .post("/janus", &json!({"janus": "create", "transaction": "c"}))
            .await?;
        let session = created["data"]["id"].as_u64().context("session id")?;
        Ok((session, self.attach(session).await?))
    }

    /// Participant `id`'s entry in `listparticipants` of `room`, asked on `handle`.
    pub(crate) async fn participant(
        &self,
        session: u64,
        handle: u64,
        room: u64,
        id: u64,
    ) -> Result<Value> {
        let (listed, _) = self
            .message(
                session,
                handle,
                json!({"request": "listparticipants", "room": room}),
                None,
            )
            .await?;
        listed["participants"]
            .as_array()
            .and_then(|p| p.iter().find(|p| p["id"] == id).cloned())
            .with_context(|| format!("participant {id}: {listed}"))
    }

    pub(crate) async fn attach(&self, session: u64) -> Result<u64> {
        let attach =
            json!({"janus": "attach", "plugin": "janus.plugin.videoroom", "transaction": "a"});
        let attached = self.post(&format!("/janus/{session}"), &attach).await?;
        attached["data"]["id"].as_u64().context("handle id")
    }
}

pub(crate) fn core_error(reply: &Value) -> u64 {
    reply["error"]["code"].as_u64().unwrap_or(0)
}

pub(crate) fn plugin_error(data: &Value) -> u64 {
    data["error_code"].as_u64().unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn core_mistakes_get_their_janus_error_codes_with_http_200() {
    let result: Result<()> = bounded("janus_core", LIMIT, async {
        let gw = start_gateway(|_| {}).await?;
        let j = Janus {
            base: gw.base_url(),
        };
        let info = j
            .post("/janus", &json!({"janus": "info", "transaction": "i"}))
            .await?;
        ensure!(
            info["janus"] == "server_info" && info["transaction"] == "i",
            "{info}"
        );
        ensure!(
            info["plugins"]["janus.plugin.videoroom"].is_object(),
            "{info}"
        );
        let get_info: Value = serde_json::from_str(
            &http()
                .get(format!("{}/janus/info", j.base))
                .send()
                .await?
                .text()
                .await?,
        )?;
        ensure!(get_info["name"] == "Janus WebRTC Server", "{get_info}");
        let pong = j
            .post("/janus", &json!({"janus": "ping", "transaction": "p"}))
            .await?;
        ensure!(
            pong == json!({"janus": "pong", "transaction": "p"}),
            "{pong}"
        );

        let (session, handle) = j.session_and_handle().await?;
        let s = format!("/janus/{session}");
        let h = format!("/janus/{session}/{handle}");
        let no_handle = format!("{s}/99");
        let cases: Vec<(&str, String, u64)> = vec![
            ("/janus", "{not json".into(), 454),
            ("/janus", "[1,2]".into(), 455),
            ("/janus", json!({"janus": "create"}).to_string(), 456),
            (
                "/janus",
                json!({"janus": 7, "transaction": "t"}).to_string(),
                467,
            ),
            (
                "/janus",
                json!({"janus": "attach", "transaction": "t"}).to_string(),
                457,
            ),
            (
                "/janus/123",
                json!({"janus": "keepalive", "transaction": "t"}).to_string(),
                458,
            ),
            (
                &s,
                json!({"janus": "attach", "plugin": "janus.plugin.nope", "transaction": "t"})
                    .to_string(),
                460,
            ),
            (
                &s,
                json!({"janus": "attach", "transaction": "t"}).to_string(),
                456,
            ),
            (
                &s,
                json!({"janus": "message", "transaction": "t", "body": {}}).to_string(),
                457,
            ),
            (
                &s,
                json!({"janus": "keepalive", "transaction": "t", "session_id": 1}).to_string(),
                457,
            ),
            (
                &no_handle,
                json!({"janus": "detach", "transaction": "t"}).to_string(),
                459,
            ),
            (
                &h,
                json!({"janus": "message", "transaction": "t"}).to_string(),
                456,
            ),
            (
                &h,
                json!({"janus": "message", "transaction": "t", "body": {"request": "list"},
                "jsep": {"type": "offer"}})
                .to_string(),
                456,
            ),
            (
                &h,
                json!({"janus": "message", "transaction": "t", "body": {"request": "list"},
                "jsep": {"type": "rollback", "sdp": "v=0"}})
                .to_string(),
                464,
            ),
            (
                &h,
                json!({"janus": "message", "transaction": "t", "body": {"request": "list"},
                "jsep": {"type": "offer", "sdp": "hello"}})
                .to_string(),
                465,
            ),
            (
                &h,
                json!({"janus": "trickle", "transaction": "t", "candidate": {"completed": true},
                "candidates": []})
                .to_string(),
                454,
            ),
            (
                &h,
                json!({"janus": "bogus", "transaction": "t"}).to_string(),
                457,
            ),
        ];
        for (path, body, code) in &cases {
            let reply = j.post_text(path, body).await?;
            ensure!(
                reply["janus"] == "error" && core_error(&reply) == *code,
                "POST {path} {body}: expected {code}, got {reply}"
            );
        }
        let keepalive = j
            .post(&s, &json!({"janus": "keepalive", "transaction": "k"}))
            .await?;
        ensure!(
            keepalive == json!({"janus": "ack", "session_id": session, "transaction": "k"}),
            "{keepalive}"
        );
        let trickle = j
            .post(
                &h,
                &json!({"janus": "trickle", "transaction": "t",
            "candidate": {"completed": true}}),
            )
            .await?;
        ensure!(trickle["janus"] == "ack", "{trickle}");
        let unknown = http().get(format!("{}/janus/777", j.base)).send().await?;
        ensure!(
            unknown.status() == 404,
            "long poll of an unknown session: {}",
            unknown.status()
        );
        let redirect = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .build()?
            .get(format!("{}{h}", j.base))
            .send()
            .await?;
        ensure!(
            redirect.status() == 302,
            "GET handle: {}",
            redirect.status()
        );

        let detach = j
            .post(&h, &json!({"janus": "detach", "transaction": "d"}))
            .await?;
        ensure!(detach["janus"] == "success", "{detach}");
        let detached = j.poll(session, 1).await?;
        ensure!(
            detached["janus"] == "detached" && detached["sender"] == handle,
            "{detached}"
        );
        let destroy = j
            .post(&s, &json!({"janus": "destroy", "transaction": "x"}))
            .await?;
        ensure!(destroy["janus"] == "success", "{destroy}");
        let gone = j
            .post(&s, &json!({"janus": "keepalive", "transaction": "k"}))
            .await?;
        ensure!(core_error(&gone) == 458, "{gone}");
        gw.shutdown().await;
        Ok(())
    })
    .await;
    if let Err(e) = result {
        panic!("core_mistakes_get_their_janus_error_codes_with_http_200: {e:#}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn videoroom_mistakes_get_their_plugin_error_codes() {
    let result: Result<()> = bounded("janus_videoroom", LIMIT, async {
        let gw = start_gateway(|_| {}).await?;
        let j = Janus { base: gw.base_url() };
        let (session, admin) = j.session_and_handle().await?;
        let msg = |handle: u64, body: Value| j.message(session, handle, body, None);

        let (created, _) = msg(admin, json!({"request": "create", "room": 77, "secret": "s3",
            "pin": "42", "publishers": 1})).await?;
        ensure!(created == json!({"videoroom": "created", "room": 77, "permanent": false}), "{created}");
        let expect = |data: &Value, code: u64, what: &str| -> Result<()> {
            ensure!(plugin_error(data) == code && data["videoroom"] == "event",
                "{what}: expected {code}, got {data}");
            Ok(())
        };
        expect(&msg(admin, json!({"request": "create", "room": 77})).await?.0, 427, "duplicate room")?;
        expect(&msg(admin, json!({"request": "frobnicate"})).await?.0, 423, "unknown request")?;
        expect(&msg(admin, json!({"request": "exists", "room": "77"})).await?.0, 430, "room as a string")?;
        expect(&msg(admin, json!({"request": "destroy", "room": 77, "secret": "no"})).await?.0, 433, "wrong secret")?;
        expect(&msg(admin, json!({"request": "destroy", "room": 78})).await?.0, 426, "no such room")?;
        expect(&msg(admin, json!({"request": "kick", "room": 77, "secret": "s3", "id": 5})).await?.0, 428, "kick nobody")?;
        expect(&msg(admin, json!({"request": "configure"})).await?.0, 424, "configure before join")?;
        expect(&msg(admin, json!({"request": "join", "room": 77})).await?.0, 429, "join without ptype")?;
        expect(&msg(admin, json!({"request": "join", "ptype": "publisher", "room": 77})).await?.0, 433, "join without pin")?;
        expect(&msg(admin, json!({"request": "join", "ptype": "subscriber", "room": 77, "pin": "42"})).await?.0, 429, "subscriber without feed")?;
        expect(&msg(admin, json!({"request": "join", "ptype": "subscriber", "room": 77, "pin": "42", "feed": 9})).await?.0, 428, "no such feed")?;
        let (exists, _) = msg(admin, json!({"request": "exists", "room": 78})).await?;
        ensure!(exists["exists"] == false, "{exists}");

        // Two publishers into a room of one: the second publish is 432; a taken id is 436;
        // a second join on a handle is 425; a publish without an offer is 429.
        let whip = &offers().await?.whip;
        let first = j.attach(session).await?;
        let (joined, _) = msg(first, json!({"request": "join", "ptype": "publisher",
            "room": 77, "pin": "42", "id": 1001, "display": "one"})).await?;
        ensure!(joined["videoroom"] == "joined" && joined["id"] == 1001, "{joined}");
        let (data, jsep) = j.message(session, first, json!({"request": "configure"}), Some(json!({"type": "offer", "sdp": whip[0]}))).await?;
        ensure!(data["configured"] == "ok" && jsep["type"] == "answer", "publisher one: {data}");
        let second = j.attach(session).await?;
        expect(&msg(second, json!({"request": "join", "ptype": "publisher", "room": 77, "pin": "42", "id": 1001})).await?.0, 436, "taken id")?;
        let (joined, _) = msg(second, json!({"request": "join", "ptype": "publisher", "room": 77, "pin": "42", "display": "two"})).await?;
        // 1001's PeerConnection never comes up (nobody does ICE): as in Janus, it is not listed.
        ensure!(joined["videoroom"] == "joined" && joined["publishers"] == json!([]), "{joined}");
        expect(&msg(second, json!({"request": "join", "ptype": "publisher", "room": 77, "pin": "42"})).await?.0, 425, "joined twice")?;
        expect(&msg(second, json!({"request": "publish"})).await?.0, 429, "publish without an offer")?;
        let (full, _) = j.message(session, second, json!({"request": "publish"}), Some(json!({"type": "offer", "sdp": whip[1]}))).await?;
        expect(&full, 432, "publishers full")?;
        // A second offer on a publishing handle is 434; an unpublish of one that does not
        // publish is 435; an offer that is not usable SDP is 437.
        let (again, _) = j
            .message(session, first, json!({"request": "publish"}), Some(json!({"type": "offer", "sdp": whip[2]})))
            .await?;
        expect(&again, 434, "already published")?;
        expect(&msg(second, json!({"request": "unpublish"})).await?.0, 435, "not published")?;
        let (edited, _) = msg(admin, json!({"request": "edit", "room": 77, "secret": "s3",
            "new_publishers": 2})).await?;
        ensure!(edited == json!({"videoroom": "edited", "room": 77}), "{edited}");
        let junk = json!({"type": "offer", "sdp": "v=0\r\nthis is not SDP\r\n"});
        let (bad_sdp, _) = j.message(session, second, json!({"request": "configure"}), Some(junk)).await?;
        expect(&bad_sdp, 437, "invalid SDP")?;
        // A subscriber answers: an offer in its `start` is 431.
        let viewer = j.attach(session).await?;
        let (attached, offer) = msg(viewer, json!({"request": "join", "ptype": "subscriber",
            "room": 77, "pin": "42", "feed": 1001})).await?;
        ensure!(attached["videoroom"] == "attached" && offer["type"] == "offer", "{attached}");
        // As Janus offers it: every m-line sendonly, none inviting the viewer to send.
        let sdp = offer["sdp"].as_str().unwrap_or_default();
        ensure!(sdp.contains("a=sendonly") && !sdp.contains("a=sendrecv"), "subscriber offer: {sdp}");
        ensure!(attached["warning"] == "deprecated_api" && attached["id"] == 1001, "legacy form: {attached}");
        let (wrong_type, _) = j
            .message(session, viewer, json!({"request": "start"}), Some(json!({"type": "offer", "sdp": whip[3]})))
            .await?;
        expect(&wrong_type, 431, "offer in start")?;
        let (participants, _) = msg(admin, json!({"request": "listparticipants", "room": 77})).await?;
        let list = participants["participants"].as_array().context("participants")?;
        ensure!(list.len() == 2 && list.iter().all(|p| p["publisher"] == false), "{participants}");
        // As Janus: `left` answers the leave first, then the core's `hangup` for its PeerConnection.
        let (left, _) = msg(viewer, json!({"request": "leave"})).await?;
        ensure!(left["left"] == "ok", "{left}");
        let after = j.poll(session, 1).await?;
        ensure!(after["janus"] == "hangup" && after["sender"] == viewer, "after left: {after}");

        let (destroyed, _) = msg(admin, json!({"request": "destroy", "room": 77, "secret": "s3"})).await?;
        ensure!(destroyed["videoroom"] == "destroyed", "{destroyed}");
        // Every participant handle hears it (queued for the long poll, maxev > 1 → array).
        let events = j.poll(session, 10).await?;
        let events = events.as_array().context("maxev > 1 gives an array")?;
        ensure!(events.iter().any(|e| e["plugindata"]["data"]["videoroom"] == "destroyed"), "{events:?}");
        gw.shutdown().await;
        Ok(())
    })
    .await;
    if let Err(e) = result {
        panic!("videoroom_mistakes_get_their_plugin_error_codes: {e:#}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_session_times_out_and_is_gone() {
    let result: Result<()> = bounded("janus_timeout", LIMIT, async {
        let gw = start_gateway(|c| c.janus.session_timeout_secs = 2).await?;
        let j = Janus {
            base: gw.base_url(),
        };
        let (session, _) = j.session_and_handle().await?;
        tokio::time::sleep(Duration::from_millis(3500)).await;
        let gone = j
            .post(
                &format!("/janus/{session}"),
                &json!({"janus": "keepalive", "transaction": "k"}),
            )
            .await?;
        ensure!(core_error(&gone) == 458, "session still there: {gone}");
        gw.shutdown().await;
        Ok(())
    })
    .await;
    if let Err(e) = result {
        panic!("an_idle_session_times_out_and_is_gone: {e:#}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shipped_policies_govern_janus_joins_with_its_token_and_pin() {
    let result: Result<()> = bounded("janus_policies", LIMIT, async {
        let gw = start_gateway(|c| {
            let table = |text: &str| toml::from_str(text).unwrap_or_default();
            c.policies
                .config
                .insert("token-auth".into(), table("auth_token = \"t0k\""));
            c.policies
                .config
                .insert("room-admission".into(), table("room.4343.pin = \"99\""));
        })
        .await?;
        let j = Janus {
            base: gw.base_url(),
        };
        let (session, handle) = j.session_and_handle().await?;
        let (created, _) = j
            .message(
                session,
                handle,
                json!({"request": "create", "room": 4343}),
                None,
            )
            .await?;
        ensure!(created["videoroom"] == "created", "{created}");
        let join = |extra: Value| {
            let mut body = json!({"request": "join", "ptype": "publisher", "room": 4343});
            if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
                body.extend(extra.clone());
            }
            j.message(session, handle, body, None)
        };
        let (no_token, _) = join(json!({})).await?;
        ensure!(plugin_error(&no_token) == 433, "no token: {no_token}");
        let (no_pin, _) = join(json!({"token": "t0k"})).await?;
        ensure!(plugin_error(&no_pin) == 433, "token but no PIN: {no_pin}");
        let (joined, _) = join(json!({"token": "t0k", "pin": "99"})).await?;
        ensure!(joined["videoroom"] == "joined", "token and PIN: {joined}");
        println!(
            "policy refusals: {} / {}",
            no_token["error"], no_pin["error"]
        );
        gw.shutdown().await;
        Ok(())
    })
    .await;
    if let Err(e) = result {
        panic!("the_shipped_policies_govern_janus_joins_with_its_token_and_pin: {e:#}");
    }
}

pub(crate) async fn exists(j: &Janus, session: u64, handle: u64, room: u64) -> Result<bool> {
    let body = json!({"request": "exists", "room": room});
    Ok(j.message(session, handle, body, None).await?.0["exists"] == true)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn permanent_rooms_are_kept_in_the_rooms_file_across_restarts() {
    let result: Result<()> = bounded("janus_permanent", LIMIT, async {
        let dir = std::env::temp_dir().join(format!("gh-janus-rooms-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let file = dir.join("rooms.toml");
        let start = || {
            let file = file.clone();
            start_gateway(move |c| c.janus.rooms_file = Some(file))
        };
        let gw = start().await?;
        let j = Janus {
            base: gw.base_url(),
        };
        let (s, h) = j.session_and_handle().await?;
        let (kept, _) = j
            .message(
                s,
                h,
                json!({"request": "create", "room": 900,
            "secret": "x", "description": "kept", "permanent": true}),
                None,
            )
            .await?;
        ensure!(
            kept == json!({"videoroom": "created", "room": 900, "permanent": true}),
            "{kept}"
        );
        j.message(s, h, json!({"request": "create", "room": 901}), None)
            .await?;
        gw.shutdown().await;
        println!(
            "rooms file after create:\n{}",
            std::fs::read_to_string(&file)?
        );

        let gw = start().await?;
        let j = Janus {
            base: gw.base_url(),
        };
        let (s, h) = j.session_and_handle().await?;
        ensure!(
            exists(&j, s, h, 900).await?,
            "the permanent room did not survive the restart"
        );
        ensure!(
            !exists(&j, s, h, 901).await?,
            "a room that was not permanent survived"
        );
        let (listed, _) = j.message(s, h, json!({"request": "list"}), None).await?;
        ensure!(listed["list"][0]["description"] == "kept", "{listed}");
        let (gone, _) = j
            .message(
                s,
                h,
                json!({"request": "destroy", "room": 900,
            "secret": "x", "permanent": true}),
                None,
            )
            .await?;
        ensure!(gone["permanent"] == true, "{gone}");
        gw.shutdown().await;

        let gw = start().await?;
        let j = Janus {
            base: gw.base_url(),
        };
        let (s, h) = j.session_and_handle().await?;
        ensure!(
            !exists(&j, s, h, 900).await?,
            "a destroyed permanent room came back"
        );
        gw.shutdown().await;

        // Without a rooms file, `permanent` is refused rather than silently not kept.
        let gw = start_gateway(|_| {}).await?;
        let j = Janus {
            base: gw.base_url(),
        };
        let (s, h) = j.session_and_handle().await?;
        let (refused, _) = j
            .message(
                s,
                h,
                json!({"request": "create", "room": 902, "permanent": true}),
                None,
            )
            .await?;
        ensure!(plugin_error(&refused) == 499, "{refused}");
        ensure!(
            !exists(&j, s, h, 902).await?,
            "a refused permanent room was created anyway"
        );
        gw.shutdown().await;
        std::fs::remove_dir_all(&dir)?;
        Ok(())
    })
    .await;
    if let Err(e) = result {
        panic!("permanent_rooms_are_kept_in_the_rooms_file_across_restarts: {e:#}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publisher_whose_peer_never_connects_gets_hangup_and_is_unpublished() {
    let result: Result<()> = bounded("janus_hangup", LIMIT, async {
        let gw = start_gateway(|c| c.webrtc.connect_timeout_secs = 2).await?;
        let j = Janus {
            base: gw.base_url(),
        };
        let (session, admin) = j.session_and_handle().await?;
        j.message(
            session,
            admin,
            json!({"request": "create", "room": 55}),
            None,
        )
        .await?;
        let watcher = j.attach(session).await?;
        j.message(
            session,
            watcher,
            json!({"request": "join", "ptype": "publisher", "room": 55}),
            None,
        )
        .await?;
        // A real offer whose client never does ICE: the connect timeout ends the session. The
        // publisher has a Janus session of its own: each session's events are polled apart.
        let (pub_session, publisher) = j.session_and_handle().await?;
        let offer = json!({"type": "offer", "sdp": offers().await?.whip[0]});
        let (joined, answer) = j
            .message(
                pub_session,
                publisher,
                json!({"request": "joinandconfigure", "ptype": "publisher",
                "room": 55, "id": 77}),
                Some(offer),
            )
            .await?;
        ensure!(
            joined["videoroom"] == "joined" && answer["type"] == "answer",
            "{joined}"
        );
        let mut seen = Vec::new();
        let deadline = std::time::Instant::now() + Duration::from_secs(15);
        let hung_up = loop {
            for s in [session, pub_session] {
                let events = j.poll(s, 10).await?;
                seen.extend(events.as_array().cloned().unwrap_or_default());
            }
            let hangup = seen
                .iter()
                .find(|e| e["janus"] == "hangup" && e["sender"] == publisher);
            if let Some(hangup) = hangup {
                break hangup.clone();
            }
            ensure!(std::time::Instant::now() < deadline, "no hangup: {seen:?}");
        };
        println!("hangup after the connect timeout: {hung_up}");
        ensure!(hung_up["reason"] == "ICE failed", "{hung_up}");
        // The other participant is told before the hangup is sent: it is already queued.
        let unpublished =
            |e: &Value| e["sender"] == watcher && e["plugindata"]["data"]["unpublished"] == 77;
        if !seen.iter().any(unpublished) {
            seen.extend(
                j.poll(session, 10)
                    .await?
                    .as_array()
                    .cloned()
                    .unwrap_or_default(),
            );
        }
        let told = seen.iter().any(unpublished);
        ensure!(told, "the other participant was not told: {seen:?}");
        let entry = j.participant(session, admin, 55, 77).await?;
        ensure!(entry["publisher"] == false, "{entry}");
        gw.shutdown().await;
        Ok(())
    })
    .await;
    if let Err(e) = result {
        panic!("a_publisher_whose_peer_never_connects_gets_hangup_and_is_unpublished: {e:#}");
    }
}
