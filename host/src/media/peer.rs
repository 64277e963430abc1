//! One WebRTC session: its sans-IO PeerConnection and what the engine tracks about it.

use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime};

use rtc::interceptor::{Registry, Slot};
use rtc::peer_connection::RTCPeerConnection;
use rtc::peer_connection::RTCPeerConnectionBuilder;
use rtc::peer_connection::certificate::RTCCertificate;
use rtc::peer_connection::configuration::RTCConfigurationBuilder;
use rtc::peer_connection::configuration::interceptor_registry::register_default_interceptors;
use rtc::peer_connection::configuration::media_engine::MediaEngine;
use rtc::peer_connection::configuration::setting_engine::SettingEngineBuilder;
use rtc::peer_connection::state::RTCPeerConnectionState;
use rtc::peer_connection::transport::{
    CandidateConfig, CandidateHostConfig, RTCDtlsRole, RTCIceCandidate,
};
use rtc::rtp_transceiver::{RTCRtpReceiverId, RTCRtpSenderId};
use rtc::shared::TaggedBytesMut;

use super::egress::{Route, SrtpEgress};
use super::feedback::{
    KEYFRAME_REQUESTS_SLOT, KeyframeRequestPacer, KeyframeRequestsToApp, NACKS_COUNTED_SLOT,
    NacksCounted,
};
use super::forward::OutputForwarder;
use super::keyframe::VideoCodec;
use super::offer::MediaKind;
use super::record::RecordedTrack;
use super::rtx::{RTX_TO_PRIMARY_SLOT, RtxToPrimary};
use super::sent_stream::SentStream;
use super::srtp_tap::{SUBSCRIBER_SRTP_PROFILES, SrtpKeyTap};
use super::{MediaError, Role};

/// Silence after which rtc calls the ICE pair disconnected: beyond two missed consent checks.
const ICE_DISCONNECTED_AFTER: Duration = Duration::from_secs(12);
/// Further silence after which rtc calls it failed (the engine's consent timeout, 30 s by
/// default, usually ends the session first).
const ICE_FAILED_AFTER_DISCONNECTED: Duration = Duration::from_secs(25);

/// A subscriber silent this long (no STUN, no RTCP) gets no more forwarded media: a live client
/// sends something at least every 6 s (RFC 7675 consent checks every 4-6 s; browsers' and
/// aiortc's RTCP far more often; full-ICE keepalives every 2 s).
pub(crate) const FORWARD_SILENCE_LIMIT: Duration = Duration::from_secs(8);

/// How a session's ICE agent runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IceMode {
    /// A client offered: we answer as an ICE-lite agent and DTLS server.
    LiteAnswerer,
    /// We offer (a cascade): a full, controlling agent that checks the answerer's candidates,
    /// since the answerer may itself be ICE-lite (Live777, another gatehouse).
    FullOfferer,
}

/// Builds the gateway's PeerConnections: one shared certificate, every session
/// advertising the same host candidate(s) on the shared port.
pub(crate) struct PeerFactory {
    certificate: RTCCertificate,
    advertised: Vec<SocketAddr>,
    /// Kept per subscriber output for NACKs.
    pub nack_buffer_packets: u16,
    provider: std::sync::Arc<dyn rtc::crypto::RTCCryptoProvider>,
}

/// A new PeerConnection, and for a subscriber leg the tap that learns its SRTP keys.
pub(crate) struct BuiltPeer {
    pub pc: RTCPeerConnection,
    pub srtp_keys: Option<std::sync::Arc<SrtpKeyTap>>,
}

fn internal(context: &str) -> impl FnOnce(rtc::shared::error::Error) -> MediaError + '_ {
    move |e| MediaError::Internal(format!("{context}: {e}"))
}

impl PeerFactory {
    /// Generates the shared DTLS certificate (one ECDSA key for all sessions: 15 µs per
    /// PeerConnection instead of 108 µs, specs/webrtc-rs.md §1).
    pub fn new(advertised: Vec<SocketAddr>, nack_buffer_packets: u16) -> Result<Self, MediaError> {
        let provider =
            rtc::crypto::default_provider().map_err(|e| MediaError::Internal(e.to_string()))?;
        let params = rcgen_params()?;
        let certificate = RTCCertificate::generate(
            provider.crypto(),
            rtc::crypto::SignatureScheme::EcdsaP256Sha256,
            params,
        )
        .map_err(internal("certificate"))?;
        Ok(Self {
            certificate,
            advertised,
            nack_buffer_packets,
            provider,
        })
    }

    /// A fresh PeerConnection with the default codecs and the interceptors its role needs;
    /// keyframe requests are delivered to the application.
    /// `nacks` counts what a subscriber NACKs.
    pub fn build(
        &self,
        now: Instant,
        role: Role,
        ice: IceMode,
        nacks: std::sync::Arc<std::sync::atomic::AtomicU64>,
    ) -> Result<BuiltPeer, MediaError> {
        let mut media_engine = MediaEngine::default();
        media_engine
            .register_default_codecs()
            .map_err(internal("codecs"))?;
        use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
        // Subscribers' players can be told how much to buffer (Janus `min_delay`);
        // publishers' audio levels tell who talks (Janus `talking` events).
        let (uri, kind, what) = match role {
            Role::Subscriber => (
                super::playout_delay::PLAYOUT_DELAY_URI,
                RtpCodecKind::Video,
                "playout delay extension",
            ),
            Role::Publisher => (
                super::audio_level::AUDIO_LEVEL_URI,
                RtpCodecKind::Audio,
                "audio level extension",
            ),
        };
        let capability = rtc::rtp_transceiver::rtp_sender::RTCRtpHeaderExtensionCapability {
            uri: uri.to_owned(),
        };
        media_engine
            .register_header_extension(capability, kind, None)
            .map_err(internal(what))?;
        // Both roles advertise the default capabilities (NACK, PLI, TWCC, simulcast
        // extensions), so answers do not depend on the role.
        let default_chain = register_default_interceptors(Registry::new(), &mut media_engine)
            .map_err(internal("interceptors"))?;
        let registry = match role {
            Role::Publisher => {
                default_chain.with(Slot::from(RTX_TO_PRIMARY_SLOT), RtxToPrimary::default())
            }
            // A subscriber leg's RTP bypasses rtc (`srtp_tap`): the engine answers its NACKs
            // and writes its sender reports, so only the counting interceptor remains.
            Role::Subscriber => {
                Registry::new().with(Slot::from(NACKS_COUNTED_SLOT), NacksCounted::new(nacks))
            }
        }
        .with(
            Slot::from(KEYFRAME_REQUESTS_SLOT),
            KeyframeRequestsToApp::default(),
        );
        // Answer `a=setup:passive` (we are the DTLS server): the client starts DTLS as soon as
        // its ICE is up, instead of our ClientHello racing its readiness (measured: +180 ms
        // with Chromium), and RSA-certificate clients (GStreamer) can choose their suite.
        // rtc calls a pair disconnected after 5 s without STUN from the client, but clients
        // send consent checks only every 4-6 s (RFC 7675; aiortc), so sessions flickered to
        // `disconnected` while media flowed. Expiry is the engine's consent timeout.
        let setting_engine_builder = match ice {
            IceMode::LiteAnswerer => SettingEngineBuilder::new()
                .with_lite(true)
                .with_answering_dtls_role(RTCDtlsRole::Server),
            // rtc's agent sends its first check one interval after the answer: a short
            // interval keeps a cascade's start-up close to a browser's.
            IceMode::FullOfferer => SettingEngineBuilder::new()
                .with_ice_connection_attempts(Some(Duration::from_millis(20)), Some(50)),
        }
        .with_ice_timeouts(
            Some(ICE_DISCONNECTED_AFTER),
            Some(ICE_FAILED_AFTER_DISCONNECTED),
            None,
        );
        let srtp_keys = (role == Role::Subscriber).then(|| SrtpKeyTap::new(self.provider.clone()));
        let setting_engine = match &srtp_keys {
            Some(tap) => setting_engine_builder
                .with_crypto_provider(tap.clone())
                .with_srtp_protection_profiles(SUBSCRIBER_SRTP_PROFILES.to_vec()),
            None => setting_engine_builder.with_crypto_provider(self.provider.clone()),
        }
        .build();
        let configuration = RTCConfigurationBuilder::new()
            .with_certificates(vec![self.certificate.clone()])
            .build();
        let mut pc = RTCPeerConnectionBuilder::new()
            .with_configuration(configuration)
            .with_media_engine(media_engine)
            .with_setting_engine(setting_engine)
            .with_interceptor_registry(registry)
            .build(now)
            .map_err(internal("peer connection"))?;
        for addr in &self.advertised {
            add_host_candidate(&mut pc, *addr).map_err(internal("host candidate"))?;
        }
        Ok(BuiltPeer { pc, srtp_keys })
    }

    /// The `candidate:` attribute values every session advertises.
    pub fn candidate_lines(&self, sdp: &str) -> Vec<String> {
        sdp.lines()
            .filter_map(|l| l.trim_end_matches('\r').strip_prefix("a="))
            .filter(|l| l.starts_with("candidate:") && !super::offer::is_rtcp_candidate(l))
            .map(str::to_owned)
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect()
    }
}

/// Adds a UDP `host` candidate at `addr` to `pc`'s local candidates (with rtc the application
/// supplies them; the load generator uses this for its client endpoints too).
pub fn add_host_candidate(
    pc: &mut RTCPeerConnection,
    addr: SocketAddr,
) -> Result<(), rtc::shared::error::Error> {
    let candidate = CandidateHostConfig {
        base_config: CandidateConfig {
            network: "udp".to_owned(),
            address: addr.ip().to_string(),
            port: addr.port(),
            component: 1,
            ..Default::default()
        },
        ..Default::default()
    }
    .new_candidate_host()?;
    pc.add_local_candidate(RTCIceCandidate::from(&candidate).to_json()?)
}

fn rcgen_params() -> Result<rtc::peer_connection::certificate::CertificateParams, MediaError> {
    rtc::peer_connection::certificate::CertificateParams::new(vec!["gatehouse".to_owned()])
        .map_err(|e| MediaError::Internal(format!("certificate params: {e}")))
}

/// A track a publisher sends into its room.
#[derive(Debug)]
pub(crate) struct PublishedTrack {
    pub track_id: String,
    pub receiver_id: RTCRtpReceiverId,
    pub kind: MediaKind,
    /// Its RTP streams: one, or one per simulcast layer (in the order they opened).
    /// Shared so a packet batch can carry them without allocating (changed only when a layer opens).
    pub layers: std::sync::Arc<Vec<super::simulcast::Layer>>,
    pub mime_lower: std::sync::Arc<str>,
    /// The negotiated codec (a cascade push re-offers it downstream).
    pub codec: Option<rtc::rtp_transceiver::rtp_sender::RTCRtpCodec>,
    pub video_codec: Option<VideoCodec>,
    pub pacer: KeyframeRequestPacer,
    /// The file this track is recorded to, when recording is on and the codec recordable.
    pub recording: Option<RecordedTrack>,
    /// Audio tracks: the level extension's id and the current averaging window.
    pub audio_level: super::audio_level::LevelWindow,
}

/// A track a subscriber receives.
#[derive(Debug)]
pub(crate) struct OutputTrack {
    pub kind: MediaKind,
    /// Which simulcast layer of the publisher's video this output receives.
    pub layer: super::LayerChoice,
    /// The feed this output receives (a subscriber may receive several: Janus `subscribe`).
    pub source: super::feed::FeedKey,
    /// Paused by the client (Janus `pause`): nothing is forwarded until it resumes.
    pub paused: bool,
    pub sender_id: RTCRtpSenderId,
    pub forwarder: OutputForwarder,
    /// What was sent, for NACKs and sender reports.
    pub sent: SentStream,
    /// Its own playout delay (video), before its publisher's.
    pub playout_delay: Option<super::playout_delay::DelaySetting>,
}

/// Role-specific state of a session.
#[derive(Debug)]
pub(crate) enum PeerMedia {
    Publisher { tracks: Vec<PublishedTrack> },
    Subscriber { outputs: Vec<OutputTrack> },
}

/// One session owned by the engine.
pub(crate) struct Peer {
    pub id: String,
    /// See [`super::OfferRequest::dialect`].
    pub dialect: &'static str,
    pub feed: super::feed::FeedKey,
    /// See [`super::OfferRequest::label`].
    pub label: Option<String>,
    pub pc: RTCPeerConnection,
    pub media: PeerMedia,
    pub state: RTCPeerConnectionState,
    pub created_at: SystemTime,
    pub opened_at: Instant,
    pub last_received: Instant,
    /// Our current ICE username fragment (it changes on ICE restart); the ETag derives from it.
    pub local_ufrag: String,
    /// The mid of the first m-section, used in ICE-restart answer fragments.
    pub first_mid: String,
    /// When the PeerConnection next wants `handle_timeout`.
    pub next_timeout: Option<Instant>,
    /// Whether the session is in the engine's to-drain list.
    pub queued: bool,
    /// Something besides the fan-out touched the session (a datagram, a timeout, a command),
    /// so its events and received messages must be polled too.
    pub input_pending: bool,
    /// ICE is connected (the PeerConnection state also waits for DTLS).
    pub ice_connected: bool,
    /// An ICE restart was applied and ICE has not reconnected since.
    pub ice_restarting: bool,
    /// A client nomination the agent has not answered yet (see `Engine::read_socket`).
    pub pending_nomination: Option<TaggedBytesMut>,
    /// Set when we offered this session to another server (a cascade).
    pub cascade: Option<super::cascade::Cascade>,
    /// A publisher's kinds not forwarded to anyone (Janus `moderate`, or the publisher's own
    /// `configure {video: false}`); still received, counted and recorded.
    pub muted: Vec<super::offer::MediaKind>,
    /// We offered this session (a cascade or a server-offer subscriber): as the full ICE agent
    /// we send the checks, so the remote's candidates must route to it.
    pub we_offered: bool,
    /// Each feed's tracks in a media stream of their own (see `sessions::stream_id`).
    pub stream_per_feed: bool,
    /// Send tracks of a session we offered, turned into outputs once the answer fixed their
    /// payload types.
    pub unanswered_tracks: Vec<(super::feed::FeedKey, super::sessions::AddedTrack)>,
    /// Candidates trickled before the answer to our offer arrived (rtc refuses them until
    /// then); added once it is applied.
    pub early_candidates: Vec<super::RemoteCandidate>,
    /// A publisher recording on its own account (Janus `record`), for tracks opening later.
    pub own_recording: Option<super::OwnRecording>,
    /// A subscriber leg's key tap, until its keys are known.
    pub srtp_keys: Option<std::sync::Arc<SrtpKeyTap>>,
    /// A connected subscriber leg's own SRTP context for forwarded RTP.
    pub egress: Option<SrtpEgress>,
    /// Where the session's datagrams go (the ICE-selected pair).
    pub route: Option<Route>,
    /// The SDP that settled its media: our answer, or the remote's answer to our offer (once
    /// it came; our offer before). Kept so snapshots need not re-render the description.
    pub settled_sdp: String,
    /// The playout-delay extension's id in `settled_sdp` (subscribers' video), if negotiated.
    pub playout_delay_ext: Option<u8>,
    /// Packets lost to or from it since last taken.
    pub loss: super::loss::SessionLoss,
}

impl Peer {
    /// A session whose local description is `local_sdp` (our answer, or our offer).
    pub fn new(
        id: String,
        dialect: &'static str,
        feed: super::feed::FeedKey,
        label: Option<String>,
        pc: RTCPeerConnection,
        media: PeerMedia,
        local_sdp: &str,
    ) -> Result<Self, MediaError> {
        let local_ufrag = super::offer::first_attribute(local_sdp, "ice-ufrag")
            .ok_or_else(|| MediaError::Internal("local description has no ice-ufrag".into()))?
            .to_owned();
        let first_mid = super::offer::first_attribute(local_sdp, "mid")
            .unwrap_or("0")
            .to_owned();
        let now = Instant::now();
        Ok(Self {
            id,
            dialect,
            feed,
            label,
            pc,
            media,
            state: RTCPeerConnectionState::New,
            created_at: SystemTime::now(),
            opened_at: now,
            last_received: now,
            local_ufrag,
            first_mid,
            next_timeout: None,
            queued: false,
            input_pending: false,
            ice_connected: false,
            ice_restarting: false,
            pending_nomination: None,
            early_candidates: Vec::new(),
            own_recording: None,
            cascade: None,
            muted: Vec::new(),
            we_offered: false,
            stream_per_feed: false,
            unanswered_tracks: Vec::new(),
            srtp_keys: None,
            egress: None,
            route: None,
            settled_sdp: local_sdp.to_owned(),
            playout_delay_ext: super::playout_delay::negotiated_id(local_sdp),
            loss: Default::default(),
        })
    }

    /// The SDP that settles its media now (see [`Peer::settled_sdp`]).
    pub fn settle(&mut self, sdp: String) {
        self.playout_delay_ext = super::playout_delay::negotiated_id(&sdp);
        self.settled_sdp = sdp;
    }

    pub fn role(&self) -> Role {
        match self.media {
            PeerMedia::Publisher { .. } => Role::Publisher,
            PeerMedia::Subscriber { .. } => Role::Subscriber,
        }
    }

    pub fn is_connected(&self) -> bool {
        self.state == RTCPeerConnectionState::Connected
    }

    /// Media is worth sending: connected (or `disconnected`, which rtc says after a late
    /// consent check while the client still sends RTCP) and heard from within
    /// [`FORWARD_SILENCE_LIMIT`]. A live client is never skipped (a gap it could not repair),
    /// a vanished one stops costing a forward long before its consent expires.
    pub fn can_receive_media(&self, now: Instant) -> bool {
        matches!(
            self.state,
            RTCPeerConnectionState::Connected | RTCPeerConnectionState::Disconnected
        ) && now.saturating_duration_since(self.last_received) < FORWARD_SILENCE_LIMIT
    }

    /// The strong entity tag of the current ICE session.
    pub fn etag(&self) -> String {
        format!("\"{}\"", self.local_ufrag)
    }

    /// Whether the session should be ended: failed or closed, silent past the consent timeout
    /// once connected, or never connected within the connect timeout.
    pub fn expired(
        &self,
        now: Instant,
        consent: Duration,
        connect: Duration,
    ) -> Option<&'static str> {
        match self.state {
            RTCPeerConnectionState::Failed => Some("connection failed"),
            RTCPeerConnectionState::Closed => Some("connection closed"),
            RTCPeerConnectionState::Connected | RTCPeerConnectionState::Disconnected => {
                (now.saturating_duration_since(self.last_received) > consent)
                    .then_some("consent expired")
            }
            _ => (now.saturating_duration_since(self.opened_at) > connect)
                .then_some("connect timeout"),
        }
    }
}
