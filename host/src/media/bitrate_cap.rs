//! Bitrate caps (Janus VideoRoom: the room's `bitrate`, a publisher's own `configure
//! {bitrate}`): a REMB (draft-alvestrand-rmcat-remb) naming every video SSRC of a publisher
//! tells its encoder the most it may send. Browsers that negotiated `goog-remb` (the default
//! codecs offer it) lower their target at once; the dialect repeats the message, as Janus does,
//! so an estimate that grows meanwhile is capped again.

use std::time::Instant;

use rtc::rtcp::payload_feedbacks::receiver_estimated_maximum_bitrate::ReceiverEstimatedMaximumBitrate;

use super::engine::Engine;
use super::offer::MediaKind;
use super::peer::PeerMedia;

/// The caps of one room's publishers, in bits per second (0: no cap).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BitrateCaps {
    /// For every publisher without its own.
    pub room: u64,
    /// Publishers' own caps, by session id.
    pub sessions: Vec<(String, u64)>,
}

impl BitrateCaps {
    fn of(&self, session: &str) -> u64 {
        self.sessions
            .iter()
            .find(|(s, _)| s == session)
            .map_or(self.room, |(_, bits)| *bits)
    }
}

impl Engine {
    /// Sends every connected publisher of `room` a REMB of its cap; how many were told.
    pub(super) fn cap_room_bitrate(
        &mut self,
        room: &str,
        caps: &BitrateCaps,
        now: Instant,
    ) -> usize {
        let publishers: Vec<_> = self
            .feeds
            .values()
            .filter(|f| f.key.room == room)
            .filter_map(|f| f.publisher)
            .collect();
        let mut told = 0;
        for publisher in publishers {
            let Some(peer) = self.peers.get_mut(&publisher) else {
                continue;
            };
            let bits_per_sec = caps.of(&peer.id);
            if !peer.is_connected() || bits_per_sec == 0 {
                continue;
            }
            let PeerMedia::Publisher { tracks } = &peer.media else {
                continue;
            };
            let video: Vec<_> = tracks
                .iter()
                .filter(|t| t.kind == MediaKind::Video)
                .collect();
            let Some(first) = video.first() else {
                continue;
            };
            let receiver_id = first.receiver_id;
            let ssrcs: Vec<u32> = video
                .iter()
                .flat_map(|t| t.layers.iter().map(|l| l.ssrc))
                .collect();
            let remb = ReceiverEstimatedMaximumBitrate {
                sender_ssrc: 0,
                bitrate: bits_per_sec as f32,
                ssrcs,
            };
            if let Some(mut receiver) = peer.pc.rtp_receiver(receiver_id) {
                match receiver.write_rtcp(now, vec![Box::new(remb)]) {
                    Ok(()) => told += 1,
                    Err(e) => tracing::debug!(error = %e, "REMB not sent"),
                }
            }
            self.mark_dirty(publisher);
        }
        told
    }
}
