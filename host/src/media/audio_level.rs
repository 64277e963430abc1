//! Publishers' audio levels (RFC 6464 `ssrc-audio-level` header extension), averaged over
//! windows of packets and announced for signaling that reports who talks (Janus `talking`).

use super::AudioLevel;
use super::engine::Engine;
use super::peer::PeerMedia;

/// The extension's URI.
pub const AUDIO_LEVEL_URI: &str = "urn:ietf:params:rtp-hdrext:ssrc-audio-level";

/// Audio packets per announcement (0.2 s of 20 ms Opus frames): signaling sums them into
/// its own, longer windows (Janus `audio_active_packets`, 100 by default).
const WINDOW_PACKETS: u32 = 10;

/// The running average of one published audio track.
#[derive(Debug, Default, Clone)]
pub(crate) struct LevelWindow {
    /// The negotiated extension id, when the publisher sends the extension.
    pub extension: Option<u8>,
    packets: u32,
    sum: u32,
}

impl LevelWindow {
    /// A window for a track whose packets carry the extension `extension` (if any).
    pub fn new(extension: Option<u8>) -> Self {
        Self {
            extension,
            ..Self::default()
        }
    }

    /// Adds one packet's level (0 loud … 127 silent); the window's packets and level sum when
    /// it is full.
    fn add(&mut self, level: u8) -> Option<(u32, u32)> {
        self.packets += 1;
        self.sum += u32::from(level & 0x7f);
        if self.packets < WINDOW_PACKETS {
            return None;
        }
        let full = (self.packets, self.sum);
        (self.packets, self.sum) = (0, 0);
        Some(full)
    }
}

/// The id of the audio-level extension in `sdp` (our answer to a publisher), if negotiated.
pub(crate) fn extension_id(sdp: &str) -> Option<u8> {
    sdp.lines()
        .filter_map(|l| l.trim_end_matches('\r').strip_prefix("a=extmap:"))
        .find_map(|rest| {
            let (id, uri) = rest.split_once(' ')?;
            let id = id.split('/').next()?;
            (uri.split_whitespace().next() == Some(AUDIO_LEVEL_URI)).then(|| id.parse().ok())?
        })
}

impl Engine {
    /// Counts one audio packet's level for publisher `key`'s track `track_id`, announcing the
    /// window's average when it fills.
    pub(super) fn observe_audio_level(&mut self, key: u64, track_id: &str, level: u8) {
        let Some(peer) = self.peers.get_mut(&key) else {
            return;
        };
        let PeerMedia::Publisher { tracks } = &mut peer.media else {
            return;
        };
        let Some(track) = tracks.iter_mut().find(|t| t.track_id == track_id) else {
            return;
        };
        if let Some((packets, level_sum)) = track.audio_level.add(level) {
            let _ = self.audio_levels.send(AudioLevel {
                room: peer.feed.room.clone(),
                session: peer.id.clone(),
                packets,
                level_sum,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_extension_id_is_read_from_the_answer() {
        let sdp = "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=extmap:3 urn:ietf:params:rtp-hdrext:sdes:mid\r\n\
                   a=extmap:5/recvonly urn:ietf:params:rtp-hdrext:ssrc-audio-level\r\n";
        assert_eq!(extension_id(sdp), Some(5));
        assert_eq!(extension_id("v=0\r\n"), None);
    }

    #[test]
    fn a_full_window_gives_its_packets_and_level_sum_and_starts_again() {
        let mut window = LevelWindow::default();
        let mut sum = 0;
        for i in 0..WINDOW_PACKETS - 1 {
            let level = if i % 2 == 0 { 10 } else { 30 };
            sum += u32::from(level);
            assert_eq!(window.add(level), None);
        }
        // The voice-activity bit is not part of the level.
        assert_eq!(window.add(0x80 | 20), Some((WINDOW_PACKETS, sum + 20)));
        assert_eq!(window.add(50), None);
    }
}
