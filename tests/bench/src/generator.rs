//! The load generator's poll loop: one synthetic WHIP publisher and N WHEP subscribers in one
//! thread, each on its own loopback socket.

use std::collections::VecDeque;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use bytes::BytesMut;
use hdrhistogram::Histogram;
use mio::{Events, Interest, Poll, Token, Waker};
use rtc::peer_connection::RTCPeerConnection;
use rtc::peer_connection::event::RTCPeerConnectionEvent;
use rtc::peer_connection::message::RTCMessage;
use rtc::peer_connection::state::RTCPeerConnectionState;
use rtc::sansio::Protocol;
use rtc::shared::{TaggedBytesMut, TransportContext, TransportProtocol};

use crate::client::{self, ClientFactory, OPUS_PT, PublisherPc, VP8_PT};
use crate::netio::{self, RecvBatch};
use crate::signaling::{Request, Signaling};
use crate::stream::{SyntheticPacket, SyntheticStream};
use crate::subscriber::{ClearRtp, LegState, SubscriberLeg};

const WAKER: Token = Token(usize::MAX);
const PUBLISHER: Token = Token(usize::MAX - 1);
const TICK: Duration = Duration::from_millis(5);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
/// Video leaves at 2.5 × the 2 Mb/s target, as libwebrtc's pacer sends it (a keyframe is spread
/// over ~80 ms instead of one 48 kB burst); audio is not paced.
const PACING_BITS_PER_SECOND: u64 = 5_000_000;

/// Publisher send times by sequence number, for latency matching.
struct SendLog {
    video: Vec<(u16, u64)>,
    audio: Vec<(u16, u64)>,
}

impl SendLog {
    fn new() -> Self {
        Self {
            video: vec![(0, 0); 1 << 16],
            audio: vec![(0, 0); 1 << 16],
        }
    }

    fn record(&mut self, video: bool, seq: u16, ns: u64) {
        let log = if video {
            &mut self.video
        } else {
            &mut self.audio
        };
        log[seq as usize] = (seq, ns);
    }

    fn sent_at(&self, video: bool, seq: u16) -> Option<u64> {
        let log = if video { &self.video } else { &self.audio };
        let (s, ns) = log[seq as usize];
        (s == seq && ns != 0).then_some(ns)
    }
}

struct PublisherLeg {
    pc: PublisherPc,
    socket: mio::net::UdpSocket,
    local: SocketAddr,
    stream: Option<SyntheticStream>,
    paced: VecDeque<SyntheticPacket>,
    next_paced_send: Instant,
    state: LegState,
    session_url: Option<String>,
    keyframe_requests: u64,
}

/// Latency and delivery measured over a window.
pub struct Window {
    pub latency_us: Histogram<u64>,
    pub unmatched: u64,
}

/// The generator: publisher, subscribers, signaling.
pub struct Generator {
    poll: Poll,
    signaling: Signaling,
    factory: ClientFactory,
    whip_url: String,
    whep_url: String,
    publisher: Option<PublisherLeg>,
    /// Indexed by token; `None` once removed.
    pub subscribers: Vec<Option<SubscriberLeg>>,
    join_queue: VecDeque<(Instant, bool)>,
    send_log: SendLog,
    pub window: Option<Window>,
    batch: RecvBatch,
    due: Vec<SyntheticPacket>,
    /// Poll without sleeping (see `run`).
    pub spin: bool,
    /// Time spent handling events (the generator's real load while spinning).
    pub busy: Duration,
}

fn bind_loopback() -> anyhow::Result<(mio::net::UdpSocket, SocketAddr)> {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::DGRAM, None)?;
    socket.set_nonblocking(true)?;
    let _ = socket.set_recv_buffer_size(4 * 1024 * 1024);
    socket.bind(&SocketAddr::from((Ipv4Addr::LOCALHOST, 0)).into())?;
    let socket = mio::net::UdpSocket::from_std(socket.into());
    let local = socket.local_addr()?;
    Ok((socket, local))
}

fn tagged(now: Instant, local: SocketAddr, peer: SocketAddr, data: &[u8]) -> TaggedBytesMut {
    TaggedBytesMut {
        now,
        transport: TransportContext {
            local_addr: local,
            peer_addr: peer,
            ecn: None,
            transport_protocol: TransportProtocol::UDP,
        },
        message: BytesMut::from(data),
    }
}

fn send_packet(p: &mut PublisherLeg, log: &mut SendLog, packet: SyntheticPacket, now: Instant) {
    let (sender, ssrc, pt) = if packet.video {
        (p.pc.video, p.pc.video_ssrc, VP8_PT)
    } else {
        (p.pc.audio, p.pc.audio_ssrc, OPUS_PT)
    };
    let rtp = rtc::rtp::Packet {
        header: rtc::rtp::header::Header {
            version: 2,
            marker: packet.marker,
            payload_type: pt,
            sequence_number: packet.sequence_number,
            timestamp: packet.timestamp,
            ssrc,
            ..Default::default()
        },
        payload: packet.payload.into(),
    };
    if let Some(mut s) = p.pc.pc.rtp_sender(sender) {
        let _ = s.write_rtp(now, rtp);
    }
    // Taken before the send: loopback delivers into the gateway's socket during the call.
    let sent = netio::realtime_ns();
    send_all(&mut p.pc.pc, &p.socket);
    log.record(packet.video, packet.sequence_number, sent);
}

fn send_all(pc: &mut RTCPeerConnection, socket: &mio::net::UdpSocket) {
    while let Some(out) = pc.poll_write() {
        let _ = socket.send_to(&out.message, out.transport.peer_addr);
    }
}

impl Generator {
    pub fn new(base_url: &str, stream: &str, factory: ClientFactory) -> anyhow::Result<Self> {
        let poll = Poll::new()?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        let signaling = Signaling::start(waker)?;
        Ok(Self {
            poll,
            signaling,
            factory,
            whip_url: format!("{base_url}/v1/whip/{stream}"),
            whep_url: format!("{base_url}/v1/whep/{stream}"),
            publisher: None,
            subscribers: Vec::new(),
            join_queue: VecDeque::new(),
            send_log: SendLog::new(),
            window: None,
            batch: RecvBatch::default(),
            due: Vec::new(),
            spin: true,
            busy: Duration::ZERO,
        })
    }

    /// Offers the publisher to the gateway.
    pub fn start_publisher(&mut self) -> anyhow::Result<()> {
        let (mut socket, local) = bind_loopback()?;
        self.poll
            .registry()
            .register(&mut socket, PUBLISHER, Interest::READABLE)?;
        let pc = self.factory.publisher(local)?;
        self.signaling.send(Request::Offer {
            tag: usize::MAX,
            url: self.whip_url.clone(),
            sdp: pc.offer.clone(),
        });
        self.publisher = Some(PublisherLeg {
            pc,
            socket,
            local,
            stream: None,
            paced: VecDeque::new(),
            next_paced_send: Instant::now(),
            state: LegState::Signaling,
            session_url: None,
            keyframe_requests: 0,
        });
        Ok(())
    }

    pub fn publisher_state(&self) -> Option<&LegState> {
        self.publisher.as_ref().map(|p| &p.state)
    }

    pub fn keyframe_requests(&self) -> u64 {
        self.publisher.as_ref().map_or(0, |p| p.keyframe_requests)
    }

    /// Schedules `count` subscribers `spacing` apart, starting now.
    pub fn schedule_joins(&mut self, count: usize, spacing: Duration, late_joiner: bool) {
        let now = Instant::now();
        for i in 0..count {
            self.join_queue
                .push_back((now + spacing * i as u32, late_joiner));
        }
    }

    pub fn joins_pending(&self) -> bool {
        !self.join_queue.is_empty()
    }

    fn join(&mut self, late_joiner: bool) -> anyhow::Result<()> {
        let (mut socket, local) = bind_loopback()?;
        let index = self.subscribers.len();
        self.poll
            .registry()
            .register(&mut socket, Token(index), Interest::READABLE)?;
        netio::enable_receive_timestamps(&socket)?;
        let (pc, offer) = self.factory.subscriber(local)?;
        let now = Instant::now();
        self.subscribers.push(Some(SubscriberLeg::new(
            socket,
            local,
            pc,
            late_joiner,
            now,
        )));
        self.signaling.send(Request::Offer {
            tag: index,
            url: self.whep_url.clone(),
            sdp: offer,
        });
        Ok(())
    }

    /// Ends the subscribers `which` selects (DELETE on the gateway, socket closed).
    pub fn remove_subscribers(&mut self, which: impl Fn(&SubscriberLeg) -> bool) {
        for slot in &mut self.subscribers {
            if slot.as_ref().is_some_and(&which)
                && let Some(mut leg) = slot.take()
            {
                let _ = self.poll.registry().deregister(&mut leg.socket);
                if let Some(url) = leg.session_url.take() {
                    self.signaling.send(Request::Delete { url });
                }
            }
        }
    }

    /// Ends every session and stops the signaling worker.
    pub fn shutdown(mut self) {
        self.remove_subscribers(|_| true);
        if let Some(url) = self.publisher.take().and_then(|p| p.session_url) {
            self.signaling.send(Request::Delete { url });
        }
        self.signaling.finish();
    }

    pub fn legs(&self) -> impl Iterator<Item = &SubscriberLeg> {
        self.subscribers.iter().flatten()
    }

    /// Runs the loop until `until` or `done(self)`.
    pub fn run(&mut self, until: Instant, done: impl Fn(&Generator) -> bool) -> anyhow::Result<()> {
        let mut events = Events::with_capacity(1024);
        let mut next_tick = Instant::now();
        loop {
            let now = Instant::now();
            if now >= until || done(self) {
                return Ok(());
            }
            let mut wake_at = until.min(next_tick);
            if let Some(p) = self.publisher.as_ref()
                && let Some(stream) = p.stream.as_ref()
            {
                wake_at = wake_at.min(stream.next_due());
                if !p.paced.is_empty() {
                    wake_at = wake_at.min(p.next_paced_send);
                }
            }
            if let Some((t, _)) = self.join_queue.front() {
                wake_at = wake_at.min(*t);
            }
            // Spin instead of sleeping: a sleeping receiver makes every loopback send pay a
            // cross-CPU wake-up (~12% of the gateway's CPU, measured), which the floor's
            // receivers do not pay and a NIC would not either.
            let timeout = match self.spin {
                true => Duration::ZERO,
                false => wake_at.saturating_duration_since(now),
            };
            self.poll
                .poll(&mut events, Some(timeout))
                .context("generator poll")?;
            let busy_from = Instant::now();
            let had_events = !events.is_empty();
            for event in events.iter() {
                match event.token() {
                    WAKER => self.on_replies(),
                    PUBLISHER => self.read_publisher(),
                    Token(i) => self.read_subscriber(i),
                }
            }
            let now = Instant::now();
            while self.join_queue.front().is_some_and(|(t, _)| *t <= now) {
                if let Some((_, late)) = self.join_queue.pop_front() {
                    self.join(late)?;
                }
            }
            self.send_media(now);
            if now >= next_tick {
                self.tick(now);
                next_tick = now + TICK;
            }
            if had_events {
                self.busy += busy_from.elapsed();
            }
        }
    }

    fn on_replies(&mut self) {
        while let Ok(reply) = self.signaling.replies.try_recv() {
            let (pc, state, session_url) = if reply.tag == usize::MAX {
                match self.publisher.as_mut() {
                    Some(p) => (&mut p.pc.pc, &mut p.state, &mut p.session_url),
                    None => continue,
                }
            } else {
                match self.subscribers.get_mut(reply.tag).and_then(Option::as_mut) {
                    Some(leg) => (&mut leg.pc, &mut leg.state, &mut leg.session_url),
                    None => continue,
                }
            };
            match reply.result.and_then(|answer| {
                *session_url = Some(answer.session_url);
                client::apply_answer(pc, answer.sdp)
            }) {
                Ok(()) => *state = LegState::Connecting,
                Err(e) if e.is::<crate::signaling::Refused>() => *state = LegState::Refused,
                Err(e) => *state = LegState::Failed(format!("{e:#}")),
            }
            if reply.tag == usize::MAX {
                self.flush_publisher();
            } else {
                self.flush_subscriber(reply.tag, reply.at);
            }
        }
    }

    fn read_publisher(&mut self) {
        let Some(p) = self.publisher.as_mut() else {
            return;
        };
        loop {
            let n = match self.batch.recv(&p.socket) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            let now = Instant::now();
            for i in 0..n {
                if let Some((data, from)) = self.batch.get(i) {
                    let _ = p.pc.pc.handle_read(tagged(now, p.local, from, data));
                }
            }
        }
        self.flush_publisher();
    }

    fn flush_publisher(&mut self) {
        let Some(p) = self.publisher.as_mut() else {
            return;
        };
        while let Some(event) = p.pc.pc.poll_event() {
            if let RTCPeerConnectionEvent::OnConnectionStateChangeEvent(state) = event {
                match state {
                    RTCPeerConnectionState::Connected => {
                        p.state = LegState::Connected;
                        p.stream
                            .get_or_insert_with(|| SyntheticStream::new(Instant::now()));
                    }
                    RTCPeerConnectionState::Failed | RTCPeerConnectionState::Closed => {
                        p.state = LegState::Failed(format!("publisher {state}"));
                    }
                    _ => {}
                }
            }
        }
        while let Some(message) = p.pc.pc.poll_read() {
            if let RTCMessage::RtcpPacket(_, _) = message.message {
                p.keyframe_requests += 1;
                if let Some(stream) = p.stream.as_mut() {
                    stream.request_keyframe();
                }
            }
        }
        send_all(&mut p.pc.pc, &p.socket);
    }

    fn send_media(&mut self, now: Instant) {
        let Some(p) = self.publisher.as_mut() else {
            return;
        };
        let Some(stream) = p.stream.as_mut() else {
            return;
        };
        if stream.next_due() <= now {
            self.due.clear();
            stream.due_packets(now, &mut self.due);
            for packet in self.due.drain(..) {
                if packet.video {
                    p.paced.push_back(packet);
                } else {
                    send_packet(p, &mut self.send_log, packet, now);
                }
            }
        }
        while p.next_paced_send <= now {
            let Some(packet) = p.paced.pop_front() else {
                break;
            };
            let bits = (packet.payload.len() as u64 + 40) * 8;
            p.next_paced_send = p.next_paced_send.max(now.checked_sub(TICK).unwrap_or(now))
                + Duration::from_nanos(bits * 1_000_000_000 / PACING_BITS_PER_SECOND);
            send_packet(p, &mut self.send_log, packet, now);
        }
    }

    fn read_subscriber(&mut self, index: usize) {
        loop {
            let Some(leg) = self.subscribers.get_mut(index).and_then(Option::as_mut) else {
                return;
            };
            let n = match self.batch.recv(&leg.socket) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            let now = Instant::now();
            let fallback_ns = netio::realtime_ns();
            for i in 0..n {
                let Some((data, from)) = self.batch.get(i) else {
                    continue;
                };
                let now_ns = self.batch.stamp(i).unwrap_or(fallback_ns);
                leg.remote.get_or_insert(from);
                let feed = match ClearRtp::parse(data) {
                    Some(rtp) => match leg.on_clear_rtp(rtp, now) {
                        Some(counted) => {
                            if let (Some(seq), Some(window)) =
                                (counted.publisher_seq, self.window.as_mut())
                                && !leg.late_joiner
                            {
                                match self.send_log.sent_at(counted.video, seq) {
                                    Some(sent) if now_ns >= sent => {
                                        let us = (now_ns - sent) / 1000;
                                        let _ = window.latency_us.record(us.max(1));
                                    }
                                    _ => window.unmatched += 1,
                                }
                            }
                            counted.decrypt
                        }
                        None => true,
                    },
                    None => true,
                };
                if feed {
                    let _ = leg.pc.handle_read(tagged(now, leg.local, from, data));
                    // Events first: rtc installs the SRTP keys when its handshake-complete
                    // event is polled, and media may follow the DTLS Finished in this batch.
                    leg.poll_events(now);
                    while let Some(message) = leg.pc.poll_read() {
                        if let RTCMessage::RtpPacket(_, packet) = message.message {
                            leg.on_decrypted(&packet, now);
                        }
                    }
                }
            }
        }
        self.flush_subscriber(index, Instant::now());
    }

    fn flush_subscriber(&mut self, index: usize, now: Instant) {
        let Some(leg) = self.subscribers.get_mut(index).and_then(Option::as_mut) else {
            return;
        };
        leg.poll_events(now);
        while let Some(message) = leg.pc.poll_read() {
            if let RTCMessage::RtpPacket(_, packet) = message.message {
                leg.on_decrypted(&packet, now);
            }
        }
        send_all(&mut leg.pc, &leg.socket);
    }

    fn tick(&mut self, now: Instant) {
        if let Some(p) = self.publisher.as_mut()
            && p.pc.pc.poll_timeout().is_some_and(|t| t <= now)
        {
            let _ = p.pc.pc.handle_timeout(now);
            self.flush_publisher();
        }
        for index in 0..self.subscribers.len() {
            let Some(leg) = self.subscribers[index].as_mut() else {
                continue;
            };
            if matches!(leg.state, LegState::Signaling | LegState::Connecting)
                && now.duration_since(leg.posted_at) > CONNECT_TIMEOUT
            {
                leg.state = LegState::Failed("connect timeout".into());
            }
            if leg.pc.poll_timeout().is_some_and(|t| t <= now) {
                let _ = leg.pc.handle_timeout(now);
                self.flush_subscriber(index, now);
            }
        }
    }

    /// Starts a measurement window.
    pub fn begin_window(&mut self) -> anyhow::Result<()> {
        self.window = Some(Window {
            latency_us: Histogram::new_with_bounds(1, 60_000_000, 3)
                .context("latency histogram")?,
            unmatched: 0,
        });
        Ok(())
    }
}
