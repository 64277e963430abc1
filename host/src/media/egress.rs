//! A subscriber leg's own SRTP sending context: forwarded RTP is marshalled, protected and
//! queued for `sendmmsg` here, bypassing rtc's write path (see `srtp_tap`). RTCP still goes
//! through rtc, whose separate SRTCP state is untouched by this context.

use std::net::SocketAddr;

use bytes::BytesMut;
use rtc::crypto::RTCCrypto;
use rtc::rtp;
use rtc::shared::marshal::{Marshal, MarshalSize};
use rtc::srtp::context::Context;

use super::outbox::Outbox;
use super::srtp_tap::LocalSrtpKeys;
use super::udp::MediaSocket;

/// Why a forwarded packet could not be protected.
#[derive(Debug, thiserror::Error)]
pub(crate) enum EgressError {
    #[error("RTP header does not marshal: {0}")]
    Marshal(rtc::shared::error::Error),
    #[error("SRTP protection failed: {0}")]
    Protect(rtc::shared::error::Error),
}

/// Where a session's datagrams leave: the engine's socket index and the client's address on
/// the ICE-selected pair (learned from what rtc itself sends there).
pub(crate) type Route = (usize, SocketAddr);

/// The sending half of a subscriber's SRTP session.
pub(crate) struct SrtpEgress {
    context: Context,
}

impl std::fmt::Debug for SrtpEgress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SrtpEgress").finish_non_exhaustive()
    }
}

impl SrtpEgress {
    pub fn new(keys: &LocalSrtpKeys, crypto: &dyn RTCCrypto) -> Result<Self, EgressError> {
        let context = Context::new(
            &keys.master_key,
            &keys.master_salt,
            keys.profile,
            None,
            None,
            crypto,
        )
        .map_err(EgressError::Protect)?;
        Ok(Self { context })
    }

    /// The protected datagram of `header` + `payload`; `scratch` holds the clear packet.
    pub fn protect(
        &mut self,
        header: &rtp::header::Header,
        payload: &[u8],
        scratch: &mut Vec<u8>,
    ) -> Result<BytesMut, EgressError> {
        let header_len = header.marshal_size();
        scratch.clear();
        scratch.resize(header_len + payload.len(), 0);
        header
            .marshal_to(&mut scratch[..header_len])
            .map_err(EgressError::Marshal)?;
        scratch[header_len..].copy_from_slice(payload);
        self.context
            .encrypt_rtp_with_header(scratch, header)
            .map_err(EgressError::Protect)
    }
}

/// The engine's outgoing datagrams, queued and sent in `sendmmsg` batches as they fill.
#[derive(Default)]
pub(crate) struct Datagrams {
    outbox: Outbox,
    /// Dropped because a socket buffer was full.
    pub dropped: u64,
    /// The clear packet being protected.
    scratch: Vec<u8>,
}

impl Datagrams {
    pub fn push(
        &mut self,
        sockets: &[MediaSocket],
        socket: usize,
        datagram: BytesMut,
        to: SocketAddr,
    ) {
        self.outbox.push(socket, datagram, to);
        if self.outbox.is_full() {
            self.flush(sockets);
        }
    }

    /// Sends everything queued.
    pub fn flush(&mut self, sockets: &[MediaSocket]) {
        let tally = self.outbox.flush(|i| sockets.get(i).map(|s| &s.socket));
        self.dropped += tally.dropped;
    }

    /// Protects an RTP packet on a subscriber's context and queues it on its route.
    pub fn send_rtp(
        &mut self,
        sockets: &[MediaSocket],
        egress: &mut SrtpEgress,
        route: Route,
        header: &rtp::header::Header,
        payload: &[u8],
    ) -> Result<(), EgressError> {
        let datagram = egress.protect(header, payload, &mut self.scratch)?;
        self.push(sockets, route.0, datagram, route.1);
        Ok(())
    }
}

/// Whether a datagram rtc sends travels on the selected pair: DTLS (first byte 20–63) and
/// SRTP/SRTCP (128–191) do; STUN (0–3) answers whichever address asked.
pub(crate) fn follows_selected_pair(datagram: &[u8]) -> bool {
    datagram.first().is_some_and(|b| *b >= 20)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtc::shared::marshal::Unmarshal;
    use rtc::srtp::protection_profile::ProtectionProfile;

    #[test]
    fn protected_packet_decrypts_to_the_marshalled_header_and_payload() {
        let provider = rtc::crypto::default_provider().unwrap();
        let keys = LocalSrtpKeys {
            master_key: vec![9; 16],
            master_salt: vec![4; 14],
            profile: ProtectionProfile::Aes128CmHmacSha1_80,
        };
        let mut egress = SrtpEgress::new(&keys, provider.crypto()).unwrap();
        let mut receiver = Context::new(
            &keys.master_key,
            &keys.master_salt,
            keys.profile,
            None,
            None,
            provider.crypto(),
        )
        .unwrap();
        let header = rtp::header::Header {
            version: 2,
            marker: true,
            payload_type: 96,
            sequence_number: 65535,
            timestamp: 90_000,
            ssrc: 0x1234,
            ..Default::default()
        };
        let mut scratch = Vec::new();
        for (seq, payload) in [(65535u16, &b"end"[..]), (0, &b"wrapped"[..])] {
            let header = rtp::header::Header {
                sequence_number: seq,
                ..header.clone()
            };
            let datagram = egress.protect(&header, payload, &mut scratch).unwrap();
            let clear = receiver.decrypt_rtp(&datagram).unwrap();
            let mut buf = &clear[..];
            let parsed = rtp::Packet::unmarshal(&mut buf).unwrap();
            assert_eq!(parsed.header, header);
            assert_eq!(&parsed.payload[..], payload);
        }
    }

    #[test]
    fn only_dtls_and_srtp_datagrams_follow_the_selected_pair() {
        assert!(!follows_selected_pair(&[0x01, 0x01])); // STUN binding response
        assert!(follows_selected_pair(&[22, 0xfe, 0xfd])); // DTLS handshake
        assert!(follows_selected_pair(&[0x80, 0xc8])); // SRTCP sender report
        assert!(!follows_selected_pair(&[]));
    }
}
