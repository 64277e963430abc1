//! The playout-delay RTP header extension on forwarded video (Janus `min_delay`/`max_delay`):
//! a subscriber's own setting, or else its publisher's, is written on every video packet it
//! receives, so its player buffers at least `min` and at most `max` (10 ms units, 12 bits
//! each). Only where the subscriber's answer negotiated the extension.

use bytes::Bytes;
use rtc::rtp::header::{Extension, Header};

use super::MediaError;
use super::engine::Engine;
use super::offer::MediaKind;
use super::peer::PeerMedia;

/// The extension's URI (webrtc.org's experiment, what Chrome offers and honours).
pub const PLAYOUT_DELAY_URI: &str = "http://www.webrtc.org/experiments/rtp-hdrext/playout-delay";

/// The largest delay the extension carries (12 bits of 10 ms: 40.95 s).
const MAX_DELAY: u16 = 0x0fff;

/// A playout delay range, in 10 ms units.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlayoutDelay {
    pub min: u16,
    pub max: u16,
}

impl PlayoutDelay {
    /// The range `min`..`max`, each capped to what the extension carries and `max` raised to
    /// `min` when below it.
    pub fn new(min: u16, max: u16) -> Self {
        let min = min.min(MAX_DELAY);
        Self {
            min,
            max: max.min(MAX_DELAY).max(min),
        }
    }

    /// The extension's three bytes: 12 bits of `min`, then 12 bits of `max`.
    fn payload(self) -> Bytes {
        let both = (u32::from(self.min) << 12) | u32::from(self.max);
        Bytes::copy_from_slice(&both.to_be_bytes()[1..])
    }
}

/// A delay setting made once, written on each packet without building it again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DelaySetting {
    pub delay: PlayoutDelay,
    payload: Bytes,
}

impl DelaySetting {
    pub fn new(delay: PlayoutDelay) -> Self {
        Self {
            delay,
            payload: delay.payload(),
        }
    }

    /// Adds the extension (id `id`) to a forwarded packet's header, whose own extensions
    /// were dropped (with their padding: marshalling counts it in the size but not in the
    /// block's length field).
    pub fn write(&self, header: &mut Header, id: u8) {
        header.extension = true;
        header.extension_profile = 0xBEDE;
        header.extensions_padding = 0;
        header.extensions.push(Extension {
            id,
            payload: self.payload.clone(),
        });
    }
}

/// The extension's id among the video sections of a negotiated `sdp`, if it was negotiated.
pub(crate) fn negotiated_id(sdp: &str) -> Option<u8> {
    let mut in_video = false;
    for line in sdp.lines().map(|l| l.trim_end_matches('\r')) {
        if let Some(media) = line.strip_prefix("m=") {
            in_video = media.starts_with("video ");
        } else if in_video && let Some(map) = line.strip_prefix("a=extmap:") {
            let (id, rest) = map.split_once(' ')?;
            if rest.split_whitespace().next() == Some(PLAYOUT_DELAY_URI) {
                // `id/direction` is allowed; one-byte header ids are 1..=14.
                let id: u8 = id.split('/').next()?.parse().ok()?;
                return (1..=14).contains(&id).then_some(id);
            }
        }
    }
    None
}

impl Engine {
    /// Sets (or with `None` clears) the playout delay of session `id`'s video: a subscriber's
    /// own, for what it receives from `source` (every feed when `None`), or a publisher's,
    /// for its subscribers without their own.
    pub(super) fn set_playout_delay(
        &mut self,
        room: &str,
        id: &str,
        source: Option<&str>,
        delay: Option<PlayoutDelay>,
    ) -> Result<(), MediaError> {
        let setting = delay.map(DelaySetting::new);
        let (_, peer) = self.find_peer(room, id)?;
        match &mut peer.media {
            PeerMedia::Subscriber { outputs } => {
                for output in outputs.iter_mut().filter(|o| {
                    o.kind == MediaKind::Video && source.is_none_or(|s| o.source.feed == s)
                }) {
                    output.playout_delay = setting.clone();
                }
            }
            PeerMedia::Publisher { .. } => {
                let feed = peer.feed.clone();
                if let Some(feed) = self.feeds.get_mut(&feed) {
                    feed.playout_delay = setting;
                }
            }
        }
        tracing::info!(session = %id, room, ?source, ?delay, "playout delay set");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_extension_carries_12_bits_of_min_then_12_of_max() {
        assert_eq!(
            &PlayoutDelay::new(0x123, 0x456).payload()[..],
            &[0x12, 0x34, 0x56]
        );
        assert_eq!(PlayoutDelay::new(50, 10), PlayoutDelay { min: 50, max: 50 });
        assert_eq!(
            PlayoutDelay::new(9000, 9000),
            PlayoutDelay {
                min: 4095,
                max: 4095
            }
        );
    }

    #[test]
    fn the_id_is_read_from_the_video_sections_only() {
        let sdp = "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n\
            a=extmap:5 http://www.webrtc.org/experiments/rtp-hdrext/playout-delay\r\n\
            m=video 9 UDP/TLS/RTP/SAVPF 96\r\n\
            a=extmap:7/sendonly http://www.webrtc.org/experiments/rtp-hdrext/playout-delay\r\n";
        assert_eq!(negotiated_id(sdp), Some(7));
        assert_eq!(negotiated_id("v=0\r\nm=video 9 RTP/AVP 96\r\n"), None);
    }

    #[test]
    fn a_written_header_marshals_the_extension() {
        use rtc::shared::marshal::Marshal;
        // A publisher's block left padding behind: it must not be marshalled.
        let mut header = Header {
            version: 2,
            extensions_padding: 2,
            ..Default::default()
        };
        DelaySetting::new(PlayoutDelay::new(10, 20)).write(&mut header, 3);
        let bytes = header.marshal().unwrap();
        // Profile 0xBEDE, one word; id 3, length 3 (L = 2); 0x00A014.
        assert_eq!(&bytes[12..20], &[0xbe, 0xde, 0, 1, 0x32, 0x00, 0xa0, 0x14]);
        assert_eq!(bytes.len(), 20);
    }
}
