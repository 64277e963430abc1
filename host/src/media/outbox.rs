//! Datagrams waiting to leave, sent with one `sendmmsg` per batch instead of one `sendto` each
//! (fan-out produces hundreds per publisher packet; std and mio have no batched send).

use std::io;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;

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

/// One `sendmmsg` for datagrams that share a socket; returns how many the kernel took. A
/// datagram the kernel refuses (full buffer, ICMP error from an earlier send) is skipped so
/// the rest still go out.
fn send_run(socket: &impl AsRawFd, run: &[Pending]) -> usize {
    let mut iovecs: Vec<libc::iovec> = run
        .iter()
        .map(|p| libc::iovec {
            iov_base: p.payload.as_ptr() as *mut libc::c_void,
            iov_len: p.payload.len(),
        })
        .collect();
    let mut headers: Vec<libc::mmsghdr> = run
        .iter()
        .zip(iovecs.iter_mut())
        .map(|(p, iov)| {
            // SAFETY: an all-zero msghdr is valid; the pointers set below outlive the call.
            let mut header: libc::mmsghdr = unsafe { std::mem::zeroed() };
            header.msg_hdr.msg_name = p.destination.as_ptr() as *mut libc::c_void;
            header.msg_hdr.msg_namelen = p.destination.len();
            header.msg_hdr.msg_iov = iov;
            header.msg_hdr.msg_iovlen = 1;
            header
        })
        .collect();
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
            offset += n as usize;
            sent += n as usize;
            continue;
        }
        let error = io::Error::last_os_error();
        if error.kind() == io::ErrorKind::Interrupted {
            continue;
        }
        tracing::trace!(%error, "media send failed");
        offset += 1; // skip the datagram the kernel refused
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
