//! The asynchronous VideoRoom requests: publishers (join, joinandconfigure, configure,
//! publish, unpublish, leave) and server-offer subscribers (join, start, pause, switch, leave).

use serde_json::{Value, json};

use super::super::protocol::{Jsep, JsepKind, jsep, random_id};
use super::super::streams::{codec_of, media_sections, publisher_streams};
use super::leaving::Departure;
use super::{
    Caller, Membership, Participant, PluginError, Publishing, VideoRoom, bool_field, code,
    id_field, required_id, string_field,
};
use crate::gate::RoomRequirements;
use crate::media::{PauseScope, PublisherLeave};
use crate::policy::Action;

/// The requests acknowledged first and answered by an event.
pub(super) const ASYNC_REQUESTS: &[&str] = &[
    "join",
    "joinandconfigure",
    "configure",
    "publish",
    "unpublish",
    "start",
    "pause",
    "switch",
    "subscribe",
    "unsubscribe",
    "update",
    "leave",
];

type EventReply = (Value, Option<Value>);

impl VideoRoom {
    pub(super) async fn async_request(
        &self,
        caller: &Caller,
        request: &str,
        body: &Value,
        jsep: Option<Jsep>,
    ) -> Result<EventReply, PluginError> {
        let offer = match &jsep {
            Some(j) if j.kind == JsepKind::Offer => Some(j.sdp.clone()),
            _ => None,
        };
        match (request, self.membership(caller.handle.id)) {
            ("join" | "joinandconfigure", Some(_)) => Err(PluginError::new(
                code::ALREADY_JOINED,
                "Already in as a participant on this handle",
            )),
            ("join" | "joinandconfigure", None) => match string_field(body, "ptype")?.as_deref() {
                Some("publisher") => self.join_publisher(caller, body, offer).await,
                Some("subscriber" | "listener") => self.join_subscriber(caller, body).await,
                Some(other) => Err(PluginError::new(
                    code::INVALID_ELEMENT,
                    format!("Invalid element (ptype: {other})"),
                )),
                None => Err(PluginError::missing("ptype")),
            },
            // Janus answers `left` before the PeerConnection's `hangup`: the dispatcher sends it.
            ("leave", Some(_)) => {
                self.leave(&caller.session, caller.handle.id, Departure::Request)
                    .await
            }
            (_, None) => Err(PluginError::new(code::JOIN_FIRST, "Join the room first")),
            ("configure" | "publish", Some(Membership::Publisher { room, id })) => match offer {
                Some(sdp) if request == "configure" && self.is_publishing(room, id) => {
                    // The request's other fields first: a mistake there must not leave the
                    // new offer applied and its answer unsent.
                    self.configure_publisher(room, id, body).await?;
                    self.reoffer_publisher(room, id, &sdp, body).await
                }
                Some(sdp) => {
                    let (mut data, answer) = self.publish(caller, room, id, sdp, body).await?;
                    self.configure_publisher(room, id, body).await?;
                    data["configured"] = json!("ok");
                    Ok((data, answer))
                }
                None if request == "publish" => Err(PluginError::missing("jsep")),
                None => {
                    self.configure_publisher(room, id, body).await?;
                    Ok((
                        json!({"videoroom": "event", "room": room, "configured": "ok"}),
                        None,
                    ))
                }
            },
            ("unpublish", Some(Membership::Publisher { room, id })) => {
                self.unpublish(room, id).await?;
                self.pc_gone(caller.session.id, caller.handle.id);
                Ok((
                    json!({"videoroom": "event", "room": room, "unpublished": "ok"}),
                    None,
                ))
            }
            ("start", Some(Membership::Subscriber { room, session, .. })) => {
                let room_name = room.to_string();
                match jsep {
                    Some(Jsep {
                        kind: JsepKind::Answer,
                        sdp,
                        ..
                    }) => {
                        // An answer to a renegotiation (`update`) finds the session connected:
                        // `webrtcup` was sent once already.
                        let connected = self
                            .gate
                            .room(&room_name)
                            .await
                            .ok()
                            .flatten()
                            .is_some_and(|r| {
                                r.sessions
                                    .iter()
                                    .any(|s| s.id == session && s.state == "connected")
                            });
                        self.gate
                            .answer_offer(&room_name, &session, sdp)
                            .await
                            .map_err(PluginError::from_gate)?;
                        if !connected {
                            self.watch_webrtcup(
                                caller,
                                room_name.clone(),
                                session.clone(),
                                Vec::new(),
                                None,
                            );
                        }
                    }
                    Some(_) => {
                        return Err(PluginError::new(
                            code::INVALID_SDP_TYPE,
                            "Invalid SDP type (subscribers answer)",
                        ));
                    }
                    None => {}
                }
                self.gate
                    .pause_session(&room_name, &session, PauseScope::All, false)
                    .await
                    .map_err(PluginError::from_gate)?;
                Ok((
                    json!({"videoroom": "event", "room": room, "started": "ok"}),
                    None,
                ))
            }
            ("pause", Some(Membership::Subscriber { room, session, .. })) => {
                self.gate
                    .pause_session(&room.to_string(), &session, PauseScope::All, true)
                    .await
                    .map_err(PluginError::from_gate)?;
                Ok((
                    json!({"videoroom": "event", "room": room, "paused": "ok"}),
                    None,
                ))
            }
            (
                "configure",
                Some(Membership::Subscriber {
                    room,
                    session,
                    streams,
                    ..
                }),
            ) => {
                super::playout::check_delays(body)?;
                self.configure_subscriber(room, &session, &streams, body)
                    .await?;
                self.configure_subscriber_delays(caller, room, &session, &streams, body)
                    .await?;
                let offer = match bool_field(body, "restart")? {
                    Some(true) => self.restart_subscriber_ice(caller).await?,
                    Some(false) | None => None,
                };
                Ok((
                    json!({"videoroom": "event", "room": room, "configured": "ok"}),
                    offer,
                ))
            }
            (
                "switch",
                Some(Membership::Subscriber {
                    room,
                    session,
                    feed,
                    streams,
                    ..
                }),
            ) => {
                self.switch(caller, body, room, &session, feed, streams)
                    .await
            }
            (
                "subscribe" | "unsubscribe" | "update",
                Some(Membership::Subscriber { room, streams, .. }),
            ) => {
                self.update_subscription(caller, request, body, room, &streams)
                    .await
            }
            (other, Some(_)) => Err(PluginError::new(
                code::INVALID_REQUEST,
                format!("'{other}' is not supported here (by this handle or this gateway)"),
            )),
        }
    }

    /// Asks the gateway's policies whether the caller may join `room`: they decide on the
    /// room's PIN and allowed tokens too (a denial is 433).
    pub(super) async fn admit_join(
        &self,
        caller: &Caller,
        room: u64,
        action: Action,
    ) -> Result<(), PluginError> {
        let rules = self.with_room(room, |r| {
            Ok(RoomRequirements {
                pin: r.config.pin.clone(),
                allowed: r.config.allowed.clone(),
                max_publishers: None, // a full room is a publish's refusal, not a join's
            })
        })?;
        let mut facts = caller.facts.clone();
        facts.room_rules = rules;
        self.gate
            .decide(&facts, action, &room.to_string())
            .await
            .map(drop)
            .map_err(PluginError::from_gate)
    }

    async fn join_publisher(
        &self,
        caller: &Caller,
        body: &Value,
        offer: Option<String>,
    ) -> Result<EventReply, PluginError> {
        let room = required_id(body, "room")?;
        let bitrate = id_field(body, "bitrate")?;
        self.adopt_gateway_room(room).await;
        let foreign: Vec<Value> = self
            .foreign_feeds(room)
            .await
            .iter()
            .map(|f| f.publisher_entry())
            .collect();
        let display = string_field(body, "display")?;
        self.admit_join(caller, room, Action::Publish).await?;
        let wanted = id_field(body, "id")?;
        let (id, private_id, description, publishers, attendees, notify_joining) =
            self.with_room(room, |r| {
                let id = match wanted {
                    Some(id) if r.participants.contains_key(&id) => {
                        return Err(PluginError::new(
                            code::ID_EXISTS,
                            format!("User ID {id} already exists"),
                        ));
                    }
                    Some(id) => id,
                    None => loop {
                        let id = random_id();
                        if !r.participants.contains_key(&id) {
                            break id;
                        }
                    },
                };
                let private_id = rand::random::<u32>();
                let mut publishers: Vec<Value> = r
                    .participants
                    .values()
                    .filter_map(|p| p.publisher_entry())
                    .collect();
                // Listed in `joined`: not announced again as new.
                r.foreign_announced.extend(
                    foreign
                        .iter()
                        .filter_map(|f| Some((f["id"].as_u64()?, f["display"].as_str()?.into()))),
                );
                publishers.extend(foreign);
                // Participants not publishing (listed when the room notifies joins).
                let attendees: Vec<Value> = r
                    .participants
                    .values()
                    .filter(|p| !p.publishing.as_ref().is_some_and(|p| p.live))
                    .map(|p| match &p.display {
                        Some(display) => json!({"id": p.id, "display": display}),
                        None => json!({"id": p.id}),
                    })
                    .collect();
                r.participants.insert(
                    id,
                    Participant {
                        id,
                        display: display.clone(),
                        private_id,
                        janus_session: caller.session.id,
                        handle: caller.handle.id,
                        publishing: None,
                        talking: false,
                        level_window: (0, 0),
                        bitrate,
                        recording: None,
                    },
                );
                Ok((
                    id,
                    private_id,
                    r.config.description.clone(),
                    publishers,
                    attendees,
                    r.config.notify_joining,
                ))
            })?;
        self.set_membership(caller.handle.id, Some(Membership::Publisher { room, id }));
        tracing::info!(room, id, "janus publisher joined");
        if notify_joining {
            let joining = json!({"videoroom": "event", "room": room,
                "joining": {"id": id, "display": display}});
            self.notify_room(room, Some(id), &joining);
        }
        let mut joined = json!({
            "videoroom": "joined",
            "room": room,
            "description": description,
            "id": id,
            "private_id": private_id,
            "publishers": publishers,
        });
        if notify_joining {
            joined["attendees"] = json!(attendees);
        }
        let Some(sdp) = offer else {
            return Ok((joined, None));
        };
        match self.publish(caller, room, id, sdp, body).await {
            Ok((mut published, answer)) => {
                if self.describe_streams(room, id, body).is_ok()
                    && let Ok(Some(streams)) = self.with_room(room, |r| {
                        Ok(r.participants
                            .get(&id)
                            .and_then(|p| Some(p.publishing.as_ref()?.streams.clone())))
                    })
                {
                    published["streams"] = json!(streams);
                }
                for key in ["audio_codec", "video_codec", "streams"] {
                    if let Some(v) = published.get(key) {
                        joined[key] = v.clone();
                    }
                }
                Ok((joined, answer))
            }
            Err(e) => {
                // joinandconfigure is one step for the client: a failed publish leaves no
                // participant behind.
                let _ = self
                    .leave(&caller.session, caller.handle.id, Departure::Gone)
                    .await;
                Err(e)
            }
        }
    }

    async fn publish(
        &self,
        caller: &Caller,
        room: u64,
        id: u64,
        offer: String,
        body: &Value,
    ) -> Result<EventReply, PluginError> {
        let (audiocodec, videocodec, max_publishers, opus, rules) =
            self.with_room(room, |r| match r.participants.get(&id) {
                Some(p) if p.publishing.is_some() => Err(PluginError::new(
                    code::ALREADY_PUBLISHED,
                    "Can't publish, already published",
                )),
                Some(_) => Ok((
                    r.config.audiocodec.clone(),
                    r.config.videocodec.clone(),
                    r.config.publishers,
                    (r.config.opus_fec, r.config.opus_dtx),
                    r.config.offer_rules(),
                )),
                None => Err(PluginError::new(code::JOIN_FIRST, "Join the room first")),
            })?;
        self.check_publisher_e2ee(room, caller)?;
        // A publisher may pick one of the room's codecs (`audiocodec`/`videocodec`).
        let audiocodec = super::bitrate::chosen_codec(body, "audiocodec", &audiocodec)?;
        let videocodec = super::bitrate::chosen_codec(body, "videocodec", &videocodec)?;
        let recording = self.recording_at_publish(room, id, body)?;
        // The room's codecs (and profiles) only, as Janus negotiates them.
        let offer = rules
            .apply(&offer, &audiocodec, &videocodec)
            .map_err(|kind| {
                let allowed = if kind == "audio" {
                    &audiocodec
                } else {
                    &videocodec
                };
                PluginError::new(
                    code::INVALID_SDP,
                    format!("the offer's {kind} has none of the room's codecs ({allowed})"),
                )
            })?;
        let room_name = room.to_string();
        // The room's publisher limit is the policies' decision (409 there, 432 here).
        let mut facts = caller.facts.clone();
        facts.room_rules = RoomRequirements {
            max_publishers: Some(max_publishers),
            ..RoomRequirements::default()
        };
        let answer = self
            .gate
            .publish_feed(&facts, &room_name, &id.to_string(), offer)
            .await
            .map_err(|e| PluginError::from_gate(e).publishers_full(max_publishers))?;
        let sections = media_sections(&answer.answer_sdp);
        let publishing = Publishing {
            session: answer.session_id.clone(),
            live: false,
            audio_codec: codec_of(&sections, "audio").map(str::to_owned),
            video_codec: codec_of(&sections, "video").map(str::to_owned),
            streams: publisher_streams(&sections),
            silent: Vec::new(),
            e2ee: caller.handle.e2ee(),
            playout_delay: super::playout::unset(),
        };
        let stored = self.with_room(room, |r| {
            let p = r
                .participants
                .get_mut(&id)
                .ok_or_else(|| PluginError::new(code::JOIN_FIRST, "Join the room first"))?;
            p.publishing = Some(publishing.clone());
            p.level_window = (0, 0);
            Ok(())
        });
        if let Err(e) = stored {
            // The participant left meanwhile: its session must not outlive it.
            let _ = self
                .gate
                .end_session(
                    &room_name,
                    &answer.session_id,
                    PublisherLeave::IdleSubscribers,
                )
                .await;
            return Err(e);
        }
        self.apply_held_candidates(caller.handle.id).await;
        if let Err(e) = self
            .apply_publisher_recording(room, &answer.session_id, recording)
            .await
        {
            tracing::warn!(room, error = %e.reason, "publisher recording not started");
        }
        self.watch_webrtcup(
            caller,
            room_name,
            answer.session_id,
            publishing.streams.clone(),
            Some((room, id)),
        );
        let data = json!({
            "videoroom": "event",
            "room": room,
            "audio_codec": publishing.audio_codec,
            "video_codec": publishing.video_codec,
            "streams": publishing.streams,
        });
        let answer_sdp = super::super::streams::opus_params(&answer.answer_sdp, opus.0, opus.1);
        Ok((data, Some(jsep(JsepKind::Answer, &answer_sdp))))
    }

    /// A publisher's `configure`: its display, its bitrate cap, and its media on or off for
    /// everyone (`audio`/`video` booleans, or `streams:[{mid, send}]`).
    async fn configure_publisher(
        &self,
        room: u64,
        id: u64,
        body: &Value,
    ) -> Result<(), PluginError> {
        let display = string_field(body, "display")?;
        super::playout::check_delays(body)?;
        let recording = self.publisher_recording(room, body)?;
        let ((session, streams), renamed) = self.with_room(room, |r| {
            let p = r
                .participants
                .get_mut(&id)
                .ok_or_else(|| PluginError::new(code::JOIN_FIRST, "Join the room first"))?;
            // Janus announces a new name only to those who knew an old one.
            let renamed = match display {
                Some(display) => p.display.replace(display.clone()).map(|_| display),
                None => None,
            };
            if let Some(change) = &recording {
                p.recording = change.clone();
            }
            let publishing = p
                .publishing
                .as_ref()
                .map(|p| (p.session.clone(), p.streams.clone()))
                .unzip();
            Ok((publishing, renamed))
        })?;
        if let Some(display) = renamed {
            let event = json!({"videoroom": "event", "id": id, "display": display});
            self.notify_room(room, Some(id), &event);
        }
        let sends = media_switches(body, &streams.unwrap_or_default())?;
        let keyframe = super::bitrate::keyframe_asked(body)?;
        self.describe_streams(room, id, body)?;
        if let Some(bits_per_sec) = id_field(body, "bitrate")? {
            self.set_publisher_bitrate(room, id, bits_per_sec).await?;
        }
        let Some(session) = session else {
            return Ok(()); // nothing published yet: nothing to switch
        };
        self.configure_publisher_delay(room, id, &session, body)
            .await?;
        for (scope, on) in sends {
            self.gate
                .mute_publisher(&room.to_string(), &session, scope, !on)
                .await
                .map_err(PluginError::from_gate)?;
        }
        self.apply_publisher_recording(room, &session, recording)
            .await?;
        if keyframe {
            self.gate
                .request_publisher_keyframe(&room.to_string(), &session)
                .await
                .map_err(PluginError::from_gate)?;
        }
        Ok(())
    }
}

/// The media a `configure` or `moderate` turns on (`true`) or off: `audio`/`video` booleans,
/// and `streams:[{mid, send}]` entries resolved to a kind through `streams` (the m-lines of
/// the publisher or subscriber).
pub(super) fn media_switches(
    body: &Value,
    streams: &[Value],
) -> Result<Vec<(PauseScope, bool)>, PluginError> {
    let mut switches = Vec::new();
    for (key, scope) in [("audio", PauseScope::Audio), ("video", PauseScope::Video)] {
        if let Some(on) = bool_field(body, key)? {
            switches.push((scope, on));
        }
    }
    if let Some(list) = body.get("streams") {
        let list = list
            .as_array()
            .ok_or_else(|| PluginError::invalid("streams", "an array"))?;
        for entry in list {
            let Some(send) = entry.get("send").and_then(Value::as_bool) else {
                continue;
            };
            let mid = string_field(entry, "mid")?.ok_or_else(|| PluginError::missing("mid"))?;
            switches.push((scope_of_mid(streams, &mid)?, send));
        }
    }
    Ok(switches)
}

/// The kind of m-line `mid` among `streams`.
pub(super) fn scope_of_mid(streams: &[Value], mid: &str) -> Result<PauseScope, PluginError> {
    let kind = streams
        .iter()
        .find(|s| s["mid"] == mid)
        .and_then(|s| s["type"].as_str())
        .ok_or_else(|| PluginError::new(code::INVALID_ELEMENT, format!("No such mid '{mid}'")))?;
    Ok(if kind == "audio" {
        PauseScope::Audio
    } else {
        PauseScope::Video
    })
}
