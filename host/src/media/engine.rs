//! The media thread: one poll loop owning the UDP socket(s), every PeerConnection and the rooms.
//!
//! Per wake-up: commands → readable sockets (`handle_read` into the routed session) → drain the
//! touched sessions (events, received media fanned out, datagrams sent) → due timeouts →
//! housekeeping (consent and connect timeouts).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

use rustc_hash::FxHashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use mio::{Events, Interest, Poll, Token, Waker};
use rtc::peer_connection::message::RTCMessage;
use rtc::sansio::Protocol;
use rtc::shared::{TaggedBytesMut, TransportContext, TransportProtocol};

use super::egress::{Datagrams, follows_selected_pair};
use super::feed::{Feed, FeedKey};
use super::load::{LoadGauge, LoadMeter};
use super::peer::{Peer, PeerFactory};
use super::record::Recorder;
use super::udp::{self, Demux, MediaSocket, bind_media_sockets};
use super::{Command, MediaError, MediaHandle, MediaThread, Traffic};
use crate::config::{RecordConfig, WebrtcConfig};

const WAKER: Token = Token(usize::MAX);
const HOUSEKEEPING_INTERVAL: Duration = Duration::from_millis(500);
const MAX_DATAGRAM: usize = 2048;

/// Why the media plane could not start.
#[derive(Debug, thiserror::Error)]
pub enum MediaStartError {
    #[error("cannot bind media UDP {addr}: {source}")]
    Bind { addr: SocketAddr, source: io::Error },
    #[error("cannot set up the media poll loop: {0}")]
    Poll(io::Error),
    #[error("cannot initialise WebRTC: {0}")]
    Init(MediaError),
    #[error("cannot record into {dir}: {source}")]
    Record {
        dir: std::path::PathBuf,
        source: io::Error,
    },
}

pub(super) fn start(
    config: &WebrtcConfig,
    record: &RecordConfig,
) -> Result<(MediaHandle, MediaThread), MediaStartError> {
    // With `[record] enabled` the directory must be usable from the start; rooms that record
    // on their own (Janus `record`) start the recorder when they need it.
    let recorder = match record.enabled {
        true => Some(
            std::fs::create_dir_all(&record.dir)
                .and_then(|()| Recorder::start())
                .map_err(|source| MediaStartError::Record {
                    dir: record.dir.clone(),
                    source,
                })?,
        ),
        false => None,
    };
    let sockets = bind_media_sockets(config.udp_listen, &config.public_ips).map_err(|source| {
        MediaStartError::Bind {
            addr: config.udp_listen,
            source,
        }
    })?;
    let poll = Poll::new().map_err(MediaStartError::Poll)?;
    let waker = Arc::new(Waker::new(poll.registry(), WAKER).map_err(MediaStartError::Poll)?);
    let advertised = sockets.iter().map(|s| s.advertised).collect();
    let factory =
        PeerFactory::new(advertised, config.nack_buffer_packets).map_err(MediaStartError::Init)?;
    let udp_addrs = Arc::new(sockets.iter().map(|s| s.bound).collect::<Vec<_>>());
    let (tx, rx) = mpsc::channel();
    let (cascade_ended, cascade_endings) = tokio::sync::mpsc::unbounded_channel();
    let load_gauge = Arc::new(LoadGauge::default());
    let (ended, _) = tokio::sync::broadcast::channel(SESSION_ENDINGS_KEPT);
    let (audio_levels, _) = tokio::sync::broadcast::channel(SESSION_ENDINGS_KEPT);
    let mut engine = Engine {
        poll,
        sockets,
        commands: rx,
        factory,
        config: config.clone(),
        peers: FxHashMap::default(),
        keys_by_id: HashMap::new(),
        feeds: HashMap::new(),
        demux: Demux::default(),
        next_key: 1,
        dirty: Vec::new(),
        doomed: Vec::new(),
        datagrams: Datagrams::default(),
        next_sender_reports: Instant::now(),
        timers: BinaryHeap::new(),
        deferred_keyframes: Vec::new(),
        removed_feeds_traffic: Traffic::default(),
        recorder,
        record_all: record.enabled,
        record_dir: record.dir.clone(),
        room_recordings: HashMap::new(),
        cascade_ended,
        load: LoadMeter::new(Instant::now(), load_gauge.clone()),
        ended: ended.clone(),
        audio_levels: audio_levels.clone(),
    };
    for (i, socket) in engine.sockets.iter_mut().enumerate() {
        engine
            .poll
            .registry()
            .register(&mut socket.socket, Token(i), Interest::READABLE)
            .map_err(MediaStartError::Poll)?;
    }
    for s in &engine.sockets {
        tracing::info!(bound = %s.bound, advertised = %s.advertised, "media UDP listening");
    }
    let join = std::thread::Builder::new()
        .name("gatehouse-media".into())
        .spawn(move || engine.run())
        .map_err(MediaStartError::Poll)?;
    let handle = MediaHandle {
        commands: tx,
        waker,
        udp_addrs,
        cascade_endings: Arc::new(std::sync::Mutex::new(Some(cascade_endings))),
        load: load_gauge,
        ended,
        audio_levels,
    };
    Ok((handle, MediaThread { join }))
}

/// Runs `f`, turning a panic (rtc has internal `unwrap`s on packet and SDP paths) into an
/// error, so one session's fault ends that session instead of the media thread.
pub(super) fn contained<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).map_err(|payload| {
        payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "panic".to_owned())
    })
}

pub(super) struct Engine {
    poll: Poll,
    pub(super) sockets: Vec<MediaSocket>,
    pub(super) commands: mpsc::Receiver<Command>,
    pub(super) factory: PeerFactory,
    pub(super) config: WebrtcConfig,
    /// Looked up several times per subscriber per packet: keyed by our own counter, so a fast
    /// non-DoS-resistant hash is safe.
    pub(super) peers: FxHashMap<u64, Peer>,
    pub(super) keys_by_id: HashMap<String, u64>,
    pub(super) feeds: HashMap<FeedKey, Feed>,
    pub(super) demux: Demux,
    pub(super) next_key: u64,
    /// Sessions touched since they were last drained.
    pub(super) dirty: Vec<u64>,
    /// Sessions to end after the current step (their PeerConnection panicked).
    doomed: Vec<(u64, String)>,
    pub(super) datagrams: Datagrams,
    /// When subscriber outputs' RTCP sender reports are next due.
    pub(super) next_sender_reports: Instant,
    /// Session timeouts, earliest first; an entry is live while it equals the session's
    /// `next_timeout` (lazy deletion keeps each update O(log n)).
    timers: BinaryHeap<Reverse<(Instant, u64)>>,
    /// Keyframe requests held back by pacing: (when to send, publisher).
    pub(super) deferred_keyframes: Vec<(Instant, u64)>,
    /// Traffic of feeds that no longer exist (totals stay monotonic).
    pub(super) removed_feeds_traffic: Traffic,
    /// Started with `[record] enabled` or by the first room that records; dropped (files
    /// finalized) when the thread stops.
    pub(super) recorder: Option<Recorder>,
    /// `[record]`: every room is recorded (`enabled`) into `dir`.
    pub(super) record_all: bool,
    pub(super) record_dir: std::path::PathBuf,
    /// Rooms recorded on their own account (Janus `record`), into these directories.
    pub(super) room_recordings: HashMap<String, std::path::PathBuf>,
    /// Where ended cascade sessions are reported, for their remote side to be deleted.
    pub(super) cascade_ended: tokio::sync::mpsc::UnboundedSender<super::CascadeEnded>,
    /// This thread's busy time, for subscriber admission past saturation.
    pub(super) load: LoadMeter,
    /// Where ended sessions are announced (see [`MediaHandle::session_endings`]).
    pub(super) ended: tokio::sync::broadcast::Sender<super::SessionEnded>,
    /// Where publishers' audio levels are announced (see [`MediaHandle::audio_levels`]).
    pub(super) audio_levels: tokio::sync::broadcast::Sender<super::AudioLevel>,
}

/// Ended sessions a slow listener of [`MediaHandle::session_endings`] may fall behind by.
const SESSION_ENDINGS_KEPT: usize = 1024;

impl Engine {
    fn run(mut self) {
        let mut events = Events::with_capacity(64);
        let mut buf = vec![0u8; MAX_DATAGRAM];
        let mut next_housekeeping = Instant::now() + HOUSEKEEPING_INTERVAL;
        loop {
            let now = Instant::now();
            let mut deadline = self
                .next_deadline()
                .min(next_housekeeping)
                .min(self.next_sender_reports);
            if let Some(at) = self.deferred_keyframes.iter().map(|(at, _)| *at).min() {
                deadline = deadline.min(at);
            }
            let timeout = deadline.saturating_duration_since(now);
            self.load.work_ends(now);
            if let Err(e) = self.poll.poll(&mut events, Some(timeout))
                && e.kind() != io::ErrorKind::Interrupted
            {
                tracing::error!(error = %e, "media poll failed; stopping media thread");
                break;
            }
            self.load.work_starts(Instant::now());
            for event in events.iter() {
                if event.token() == WAKER {
                    continue;
                }
                self.read_socket(event.token().0, &mut buf);
            }
            if !self.run_commands() {
                break;
            }
            let now = Instant::now();
            self.run_timeouts(now);
            self.send_deferred_keyframe_requests(now);
            if now >= self.next_sender_reports {
                self.send_sender_reports(now);
            }
            if now >= next_housekeeping {
                self.housekeeping(now);
                next_housekeeping = now + HOUSEKEEPING_INTERVAL;
            }
            self.drain_dirty();
        }
        self.close_all();
        self.send_outbox();
        tracing::info!(
            dropped_sends = self.datagrams.dropped,
            "media thread stopped"
        );
    }

    /// The session `id` if it exists in `room`.
    pub(super) fn find(&self, room: &str, id: &str) -> Result<u64, MediaError> {
        self.keys_by_id
            .get(id)
            .copied()
            .filter(|key| self.peers.get(key).is_some_and(|p| p.feed.room == room))
            .ok_or_else(|| MediaError::SessionNotFound(id.to_owned()))
    }

    /// Session `id` of `room` and its key.
    pub(super) fn find_peer(
        &mut self,
        room: &str,
        id: &str,
    ) -> Result<(u64, &mut Peer), MediaError> {
        let key = self.find(room, id)?;
        self.peers
            .get_mut(&key)
            .map(|peer| (key, peer))
            .ok_or_else(|| MediaError::SessionNotFound(id.to_owned()))
    }

    fn read_socket(&mut self, index: usize, buf: &mut [u8]) {
        loop {
            let Some(socket) = self.sockets.get(index) else {
                return;
            };
            let (len, peer_addr) = match socket.socket.recv_from(buf) {
                Ok(received) => received,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    // ICMP errors (port unreachable) surface here on Linux; not fatal.
                    tracing::trace!(error = %e, "media socket receive error");
                    continue;
                }
            };
            let local_addr = socket.advertised;
            let datagram = &buf[..len];
            let Some(key) = self.demux.route(datagram, peer_addr) else {
                continue;
            };
            let Some(peer) = self.peers.get_mut(&key) else {
                continue;
            };
            let now = Instant::now();
            peer.last_received = now;
            let message = TaggedBytesMut {
                now,
                transport: TransportContext {
                    local_addr,
                    peer_addr,
                    ecn: None,
                    transport_protocol: TransportProtocol::UDP,
                },
                message: BytesMut::from(datagram),
            };
            // rtc-ice 0.21.1 answers a nomination (USE-CANDIDATE) only once its own triggered
            // check of that pair succeeded, even as an ICE-lite agent; the client then waits
            // for its retransmission timer (500 ms with aiortc). Keep the nomination and feed
            // it again when that check's success response arrives.
            let nomination = !peer.ice_connected && udp::is_stun_nomination(datagram);
            let replay = match udp::is_stun_binding_success(datagram) {
                true => peer.pending_nomination.take(),
                false => None,
            };
            if nomination {
                peer.pending_nomination = Some(TaggedBytesMut {
                    now,
                    transport: message.transport,
                    message: BytesMut::from(datagram),
                });
            }
            let handled = contained(|| {
                if let Err(e) = peer.pc.handle_read(message) {
                    tracing::debug!(session = %peer.id, error = %e, "datagram rejected");
                }
                if let Some(mut stored) = replay {
                    stored.now = now;
                    if let Err(e) = peer.pc.handle_read(stored) {
                        tracing::debug!(session = %peer.id, error = %e, "nomination replay rejected");
                    }
                }
            });
            match handled {
                Ok(()) => self.mark_dirty(key),
                Err(panic) => self.doom(key, format!("datagram handling panicked: {panic}")),
            }
        }
    }

    /// Queues a session for a full drain: events, received media and datagrams to send.
    pub(super) fn mark_dirty(&mut self, key: u64) {
        if let Some(peer) = self.peers.get_mut(&key) {
            peer.input_pending = true;
            if !peer.queued {
                peer.queued = true;
                self.dirty.push(key);
            }
        }
    }

    /// Drains every touched session until none is left (forwarding marks subscribers dirty).
    pub(super) fn drain_dirty(&mut self) {
        while let Some(key) = self.dirty.pop() {
            if let Some(peer) = self.peers.get_mut(&key) {
                peer.queued = false;
            }
            if let Err(panic) = contained(|| self.drain(key)) {
                self.doom(key, format!("session processing panicked: {panic}"));
            }
        }
        for (key, why) in std::mem::take(&mut self.doomed) {
            tracing::error!(%why, "ending session after an internal fault");
            self.close(
                key,
                "internal fault",
                super::PublisherLeave::IdleSubscribers,
            );
        }
        self.send_outbox();
    }

    /// Marks a session to be ended once the current step is over.
    pub(super) fn doom(&mut self, key: u64, why: String) {
        if let Some(peer) = self.peers.get_mut(&key) {
            peer.queued = true; // never drained again
        }
        self.doomed.push((key, why));
    }

    fn drain(&mut self, key: u64) {
        let Some(peer) = self.peers.get_mut(&key) else {
            return;
        };
        if !std::mem::take(&mut peer.input_pending) {
            // Only written to by the fan-out: nothing to read, just datagrams to send.
            self.flush(key);
            return;
        }
        while let Some(event) = self.peers.get_mut(&key).and_then(|p| p.pc.poll_event()) {
            self.on_event(key, event);
        }
        let mut received = Vec::new();
        while let Some(message) = self.peers.get_mut(&key).and_then(|p| p.pc.poll_read()) {
            match message.message {
                RTCMessage::RtpPacket(track_id, packet) => received.push((track_id, packet)),
                RTCMessage::RtcpPacket(_, packets) => self.on_rtcp_feedback(key, &packets),
                _ => {}
            }
        }
        if !received.is_empty() {
            self.fan_out(key, received);
        }
        self.flush(key);
    }

    /// Sends every datagram a session has ready and refreshes its timer.
    pub(super) fn flush(&mut self, key: u64) {
        let Some(peer) = self.peers.get_mut(&key) else {
            return;
        };
        while let Some(out) = peer.pc.poll_write() {
            let socket = match self.sockets.len() {
                1 => 0,
                _ => self
                    .sockets
                    .iter()
                    .position(|s| s.advertised == out.transport.local_addr)
                    .unwrap_or(0),
            };
            if follows_selected_pair(&out.message) {
                peer.route = Some((socket, out.transport.peer_addr));
            }
            self.datagrams
                .push(&self.sockets, socket, out.message, out.transport.peer_addr);
        }
        let next = peer.pc.poll_timeout();
        if next != peer.next_timeout {
            peer.next_timeout = next;
            if let Some(at) = next {
                self.timers.push(Reverse((at, key)));
            }
        }
    }

    /// Sends every queued datagram (batched `sendmmsg`).
    pub(super) fn send_outbox(&mut self) {
        self.datagrams.flush(&self.sockets);
    }

    /// The earliest session timeout (entries that no longer match their session are stale).
    fn next_deadline(&mut self) -> Instant {
        let far = Instant::now() + Duration::from_secs(1);
        while let Some(Reverse((at, key))) = self.timers.peek().copied() {
            if self
                .peers
                .get(&key)
                .is_some_and(|p| p.next_timeout == Some(at))
            {
                return at.min(far);
            }
            self.timers.pop();
        }
        far
    }

    fn run_timeouts(&mut self, now: Instant) {
        while let Some(Reverse((at, key))) = self.timers.peek().copied() {
            if at > now {
                break;
            }
            self.timers.pop();
            let Some(peer) = self.peers.get_mut(&key) else {
                continue;
            };
            if peer.next_timeout != Some(at) {
                continue; // stale: the session's timeout moved since
            }
            peer.next_timeout = None;
            let handled = contained(|| {
                if let Err(e) = peer.pc.handle_timeout(now) {
                    tracing::debug!(session = %peer.id, error = %e, "timeout handling failed");
                }
            });
            match handled {
                Ok(()) => self.mark_dirty(key),
                Err(panic) => self.doom(key, format!("timeout handling panicked: {panic}")),
            }
        }
    }

    fn housekeeping(&mut self, now: Instant) {
        let consent = Duration::from_secs(self.config.consent_timeout_secs);
        let connect = Duration::from_secs(self.config.connect_timeout_secs);
        let expired: Vec<(u64, &'static str)> = self
            .peers
            .iter()
            .filter_map(|(k, p)| p.expired(now, consent, connect).map(|why| (*k, why)))
            .collect();
        for (key, why) in expired {
            self.close(key, why, super::PublisherLeave::IdleSubscribers);
        }
    }

    fn close_all(&mut self) {
        let keys: Vec<u64> = self.peers.keys().copied().collect();
        for key in keys {
            self.close(key, "shutdown", super::PublisherLeave::IdleSubscribers);
        }
    }
}
