//! The shared UDP port: socket binding, advertised addresses and datagram demultiplexing.
//!
//! Every session shares one port. An unspecified listen IP binds one socket per local IPv4
//! address (all on that port) so the destination address of each datagram is known, which the
//! ICE agent requires (`TransportContext.local_addr` must equal one of its local candidates).

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use socket2::{Domain, Protocol, Socket, Type};

/// One bound socket and the address that clients are told to reach it at.
pub(crate) struct MediaSocket {
    pub socket: mio::net::UdpSocket,
    pub bound: SocketAddr,
    /// What we advertise in candidates and give the ICE agent as `local_addr`.
    pub advertised: SocketAddr,
}

/// Binds the media socket(s) for `listen`, advertising `public_ips` when given (NAT 1:1).
pub(crate) fn bind_media_sockets(
    listen: SocketAddr,
    public_ips: &[IpAddr],
) -> io::Result<Vec<MediaSocket>> {
    let ips = if listen.ip().is_unspecified() && public_ips.is_empty() {
        local_ipv4_addresses()?
    } else {
        vec![listen.ip()]
    };
    let mut sockets = Vec::with_capacity(ips.len());
    let mut port = listen.port();
    for ip in ips {
        let socket = bind_one(SocketAddr::new(ip, port))?;
        let bound = socket.local_addr()?;
        // An ephemeral port (0) is chosen by the first bind; the others share it.
        port = bound.port();
        sockets.push((socket, bound));
    }
    Ok(sockets
        .into_iter()
        .map(|(socket, bound)| MediaSocket {
            socket,
            bound,
            // Config validation allows at most one public IP: behind NAT the datagram's
            // destination cannot tell which of several public addresses the client used.
            advertised: match public_ips.first() {
                Some(ip) => SocketAddr::new(*ip, bound.port()),
                None => bound,
            },
        })
        .collect())
}

fn bind_one(addr: SocketAddr) -> io::Result<mio::net::UdpSocket> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    socket.set_nonblocking(true)?;
    // Large buffers absorb fan-out bursts (a keyframe × many subscribers); best effort.
    let _ = socket.set_send_buffer_size(8 * 1024 * 1024);
    let _ = socket.set_recv_buffer_size(8 * 1024 * 1024);
    socket.bind(&addr.into())?;
    Ok(mio::net::UdpSocket::from_std(socket.into()))
}

/// Local IPv4 addresses, non-loopback first; loopback is kept so same-host clients work.
fn local_ipv4_addresses() -> io::Result<Vec<IpAddr>> {
    let mut ips: Vec<IpAddr> = if_addrs::get_if_addrs()?
        .into_iter()
        .map(|iface| iface.ip())
        .filter(|ip| ip.is_ipv4())
        .collect();
    ips.sort_by_key(|ip| (ip.is_loopback(), *ip));
    ips.dedup();
    if ips.is_empty() {
        ips.push(IpAddr::V4(Ipv4Addr::LOCALHOST));
    }
    Ok(ips)
}

const STUN_MAGIC_COOKIE: [u8; 4] = [0x21, 0x12, 0xA4, 0x42];
const STUN_BINDING_REQUEST: u16 = 0x0001;
const STUN_BINDING_SUCCESS: u16 = 0x0101;
const STUN_ATTR_USERNAME: u16 = 0x0006;
const STUN_ATTR_USE_CANDIDATE: u16 = 0x0025;

/// The message type of a STUN message, `None` for anything else.
fn stun_type(b: &[u8]) -> Option<u16> {
    if b.len() < 20 || b[0] & 0xC0 != 0 || b[4..8] != STUN_MAGIC_COOKIE {
        return None;
    }
    Some(u16::from_be_bytes([b[0], b[1]]))
}

/// The attributes of a STUN message as `(type, value)`, stopping at the first truncated one.
fn stun_attributes(b: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    let end = if stun_type(b).is_some() {
        (20 + u16::from_be_bytes([b[2], b[3]]) as usize).min(b.len())
    } else {
        0
    };
    let mut i = 20;
    std::iter::from_fn(move || {
        if i + 4 > end {
            return None;
        }
        let kind = u16::from_be_bytes([b[i], b[i + 1]]);
        let len = u16::from_be_bytes([b[i + 2], b[i + 3]]) as usize;
        let value = b.get(i + 4..i + 4 + len)?;
        i += 4 + ((len + 3) & !3);
        Some((kind, value))
    })
}

/// The local part of a STUN Binding request's USERNAME (`<our ufrag>:<their ufrag>`), without
/// allocating. `None` for anything that is not a STUN message with a USERNAME.
pub(crate) fn stun_local_ufrag(b: &[u8]) -> Option<&str> {
    let (_, value) = stun_attributes(b).find(|(kind, _)| *kind == STUN_ATTR_USERNAME)?;
    std::str::from_utf8(value).ok()?.split(':').next()
}

/// A Binding request carrying USE-CANDIDATE: the client nominating a pair.
pub(crate) fn is_stun_nomination(b: &[u8]) -> bool {
    stun_type(b) == Some(STUN_BINDING_REQUEST)
        && stun_attributes(b).any(|(kind, _)| kind == STUN_ATTR_USE_CANDIDATE)
}

/// A Binding success response (to one of the agent's own checks).
pub(crate) fn is_stun_binding_success(b: &[u8]) -> bool {
    stun_type(b) == Some(STUN_BINDING_SUCCESS)
}

/// Routes datagrams to sessions: STUN by ufrag, everything else by the peer's address.
#[derive(Default)]
pub(crate) struct Demux {
    by_ufrag: HashMap<String, u64>,
    by_addr: HashMap<SocketAddr, u64>,
}

impl Demux {
    /// Registers a local ufrag (at creation and after each ICE restart).
    pub fn add_ufrag(&mut self, ufrag: String, session: u64) {
        self.by_ufrag.insert(ufrag, session);
    }

    /// Routes datagrams from `addr` to `session` (a remote we send ICE checks to: its
    /// responses carry no username).
    pub fn add_addr(&mut self, addr: SocketAddr, session: u64) {
        self.by_addr.insert(addr, session);
    }

    /// The session a datagram from `peer` belongs to. A STUN request naming a known ufrag also
    /// (re)binds `peer` to that session: that is how peer-reflexive addresses and NAT rebinding
    /// are learnt. The agent still checks MESSAGE-INTEGRITY before it answers.
    pub fn route(&mut self, datagram: &[u8], peer: SocketAddr) -> Option<u64> {
        if let Some(&session) = stun_local_ufrag(datagram).and_then(|u| self.by_ufrag.get(u)) {
            self.by_addr.insert(peer, session);
            return Some(session);
        }
        self.by_addr.get(&peer).copied()
    }

    /// Forgets every entry of a session.
    pub fn remove_session(&mut self, session: u64) {
        self.by_ufrag.retain(|_, s| *s != session);
        self.by_addr.retain(|_, s| *s != session);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binding_request(username: &str) -> Vec<u8> {
        stun_message(0x0001, username, false)
    }

    fn stun_message(kind: u16, username: &str, use_candidate: bool) -> Vec<u8> {
        let mut attr = Vec::new();
        attr.extend_from_slice(&0x0006u16.to_be_bytes());
        attr.extend_from_slice(&(username.len() as u16).to_be_bytes());
        attr.extend_from_slice(username.as_bytes());
        while attr.len() % 4 != 0 {
            attr.push(0);
        }
        if use_candidate {
            attr.extend_from_slice(&[0x00, 0x25, 0x00, 0x00]);
        }
        let mut msg = kind.to_be_bytes().to_vec();
        msg.extend_from_slice(&(attr.len() as u16).to_be_bytes());
        msg.extend_from_slice(&[0x21, 0x12, 0xA4, 0x42]);
        msg.extend_from_slice(&[7; 12]);
        msg.extend_from_slice(&attr);
        msg
    }

    #[test]
    fn stun_username_local_part_is_extracted() {
        assert_eq!(
            stun_local_ufrag(&binding_request("abcd:wxyz")),
            Some("abcd")
        );
    }

    #[test]
    fn non_stun_and_truncated_datagrams_have_no_ufrag() {
        assert_eq!(stun_local_ufrag(&[0x80, 0x60, 0, 1]), None);
        let msg = binding_request("abcd:wxyz");
        // Header (20) + attribute header (4) + value (9): any shorter prefix lacks the value.
        for cut in 0..33 {
            assert_eq!(stun_local_ufrag(&msg[..cut]), None, "prefix {cut}");
        }
    }

    #[test]
    fn stun_check_binds_the_peer_address_for_later_media() {
        let mut demux = Demux::default();
        demux.add_ufrag("abcd".into(), 7);
        let peer: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        assert_eq!(demux.route(&[0x80, 0x60], peer), None);
        assert_eq!(demux.route(&binding_request("abcd:x"), peer), Some(7));
        assert_eq!(demux.route(&[0x80, 0x60], peer), Some(7));
        demux.remove_session(7);
        assert_eq!(demux.route(&[0x80, 0x60], peer), None);
    }

    #[test]
    fn nominating_request_and_success_response_are_recognised() {
        assert!(is_stun_nomination(&stun_message(0x0001, "a:b", true)));
        assert!(!is_stun_nomination(&stun_message(0x0001, "a:b", false)));
        assert!(!is_stun_nomination(&stun_message(0x0101, "a:b", true)));
        assert!(is_stun_binding_success(&stun_message(0x0101, "a:b", false)));
        assert!(!is_stun_binding_success(&[0x80, 0x60, 0, 0]));
    }

    #[test]
    fn unknown_ufrag_is_not_routed() {
        let mut demux = Demux::default();
        let peer: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        assert_eq!(demux.route(&binding_request("nope:x"), peer), None);
    }
}
