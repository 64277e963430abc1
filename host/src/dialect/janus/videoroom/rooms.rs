//! The synchronous VideoRoom requests: create, edit, destroy, exists, list, allowed, kick,
//! listparticipants, moderate and the forwarders'.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::room_config::{RoomConfig, string_list};
use super::{
    Caller, PluginError, Room, VideoRoom, bool_field, code, id_field, required_id, string_field,
};

/// A request's `permanent` (Janus: save the change to the config file).
fn permanent_flag(body: &Value) -> Result<bool, PluginError> {
    Ok(bool_field(body, "permanent")?.unwrap_or(false))
}

fn registry_unavailable() -> PluginError {
    PluginError::new(code::UNKNOWN_ERROR, "room registry unavailable")
}

impl VideoRoom {
    pub(super) async fn sync_request(
        &self,
        caller: &Caller,
        request: &str,
        body: &Value,
    ) -> Result<Value, PluginError> {
        match request {
            "create" => {
                let created = self.create(body)?;
                if let Some(room) = created["room"].as_u64() {
                    self.apply_recording(room);
                }
                Ok(created)
            }
            "edit" => self.edit(body),
            "destroy" => {
                let destroyed = self.destroy(body).await?;
                self.gate
                    .record_room(&required_id(body, "room")?.to_string(), None);
                Ok(destroyed)
            }
            "enable_recording" => self.enable_recording(body),
            "exists" => {
                let room = required_id(body, "room")?;
                let exists = self.adopt_gateway_room(room).await;
                Ok(json!({"videoroom": "success", "room": room, "exists": exists}))
            }
            "list" => {
                let list: Vec<Value> = self
                    .rooms
                    .lock()
                    .map(|rooms| {
                        rooms
                            .values()
                            .filter(|r| !r.config.is_private)
                            .map(|r| r.config.list_entry(r.participants.len()))
                            .collect()
                    })
                    .unwrap_or_default();
                Ok(json!({"videoroom": "success", "list": list}))
            }
            "allowed" => self.allowed(body),
            "kick" => self.kick(caller, body).await,
            "listparticipants" => self.list_participants(body).await,
            "moderate" => self.moderate(body).await,
            "listforwarders" => self.list_forwarders(body).await,
            "rtp_forward" => self.rtp_forward(caller, body).await,
            "stop_rtp_forward" => self.stop_rtp_forward(caller, body).await,
            other => Err(PluginError::new(
                code::UNKNOWN_ERROR,
                format!("'{other}' is not supported by this gateway"),
            )),
        }
    }

    /// Runs `f` on room `room`, or 426.
    pub(super) fn with_room<T>(
        &self,
        room: u64,
        f: impl FnOnce(&mut Room) -> Result<T, PluginError>,
    ) -> Result<T, PluginError> {
        let mut rooms = self
            .rooms
            .lock()
            .map_err(|_| PluginError::new(code::UNKNOWN_ERROR, "room registry unavailable"))?;
        let room_state = rooms
            .get_mut(&room)
            .ok_or_else(|| PluginError::no_such_room(room))?;
        f(room_state)
    }

    fn create(&self, body: &Value) -> Result<Value, PluginError> {
        self.check_admin_key(body)?;
        let wanted = id_field(body, "room")?;
        let mut rooms = self
            .rooms
            .lock()
            .map_err(|_| PluginError::new(code::UNKNOWN_ERROR, "room registry unavailable"))?;
        let room = match wanted {
            Some(room) if rooms.contains_key(&room) => {
                return Err(PluginError::new(
                    code::ROOM_EXISTS,
                    format!("Room {room} already exists"),
                ));
            }
            Some(room) => room,
            None => loop {
                let id = super::super::protocol::random_id();
                if !rooms.contains_key(&id) {
                    break id;
                }
            },
        };
        let config = RoomConfig::from_create(body, room)?;
        let permanent = permanent_flag(body)?;
        rooms.insert(
            room,
            Room {
                config,
                participants: Default::default(),
                permanent,
                foreign_announced: Default::default(),
                foreign_stopped: Default::default(),
            },
        );
        if permanent && let Err(e) = self.save_permanent(&rooms) {
            rooms.remove(&room);
            return Err(e);
        }
        tracing::info!(room, permanent, "janus room created");
        Ok(json!({"videoroom": "created", "room": room, "permanent": permanent}))
    }

    fn edit(&self, body: &Value) -> Result<Value, PluginError> {
        let room = required_id(body, "room")?;
        let permanent = permanent_flag(body)?;
        let edited = self.with_room(room, |r| {
            r.config.check_secret(body)?;
            let c = &mut r.config;
            if let Some(d) = string_field(body, "new_description")? {
                c.description = d;
            }
            if let Some(s) = string_field(body, "new_secret")? {
                c.secret = Some(s);
            }
            if let Some(p) = string_field(body, "new_pin")? {
                c.pin = (!p.is_empty()).then_some(p);
            }
            if let Some(b) = body.get("new_is_private").and_then(Value::as_bool) {
                c.is_private = b;
            }
            if let Some(b) = body.get("new_require_pvtid").and_then(Value::as_bool) {
                c.require_pvtid = b;
            }
            if let Some(n) = id_field(body, "new_bitrate")? {
                c.bitrate = n;
            }
            if let Some(n) = id_field(body, "new_fir_freq")? {
                c.fir_freq = u32::try_from(n).unwrap_or(u32::MAX);
            }
            if let Some(n) = id_field(body, "new_publishers")? {
                c.publishers = u32::try_from(n).unwrap_or(u32::MAX).max(1);
            }
            if let Some(b) = body.get("new_lock_record").and_then(Value::as_bool) {
                c.lock_record = b;
            }
            if let Some(dir) = string_field(body, "new_rec_dir")? {
                super::recording::check_rec_dir(Some(&dir))?;
                c.rec_dir = Some(dir);
            }
            r.permanent |= permanent;
            Ok(json!({"videoroom": "edited", "room": room}))
        })?;
        // A new rec_dir takes effect for the tracks that open from now on.
        if body.get("new_rec_dir").is_some() {
            self.apply_recording(room);
        }
        if permanent {
            let rooms = self.rooms.lock().map_err(|_| registry_unavailable())?;
            self.save_permanent(&rooms)?;
        }
        Ok(edited)
    }

    /// Rewrites the rooms file with every permanent room.
    fn save_permanent(&self, rooms: &BTreeMap<u64, Room>) -> Result<(), PluginError> {
        let Some(file) = &self.permanent_rooms else {
            return Err(PluginError::new(
                code::UNKNOWN_ERROR,
                "permanent rooms need [janus] rooms_file on this gateway",
            ));
        };
        file.save(
            rooms
                .values()
                .filter(|r| r.permanent)
                .map(|r| r.config.clone())
                .collect(),
        )
    }

    async fn destroy(&self, body: &Value) -> Result<Value, PluginError> {
        let room = required_id(body, "room")?;
        let permanent = permanent_flag(body)?;
        self.with_room(room, |r| r.config.check_secret(body))?;
        self.notify_room(room, None, &json!({"videoroom": "destroyed", "room": room}));
        let removed = match self.rooms.lock() {
            Ok(mut rooms) => {
                let removed = rooms.remove(&room);
                if permanent && removed.as_ref().is_some_and(|r| r.permanent) {
                    self.save_permanent(&rooms)?;
                }
                removed
            }
            Err(_) => None,
        };
        if let Some(removed) = removed {
            for p in removed.participants.values() {
                self.set_membership(p.handle, None);
                if let Some(publishing) = &p.publishing {
                    let _ = self
                        .gate
                        .end_session(
                            &room.to_string(),
                            &publishing.session,
                            crate::media::PublisherLeave::IdleSubscribers,
                        )
                        .await;
                }
            }
        }
        tracing::info!(room, "janus room destroyed");
        Ok(json!({"videoroom": "destroyed", "room": room, "permanent": permanent}))
    }

    fn allowed(&self, body: &Value) -> Result<Value, PluginError> {
        let room = required_id(body, "room")?;
        let action = string_field(body, "action")?.ok_or_else(|| PluginError::missing("action"))?;
        let tokens = match body.get("allowed") {
            Some(list) => string_list(list, "allowed")?,
            None if action == "enable" || action == "disable" => Vec::new(),
            None => return Err(PluginError::missing("allowed")),
        };
        self.with_room(room, |r| {
            r.config.check_secret(body)?;
            let list = &mut r.config.allowed;
            match action.as_str() {
                "enable" => {
                    list.get_or_insert_with(Vec::new);
                }
                "disable" => *list = None,
                "add" => {
                    let list = list.get_or_insert_with(Vec::new);
                    for t in tokens {
                        if !list.contains(&t) {
                            list.push(t);
                        }
                    }
                }
                "remove" => {
                    if let Some(list) = list {
                        list.retain(|t| !tokens.contains(t));
                    }
                }
                other => {
                    return Err(PluginError::new(
                        code::INVALID_ELEMENT,
                        format!("Unsupported action '{other}' (allowed)"),
                    ));
                }
            }
            let allowed = r.config.allowed.clone().unwrap_or_default();
            Ok(json!({"videoroom": "success", "room": room, "allowed": allowed}))
        })
    }

    async fn list_participants(&self, body: &Value) -> Result<Value, PluginError> {
        let room = required_id(body, "room")?;
        self.adopt_gateway_room(room).await;
        let foreign = self.foreign_feeds(room).await;
        self.with_room(room, |r| {
            let mut participants: Vec<Value> = r
                .participants
                .values()
                .map(|p| {
                    let mut entry = json!({
                        "id": p.id,
                        "publisher": p.publishing.as_ref().is_some_and(|p| p.live),
                        "talking": p.talking,
                    });
                    if let Some(display) = &p.display {
                        entry["display"] = json!(display);
                    }
                    entry
                })
                .collect();
            participants.extend(foreign.iter().map(|f| f.participant_entry()));
            Ok(json!({"videoroom": "participants", "room": room, "participants": participants}))
        })
    }

    /// `moderate`: a publisher's m-line (`mid`, or the legacy `mute_audio`/`mute_video`) muted
    /// or unmuted for every subscriber.
    async fn moderate(&self, body: &Value) -> Result<Value, PluginError> {
        let room = required_id(body, "room")?;
        let id = required_id(body, "id")?;
        let (session, streams) = self.with_room(room, |r| {
            r.config.check_secret(body)?;
            let p = r
                .participants
                .get(&id)
                .ok_or_else(|| PluginError::new(code::NO_SUCH_FEED, "No such user"))?;
            let publishing = p.publishing.as_ref().ok_or_else(|| {
                PluginError::new(code::NOT_PUBLISHED, "Participant isn't publishing")
            })?;
            Ok((publishing.session.clone(), publishing.streams.clone()))
        })?;
        let mut switches = Vec::new();
        if let Some(mid) = string_field(body, "mid")? {
            let mute = body
                .get("mute")
                .and_then(Value::as_bool)
                .ok_or_else(|| PluginError::missing("mute"))?;
            switches.push((super::participants::scope_of_mid(&streams, &mid)?, mute));
        }
        for (key, scope) in [
            ("mute_audio", crate::media::PauseScope::Audio),
            ("mute_video", crate::media::PauseScope::Video),
        ] {
            if let Some(mute) = body.get(key).and_then(Value::as_bool) {
                switches.push((scope, mute));
            }
        }
        if switches.is_empty() {
            return Err(PluginError::missing("mid"));
        }
        for (scope, mute) in switches {
            self.gate
                .mute_publisher(&room.to_string(), &session, scope, mute)
                .await
                .map_err(PluginError::from_gate)?;
        }
        Ok(json!({"videoroom": "success"}))
    }

    async fn kick(&self, _caller: &Caller, body: &Value) -> Result<Value, PluginError> {
        let room = required_id(body, "room")?;
        let id = required_id(body, "id")?;
        let victim = self.with_room(room, |r| {
            r.config.check_secret(body)?;
            r.participants
                .get(&id)
                .cloned()
                .ok_or_else(|| PluginError::new(code::NO_SUCH_FEED, "No such user"))
        })?;
        if let Some(session) = self.sessions.get(victim.janus_session) {
            session.push(super::super::protocol::plugin_message(
                "event",
                session.id,
                victim.handle,
                None,
                json!({"videoroom": "event", "room": room, "leaving": "ok", "reason": "kicked"}),
                None,
            ));
            let _ = self
                .leave(&session, victim.handle, super::leaving::Departure::Kicked)
                .await;
        }
        self.notify_room(
            room,
            Some(id),
            &json!({"videoroom": "event", "room": room, "kicked": id}),
        );
        Ok(json!({"videoroom": "success"}))
    }
}

impl VideoRoom {
    /// `[janus] admin_key`: when set, creating a room needs it (429 without, 433 wrong).
    pub(super) fn check_admin_key(&self, body: &Value) -> Result<(), PluginError> {
        let Some(key) = &self.admin_key else {
            return Ok(());
        };
        match string_field(body, "admin_key")? {
            None => Err(PluginError::missing("admin_key")),
            Some(given) if crate::policy::same_secret(&given, key) => Ok(()),
            Some(_) => Err(PluginError::new(
                code::UNAUTHORIZED,
                "Unauthorized (wrong admin_key)",
            )),
        }
    }
}
