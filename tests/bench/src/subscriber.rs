//! One WHEP subscriber of the generator: what it counts from the clear RTP header of every
//! packet, and what it learns from the few packets it decrypts.

use std::net::SocketAddr;
use std::time::Instant;

use rtc::peer_connection::RTCPeerConnection;
use rtc::peer_connection::event::RTCPeerConnectionEvent;
use rtc::peer_connection::state::RTCPeerConnectionState;
use rtc::sansio::Protocol;

use crate::client::{OPUS_PT, VP8_PT};
use crate::stream::{is_vp8_keyframe_start, payload_tag};

/// Decrypt one packet in this many once the offset is known.
pub const SAMPLE_EVERY: u32 = 16;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LegState {
    /// Offer sent, no answer yet.
    Signaling,
    /// Answer applied, ICE/DTLS under way.
    Connecting,
    Connected,
    /// Never connected, or lost after connecting.
    Failed(String),
    /// The gateway answered 503 (over its load limit).
    Refused,
}

/// The cleartext fields of an RTP header the generator needs.
#[derive(Debug, Clone, Copy)]
pub struct ClearRtp {
    pub payload_type: u8,
    pub marker: bool,
    pub sequence_number: u16,
}

impl ClearRtp {
    /// Parses an SRTP/RTP datagram's fixed header; `None` for RTCP and non-RTP.
    pub fn parse(d: &[u8]) -> Option<Self> {
        if d.len() < 12 || !(128..=191).contains(&d[0]) {
            return None;
        }
        let payload_type = d[1] & 0x7f;
        if (64..=95).contains(&payload_type) {
            return None; // RTCP (RFC 5761 demux)
        }
        Some(Self {
            payload_type,
            marker: d[1] & 0x80 != 0,
            sequence_number: u16::from_be_bytes([d[2], d[3]]),
        })
    }
}

/// Per-SSRC counters of one subscriber track.
#[derive(Debug, Default, Clone)]
pub struct TrackCounters {
    /// Subscriber sequence − publisher sequence, learnt from decrypted samples.
    pub offset: Option<u16>,
    base: Option<u64>,
    max_ext: u64,
    pub received: u64,
    since_sample: u32,
    pub samples_ok: u64,
    pub sample_mismatches: u64,
}

impl TrackCounters {
    /// Counts one packet; returns whether it should be decrypted as a sample.
    fn count(&mut self, seq: u16) -> bool {
        // Extended (unwrapped) sequence numbers start one cycle up so reordering before the
        // first packet cannot go negative.
        match self.base {
            None => {
                self.base = Some(seq as u64 + (1 << 16));
                self.max_ext = seq as u64 + (1 << 16);
            }
            Some(_) => {
                let delta = seq.wrapping_sub(self.max_ext as u16) as i16 as i64;
                let ext = (self.max_ext as i64 + delta).max(0) as u64;
                self.max_ext = self.max_ext.max(ext);
            }
        }
        self.received += 1;
        self.since_sample += 1;
        if self.offset.is_none() || self.since_sample >= SAMPLE_EVERY {
            self.since_sample = 0;
            return true;
        }
        false
    }

    /// Packets the publisher's stream implies this track should have received so far.
    pub fn expected(&self) -> u64 {
        self.base.map_or(0, |b| self.max_ext + 1 - b)
    }

    fn learn(&mut self, subscriber_seq: u16, publisher_seq: u16) {
        let offset = subscriber_seq.wrapping_sub(publisher_seq);
        match self.offset {
            Some(o) if o != offset => {
                self.sample_mismatches += 1;
                self.offset = Some(offset);
            }
            _ => {
                self.samples_ok += 1;
                self.offset = Some(offset);
            }
        }
    }
}

/// Progress towards the first complete keyframe (start … marker, no gap).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyframeWatch {
    /// Decrypting every video packet, looking for a keyframe start.
    Seeking,
    Collecting {
        next: u16,
    },
    Done,
}

/// A WHEP subscriber endpoint.
pub struct SubscriberLeg {
    pub socket: mio::net::UdpSocket,
    pub local: SocketAddr,
    pub remote: Option<SocketAddr>,
    pub pc: RTCPeerConnection,
    pub state: LegState,
    pub session_url: Option<String>,
    pub late_joiner: bool,
    pub posted_at: Instant,
    pub connected_at: Option<Instant>,
    pub first_rtp_at: Option<Instant>,
    pub first_keyframe_at: Option<Instant>,
    pub video: TrackCounters,
    pub audio: TrackCounters,
    keyframe: KeyframeWatch,
}

/// What the clear path decided about one RTP datagram.
pub struct Counted {
    pub video: bool,
    /// The publisher sequence number, when the offset is known.
    pub publisher_seq: Option<u16>,
    pub decrypt: bool,
}

impl SubscriberLeg {
    pub fn new(
        socket: mio::net::UdpSocket,
        local: SocketAddr,
        pc: RTCPeerConnection,
        late_joiner: bool,
        posted_at: Instant,
    ) -> Self {
        Self {
            socket,
            local,
            remote: None,
            pc,
            state: LegState::Signaling,
            session_url: None,
            late_joiner,
            posted_at,
            connected_at: None,
            first_rtp_at: None,
            first_keyframe_at: None,
            video: TrackCounters::default(),
            audio: TrackCounters::default(),
            keyframe: KeyframeWatch::Seeking,
        }
    }

    /// Counts a received RTP packet from its clear header.
    pub fn on_clear_rtp(&mut self, rtp: ClearRtp, now: Instant) -> Option<Counted> {
        let video = match rtp.payload_type {
            VP8_PT => true,
            OPUS_PT => false,
            _ => return None,
        };
        let track = if video {
            &mut self.video
        } else {
            &mut self.audio
        };
        let mut decrypt = track.count(rtp.sequence_number);
        let publisher_seq = track.offset.map(|o| rtp.sequence_number.wrapping_sub(o));
        if video {
            self.first_rtp_at.get_or_insert(now);
            match self.keyframe {
                KeyframeWatch::Seeking => decrypt = true,
                KeyframeWatch::Collecting { next } if next == rtp.sequence_number => {
                    if rtp.marker {
                        self.keyframe = KeyframeWatch::Done;
                        self.first_keyframe_at.get_or_insert(now);
                    } else {
                        self.keyframe = KeyframeWatch::Collecting {
                            next: next.wrapping_add(1),
                        };
                    }
                }
                KeyframeWatch::Collecting { .. } => {
                    self.keyframe = KeyframeWatch::Seeking;
                    decrypt = true;
                }
                KeyframeWatch::Done => {}
            }
        }
        Some(Counted {
            video,
            publisher_seq,
            decrypt,
        })
    }

    /// Learns from a decrypted sample: the sequence offset, and keyframe starts.
    pub fn on_decrypted(&mut self, packet: &rtc::rtp::Packet, now: Instant) {
        let video = packet.header.payload_type == VP8_PT;
        let Some(tag) = payload_tag(&packet.payload) else {
            return;
        };
        let seq = packet.header.sequence_number;
        if video {
            self.video.learn(seq, tag);
            if self.keyframe == KeyframeWatch::Seeking && is_vp8_keyframe_start(&packet.payload) {
                if packet.header.marker {
                    self.keyframe = KeyframeWatch::Done;
                    self.first_keyframe_at.get_or_insert(now);
                } else {
                    self.keyframe = KeyframeWatch::Collecting {
                        next: seq.wrapping_add(1),
                    };
                }
            }
        } else {
            self.audio.learn(seq, tag);
        }
    }

    /// Applies the PeerConnection's pending state changes.
    pub fn poll_events(&mut self, now: Instant) {
        while let Some(event) = self.pc.poll_event() {
            if let RTCPeerConnectionEvent::OnConnectionStateChangeEvent(state) = event {
                match state {
                    RTCPeerConnectionState::Connected => {
                        self.state = LegState::Connected;
                        self.connected_at.get_or_insert(now);
                    }
                    RTCPeerConnectionState::Failed
                    | RTCPeerConnectionState::Closed
                    | RTCPeerConnectionState::Disconnected => {
                        self.state = LegState::Failed(format!("subscriber {state}"));
                    }
                    _ => {}
                }
            }
        }
    }

    pub fn is_connected(&self) -> bool {
        self.state == LegState::Connected
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_unwrap_sequence_and_report_loss() {
        let mut t = TrackCounters::default();
        for seq in [65530u16, 65531, 65533, 65535, 0, 1, 3] {
            t.count(seq);
        }
        assert_eq!(t.expected(), 10);
        assert_eq!(t.received, 7);
    }

    #[test]
    fn samples_are_taken_until_the_offset_is_known_then_one_in_sixteen() {
        let mut t = TrackCounters::default();
        assert!(t.count(1));
        assert!(t.count(2));
        t.learn(2, 1000);
        let decrypted = (3..3 + 64).filter(|s| t.count(*s)).count();
        assert_eq!(decrypted, 4);
        assert_eq!(t.offset, Some(2u16.wrapping_sub(1000)));
    }

    #[test]
    fn clear_parse_skips_rtcp_and_stun() {
        let mut rtp = [0u8; 12];
        rtp[0] = 0x80;
        rtp[1] = 0x80 | 96;
        rtp[3] = 7;
        let p = ClearRtp::parse(&rtp).unwrap();
        assert!(p.marker && p.payload_type == 96 && p.sequence_number == 7);
        rtp[1] = 200; // SR
        assert!(ClearRtp::parse(&rtp).is_none());
        assert!(ClearRtp::parse(&[0u8; 20]).is_none());
    }
}
