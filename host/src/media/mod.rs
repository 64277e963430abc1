//! The SFU core: rooms, feeds and subscriptions (DESIGN.md §1), driven on one media thread.
//!
//! No HTTP and no policy knowledge lives here. Signaling talks to the media thread through a
//! [`MediaHandle`]: each call is a [`Command`] sent over a channel plus a wake-up of the thread's
//! poll loop, answered on a oneshot channel. The thread owns every `RTCPeerConnection` (webrtc-rs
//! `rtc`, sans-IO) and the shared UDP socket(s), so forwarding needs no locks.

mod audio_level;
mod bitrate_cap;
mod cascade;
mod commands;
mod egress;
mod engine;
mod events;
mod fanout;
mod feed;
mod feedback;
mod forward;
mod handle;
mod ivf;
pub mod keyframe;
mod keyframe_cache;
mod load;
mod loss;
mod offer;
mod outbox;
mod outputs;
mod peer;
mod playout_delay;
mod record;
mod renegotiate;
mod reoffer;
pub mod rewrite;
mod room_recording;
mod rooms;
mod rtp_forward;
mod rtx;
mod send_track;
mod sent_stream;
mod sessions;
mod simulcast;
mod srtp_tap;
mod subscriber_rtcp;
mod subscription;
mod temporal;
mod udp;

pub use audio_level::AUDIO_LEVEL_URI;
pub use bitrate_cap::BitrateCaps;
pub use engine::MediaStartError;
pub use feed::DEFAULT_FEED;
/// Reused by the load generator so its synthetic publisher answers PLI like an encoder.
pub use feedback::{KEYFRAME_REQUESTS_SLOT, KeyframeRequestsToApp};
pub(crate) use handle::Command;
pub use handle::{MediaHandle, MediaThread};
pub use load::LoadGauge;
pub use loss::LinkReport;
pub use peer::add_host_candidate;
pub use playout_delay::{PLAYOUT_DELAY_URI, PlayoutDelay};
pub use room_recording::OwnRecording;

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
    /// A subscriber's further feeds of the same room, on the same PeerConnection.
    pub more_feeds: Vec<String>,
    /// Feeds of which a subscriber receives only some kinds (`"audio"`, `"video"`); the
    /// others' every kind.
    pub only_kinds: Vec<(String, Vec<&'static str>)>,
    pub role: Role,
    /// A cascade's remote end; `None` when a client answers our offer (Janus subscribers).
    pub link: Option<CascadeLink>,
    pub token: Option<String>,
    /// A subscriber receives each feed in a media stream of its own (Janus `use_msid`); else
    /// all in one, named after the room.
    pub stream_per_feed: bool,
}

/// Our offer for a [`DialRequest`], to POST to the remote.
#[derive(Debug, Clone)]
pub struct DialOffer {
    pub session_id: String,
    pub offer_sdp: String,
    /// A subscriber's tracks in the offer (which feed each SSRC carries).
    pub tracks: Vec<SentTrack>,
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

/// A renegotiation's offer, and every track the subscriber is sent after it.
#[derive(Debug, Clone)]
pub struct Renegotiated {
    pub offer_sdp: String,
    pub tracks: Vec<SentTrack>,
}

/// One track a subscriber is sent: which feed, which kind, with which SSRC (as in the offer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentTrack {
    pub feed: String,
    /// `audio` or `video`.
    pub kind: &'static str,
    pub ssrc: u32,
}

/// A publisher's average audio level over its last window of packets (RFC 6464 dBov: 0 is
/// loudest, 127 silence).
#[derive(Debug, Clone)]
pub struct AudioLevel {
    pub room: String,
    pub session: String,
    /// Packets of the track that carried a level since the last announcement.
    pub packets: u32,
    /// The sum of their levels (each 0 loud … 127 silent): signaling averages over its own
    /// window (Janus `audio_active_packets`) from these.
    pub level_sum: u32,
}

/// A plain RTP forwarder of a feed (Janus `rtp_forward`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtpForwarderInfo {
    pub id: u32,
    pub feed: String,
    /// `audio` or `video`.
    pub kind: &'static str,
    pub destination: std::net::SocketAddr,
    pub ssrc: u32,
    pub payload_type: Option<u8>,
}

/// A change to how a session's video is forwarded (Janus subscriber and publisher
/// `configure`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VideoTuning {
    /// The highest VP8 temporal layer a subscriber receives (`None`: all).
    MaxTemporalLayer(Option<u8>),
    /// The playout delay written on forwarded video (`None`: none): a subscriber's, for what
    /// it receives from `source` (every feed when `None`), or a publisher's, for its
    /// subscribers without their own.
    PlayoutDelay {
        source: Option<String>,
        delay: Option<PlayoutDelay>,
    },
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
    /// A publisher's SDP answer (its m-lines: what it sends, with mids and codecs).
    pub answer_sdp: Option<String>,
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
