//! The floor baseline: the least per-packet work any SFU must do on this machine — copy,
//! SSRC/sequence rewrite, SRTP protect with the negotiated profile, `sendmmsg` — in a tight
//! loop to 100 loopback destinations, costed the same way as the gateway: the scheduler's
//! runtime of the sending thread. This kernel has no IRQ time accounting, so the softirq work of
//! loopback delivery, done in the sender's context, is inside that runtime.
//!
//! That delivery work depends on the receiving sockets, so the floor runs with receivers set up
//! as the generator's subscriber legs are ([`Receivers::LikeSubscribers`]: in an epoll set,
//! with receive timestamps, which makes the kernel stamp every skb and run the epoll callback
//! on every delivery), and also with plain sockets drained by `recvmmsg`.

use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use rtc::srtp::context::Context;
use rtc::srtp::protection_profile::ProtectionProfile;
use serde::Serialize;

use crate::netio::{self, RecvBatch};
use crate::procstat;

const DESTINATIONS: usize = 100;
const PAYLOAD: usize = 1190;

/// How the floor's receiving sockets are set up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Receivers {
    /// As the generator's subscriber sockets: registered with epoll, `SO_TIMESTAMPNS` on.
    LikeSubscribers,
    /// Plain sockets, drained by trying `recvmmsg` on each in turn.
    Plain,
}

/// What the floor loop measured.
#[derive(Debug, Clone, Serialize)]
pub struct FloorResult {
    pub profile: String,
    pub receivers: Receivers,
    pub destinations: usize,
    pub packets: u64,
    pub thread_cpu_s: f64,
    /// Softirq time on the sender's CPU (tick-sampled, already inside `thread_cpu_s`).
    pub softirq_cpu_s: f64,
    pub ns_per_packet: f64,
    /// Packets per CPU-second: the floor's E.
    pub packets_per_cpu_second: f64,
}

/// Runs the floor loop for `duration` with the sender on `sender_cpu` and the receivers on
/// `drain_cpu`.
pub fn run(
    profile: ProtectionProfile,
    receivers_as: Receivers,
    duration: Duration,
    sender_cpu: usize,
    drain_cpu: usize,
) -> anyhow::Result<FloorResult> {
    let receivers: Vec<UdpSocket> = (0..DESTINATIONS)
        .map(|_| UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)))
        .collect::<Result<_, _>>()
        .context("binding floor receivers")?;
    let destinations: Vec<SocketAddrV4> = receivers
        .iter()
        .map(|s| match s.local_addr() {
            Ok(std::net::SocketAddr::V4(a)) => Ok(a),
            other => Err(anyhow::anyhow!("unexpected receiver address {other:?}")),
        })
        .collect::<Result<_, _>>()?;
    for r in &receivers {
        r.set_nonblocking(true)?;
        if receivers_as == Receivers::LikeSubscribers {
            netio::enable_receive_timestamps(r)?;
        }
    }
    let stop = Arc::new(AtomicBool::new(false));
    let drain_stop = stop.clone();
    let drain = std::thread::spawn(move || -> anyhow::Result<u64> {
        let _ = netio::pin_current_thread(drain_cpu);
        let mut batch = RecvBatch::default();
        let mut received = 0u64;
        match receivers_as {
            Receivers::Plain => {
                while !drain_stop.load(Ordering::Relaxed) {
                    for r in &receivers {
                        while let Ok(n) = batch.recv(r)
                            && n > 0
                        {
                            received += n as u64;
                        }
                    }
                }
            }
            Receivers::LikeSubscribers => {
                // The generator's loop: a spinning epoll wait, then drain what is readable.
                let mut poll = mio::Poll::new()?;
                let mut sockets: Vec<mio::net::UdpSocket> = receivers
                    .into_iter()
                    .map(mio::net::UdpSocket::from_std)
                    .collect();
                for (i, socket) in sockets.iter_mut().enumerate() {
                    poll.registry()
                        .register(socket, mio::Token(i), mio::Interest::READABLE)?;
                }
                let mut events = mio::Events::with_capacity(1024);
                while !drain_stop.load(Ordering::Relaxed) {
                    poll.poll(&mut events, Some(Duration::ZERO))?;
                    for event in events.iter() {
                        let Some(socket) = sockets.get(event.token().0) else {
                            continue;
                        };
                        while let Ok(n) = batch.recv(socket)
                            && n > 0
                        {
                            received += n as u64;
                        }
                    }
                }
            }
        }
        Ok(received)
    });

    let result = std::thread::scope(|scope| {
        scope
            .spawn(|| send_loop(profile, receivers_as, &destinations, duration, sender_cpu))
            .join()
            .map_err(|_| anyhow::anyhow!("floor sender panicked"))?
    });
    stop.store(true, Ordering::Relaxed);
    let _ = drain.join();
    result
}

fn send_loop(
    profile: ProtectionProfile,
    receivers: Receivers,
    destinations: &[SocketAddrV4],
    duration: Duration,
    cpu: usize,
) -> anyhow::Result<FloorResult> {
    netio::pin_current_thread(cpu).context("pinning the floor sender")?;
    let provider = rtc::crypto::default_provider().map_err(|e| anyhow::anyhow!("{e}"))?;
    let key = vec![7u8; profile.key_len()];
    let salt = vec![9u8; profile.salt_len()];
    let mut contexts: Vec<Context> = (0..destinations.len())
        .map(|_| Context::new(&key, &salt, profile, None, None, provider.crypto()))
        .collect::<Result<_, _>>()
        .map_err(|e| anyhow::anyhow!("SRTP context: {e}"))?;
    let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))?;
    let source_header = rtc::rtp::header::Header {
        version: 2,
        payload_type: 96,
        ssrc: 0x1234_5678,
        ..Default::default()
    };
    let mut source = vec![0u8; 12 + PAYLOAD];
    source[0] = 0x80;
    source[1] = 96;
    let mut scratch = source.clone();
    let mut protected: Vec<bytes::BytesMut> = Vec::with_capacity(netio::BATCH);
    let mut targets: Vec<SocketAddrV4> = Vec::with_capacity(netio::BATCH);

    let cpu0 = netio::thread_cpu_seconds();
    let soft0 = procstat::cpu_softirq_seconds(cpu)?;
    let start = Instant::now();
    let mut packets = 0u64;
    let mut seq = 0u16;
    while start.elapsed() < duration {
        // One source packet, fanned out to every destination.
        seq = seq.wrapping_add(1);
        for (i, dest) in destinations.iter().enumerate() {
            scratch.copy_from_slice(&source);
            let ssrc = 0x1000 + i as u32;
            scratch[2..4].copy_from_slice(&seq.to_be_bytes());
            scratch[8..12].copy_from_slice(&ssrc.to_be_bytes());
            let header = rtc::rtp::header::Header {
                ssrc,
                sequence_number: seq,
                ..source_header.clone()
            };
            let out = contexts[i]
                .encrypt_rtp_with_header(&scratch, &header)
                .map_err(|e| anyhow::anyhow!("SRTP: {e}"))?;
            protected.push(out);
            targets.push(*dest);
            if protected.len() == netio::BATCH {
                packets += flush(&socket, &mut protected, &mut targets) as u64;
            }
        }
    }
    packets += flush(&socket, &mut protected, &mut targets) as u64;
    let thread_cpu_s = netio::thread_cpu_seconds() - cpu0;
    let softirq_cpu_s = procstat::cpu_softirq_seconds(cpu)? - soft0;
    let cpu_s = thread_cpu_s.max(1e-9);
    Ok(FloorResult {
        profile: format!("{profile:?}"),
        receivers,
        destinations: destinations.len(),
        packets,
        thread_cpu_s,
        softirq_cpu_s,
        ns_per_packet: cpu_s * 1e9 / packets.max(1) as f64,
        packets_per_cpu_second: packets as f64 / cpu_s,
    })
}

fn flush(
    socket: &UdpSocket,
    protected: &mut Vec<bytes::BytesMut>,
    targets: &mut Vec<SocketAddrV4>,
) -> usize {
    let batch: Vec<(&[u8], SocketAddrV4)> = protected
        .iter()
        .zip(targets.iter())
        .map(|(p, t)| (&p[..], *t))
        .collect();
    let sent = netio::send_batch(socket, &batch);
    protected.clear();
    targets.clear();
    sent
}
