//! Unwrapping inbound RTX (RFC 4588) before the NACK generator sees it.
//!
//! rtc 0.21.1 de-encapsulates RTX only after the interceptor chain, so its NACK generator logs a
//! repair under the RTX SSRC and keeps asking for a packet it already received (measured: ~30
//! RTX packets per lost packet from an aiortc publisher). [`RtxToPrimary`] sits just before the
//! generator and turns each RTX packet back into the primary packet it repairs.

use std::collections::{HashMap, VecDeque};
use std::time::Instant;

use rtc::interceptor::{Interceptor, Packet, StreamInfo, TaggedPacket};
use rtc::sansio::Protocol;

/// Chain position: after FecDecoder (6000), before NackGenerator (7000) on the read path.
pub(crate) const RTX_TO_PRIMARY_SLOT: usize = 6_500;

/// Where an RTX stream's packets belong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Primary {
    ssrc: u32,
    payload_type: u8,
}

/// Rewrites inbound RTX packets (SSRC, payload type, original sequence number from the OSN
/// field, payload without it) into the primary stream's packets.
#[derive(Default)]
pub(crate) struct RtxToPrimary {
    primaries: HashMap<u32, Primary>,
    read_queue: VecDeque<TaggedPacket>,
    write_queue: VecDeque<TaggedPacket>,
}

/// The primary packet an RTX packet carries; `false` (unchanged) when the payload has no OSN
/// (padding-only probes).
fn unwrap_rtx(packet: &mut rtc::rtp::Packet, primary: Primary) -> bool {
    if packet.payload.len() < 2 {
        return false;
    }
    packet.header.sequence_number = u16::from_be_bytes([packet.payload[0], packet.payload[1]]);
    packet.header.ssrc = primary.ssrc;
    packet.header.payload_type = primary.payload_type;
    packet.header.padding = false;
    packet.payload = packet.payload.slice(2..);
    true
}

impl Protocol<TaggedPacket, TaggedPacket, ()> for RtxToPrimary {
    type Rout = TaggedPacket;
    type Wout = TaggedPacket;
    type Eout = ();
    type Error = rtc::shared::error::Error;
    type Time = Instant;

    fn handle_read(&mut self, mut msg: TaggedPacket) -> Result<(), Self::Error> {
        if let Packet::Rtp(packet) = &mut msg.message.packet
            && let Some(primary) = self.primaries.get(&packet.header.ssrc).copied()
            && !unwrap_rtx(packet, primary)
        {
            return Ok(()); // a padding-only probe on the RTX stream carries nothing to deliver
        }
        self.read_queue.push_back(msg);
        Ok(())
    }

    fn poll_read(&mut self) -> Option<TaggedPacket> {
        self.read_queue.pop_front()
    }

    fn handle_write(&mut self, msg: TaggedPacket) -> Result<(), Self::Error> {
        self.write_queue.push_back(msg);
        Ok(())
    }

    fn poll_write(&mut self) -> Option<TaggedPacket> {
        self.write_queue.pop_front()
    }
}

impl Interceptor for RtxToPrimary {
    fn bind_local_stream(&mut self, _info: &StreamInfo) {}
    fn unbind_local_stream(&mut self, _info: &StreamInfo) {}

    fn bind_remote_stream(&mut self, info: &StreamInfo) {
        if let Some(rtx) = info.ssrc_rtx {
            let primary = Primary {
                ssrc: info.ssrc,
                payload_type: info.payload_type,
            };
            self.primaries.insert(rtx, primary);
        }
    }

    fn unbind_remote_stream(&mut self, info: &StreamInfo) {
        if let Some(rtx) = info.ssrc_rtx {
            self.primaries.remove(&rtx);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn rtx_packet(payload: &'static [u8]) -> rtc::rtp::Packet {
        rtc::rtp::Packet {
            header: rtc::rtp::header::Header {
                version: 2,
                ssrc: 2000,
                payload_type: 97,
                sequence_number: 7,
                padding: true,
                ..Default::default()
            },
            payload: Bytes::from_static(payload),
        }
    }

    #[test]
    fn rtx_packet_becomes_the_primary_packet_it_repairs() {
        let mut packet = rtx_packet(&[0x12, 0x34, 0xAA, 0xBB]);
        let primary = Primary {
            ssrc: 1000,
            payload_type: 96,
        };
        assert!(unwrap_rtx(&mut packet, primary));
        assert_eq!(packet.header.ssrc, 1000);
        assert_eq!(packet.header.payload_type, 96);
        assert_eq!(packet.header.sequence_number, 0x1234);
        assert!(!packet.header.padding);
        assert_eq!(&packet.payload[..], &[0xAA, 0xBB]);
    }

    #[test]
    fn rtx_packet_without_original_sequence_number_is_left_alone() {
        let mut packet = rtx_packet(&[0x12]);
        let primary = Primary {
            ssrc: 1000,
            payload_type: 96,
        };
        assert!(!unwrap_rtx(&mut packet, primary));
        assert_eq!(packet.header.ssrc, 2000);
    }
}
