//! What one subscriber output has sent: the recent packets a NACK may ask for again (resent as
//! RTX when negotiated, RFC 4588), and the counts and timing its RTCP sender reports carry.
//! The fan-out protects and sends directly (see `srtp_tap`), so rtc's NACK responder and
//! sender-report interceptors never see these packets; this replaces both.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::{BufMut, Bytes, BytesMut};
use rtc::rtcp::sender_report::SenderReport;
use rtc::rtp;

/// An output's retransmission stream: its SSRC and, per original payload type, the RTX one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RtxStream {
    pub ssrc: u32,
    /// `(apt, rtx payload type)` pairs.
    pub payload_types: Vec<(u8, u8)>,
}

/// A sent packet, kept for retransmission: the payload is shared with every other subscriber.
#[derive(Debug, Clone)]
struct SentPacket {
    sequence_number: u16,
    timestamp: u32,
    marker: bool,
    payload_type: u8,
    payload: Bytes,
}

/// Counters and history of one output.
#[derive(Debug)]
pub(crate) struct SentStream {
    clock_rate: u32,
    packets: u32,
    octets: u32,
    /// The newest timestamp sent and when it left.
    last_timestamp: Option<(u32, Instant)>,
    /// Ring indexed by sequence number; empty when the output keeps no history (audio).
    history: Box<[Option<SentPacket>]>,
    rtx: Option<RtxStream>,
    rtx_sequence_number: u16,
}

impl SentStream {
    /// `history` packets are kept for NACKs (rounded up to a power of two; 0 keeps none).
    pub fn new(clock_rate: u32, history: u16, rtx: Option<RtxStream>) -> Self {
        let len = match history {
            0 => 0,
            n => n.next_power_of_two() as usize,
        };
        Self {
            clock_rate,
            packets: 0,
            octets: 0,
            last_timestamp: None,
            history: vec![None; len].into_boxed_slice(),
            rtx,
            rtx_sequence_number: rand::random(),
        }
    }

    /// Records a packet that just left.
    pub fn on_sent(&mut self, header: &rtp::header::Header, payload: &Bytes, now: Instant) {
        self.packets = self.packets.wrapping_add(1);
        self.octets = self.octets.wrapping_add(payload.len() as u32);
        let newer = self
            .last_timestamp
            .is_none_or(|(ts, _)| ts != header.timestamp);
        if newer {
            self.last_timestamp = Some((header.timestamp, now));
        }
        if let Some(slot) = self.slot(header.sequence_number) {
            *slot = Some(SentPacket {
                sequence_number: header.sequence_number,
                timestamp: header.timestamp,
                marker: header.marker,
                payload_type: header.payload_type,
                payload: payload.clone(),
            });
        }
    }

    fn slot(&mut self, sequence_number: u16) -> Option<&mut Option<SentPacket>> {
        let len = self.history.len();
        (len > 0).then(|| &mut self.history[sequence_number as usize & (len - 1)])
    }

    /// The packet to send again for a NACKed `sequence_number` of SSRC `ssrc`, if still kept:
    /// an RTX packet (original sequence number ahead of the payload) when RTX was negotiated
    /// for its payload type, else the original packet.
    pub fn retransmission(&mut self, ssrc: u32, sequence_number: u16) -> Option<rtp::Packet> {
        let sent = self
            .slot(sequence_number)?
            .as_ref()
            .filter(|p| p.sequence_number == sequence_number)?
            .clone();
        let header = rtp::header::Header {
            version: 2,
            marker: sent.marker,
            timestamp: sent.timestamp,
            ..Default::default()
        };
        let rtx = self.rtx.as_ref().and_then(|rtx| {
            let (_, pt) = rtx
                .payload_types
                .iter()
                .find(|(apt, _)| *apt == sent.payload_type)?;
            Some((rtx.ssrc, *pt))
        });
        Some(match rtx {
            Some((rtx_ssrc, rtx_pt)) => {
                let seq = self.rtx_sequence_number;
                self.rtx_sequence_number = seq.wrapping_add(1);
                let mut payload = BytesMut::with_capacity(2 + sent.payload.len());
                payload.put_u16(sent.sequence_number);
                payload.put_slice(&sent.payload);
                rtp::Packet {
                    header: rtp::header::Header {
                        ssrc: rtx_ssrc,
                        payload_type: rtx_pt,
                        sequence_number: seq,
                        ..header
                    },
                    payload: payload.freeze(),
                }
            }
            None => rtp::Packet {
                header: rtp::header::Header {
                    ssrc,
                    payload_type: sent.payload_type,
                    sequence_number: sent.sequence_number,
                    ..header
                },
                payload: sent.payload,
            },
        })
    }

    /// The sender report for SSRC `ssrc` at `now` (wall clock `wall`), once anything was sent:
    /// the RTP time is the last packet's, advanced by the time since at the clock rate.
    pub fn sender_report(&self, ssrc: u32, now: Instant, wall: SystemTime) -> Option<SenderReport> {
        let (timestamp, sent_at) = self.last_timestamp?;
        let elapsed = now.saturating_duration_since(sent_at).as_secs_f64();
        Some(SenderReport {
            ssrc,
            ntp_time: ntp_time(wall),
            rtp_time: timestamp.wrapping_add((elapsed * f64::from(self.clock_rate)) as u32),
            packet_count: self.packets,
            octet_count: self.octets,
            ..Default::default()
        })
    }
}

/// `wall` as a 64-bit NTP timestamp (seconds since 1900 . fraction).
fn ntp_time(wall: SystemTime) -> u64 {
    const UNIX_TO_NTP: u64 = 2_208_988_800;
    let since = wall.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
    let seconds = since.as_secs() + UNIX_TO_NTP;
    let fraction = (u64::from(since.subsec_nanos()) << 32) / 1_000_000_000;
    (seconds << 32) | fraction
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(seq: u16, ts: u32) -> rtp::header::Header {
        rtp::header::Header {
            version: 2,
            ssrc: 0xAAAA,
            payload_type: 96,
            sequence_number: seq,
            timestamp: ts,
            marker: seq.is_multiple_of(2),
            ..Default::default()
        }
    }

    fn vp8_with_rtx() -> SentStream {
        let rtx = RtxStream {
            ssrc: 0xBBBB,
            payload_types: vec![(96, 97)],
        };
        SentStream::new(90_000, 256, Some(rtx))
    }

    #[test]
    fn nacked_packet_is_resent_as_rtx_with_its_original_sequence_number_first() {
        let mut sent = vp8_with_rtx();
        let now = Instant::now();
        sent.on_sent(&header(1000, 3000), &Bytes::from_static(b"frame"), now);
        let first = sent.retransmission(0xAAAA, 1000).unwrap();
        assert_eq!(first.header.ssrc, 0xBBBB);
        assert_eq!(first.header.payload_type, 97);
        assert_eq!(first.header.timestamp, 3000);
        assert!(first.header.marker);
        assert_eq!(&first.payload[..], b"\x03\xe8frame");
        let again = sent.retransmission(0xAAAA, 1000).unwrap();
        assert_eq!(
            again.header.sequence_number,
            first.header.sequence_number.wrapping_add(1),
            "RTX has its own sequence"
        );
    }

    #[test]
    fn without_rtx_the_original_packet_is_resent() {
        let mut sent = SentStream::new(90_000, 64, None);
        sent.on_sent(&header(7, 1), &Bytes::from_static(b"x"), Instant::now());
        let packet = sent.retransmission(0xAAAA, 7).unwrap();
        assert_eq!(packet.header.ssrc, 0xAAAA);
        assert_eq!(packet.header.sequence_number, 7);
        assert_eq!(packet.header.payload_type, 96);
        assert_eq!(&packet.payload[..], b"x");
    }

    #[test]
    fn packets_older_than_the_history_are_not_resent() {
        let mut sent = vp8_with_rtx();
        let now = Instant::now();
        for seq in 0..=256u16 {
            sent.on_sent(&header(seq, 0), &Bytes::from_static(b"p"), now);
        }
        assert!(
            sent.retransmission(0xAAAA, 0).is_none(),
            "overwritten by 256"
        );
        assert!(sent.retransmission(0xAAAA, 1).is_some());
        assert!(sent.retransmission(0xAAAA, 300).is_none(), "never sent");
    }

    #[test]
    fn audio_keeps_no_history() {
        let mut sent = SentStream::new(48_000, 0, None);
        sent.on_sent(&header(1, 0), &Bytes::from_static(b"a"), Instant::now());
        assert!(sent.retransmission(0xAAAA, 1).is_none());
    }

    #[test]
    fn sender_report_counts_payload_octets_and_advances_rtp_time_with_the_clock() {
        let mut sent = SentStream::new(90_000, 0, None);
        let start = Instant::now();
        let wall = SystemTime::now();
        assert!(
            sent.sender_report(1, start, wall).is_none(),
            "nothing sent yet"
        );
        sent.on_sent(&header(1, 9000), &Bytes::from_static(b"abcd"), start);
        sent.on_sent(&header(2, 9000), &Bytes::from_static(b"ef"), start);
        let report = sent
            .sender_report(1, start + Duration::from_millis(100), wall)
            .unwrap();
        assert_eq!((report.packet_count, report.octet_count), (2, 6));
        assert_eq!(report.rtp_time, 9000 + 9000);
        assert_eq!(report.ntp_time >> 32, {
            let unix = wall.duration_since(UNIX_EPOCH).unwrap().as_secs();
            unix + 2_208_988_800
        });
    }
}
