//! The last complete keyframe of a room's video, so a joiner can start decoding at once instead
//! of waiting for the publisher to answer a PLI (`[webrtc] keyframe_cache`).
//!
//! Only the keyframe is replayed, never the delta frames after it: those reference frames the
//! joiner never got. The joiner's forwarder then waits for the next live keyframe (which its
//! join requests), so it shows the cached picture until live video resumes cleanly.

use rtc::rtp;

/// A keyframe larger than this many packets is not cached (≈ 1.8 MB at 1200 B).
const MAX_KEYFRAME_PACKETS: usize = 1500;

#[derive(Debug, Default)]
pub(crate) struct KeyframeCache {
    /// The newest complete keyframe: start packet through marker, consecutive, one SSRC.
    complete: Vec<rtp::Packet>,
    /// A keyframe being received.
    building: Vec<rtp::Packet>,
}

impl KeyframeCache {
    /// Offers a publisher video packet (extensions already removed); `keyframe_start` as
    /// classified for forwarding.
    pub fn observe(&mut self, packet: &rtp::Packet, keyframe_start: bool) {
        if keyframe_start {
            self.building.clear();
            self.building.push(packet.clone());
        } else if let Some(last) = self.building.last() {
            let next = last.header.sequence_number.wrapping_add(1);
            if packet.header.ssrc != last.header.ssrc || packet.header.sequence_number != next {
                // A gap or a reordered packet: this keyframe cannot be replayed whole.
                self.building.clear();
                return;
            }
            if self.building.len() >= MAX_KEYFRAME_PACKETS {
                self.building.clear();
                return;
            }
            self.building.push(packet.clone());
        } else {
            return;
        }
        if packet.header.marker {
            self.complete = std::mem::take(&mut self.building);
        }
    }

    /// The packets of the newest complete keyframe, in order (empty if none yet).
    pub fn keyframe(&self) -> &[rtp::Packet] {
        &self.complete
    }

    /// Forgets everything (the publisher left: its keyframe must not start a new one's stream).
    pub fn clear(&mut self) {
        self.complete.clear();
        self.building.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(ssrc: u32, seq: u16, marker: bool) -> rtp::Packet {
        rtp::Packet {
            header: rtp::header::Header {
                ssrc,
                sequence_number: seq,
                marker,
                ..Default::default()
            },
            payload: bytes::Bytes::from_static(&[0; 4]),
        }
    }

    #[test]
    fn a_keyframe_is_kept_once_its_marker_packet_arrives() {
        let mut cache = KeyframeCache::default();
        cache.observe(&packet(1, 10, false), true);
        cache.observe(&packet(1, 11, false), false);
        assert!(cache.keyframe().is_empty(), "incomplete keyframe replayed");
        cache.observe(&packet(1, 12, true), false);
        let seqs: Vec<u16> = cache
            .keyframe()
            .iter()
            .map(|p| p.header.sequence_number)
            .collect();
        assert_eq!(seqs, [10, 11, 12]);
    }

    #[test]
    fn delta_frames_after_the_keyframe_are_not_cached() {
        let mut cache = KeyframeCache::default();
        cache.observe(&packet(1, 10, true), true);
        cache.observe(&packet(1, 11, false), false);
        cache.observe(&packet(1, 12, true), false);
        assert_eq!(cache.keyframe().len(), 1);
    }

    #[test]
    fn a_gap_inside_a_keyframe_keeps_the_previous_complete_one() {
        let mut cache = KeyframeCache::default();
        cache.observe(&packet(1, 1, true), true);
        cache.observe(&packet(1, 10, false), true);
        cache.observe(&packet(1, 12, true), false); // 11 lost
        let seqs: Vec<u16> = cache
            .keyframe()
            .iter()
            .map(|p| p.header.sequence_number)
            .collect();
        assert_eq!(seqs, [1]);
    }
}
