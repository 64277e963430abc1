//! Datagrams waiting to leave, sent with one `sendmmsg` per batch instead of one `sendto` each
//! (fan-out produces hundreds per publisher packet; std and mio have no batched send), with a
//! subscriber's consecutive same-size datagrams segmented by the kernel (UDP GSO).

use std::io;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::BytesMut;
use socket2::SockAddr;

/// Datagrams per `sendmmsg` call (the kernel's UIO_MAXIOV is far larger; 32 keeps the first
/// subscriber's packet from waiting on the last one's encryption).
pub(crate) const BATCH: usize = 32;

/// One datagram: which of the engine's sockets sends it, the bytes, the destination.
struct Pending {
    socket: usize,
    payload: BytesMut,
    destination: SockAddr,
}

/// What happened to the datagrams of one flush.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SendTally {
    pub sent: u64,
    /// Dropped because the socket buffer was full.
    pub dropped: u64,
}

#[derive(Default)]
pub(crate) struct Outbox {
    pending: Vec<Pending>,
}

impl Outbox {
    pub fn push(&mut self, socket: usize, payload: BytesMut, destination: SocketAddr) {
        self.pending.push(Pending {
            socket,
            payload,
            destination: destination.into(),
        });
    }

    pub fn is_full(&self) -> bool {
        self.pending.len() >= BATCH
    }

    /// Sends everything queued; `socket_of(i)` gives the engine's socket `i`.
    pub fn flush<'a, S: AsRawFd + 'a>(
        &mut self,
        socket_of: impl Fn(usize) -> Option<&'a S>,
    ) -> SendTally {
        let mut tally = SendTally::default();
        let mut start = 0;
        while start < self.pending.len() {
            let index = self.pending[start].socket;
            let end = self.pending[start..]
                .iter()
                .position(|p| p.socket != index)
                .map_or(self.pending.len(), |n| start + n)
                .min(start + BATCH);
            match socket_of(index) {
                Some(socket) => {
                    let sent = send_run(socket, &self.pending[start..end]);
                    tally.sent += sent as u64;
                    tally.dropped += (end - start - sent) as u64;
                }
                None => tally.dropped += (end - start) as u64,
            }
            start = end;
        }
        self.pending.clear();
        tally
    }
}

/// Linux `UDP_SEGMENT` (not exported by libc for glibc targets).
const UDP_SEGMENT: libc::c_int = 103;
/// The kernel's cap on segments in one GSO send (`UDP_MAX_SEGMENTS`).
const MAX_SEGMENTS: usize = 64;
/// Cleared the first time the kernel refuses a segmented send; plain sends from then on.
static GSO_USABLE: AtomicBool = AtomicBool::new(true);

/// Consecutive datagrams for one destination that the kernel can segment from one buffer: all
/// the same size except a shorter or equal last one.
fn gso_run_len(run: &[Pending]) -> usize {
    let Some(first) = run.first() else {
        return 0;
    };
    let size = first.payload.len();
    let mut len = 1;
    while len < run.len().min(MAX_SEGMENTS) {
        let next = &run[len];
        if next.destination != first.destination || next.payload.len() > size {
            break;
        }
        len += 1;
        if next.payload.len() < size {
            break; // a shorter datagram can only be the last segment
        }
    }
    len
}

/// One message of a `sendmmsg` call: a datagram, or several segmented by the kernel.
struct Message {
    first: usize,
    count: usize,
}

/// Sends datagrams that share a socket with `sendmmsg`, segmenting same-destination runs with
/// UDP GSO when the kernel allows (a subscriber's burst then costs one trip through the stack);
/// returns how many datagrams the kernel took. A message the kernel refuses (full buffer, an
/// ICMP error from an earlier send) is skipped so the rest still go out.
fn send_run(socket: &impl AsRawFd, run: &[Pending]) -> usize {
    let gso = GSO_USABLE.load(Ordering::Relaxed);
    let mut messages = Vec::with_capacity(run.len());
    let mut i = 0;
    while i < run.len() {
        let count = if gso {
            gso_run_len(&run[i..]).max(1)
        } else {
            1
        };
        messages.push(Message { first: i, count });
        i += count;
    }
    let mut iovecs: Vec<libc::iovec> = run
        .iter()
        .map(|p| libc::iovec {
            iov_base: p.payload.as_ptr() as *mut libc::c_void,
            iov_len: p.payload.len(),
        })
        .collect();
    // SAFETY: CMSG_SPACE is a pure size computation.
    let cmsg_space = unsafe { libc::CMSG_SPACE(size_of::<u16>() as u32) } as usize;
    let mut controls = vec![0u8; cmsg_space * messages.len()];
    let mut headers: Vec<libc::mmsghdr> = Vec::with_capacity(messages.len());
    for (m, message) in messages.iter().enumerate() {
        let first = &run[message.first];
        // SAFETY: an all-zero msghdr is valid; the pointers set below outlive the call.
        let mut header: libc::mmsghdr = unsafe { std::mem::zeroed() };
        header.msg_hdr.msg_name = first.destination.as_ptr() as *mut libc::c_void;
        header.msg_hdr.msg_namelen = first.destination.len();
        header.msg_hdr.msg_iov = iovecs[message.first..].as_mut_ptr();
        header.msg_hdr.msg_iovlen = message.count;
        if message.count > 1 {
            let control = &mut controls[m * cmsg_space..(m + 1) * cmsg_space];
            header.msg_hdr.msg_control = control.as_mut_ptr() as *mut libc::c_void;
            header.msg_hdr.msg_controllen = cmsg_space;
            // SAFETY: the control buffer is CMSG_SPACE(u16) bytes, enough for one cmsg.
            unsafe {
                let cmsg = libc::CMSG_FIRSTHDR(&header.msg_hdr);
                (*cmsg).cmsg_level = libc::SOL_UDP;
                (*cmsg).cmsg_type = UDP_SEGMENT;
                (*cmsg).cmsg_len = libc::CMSG_LEN(size_of::<u16>() as u32) as usize;
                let segment = first.payload.len() as u16;
                std::ptr::write_unaligned(libc::CMSG_DATA(cmsg) as *mut u16, segment);
            }
        }
        headers.push(header);
    }
    let mut offset = 0;
    let mut sent = 0;
    while offset < headers.len() {
        // SAFETY: headers[offset..] are initialised and point at live buffers and addresses.
        let n = unsafe {
            libc::sendmmsg(
                socket.as_raw_fd(),
                headers.as_mut_ptr().add(offset),
                (headers.len() - offset) as libc::c_uint,
                libc::MSG_DONTWAIT,
            )
        };
        if n > 0 {
            let n = n as usize;
            sent += messages[offset..offset + n]
                .iter()
                .map(|m| m.count)
                .sum::<usize>();
            offset += n;
            continue;
        }
        let error = io::Error::last_os_error();
        if error.kind() == io::ErrorKind::Interrupted {
            continue;
        }
        let message = &messages[offset];
        if message.count > 1 && matches!(error.raw_os_error(), Some(libc::EIO | libc::EINVAL)) {
            // No GSO here (old kernel, device without it): resend this run one by one.
            tracing::info!(%error, "UDP GSO unavailable; sending datagrams one by one");
            GSO_USABLE.store(false, Ordering::Relaxed);
            let range = message.first..message.first + message.count;
            sent += send_run(socket, &run[range]);
        } else {
            tracing::trace!(%error, "media send failed");
        }
        offset += 1; // skip the message the kernel refused
    }
    sent
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::UdpSocket;

    #[test]
    fn a_flush_delivers_every_datagram_in_order_across_batches() {
        let receiver = UdpSocket::bind("127.0.0.1:0").unwrap();
        let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
        let to = receiver.local_addr().unwrap();
        let mut outbox = Outbox::default();
        for i in 0..(BATCH * 2 + 5) {
            outbox.push(0, BytesMut::from(&(i as u32).to_be_bytes()[..]), to);
        }
        let tally = outbox.flush(|_| Some(&sender));
        assert_eq!(tally.sent, (BATCH * 2 + 5) as u64);
        let mut buf = [0u8; 16];
        for i in 0..(BATCH * 2 + 5) {
            let n = receiver.recv(&mut buf).unwrap();
            assert_eq!(&buf[..n], &(i as u32).to_be_bytes());
        }
    }

    #[test]
    fn a_burst_to_one_destination_arrives_as_separate_datagrams() {
        let receiver = UdpSocket::bind("127.0.0.1:0").unwrap();
        let other = UdpSocket::bind("127.0.0.1:0").unwrap();
        let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
        let (to, to_other) = (receiver.local_addr().unwrap(), other.local_addr().unwrap());
        let mut outbox = Outbox::default();
        // Three full-size datagrams and a short last one (one GSO run), then another peer.
        for (i, len) in [(0u8, 1200), (1, 1200), (2, 1200), (3, 700)] {
            outbox.push(0, BytesMut::from(&vec![i; len][..]), to);
        }
        outbox.push(0, BytesMut::from(&b"other"[..]), to_other);
        let tally = outbox.flush(|_| Some(&sender));
        assert_eq!(tally.sent, 5);
        let mut buf = [0u8; 2048];
        for (i, len) in [(0u8, 1200), (1, 1200), (2, 1200), (3, 700)] {
            let n = receiver.recv(&mut buf).unwrap();
            assert_eq!(n, len);
            assert!(buf[..n].iter().all(|b| *b == i));
        }
        let n = other.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"other");
    }

    #[test]
    fn gso_runs_stop_at_a_new_destination_a_larger_or_a_short_datagram() {
        let a: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let b: SocketAddr = "127.0.0.1:2".parse().unwrap();
        let pending = |sizes: &[(usize, SocketAddr)]| -> Vec<Pending> {
            sizes
                .iter()
                .map(|(n, to)| Pending {
                    socket: 0,
                    payload: BytesMut::from(&vec![0u8; *n][..]),
                    destination: (*to).into(),
                })
                .collect()
        };
        assert_eq!(gso_run_len(&pending(&[(10, a), (10, a), (10, b)])), 2);
        assert_eq!(gso_run_len(&pending(&[(10, a), (12, a)])), 1);
        assert_eq!(gso_run_len(&pending(&[(10, a), (8, a), (8, a)])), 2);
        assert_eq!(gso_run_len(&pending(&[(10, a)])), 1);
    }

    #[test]
    fn datagrams_for_a_missing_socket_are_counted_as_dropped() {
        let mut outbox = Outbox::default();
        outbox.push(3, BytesMut::from(&b"x"[..]), "127.0.0.1:9".parse().unwrap());
        let tally = outbox.flush::<UdpSocket>(|_| None);
        assert_eq!(
            tally,
            SendTally {
                sent: 0,
                dropped: 1
            }
        );
    }
}
