//! The handle signaling holds on the media thread: every request is a [`Command`] sent to it
//! and answered on a oneshot channel.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::mpsc;

use tokio::sync::oneshot;

use super::engine::{self, MediaStartError};
use super::{
    AudioLevel, CascadeEnded, DialOffer, DialRequest, IceRestartAnswer, LayerChoice, LoadGauge,
    MediaError, OfferRequest, PauseScope, PublisherLeave, RemoteCandidate, Renegotiated, Role,
    RoomSnapshot, RtpForwarderInfo, SessionAnswer, SessionEnded, SessionIce, Traffic, VideoTuning,
};
use crate::config::{RecordConfig, WebrtcConfig};

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
    /// Every session's lost packets since the previous such command.
    TakeLinkReports(oneshot::Sender<Vec<super::LinkReport>>),
    TuneVideo {
        room: String,
        session: String,
        tuning: VideoTuning,
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
        from: Option<String>,
        feed: String,
        reply: oneshot::Sender<Result<(), MediaError>>,
    },
    MutePublisher {
        room: String,
        session: String,
        scope: PauseScope,
        muted: bool,
        reply: oneshot::Sender<Result<(), MediaError>>,
    },
    AddRtpForwarder {
        room: String,
        feed: String,
        kind: String,
        destination: SocketAddr,
        ssrc: Option<u32>,
        payload_type: Option<u8>,
        reply: oneshot::Sender<Result<RtpForwarderInfo, MediaError>>,
    },
    RemoveRtpForwarder {
        room: String,
        feed: String,
        id: u32,
        reply: oneshot::Sender<bool>,
    },
    RtpForwarders(String, oneshot::Sender<Vec<RtpForwarderInfo>>),
    Renegotiate {
        room: String,
        session: String,
        add: Vec<String>,
        remove: Vec<String>,
        /// New ICE credentials in the offer (Janus `configure {restart}`).
        restart_ice: bool,
        reply: oneshot::Sender<Result<Renegotiated, MediaError>>,
    },
    Room(String, oneshot::Sender<Option<RoomSnapshot>>),
    /// Creates an empty room with its default feed (an operator provisioning a stream).
    CreateRoom(String, oneshot::Sender<Result<(), MediaError>>),
    /// Asks every publisher of a room, or the one session named, for a keyframe (paced as
    /// usual).
    RequestKeyframes(
        String,
        Option<String>,
        oneshot::Sender<Result<usize, MediaError>>,
    ),
    /// Record a room's new tracks (into `[record] dir`, or a sub-directory), or stop.
    RecordRoom(String, Option<Option<std::path::PathBuf>>),
    /// Record one publisher session's tracks, or stop (room, session).
    RecordPublisher(
        String,
        String,
        Option<super::OwnRecording>,
        oneshot::Sender<Result<(), MediaError>>,
    ),
    /// REMB of its cap to every publisher of a room.
    CapBitrate(String, super::BitrateCaps, oneshot::Sender<usize>),
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
    ReofferPublisher {
        room: String,
        session: String,
        offer_sdp: String,
        reply: oneshot::Sender<Result<String, MediaError>>,
    },
    Shutdown,
}

/// A cloneable handle to the media thread.
#[derive(Clone)]
pub struct MediaHandle {
    pub(super) commands: mpsc::Sender<Command>,
    pub(super) waker: Arc<mio::Waker>,
    pub(super) udp_addrs: Arc<Vec<SocketAddr>>,
    pub(super) cascade_endings:
        Arc<std::sync::Mutex<Option<tokio::sync::mpsc::UnboundedReceiver<CascadeEnded>>>>,
    pub(super) load: Arc<LoadGauge>,
    pub(super) ended: tokio::sync::broadcast::Sender<SessionEnded>,
    pub(super) audio_levels: tokio::sync::broadcast::Sender<AudioLevel>,
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

    /// Publishers' audio levels from now on (about every 2 s per publisher sending them).
    pub fn audio_levels(&self) -> tokio::sync::broadcast::Receiver<AudioLevel> {
        self.audio_levels.subscribe()
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

    /// A publisher's new offer on its live session; returns the answer.
    pub async fn reoffer_publisher(
        &self,
        room: &str,
        session: &str,
        offer_sdp: String,
    ) -> Result<String, MediaError> {
        self.ask(|reply| Command::ReofferPublisher {
            room: room.into(),
            session: session.into(),
            offer_sdp,
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

    /// Every session's lost packets (per kind and direction) and publishers' received ones
    /// since the previous call; one consumer (the Janus API's `slowlink` and `media` events).
    pub async fn take_link_reports(&self) -> Result<Vec<super::LinkReport>, MediaError> {
        self.ask(Command::TakeLinkReports).await
    }

    /// Changes how a session's video is forwarded (see [`VideoTuning`]).
    pub async fn tune_video(
        &self,
        room: &str,
        session: &str,
        tuning: VideoTuning,
    ) -> Result<(), MediaError> {
        self.ask(|reply| Command::TuneVideo {
            room: room.into(),
            session: session.into(),
            tuning,
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

    /// Moves a subscriber's outputs receiving feed `from` (all when `None`) to feed `feed` of
    /// its room, without renegotiation.
    pub async fn switch_feed(
        &self,
        room: &str,
        session: &str,
        from: Option<&str>,
        feed: &str,
    ) -> Result<(), MediaError> {
        self.ask(|reply| Command::SwitchFeed {
            room: room.into(),
            session: session.into(),
            from: from.map(str::to_owned),
            feed: feed.into(),
            reply,
        })
        .await?
    }

    /// Stops (`muted`) or resumes forwarding a publisher's media to all its subscribers.
    pub async fn mute_publisher(
        &self,
        room: &str,
        session: &str,
        scope: PauseScope,
        muted: bool,
    ) -> Result<(), MediaError> {
        self.ask(|reply| Command::MutePublisher {
            room: room.into(),
            session: session.into(),
            scope,
            muted,
            reply,
        })
        .await?
    }

    /// Starts a plain RTP copy of `kind` (`audio`/`video`) of a feed to `destination`.
    pub async fn add_rtp_forwarder(
        &self,
        room: &str,
        feed: &str,
        kind: &str,
        destination: SocketAddr,
        ssrc: Option<u32>,
        payload_type: Option<u8>,
    ) -> Result<RtpForwarderInfo, MediaError> {
        self.ask(|reply| Command::AddRtpForwarder {
            room: room.into(),
            feed: feed.into(),
            kind: kind.into(),
            destination,
            ssrc,
            payload_type,
            reply,
        })
        .await?
    }

    /// Stops a forwarder; `false` when it does not exist.
    pub async fn remove_rtp_forwarder(
        &self,
        room: &str,
        feed: &str,
        id: u32,
    ) -> Result<bool, MediaError> {
        self.ask(|reply| Command::RemoveRtpForwarder {
            room: room.into(),
            feed: feed.into(),
            id,
            reply,
        })
        .await
    }

    /// The forwarders of a room.
    pub async fn rtp_forwarders(&self, room: &str) -> Result<Vec<RtpForwarderInfo>, MediaError> {
        self.ask(|reply| Command::RtpForwarders(room.into(), reply))
            .await
    }

    /// Adds feeds to a subscriber we offered and removes others: the new offer, to be
    /// answered through [`MediaHandle::complete_dial`].
    pub async fn renegotiate(
        &self,
        room: &str,
        session: &str,
        add: Vec<String>,
        remove: Vec<String>,
        restart_ice: bool,
    ) -> Result<Renegotiated, MediaError> {
        self.ask(|reply| Command::Renegotiate {
            room: room.into(),
            session: session.into(),
            add,
            remove,
            restart_ice,
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

    /// Asks every publisher of `room` for a keyframe (Janus `fir_freq`); how many were asked.
    pub async fn request_keyframes(&self, room: &str) -> Result<usize, MediaError> {
        self.ask(|reply| Command::RequestKeyframes(room.into(), None, reply))
            .await?
    }

    /// Asks the publisher session `id` of `room` for a keyframe (paced like every request).
    pub async fn request_publisher_keyframe(&self, room: &str, id: &str) -> Result<(), MediaError> {
        self.ask(|reply| Command::RequestKeyframes(room.into(), Some(id.into()), reply))
            .await??;
        Ok(())
    }

    /// Tells every publisher of `room` to send at most its cap of video (REMB); how many were
    /// told.
    pub async fn cap_bitrate(
        &self,
        room: &str,
        caps: super::BitrateCaps,
    ) -> Result<usize, MediaError> {
        self.ask(|reply| Command::CapBitrate(room.into(), caps, reply))
            .await
    }

    /// Records publisher session `id`'s tracks (those open and those opening later) as
    /// `recording` says, or stops recording them.
    pub async fn record_publisher(
        &self,
        room: &str,
        id: &str,
        recording: Option<super::OwnRecording>,
    ) -> Result<(), MediaError> {
        self.ask(|reply| Command::RecordPublisher(room.into(), id.into(), recording, reply))
            .await?
    }

    /// Records the tracks `room`'s publishers open from now on, into `[record] dir` or its
    /// sub-directory `Some(subdir)`; `None` stops. Only a path's plain names count: nothing
    /// is written outside `[record] dir`.
    pub fn record_room(&self, room: &str, recording: Option<Option<std::path::PathBuf>>) {
        if self
            .commands
            .send(Command::RecordRoom(room.into(), recording))
            .is_ok()
        {
            let _ = self.waker.wake();
        }
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
    pub(super) join: std::thread::JoinHandle<()>,
}

impl MediaThread {
    /// Waits for the media thread to finish (blocking; call from `spawn_blocking`).
    pub fn join(self) {
        if self.join.join().is_err() {
            tracing::error!("media thread panicked");
        }
    }
}
