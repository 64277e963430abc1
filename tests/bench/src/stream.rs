//! The synthetic publisher stream: VP8-like CBR video and Opus-like audio, every payload tagged
//! with its publisher sequence number so a decrypted sample anchors the subscriber's offset.

use std::time::{Duration, Instant};

/// Video frame interval (30 fps).
pub const FRAME_INTERVAL: Duration = Duration::from_nanos(33_333_333);
/// Audio packet interval (50 pps).
pub const AUDIO_INTERVAL: Duration = Duration::from_millis(20);
/// Periodic keyframe interval.
pub const KEYFRAME_INTERVAL: Duration = Duration::from_secs(2);
/// Packets in a delta frame: 7 × 1190 B ≈ 8.3 kB per frame ≈ 2 Mb/s at 30 fps.
pub const DELTA_FRAME_PACKETS: usize = 7;
/// Packets in a keyframe burst.
pub const KEYFRAME_PACKETS: usize = 40;
pub const VIDEO_PAYLOAD: usize = 1190;
pub const AUDIO_PAYLOAD: usize = 100;
/// The earliest a keyframe request is honoured after the previous keyframe (as an encoder does).
const MIN_KEYFRAME_SPACING: Duration = Duration::from_millis(100);

/// VP8 payload descriptor + payload header of a keyframe start (S=1, PID=0, P=0, start code).
const VP8_KEYFRAME_START: [u8; 6] = [0x10, 0x00, 0x9d, 0x01, 0x2a, 0x00];
/// VP8 descriptor + inter-frame header (P=1).
const VP8_DELTA_START: [u8; 2] = [0x10, 0x01];
/// VP8 descriptor of a continuation packet (S=0).
const VP8_CONTINUATION: [u8; 1] = [0x00];

/// One packet the publisher sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntheticPacket {
    pub video: bool,
    pub marker: bool,
    pub sequence_number: u16,
    pub timestamp: u32,
    pub payload: Vec<u8>,
}

/// Clock of the synthetic encoder: what to send and when.
pub struct SyntheticStream {
    next_frame: Instant,
    next_audio: Instant,
    last_keyframe: Option<Instant>,
    keyframe_requested: bool,
    frame_index: u32,
    audio_index: u32,
    video_seq: u16,
    audio_seq: u16,
    pub keyframes_sent: u64,
}

impl SyntheticStream {
    pub fn new(now: Instant) -> Self {
        Self {
            next_frame: now,
            next_audio: now,
            last_keyframe: None,
            keyframe_requested: true,
            frame_index: 0,
            audio_index: 0,
            video_seq: 0,
            audio_seq: 0,
            keyframes_sent: 0,
        }
    }

    /// A PLI/FIR arrived: the next frame is a keyframe (rate-limited like a real encoder).
    pub fn request_keyframe(&mut self) {
        self.keyframe_requested = true;
    }

    /// When the next packet is due.
    pub fn next_due(&self) -> Instant {
        self.next_frame.min(self.next_audio)
    }

    /// Appends every packet due at `now` to `out`.
    pub fn due_packets(&mut self, now: Instant, out: &mut Vec<SyntheticPacket>) {
        while self.next_audio <= now {
            out.push(self.audio_packet());
            self.next_audio += AUDIO_INTERVAL;
        }
        while self.next_frame <= now {
            self.video_frame(now, out);
            self.next_frame += FRAME_INTERVAL;
        }
    }

    fn audio_packet(&mut self) -> SyntheticPacket {
        let seq = self.audio_seq;
        self.audio_seq = seq.wrapping_add(1);
        let timestamp = self.audio_index.wrapping_mul(960);
        self.audio_index = self.audio_index.wrapping_add(1);
        let mut payload = vec![0xfc; AUDIO_PAYLOAD];
        tag_payload(&mut payload, seq);
        SyntheticPacket {
            video: false,
            marker: false,
            sequence_number: seq,
            timestamp,
            payload,
        }
    }

    fn video_frame(&mut self, now: Instant, out: &mut Vec<SyntheticPacket>) {
        let periodic = self
            .last_keyframe
            .is_none_or(|t| now.saturating_duration_since(t) >= KEYFRAME_INTERVAL);
        let requested = self.keyframe_requested
            && self
                .last_keyframe
                .is_none_or(|t| now.saturating_duration_since(t) >= MIN_KEYFRAME_SPACING);
        let keyframe = periodic || requested;
        if keyframe {
            self.keyframe_requested = false;
            self.last_keyframe = Some(now);
            self.keyframes_sent += 1;
        }
        let count = if keyframe {
            KEYFRAME_PACKETS
        } else {
            DELTA_FRAME_PACKETS
        };
        let timestamp = self.frame_index.wrapping_mul(3000);
        self.frame_index = self.frame_index.wrapping_add(1);
        for i in 0..count {
            let seq = self.video_seq;
            self.video_seq = seq.wrapping_add(1);
            let mut payload = vec![0x55; VIDEO_PAYLOAD];
            let head: &[u8] = match (i, keyframe) {
                (0, true) => &VP8_KEYFRAME_START,
                (0, false) => &VP8_DELTA_START,
                _ => &VP8_CONTINUATION,
            };
            payload[..head.len()].copy_from_slice(head);
            tag_payload(&mut payload, seq);
            out.push(SyntheticPacket {
                video: true,
                marker: i + 1 == count,
                sequence_number: seq,
                timestamp,
                payload,
            });
        }
    }
}

/// The tag: the publisher's sequence number twice (so a corrupted sample is told apart).
fn tag_payload(payload: &mut [u8], seq: u16) {
    let n = payload.len();
    payload[n - 4..n - 2].copy_from_slice(&seq.to_be_bytes());
    payload[n - 2..].copy_from_slice(&(!seq).to_be_bytes());
}

/// The publisher sequence number a decrypted payload carries.
pub fn payload_tag(payload: &[u8]) -> Option<u16> {
    let n = payload.len();
    if n < 8 {
        return None;
    }
    let seq = u16::from_be_bytes([payload[n - 4], payload[n - 3]]);
    let check = u16::from_be_bytes([payload[n - 2], payload[n - 1]]);
    (check == !seq).then_some(seq)
}

/// Whether a decrypted VP8 payload starts a keyframe.
pub fn is_vp8_keyframe_start(payload: &[u8]) -> bool {
    payload.len() >= 2 && payload[0] & 0x10 != 0 && payload[0] & 0x07 == 0 && payload[1] & 0x01 == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_second_is_about_two_megabits_with_a_keyframe_first() {
        let t0 = Instant::now();
        let mut stream = SyntheticStream::new(t0);
        let mut out = Vec::new();
        stream.due_packets(t0 + Duration::from_millis(999), &mut out);
        let video: Vec<_> = out.iter().filter(|p| p.video).collect();
        assert!(is_vp8_keyframe_start(&video[0].payload));
        assert!(!is_vp8_keyframe_start(&video[KEYFRAME_PACKETS].payload));
        let bits: usize = out.iter().map(|p| p.payload.len() * 8).sum();
        assert!((1_900_000..2_700_000).contains(&bits), "{bits} bit/s");
        assert_eq!(out.iter().filter(|p| !p.video).count(), 50);
        assert_eq!(video.iter().filter(|p| p.marker).count(), 30);
    }

    #[test]
    fn keyframe_request_is_honoured_on_the_next_frame_but_rate_limited() {
        let t0 = Instant::now();
        let mut stream = SyntheticStream::new(t0);
        let mut out = Vec::new();
        stream.due_packets(t0, &mut out);
        stream.request_keyframe();
        stream.due_packets(t0 + Duration::from_millis(50), &mut out);
        assert_eq!(stream.keyframes_sent, 1, "too soon after the first");
        stream.request_keyframe();
        stream.due_packets(t0 + Duration::from_millis(150), &mut out);
        assert_eq!(stream.keyframes_sent, 2);
    }

    #[test]
    fn payload_tag_round_trips_and_rejects_garbage() {
        let mut p = vec![0u8; 20];
        tag_payload(&mut p, 0xBEEF);
        assert_eq!(payload_tag(&p), Some(0xBEEF));
        p[19] ^= 1;
        assert_eq!(payload_tag(&p), None);
    }
}
