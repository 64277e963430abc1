//! The VideoRoom plugin (specs/janus.md §2) on the one stream model: Janus room `N` is the
//! gateway room `"N"`, a publisher's feed is its participant id. This module keeps the Janus
//! facts the media core does not know (descriptions, secrets, displays, private ids) and answers
//! the synchronous requests; `participants` runs the asynchronous ones.

mod autoupdate;
mod bitrate;
mod bridge;
mod e2ee;
mod errors;
mod forwarders;
mod leaving;
mod live;
mod media_state;
mod offer_queue;
mod participants;
mod permanent;
mod playout;
mod recording;
mod restart;
mod room_config;
mod rooms;
mod slowlink;
mod subscribers;
mod talking;
mod trickle;
mod updates;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

use super::protocol::Jsep;
use super::sessions::{Handle, Session, Sessions};
use crate::gate::{Gate, RequestFacts};

pub use errors::{PluginError, code};
pub(super) use errors::{bool_field, id_field, required_id, string_field};
pub use permanent::PermanentRooms;
pub use room_config::RoomConfig;

/// What one handle is in the room it joined.
#[derive(Debug, Clone)]
pub(super) enum Membership {
    Publisher {
        room: u64,
        id: u64,
    },
    Subscriber {
        room: u64,
        /// The Janus session of the handle (where its events go).
        janus_session: u64,
        /// The gateway session we offered.
        session: String,
        feed: u64,
        /// Our offer's m-lines as sent in `attached`.
        streams: Vec<Value>,
        /// Janus's `autoupdate` (default on): a new offer without a publisher that stops.
        autoupdate: bool,
        /// `min_delay`/`max_delay` per video m-line (see `playout`).
        delays: Vec<(String, (i64, i64))>,
    },
}

/// One participant of a room (a publisher handle, publishing or not).
#[derive(Debug, Clone)]
pub(super) struct Participant {
    pub id: u64,
    pub display: Option<String>,
    pub private_id: u32,
    pub janus_session: u64,
    pub handle: u64,
    /// While publishing: the gateway session and the `streams` of the answer.
    pub publishing: Option<Publishing>,
    /// Its audio level says it talks (see `VideoRoom::audio_level`).
    pub talking: bool,
    /// Audio-level packets and their level sum since the last decision on `talking`.
    pub level_window: (u32, u32),
    /// Its own `configure {bitrate}`, in place of the room's (0: no cap).
    pub bitrate: Option<u64>,
    /// Its own `record`/`filename`, kept for the media sessions it publishes from now on.
    pub recording: Option<crate::media::OwnRecording>,
}

#[derive(Debug, Clone)]
pub(super) struct Publishing {
    pub session: String,
    /// Its PeerConnection is up: only then is it listed as a publisher (as Janus does).
    pub live: bool,
    pub audio_codec: Option<String>,
    pub video_codec: Option<String>,
    pub streams: Vec<Value>,
    /// Kinds announced as not received (`media` with `receiving: false`) and not resumed.
    pub silent: Vec<&'static str>,
    /// Its media is end-to-end encrypted (see `e2ee`).
    pub e2ee: bool,
    /// Its `min_delay`/`max_delay` (see `playout`).
    pub playout_delay: (i64, i64),
}

impl Participant {
    /// Its entry in `publishers` lists.
    pub fn publisher_entry(&self) -> Option<Value> {
        let publishing = self.publishing.as_ref().filter(|p| p.live)?;
        let mut entry =
            json!({"id": self.id, "streams": publishing.streams, "talking": self.talking});
        if let Some(display) = &self.display {
            entry["display"] = json!(display);
        }
        if let Some(codec) = &publishing.audio_codec {
            entry["audio_codec"] = json!(codec);
        }
        if let Some(codec) = &publishing.video_codec {
            entry["video_codec"] = json!(codec);
        }
        Some(entry)
    }
}

/// A room: its configuration and participants.
#[derive(Debug, Clone)]
pub(super) struct Room {
    pub config: RoomConfig,
    pub participants: BTreeMap<u64, Participant>,
    /// Kept in the rooms file (created or edited with `permanent: true`, or loaded from it).
    pub permanent: bool,
    /// Publishers of other dialects the participants were told of, by id, with their feed
    /// names (see `bridge`).
    pub foreign_announced: BTreeMap<u64, String>,
    /// Ids and feed names of the last such publishers that stopped, oldest first, for
    /// subscriptions still naming them (see `autoupdate`).
    pub foreign_stopped: Vec<(u64, String)>,
}

/// The rooms a VideoRoom starts with.
pub struct Rooms {
    /// `[[janus.rooms]]`.
    pub configured: Vec<RoomConfig>,
    /// Loaded from the rooms file (they stay permanent).
    pub saved: Vec<RoomConfig>,
    pub file: Option<PermanentRooms>,
    /// `[janus] admin_key`: needed to create rooms.
    pub admin_key: Option<String>,
    /// `[janus] lock_rtp_forward`: RTP forwarders need the admin key too.
    pub lock_rtp_forward: bool,
}

/// The plugin's state, shared by every transport.
pub struct VideoRoom {
    /// Itself, for work that outlives a request (watching a PeerConnection come up).
    me: std::sync::Weak<VideoRoom>,
    gate: Gate,
    sessions: Arc<Sessions>,
    rooms: Mutex<BTreeMap<u64, Room>>,
    members: Mutex<HashMap<u64, Membership>>,
    permanent_rooms: Option<PermanentRooms>,
    admin_key: Option<String>,
    lock_rtp_forward: bool,
    held_candidates: trickle::HeldCandidates,
    offers: offer_queue::SubscriberOffers,
}

/// The work of an asynchronous request, run after its `ack` was sent; it delivers the event.
pub type Pending = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

/// What a message produced: a synchronous reply, or the work that will deliver its event.
pub enum Outcome {
    Sync(Value),
    Async(Pending),
}

/// Who sent a plugin message.
#[derive(Clone)]
pub struct Caller {
    pub session: Arc<Session>,
    pub handle: Arc<Handle>,
    pub transaction: String,
    pub facts: RequestFacts,
}

impl Caller {
    /// Sends an event to this handle, answering its transaction.
    fn event(&self, data: Value, jsep: Option<Value>) {
        self.send(Some(&self.transaction), data, jsep);
    }

    /// Sends an event to this handle that answers no request of its own.
    fn notify(&self, data: Value, jsep: Option<Value>) {
        self.send(None, data, jsep);
    }

    fn send(&self, transaction: Option<&str>, data: Value, mut jsep: Option<Value>) {
        if let Some(jsep) = jsep.as_mut().filter(|_| self.handle.e2ee()) {
            jsep["e2ee"] = json!(true);
        }
        let event = super::protocol::plugin_message(
            "event",
            self.session.id,
            self.handle.id,
            transaction,
            data,
            jsep,
        );
        self.session.push(event);
    }
}

/// The requests answered inside `success`.
const SYNC_REQUESTS: &[&str] = &[
    "create",
    "edit",
    "destroy",
    "exists",
    "list",
    "allowed",
    "kick",
    "moderate",
    "listparticipants",
    "listforwarders",
    "rtp_forward",
    "stop_rtp_forward",
    "enable_recording",
];

impl VideoRoom {
    /// The plugin with the configured rooms, then those of the rooms file (permanent).
    pub fn new(gate: Gate, sessions: Arc<Sessions>, rooms: Rooms) -> Arc<Self> {
        let Rooms {
            configured,
            saved,
            file: permanent_rooms,
            admin_key,
            lock_rtp_forward,
        } = rooms;
        let room = |config: RoomConfig, permanent: bool| {
            let id = config.room;
            let participants = BTreeMap::new();
            (
                id,
                Room {
                    config,
                    participants,
                    permanent,
                    foreign_announced: Default::default(),
                    foreign_stopped: Default::default(),
                },
            )
        };
        let rooms = configured
            .into_iter()
            .map(|c| room(c, false))
            .chain(saved.into_iter().map(|c| room(c, true)))
            .collect();
        let videoroom = Arc::new_cyclic(|me| Self {
            me: me.clone(),
            gate,
            sessions,
            rooms: Mutex::new(rooms),
            members: Mutex::new(HashMap::new()),
            permanent_rooms,
            admin_key,
            lock_rtp_forward,
            held_candidates: Default::default(),
            offers: Default::default(),
        });
        let recorded: Vec<u64> = videoroom
            .rooms
            .lock()
            .map(|rooms| {
                rooms
                    .values()
                    .filter(|r| r.config.record)
                    .map(|r| r.config.room)
                    .collect()
            })
            .unwrap_or_default();
        for room in recorded {
            videoroom.apply_recording(room);
        }
        videoroom
    }

    /// Handles one `message`: sync requests answer at once; async ones are acked by the
    /// transport, which then runs the returned work (it delivers the event).
    pub async fn message(
        self: &Arc<Self>,
        caller: Caller,
        body: Option<&Value>,
        jsep: Option<Jsep>,
    ) -> Outcome {
        let Some(body) = body.filter(|b| b.is_object()) else {
            let e = PluginError::new(code::NO_MESSAGE, "No message??");
            return Outcome::Sync(e.data());
        };
        let request = match body.get("request").and_then(Value::as_str) {
            Some(r) => r.to_owned(),
            None => return Outcome::Sync(PluginError::missing("request").data()),
        };
        if SYNC_REQUESTS.contains(&request.as_str()) {
            let reply = self.sync_request(&caller, &request, body).await;
            return Outcome::Sync(reply.unwrap_or_else(|e| e.data()));
        }
        if !participants::ASYNC_REQUESTS.contains(&request.as_str()) {
            let e = PluginError::new(
                code::INVALID_REQUEST,
                format!("Unknown request '{request}'"),
            );
            return Outcome::Sync(e.data());
        }
        let this = self.clone();
        let body = body.clone();
        Outcome::Async(Box::pin(async move {
            let closes_pc = request == "leave" && this.media_session(caller.handle.id).is_some();
            let answers = request == "start" && jsep.is_some();
            let result = this.async_request(&caller, &request, &body, jsep).await;
            match result {
                Ok((data, jsep)) => {
                    caller.event(data, jsep);
                    if closes_pc {
                        let hangup = leaving::close_pc_hangup(caller.session.id, caller.handle.id);
                        caller.session.push(hangup);
                    }
                }
                Err(e) => caller.event(e.data(), None),
            }
            if answers {
                // After `started` (or the answer's refusal, which the client will not retry):
                // the offer for what waited, so nothing waits for an answer that never comes.
                this.offer_waiting(&caller).await;
            }
        }))
    }

    /// A handle goes away (detach, hangup of its session, socket closed): it leaves its room.
    pub async fn handle_gone(&self, session: &Session, handle: u64) {
        self.held_candidates.forget(handle);
        let _ = self.leave(session, handle, leaving::Departure::Gone).await;
    }

    /// A handle's PeerConnection is gone: no offer of ours waits for its answer, and its
    /// media is no longer end-to-end encrypted (as Janus forgets both with the PC).
    fn pc_gone(&self, janus_session: u64, handle: u64) {
        self.offers.forget(handle);
        if let Some(handle) = self
            .sessions
            .get(janus_session)
            .and_then(|s| s.handle(handle))
        {
            handle.set_e2ee(false);
        }
    }

    /// The gateway room and session of a handle's PeerConnection, if it has one.
    pub fn media_session(&self, handle: u64) -> Option<(String, String)> {
        match self.membership(handle)? {
            Membership::Subscriber { room, session, .. } => Some((room.to_string(), session)),
            Membership::Publisher { room, id } => {
                let rooms = self.rooms.lock().ok()?;
                let publishing = rooms
                    .get(&room)?
                    .participants
                    .get(&id)?
                    .publishing
                    .as_ref()?;
                Some((room.to_string(), publishing.session.clone()))
            }
        }
    }

    /// A media session ended under a handle that still uses it (a timeout, ICE failure, the
    /// room deleted by another API): the handle gets `hangup`, and a publisher is unpublished.
    /// Sessions ended by a Janus request are no longer referenced by then: nothing is sent.
    pub async fn media_session_ended(&self, ended: &crate::media::SessionEnded) {
        let Ok(room) = ended.room.parse::<u64>() else {
            return;
        };
        let reason = if ended.reason.contains("timeout") || ended.reason.contains("fail") {
            "ICE failed"
        } else {
            "Close PC"
        };
        let subscriber = self.members.lock().ok().and_then(|mut members| {
            let handle = members.iter().find_map(|(handle, m)| match m {
                Membership::Subscriber {
                    session,
                    janus_session,
                    ..
                } if *session == ended.session => Some((*handle, *janus_session)),
                _ => None,
            })?;
            members.remove(&handle.0);
            Some(handle)
        });
        let publisher = self.rooms.lock().ok().and_then(|mut rooms| {
            let participant = rooms.get_mut(&room)?.participants.values_mut().find(|p| {
                p.publishing
                    .as_ref()
                    .is_some_and(|pub_| pub_.session == ended.session)
            })?;
            participant.publishing = None;
            Some((
                participant.handle,
                participant.janus_session,
                participant.id,
            ))
        });
        if let Some((handle, janus_session, id)) = publisher {
            let event = json!({"videoroom": "event", "room": room, "unpublished": id});
            self.notify_room(room, Some(id), &event);
            self.pc_gone(janus_session, handle);
            self.hangup(janus_session, handle, reason);
            self.autoupdate_subscribers(room, &[id]);
        }
        if let Some((handle, janus_session)) = subscriber {
            self.pc_gone(janus_session, handle);
            self.hangup(janus_session, handle, reason);
        }
    }

    /// Asks the publishers of every room with `fir_freq` for a keyframe when `elapsed_secs`
    /// (seconds since start) is a multiple of that room's `fir_freq`.
    pub async fn request_periodic_keyframes(&self, elapsed_secs: u64) {
        let due: Vec<u64> = self
            .rooms
            .lock()
            .map(|rooms| {
                rooms
                    .values()
                    .filter(|r| r.config.fir_freq > 0)
                    .filter(|r| elapsed_secs.is_multiple_of(u64::from(r.config.fir_freq)))
                    .map(|r| r.config.room)
                    .collect()
            })
            .unwrap_or_default();
        for room in due {
            let _ = self.gate.request_keyframes(&room.to_string()).await;
        }
    }

    fn hangup(&self, janus_session: u64, handle: u64, reason: &str) {
        if let Some(session) = self.sessions.get(janus_session) {
            session.push(json!({"janus": "hangup", "session_id": janus_session,
                "sender": handle, "reason": reason}));
        }
    }

    fn membership(&self, handle: u64) -> Option<Membership> {
        self.members.lock().ok()?.get(&handle).cloned()
    }

    /// Changes a subscriber handle's membership in place, if it still subscribes on media
    /// session `media_session` (it may have left, or subscribed anew, meanwhile).
    fn update_subscriber(
        &self,
        handle: u64,
        media_session: &str,
        change: impl FnOnce(&mut Membership),
    ) {
        if let Ok(mut members) = self.members.lock()
            && let Some(membership) = members.get_mut(&handle)
            && matches!(membership, Membership::Subscriber { session, .. } if session == media_session)
        {
            change(membership);
        }
    }

    fn set_membership(&self, handle: u64, membership: Option<Membership>) {
        if let Ok(mut members) = self.members.lock() {
            match membership {
                Some(m) => members.insert(handle, m),
                None => members.remove(&handle),
            };
        }
    }

    /// Sends `data` as an unsolicited event to every participant of `room` but `except`.
    fn notify_room(&self, room: u64, except: Option<u64>, data: &Value) {
        let targets: Vec<(u64, u64)> = match self.rooms.lock() {
            Ok(rooms) => rooms
                .get(&room)
                .map(|r| {
                    r.participants
                        .values()
                        .filter(|p| Some(p.id) != except)
                        .map(|p| (p.janus_session, p.handle))
                        .collect()
                })
                .unwrap_or_default(),
            Err(_) => Vec::new(),
        };
        for (session, handle) in targets {
            if let Some(session) = self.sessions.get(session) {
                session.push(super::protocol::plugin_message(
                    "event",
                    session.id,
                    handle,
                    None,
                    data.clone(),
                    None,
                ));
            }
        }
    }
}
