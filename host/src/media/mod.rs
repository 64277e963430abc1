//! The SFU core: rooms, feeds and subscriptions (DESIGN.md §1), driven on one media thread.
//!
//! No HTTP and no policy knowledge lives here. Signaling talks to the media thread through a
//! [`MediaHandle`]: each call is a [`Command`] sent over a channel plus a wake-up of the thread's
//! poll loop, answered on a oneshot channel. The thread owns every `RTCPeerConnection` (webrtc-rs
//! `rtc`, sans-IO) and the shared UDP socket(s), so forwarding needs no locks.

mod cascade;
mod engine;
mod events;
mod fanout;
mod feed;
mod feedback;
mod forward;
pub mod keyframe;
mod keyframe_cache;
mod load;
mod offer;
mod outbox;
mod peer;
mod record;
pub mod rewrite;
mod rooms;
mod rtx;
mod sessions;
mod simulcast;
mod subscription;
mod udp;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::mpsc;

use tokio::sync::oneshot;

use crate::config::{RecordConfig, WebrtcConfig};

pub use engine::MediaStartError;
pub use feed::DEFAULT_FEED;
/// Reused by the load generator so its synthetic publisher answers PLI like an encoder.
pub use feedback::{KEYFRAME_REQUESTS_SLOT, KeyframeRequestsToApp};
pub use load::LoadGauge;
pub use peer::add_host_candidate;

/// Whether a session sends media into a room or receives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Publisher,
    Subscriber,
}

impl Role {
    /// `publisher` or `subscriber` (log fields, metric labels).
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Publisher => "publisher",
            Role::Subscriber => "subscriber",
        }
    }
}

/// Which simulcast layer of the publisher's video a subscriber receives.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum LayerChoice {
    /// The best layer (rid `f`, `high`, `h`, `hi` or `2`, else the first that opened).
    #[default]
    Default,
    /// The layer with this RTP stream id (the default while the publisher does not send it).
    Rid(String),
    /// No video (Live777's `DELETE …/layer`).
    Off,
}

/// What to do with a room's subscribers when its publisher leaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PublisherLeave {
    /// Subscribers stay connected and resume when a new publisher arrives.
    IdleSubscribers,
    /// Subscribers are closed with the publisher (Live777's stream teardown).
    CloseSubscribers,
}

/// A request to open a session with a client's SDP offer.
#[derive(Debug, Clone)]
pub struct OfferRequest {
    /// The signaling dialect that asked (`whip`, `rooms`, `runner365`…), for metrics and logs.
    pub dialect: &'static str,
    pub room: String,
    /// The feed within the room. `None` for single-feed dialects: a publisher takes the
    /// [`DEFAULT_FEED`]; a subscriber gets the room's main feed (the default feed if it exists,
    /// else the earliest feed with a publisher, else the default feed).
    pub feed: Option<String>,
    /// A name the client chose for itself (runner365's subscriber `uid`), shown in snapshots.
    pub label: Option<String>,
    pub role: Role,
    pub offer_sdp: String,
    /// Create the room when it does not exist yet; otherwise an unknown room is an error.
    pub create_room: bool,
}

/// The remote end of a session we offered to another server (Live777's `cascade` object).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CascadeLink {
    /// Pull: the WHEP URL this room's media comes from.
    pub source_url: Option<String>,
    /// Push: the WHIP URL this room's media goes to.
    pub target_url: Option<String>,
    /// The remote session resource (absolute), once the remote answered.
    pub session_url: Option<String>,
}

/// A cascade session that ended while its remote session may still exist: the signaling
/// side DELETEs it (with the same bearer token).
#[derive(Debug, Clone)]
pub struct CascadeEnded {
    pub session_url: String,
    pub token: Option<String>,
}

/// A session for the media core to offer to another server: a publisher of `room` fed by a
/// remote WHEP endpoint (pull), or a subscriber of `room` feeding a remote WHIP one (push).
#[derive(Debug, Clone)]
pub struct DialRequest {
    /// The API that asked (`cascade`, `janus`).
    pub dialect: &'static str,
    pub room: String,
    /// A subscriber's feed (`None`: the room's main feed); publishers use the default feed.
    pub feed: Option<String>,
    pub role: Role,
    /// A cascade's remote end; `None` when a client answers our offer (Janus subscribers).
    pub link: Option<CascadeLink>,
    pub token: Option<String>,
}

/// Our offer for a [`DialRequest`], to POST to the remote.
#[derive(Debug, Clone)]
pub struct DialOffer {
    pub session_id: String,
    pub offer_sdp: String,
}

/// The answer to an accepted offer.
#[derive(Debug, Clone)]
pub struct SessionAnswer {
    pub session_id: String,
    pub answer_sdp: String,
    /// Strong entity tag of the session's current ICE session (changes on ICE restart).
    pub etag: String,
}

/// A remote ICE candidate from a trickle request.
#[derive(Debug, Clone)]
pub struct RemoteCandidate {
    /// The candidate attribute value, e.g. `candidate:1 1 udp 2122260223 10.0.0.2 5000 typ host`.
    pub candidate: String,
    pub mid: Option<String>,
    pub mline_index: u16,
}

/// The server side of an ICE restart.
#[derive(Debug, Clone)]
pub struct IceRestartAnswer {
    pub ufrag: String,
    pub pwd: String,
    pub candidates: Vec<String>,
    pub mid: String,
    pub etag: String,
}

/// Why the media core refused or failed a request. Dialects map these to their own statuses.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum MediaError {
    #[error("room `{0}` does not exist")]
    RoomNotFound(String),
    #[error("room `{room}` has no feed `{feed}`")]
    FeedNotFound { room: String, feed: String },
    #[error("session `{0}` does not exist")]
    SessionNotFound(String),
    #[error("room `{0}` already has a publisher")]
    PublisherExists(String),
    #[error("room `{0}` already exists")]
    RoomExists(String),
    /// The offer is not valid SDP.
    #[error("malformed SDP offer: {0}")]
    MalformedOffer(String),
    /// Valid SDP that cannot be served (directions, no media, no common codec…).
    #[error("unusable SDP offer: {0}")]
    UnusableOffer(String),
    /// The ICE restart could not be applied; the existing ICE session is kept.
    #[error("ICE restart failed: {0}")]
    IceRestart(String),
    /// A fault of the gateway itself, not of the request.
    #[error("media engine error: {0}")]
    Internal(String),
    /// The media thread has stopped (shutdown in progress).
    #[error("media engine is not running")]
    Stopped,
    /// The media thread is saturated: a new subscriber would not get its media in time.
    #[error("media engine overloaded (busy {load_percent}% of the time); try again later")]
    Overloaded { load_percent: u32 },
}

/// A session that ended, whatever the cause (a client's request, a timeout, ICE failure…),
/// for signaling that must tell its client (Janus `hangup`).
#[derive(Debug, Clone)]
pub struct SessionEnded {
    pub room: String,
    pub session: String,
    /// Why, in the media core's words (`consent timeout`, `closed by request`, …).
    pub reason: String,
}

/// Which of a subscriber's outputs a pause applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PauseScope {
    All,
    Audio,
    Video,
}

/// A session's current ICE session, as WHIP/WHEP PATCH needs it.
#[derive(Debug, Clone)]
pub struct SessionIce {
    /// Strong entity tag of the ICE session (changes on restart).
    pub etag: String,
    /// The client's current ICE username fragment; a PATCH with another one is a restart.
    pub remote_ufrag: Option<String>,
}

/// A point-in-time view of one session.
#[derive(Debug, Clone)]
pub struct SessionSnapshot {
    pub id: String,
    pub role: Role,
    /// See [`OfferRequest::dialect`]; `cascade` for sessions we offered.
    pub dialect: &'static str,
    /// The feed the session publishes or receives.
    pub feed: String,
    /// See [`OfferRequest::label`].
    pub label: Option<String>,
    /// Present for sessions we offered to another server.
    pub cascade: Option<CascadeLink>,
    /// Unix milliseconds.
    pub created_at_ms: u64,
    /// The RTCPeerConnection `connectionState` string (`new`, `connecting`, `connected`, …).
    pub state: String,
}

/// A point-in-time view of one room, over all its feeds.
#[derive(Debug, Clone)]
pub struct RoomSnapshot {
    pub name: String,
    /// Unix milliseconds.
    pub created_at_ms: u64,
    /// Feeds with a publisher.
    pub publishers: usize,
    /// Tracks the publishers send (0 without a publisher).
    pub tracks: usize,
    pub subscribers: usize,
    /// Unix milliseconds when the last publisher left, 0 while one is present or none ever came.
    pub publisher_left_at_ms: u64,
    /// Unix milliseconds when the last subscriber left, 0 while one is present.
    pub subscriber_left_at_ms: u64,
    pub sessions: Vec<SessionSnapshot>,
    /// What the room's publishers sent and its subscribers were sent, since it was created.
    pub traffic: Traffic,
}

/// RTP counters (packets and bytes of RTP payload plus header, before SRTP).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Traffic {
    /// Publisher packets that reached the fan-out.
    pub ingress_packets: u64,
    pub ingress_bytes: u64,
    /// Packets handed to subscriber sessions.
    pub egress_packets: u64,
    pub egress_bytes: u64,
    /// Keyframe requests (PLI) sent to publishers.
    pub keyframe_requests: u64,
    /// Packets subscribers asked to be retransmitted (NACKed sequence numbers).
    pub nack_requests: u64,
}

impl Traffic {
    pub(crate) fn add(&mut self, other: &Traffic) {
        self.ingress_packets += other.ingress_packets;
        self.ingress_bytes += other.ingress_bytes;
        self.egress_packets += other.egress_packets;
        self.egress_bytes += other.egress_bytes;
        self.keyframe_requests += other.keyframe_requests;
        self.nack_requests += other.nack_requests;
    }
}

/// Work for the media thread, each with its reply channel.
pub(crate) enum Command {
    Open(
        OfferRequest,
        oneshot::Sender<Result<SessionAnswer, MediaError>>,
    ),
    Trickle {
        room: String,
        session: String,
        candidates: Vec<RemoteCandidate>,
        reply: oneshot::Sender<Result<(), MediaError>>,
    },
    IceRestart {
        room: String,
        session: String,
        ufrag: String,
        pwd: String,
        candidates: Vec<RemoteCandidate>,
        reply: oneshot::Sender<Result<IceRestartAnswer, MediaError>>,
    },
    Close {
        room: String,
        session: String,
        on_publisher_leave: PublisherLeave,
        reply: oneshot::Sender<Result<Role, MediaError>>,
    },
    Dial(DialRequest, oneshot::Sender<Result<DialOffer, MediaError>>),
    CompleteDial {
        room: String,
        session: String,
        answer_sdp: String,
        session_url: Option<String>,
        reply: oneshot::Sender<Result<(), MediaError>>,
    },
    Layers {
        room: String,
        session: String,
        reply: oneshot::Sender<Result<Vec<String>, MediaError>>,
    },
    SelectLayer {
        room: String,
        session: String,
        choice: LayerChoice,
        reply: oneshot::Sender<Result<(), MediaError>>,
    },
    Pause {
        room: String,
        session: String,
        scope: PauseScope,
        paused: bool,
        reply: oneshot::Sender<Result<(), MediaError>>,
    },
    SwitchFeed {
        room: String,
        session: String,
        feed: String,
        reply: oneshot::Sender<Result<(), MediaError>>,
    },
    Room(String, oneshot::Sender<Option<RoomSnapshot>>),
    /// Creates an empty room with its default feed (an operator provisioning a stream).
    CreateRoom(String, oneshot::Sender<Result<(), MediaError>>),
    /// Ends every session of a room and removes it.
    DeleteRoom(String, oneshot::Sender<Result<(), MediaError>>),
    Rooms(oneshot::Sender<Vec<RoomSnapshot>>),
    /// Traffic of every room since start, including rooms already removed.
    Totals(oneshot::Sender<Traffic>),
    SessionIce {
        room: String,
        session: String,
        reply: oneshot::Sender<Result<SessionIce, MediaError>>,
    },
    Shutdown,
}

/// A cloneable handle to the media thread.
#[derive(Clone)]
pub struct MediaHandle {
    commands: mpsc::Sender<Command>,
    waker: Arc<mio::Waker>,
    udp_addrs: Arc<Vec<SocketAddr>>,
    cascade_endings:
        Arc<std::sync::Mutex<Option<tokio::sync::mpsc::UnboundedReceiver<CascadeEnded>>>>,
    load: Arc<LoadGauge>,
    ended: tokio::sync::broadcast::Sender<SessionEnded>,
}

impl MediaHandle {
    /// Binds the UDP socket(s) and starts the media thread.
    pub fn start(
        config: &WebrtcConfig,
        record: &RecordConfig,
    ) -> Result<(MediaHandle, MediaThread), MediaStartError> {
        engine::start(config, record)
    }

    /// The bound UDP addresses (all share one port).
    pub fn udp_addrs(&self) -> &[SocketAddr] {
        &self.udp_addrs
    }

    /// Every session that ends from now on (a lagging receiver misses the oldest ones).
    pub fn session_endings(&self) -> tokio::sync::broadcast::Receiver<SessionEnded> {
        self.ended.subscribe()
    }

    /// The media thread's load and the subscribers refused because of it.
    pub fn load(&self) -> &LoadGauge {
        &self.load
    }

    async fn ask<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<T>) -> Command,
    ) -> Result<T, MediaError> {
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(make(tx))
            .map_err(|_| MediaError::Stopped)?;
        self.waker.wake().map_err(|_| MediaError::Stopped)?;
        rx.await.map_err(|_| MediaError::Stopped)
    }

    /// Opens a publisher or subscriber session from a client's offer.
    pub async fn open(&self, request: OfferRequest) -> Result<SessionAnswer, MediaError> {
        self.ask(|reply| Command::Open(request, reply)).await?
    }

    /// Adds trickled remote candidates to a session.
    pub async fn trickle(
        &self,
        room: &str,
        session: &str,
        candidates: Vec<RemoteCandidate>,
    ) -> Result<(), MediaError> {
        self.ask(|reply| Command::Trickle {
            room: room.into(),
            session: session.into(),
            candidates,
            reply,
        })
        .await?
    }

    /// Restarts ICE with the client's new credentials.
    pub async fn ice_restart(
        &self,
        room: &str,
        session: &str,
        ufrag: String,
        pwd: String,
        candidates: Vec<RemoteCandidate>,
    ) -> Result<IceRestartAnswer, MediaError> {
        self.ask(|reply| Command::IceRestart {
            room: room.into(),
            session: session.into(),
            ufrag,
            pwd,
            candidates,
            reply,
        })
        .await?
    }

    /// Ends a session; returns the role it had.
    pub async fn close(
        &self,
        room: &str,
        session: &str,
        on_publisher_leave: PublisherLeave,
    ) -> Result<Role, MediaError> {
        self.ask(|reply| Command::Close {
            room: room.into(),
            session: session.into(),
            on_publisher_leave,
            reply,
        })
        .await?
    }

    /// The current ICE session of a session.
    pub async fn session_ice(&self, room: &str, session: &str) -> Result<SessionIce, MediaError> {
        self.ask(|reply| Command::SessionIce {
            room: room.into(),
            session: session.into(),
            reply,
        })
        .await?
    }

    /// Creates a session offered by us (a cascade); complete it with the remote's answer.
    pub async fn dial(&self, request: DialRequest) -> Result<DialOffer, MediaError> {
        self.ask(|reply| Command::Dial(request, reply)).await?
    }

    /// Applies the remote's answer to a dialled session (`session_url`: its resource).
    pub async fn complete_dial(
        &self,
        room: &str,
        session: &str,
        answer_sdp: String,
        session_url: Option<String>,
    ) -> Result<(), MediaError> {
        self.ask(|reply| Command::CompleteDial {
            room: room.into(),
            session: session.into(),
            answer_sdp,
            session_url,
            reply,
        })
        .await?
    }

    /// The cascade sessions that end from now on (taken once, by the signaling side).
    pub fn take_cascade_endings(
        &self,
    ) -> Option<tokio::sync::mpsc::UnboundedReceiver<CascadeEnded>> {
        self.cascade_endings.lock().ok()?.take()
    }

    /// The rids of the simulcast layers a subscriber's publisher sends (empty without
    /// simulcast).
    pub async fn layers(&self, room: &str, session: &str) -> Result<Vec<String>, MediaError> {
        self.ask(|reply| Command::Layers {
            room: room.into(),
            session: session.into(),
            reply,
        })
        .await?
    }

    /// Chooses the simulcast layer a subscriber receives.
    pub async fn select_layer(
        &self,
        room: &str,
        session: &str,
        choice: LayerChoice,
    ) -> Result<(), MediaError> {
        self.ask(|reply| Command::SelectLayer {
            room: room.into(),
            session: session.into(),
            choice,
            reply,
        })
        .await?
    }

    /// Stops (`paused`) or resumes forwarding to a subscriber, all of it or one kind.
    pub async fn pause(
        &self,
        room: &str,
        session: &str,
        scope: PauseScope,
        paused: bool,
    ) -> Result<(), MediaError> {
        self.ask(|reply| Command::Pause {
            room: room.into(),
            session: session.into(),
            scope,
            paused,
            reply,
        })
        .await?
    }

    /// Moves a subscriber to another feed of its room, without renegotiation.
    pub async fn switch_feed(
        &self,
        room: &str,
        session: &str,
        feed: &str,
    ) -> Result<(), MediaError> {
        self.ask(|reply| Command::SwitchFeed {
            room: room.into(),
            session: session.into(),
            feed: feed.into(),
            reply,
        })
        .await?
    }

    /// A snapshot of one room, `None` when it does not exist.
    pub async fn room(&self, name: &str) -> Result<Option<RoomSnapshot>, MediaError> {
        self.ask(|reply| Command::Room(name.into(), reply)).await
    }

    /// Snapshots of every room, sorted by name.
    pub async fn rooms(&self) -> Result<Vec<RoomSnapshot>, MediaError> {
        self.ask(Command::Rooms).await
    }

    /// Creates an empty room; `RoomExists` if it is already there.
    pub async fn create_room(&self, name: &str) -> Result<(), MediaError> {
        self.ask(|reply| Command::CreateRoom(name.into(), reply))
            .await?
    }

    /// Ends every session of a room (publisher and subscribers) and removes it.
    pub async fn delete_room(&self, name: &str) -> Result<(), MediaError> {
        self.ask(|reply| Command::DeleteRoom(name.into(), reply))
            .await?
    }

    /// Traffic since start, over every room that ever existed.
    pub async fn totals(&self) -> Result<Traffic, MediaError> {
        self.ask(Command::Totals).await
    }

    /// Asks the media thread to close every session and stop.
    pub fn shutdown(&self) {
        if self.commands.send(Command::Shutdown).is_ok() {
            let _ = self.waker.wake();
        }
    }
}

/// The running media thread; join it after [`MediaHandle::shutdown`].
pub struct MediaThread {
    join: std::thread::JoinHandle<()>,
}

impl MediaThread {
    /// Waits for the media thread to finish (blocking; call from `spawn_blocking`).
    pub fn join(self) {
        if self.join.join().is_err() {
            tracing::error!("media thread panicked");
        }
    }
}
