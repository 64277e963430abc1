//! Room configuration (the keys of `janus.plugin.videoroom.jcfg`, also accepted by `create`)
//! and the synchronous VideoRoom requests.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{
    Caller, PluginError, Room, VideoRoom, bool_field, code, id_field, required_id, string_field,
};

/// One room's configuration: `[[janus.rooms]]` in the gateway's TOML, or a `create` request.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct RoomConfig {
    pub room: u64,
    pub description: String,
    pub is_private: bool,
    /// Needed to edit, destroy, kick and change the allowed list.
    pub secret: Option<String>,
    /// Needed to join.
    pub pin: Option<String>,
    pub require_pvtid: bool,
    /// Most concurrent publishers.
    pub publishers: u32,
    pub bitrate: u64,
    pub fir_freq: u32,
    pub audiocodec: String,
    pub videocodec: String,
    pub record: bool,
    pub rec_dir: Option<String>,
    /// Recording is switched only with the room's secret (`enable_recording` always asks
    /// for it here; kept and listed as Janus does).
    pub lock_record: bool,
    pub notify_joining: bool,
    /// Send `talking` / `stopped-talking` events (publishers' audio-level extension).
    pub audiolevel_event: bool,
    /// The average level (dBov, 0 loud … 127 silent) at or below which a publisher talks.
    pub audio_level_average: u32,
    /// Publishers' Opus encoders asked for in-band FEC (`useinbandfec=1` in the answer).
    pub opus_fec: bool,
    /// … and for DTX (`usedtx=1`).
    pub opus_dtx: bool,
    /// Tokens allowed to join; `None`: anyone.
    pub allowed: Option<Vec<String>>,
}

impl Default for RoomConfig {
    fn default() -> Self {
        Self {
            room: 0,
            description: String::new(),
            is_private: false,
            secret: None,
            pin: None,
            require_pvtid: false,
            publishers: 3,
            bitrate: 0,
            fir_freq: 0,
            audiocodec: "opus".into(),
            videocodec: "vp8".into(),
            record: false,
            rec_dir: None,
            lock_record: false,
            notify_joining: false,
            audiolevel_event: false,
            audio_level_average: 25,
            opus_fec: true,
            opus_dtx: false,
            allowed: None,
        }
    }
}

impl RoomConfig {
    /// A `create` request's room; unknown keys are ignored, as Janus does.
    fn from_create(body: &Value, room: u64) -> Result<Self, PluginError> {
        let mut config = RoomConfig {
            room,
            description: format!("Room {room}"),
            ..RoomConfig::default()
        };
        if let Some(d) = string_field(body, "description")? {
            config.description = d;
        }
        config.secret = string_field(body, "secret")?;
        config.pin = string_field(body, "pin")?;
        let flag = |name: &str, value: &mut bool| -> Result<(), PluginError> {
            if let Some(on) = bool_field(body, name)? {
                *value = on;
            }
            Ok(())
        };
        flag("is_private", &mut config.is_private)?;
        flag("require_pvtid", &mut config.require_pvtid)?;
        flag("record", &mut config.record)?;
        flag("lock_record", &mut config.lock_record)?;
        flag("notify_joining", &mut config.notify_joining)?;
        flag("audiolevel_event", &mut config.audiolevel_event)?;
        flag("opus_fec", &mut config.opus_fec)?;
        flag("opus_dtx", &mut config.opus_dtx)?;
        if let Some(n) = id_field(body, "audio_level_average")? {
            config.audio_level_average = u32::try_from(n.min(127)).unwrap_or(127);
        }
        if let Some(n) = id_field(body, "publishers")? {
            config.publishers = u32::try_from(n).unwrap_or(u32::MAX).max(1);
        }
        if let Some(n) = id_field(body, "bitrate")? {
            config.bitrate = n;
        }
        if let Some(n) = id_field(body, "fir_freq")? {
            config.fir_freq = u32::try_from(n).unwrap_or(u32::MAX);
        }
        if let Some(c) = string_field(body, "audiocodec")? {
            config.audiocodec = c;
        }
        if let Some(c) = string_field(body, "videocodec")? {
            config.videocodec = c;
        }
        config.rec_dir = string_field(body, "rec_dir")?;
        super::recording::check_rec_dir(config.rec_dir.as_deref())?;
        if let Some(list) = body.get("allowed") {
            config.allowed = Some(string_list(list, "allowed")?);
        }
        Ok(config)
    }

    /// Its entry in `list` (the keys Janus 1.1.2 sends; the extension flags say what the
    /// gateway negotiates: the audio level and transport-wide CC, not video orientation or
    /// playout delay; Opus FEC and DTX are asked in the publishers' Opus fmtp).
    fn list_entry(&self, participants: usize) -> Value {
        let mut entry = json!({
            "room": self.room,
            "description": self.description,
            "pin_required": self.pin.is_some(),
            "is_private": self.is_private,
            "max_publishers": self.publishers,
            "bitrate": self.bitrate,
            "fir_freq": self.fir_freq,
            "require_pvtid": self.require_pvtid,
            "require_e2ee": false,
            "dummy_publisher": false,
            "notify_joining": self.notify_joining,
            "audiocodec": self.audiocodec,
            "videocodec": self.videocodec,
            "opus_fec": self.opus_fec,
            "record": self.record,
            "lock_record": self.lock_record,
            "num_participants": participants,
            "audiolevel_ext": true,
            "audiolevel_event": self.audiolevel_event,
            "videoorient_ext": false,
            "playoutdelay_ext": false,
            "transport_wide_cc_ext": true,
        });
        if self.opus_dtx {
            entry["opus_dtx"] = json!(true);
        }
        entry
    }

    /// Checks the room's secret for a management request.
    pub(super) fn check_secret(&self, body: &Value) -> Result<(), PluginError> {
        match &self.secret {
            Some(secret)
                if !body
                    .get("secret")
                    .and_then(Value::as_str)
                    .is_some_and(|given| crate::policy::same_secret(given, secret)) =>
            {
                Err(PluginError::new(
                    code::UNAUTHORIZED,
                    "Unauthorized (wrong secret)",
                ))
            }
            _ => Ok(()),
        }
    }
}

/// A request's `permanent` (Janus: save the change to the config file).
fn permanent_flag(body: &Value) -> Result<bool, PluginError> {
    Ok(bool_field(body, "permanent")?.unwrap_or(false))
}

fn registry_unavailable() -> PluginError {
    PluginError::new(code::UNKNOWN_ERROR, "room registry unavailable")
}

fn string_list(value: &Value, name: &str) -> Result<Vec<String>, PluginError> {
    value
        .as_array()
        .and_then(|a| a.iter().map(|v| v.as_str().map(str::to_owned)).collect())
        .ok_or_else(|| PluginError::invalid(name, "an array of strings"))
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
