//! Packet loss per session and direction, for Janus `slowlink` events: sequence numbers
//! missing from what a publisher sends us (uplink), and sequence numbers a subscriber NACKs
//! (downlink, what it lost of what we sent).

use rtc::peer_connection::RTCPeerConnection;
use rtc::rtp_transceiver::{RTCRtpReceiverId, RTCRtpSenderId};

use super::engine::Engine;
use super::offer::MediaKind;
use super::peer::PeerMedia;
use super::rewrite::seq_newer;

/// A jump beyond this is a restarted stream, not loss.
const MAX_GAP: u16 = 1000;

/// Lost packets of one session since they were last taken.
#[derive(Debug, Default, Clone)]
pub(crate) struct SessionLoss {
    audio: u32,
    video: u32,
    /// The highest sequence number seen per received SSRC.
    highest: Vec<(u32, u16)>,
}

impl SessionLoss {
    /// A received packet: counts the sequence numbers skipped since the highest one seen.
    pub fn received(&mut self, kind: MediaKind, ssrc: u32, seq: u16) {
        let Some(entry) = self.highest.iter_mut().find(|(s, _)| *s == ssrc) else {
            self.highest.push((ssrc, seq));
            return;
        };
        if !seq_newer(seq, entry.1) {
            return; // late or repeated
        }
        let gap = seq.wrapping_sub(entry.1) - 1;
        entry.1 = seq;
        if gap < MAX_GAP {
            self.add(kind, u32::from(gap));
        }
    }

    /// Sequence numbers the remote reported lost (a NACK).
    pub fn add(&mut self, kind: MediaKind, lost: u32) {
        match kind {
            MediaKind::Audio => self.audio = self.audio.saturating_add(lost),
            MediaKind::Video => self.video = self.video.saturating_add(lost),
        }
    }

    fn take(&mut self) -> [(MediaKind, u32); 2] {
        let taken = [
            (MediaKind::Audio, self.audio),
            (MediaKind::Video, self.video),
        ];
        self.audio = 0;
        self.video = 0;
        taken
    }
}

/// Packets one session lost of one kind since the previous report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LossReport {
    pub room: String,
    pub session: String,
    /// `"audio"` or `"video"`.
    pub media: &'static str,
    /// The m-line of that kind.
    pub mid: Option<String>,
    /// Lost on the way to us (a publisher's packets), else on the way to the client.
    pub uplink: bool,
    pub lost: u32,
}

impl Engine {
    /// Every session's losses since the previous call (which took them).
    pub(super) fn take_loss_reports(&mut self) -> Vec<LossReport> {
        let mut reports = Vec::new();
        for peer in self.peers.values_mut() {
            for (kind, lost) in peer.loss.take() {
                if lost == 0 {
                    continue;
                }
                let (uplink, mid) = match &peer.media {
                    PeerMedia::Publisher { tracks } => {
                        let receiver = tracks.iter().find(|t| t.kind == kind);
                        (
                            true,
                            mid_of(&mut peer.pc, None, receiver.map(|t| t.receiver_id)),
                        )
                    }
                    PeerMedia::Subscriber { outputs } => {
                        let sender = outputs.iter().find(|o| o.kind == kind);
                        (
                            false,
                            mid_of(&mut peer.pc, sender.map(|o| o.sender_id), None),
                        )
                    }
                };
                reports.push(LossReport {
                    room: peer.feed.room.clone(),
                    session: peer.id.clone(),
                    media: match kind {
                        MediaKind::Audio => "audio",
                        MediaKind::Video => "video",
                    },
                    mid,
                    uplink,
                    lost,
                });
            }
        }
        reports
    }
}

/// The mid of the transceiver holding `sender` or `receiver`.
fn mid_of(
    pc: &mut RTCPeerConnection,
    sender: Option<RTCRtpSenderId>,
    receiver: Option<RTCRtpReceiverId>,
) -> Option<String> {
    let ids: Vec<_> = pc.get_transceivers().collect();
    ids.into_iter().find_map(|id| {
        let t = pc.rtp_transceiver(id)?;
        let matches = (sender.is_some() && t.sender() == sender)
            || (receiver.is_some() && t.receiver() == receiver);
        matches.then(|| t.mid().clone()).flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skipped_sequence_numbers_count_as_lost_and_late_or_restarted_ones_do_not() {
        let mut loss = SessionLoss::default();
        loss.received(MediaKind::Video, 1, 65534);
        loss.received(MediaKind::Video, 1, 65535);
        loss.received(MediaKind::Video, 1, 2); // 0 and 1 missing, across the wrap
        loss.received(MediaKind::Video, 1, 1); // late: repaired, not counted again
        loss.received(MediaKind::Video, 1, 30_000); // a restart, not loss
        loss.received(MediaKind::Audio, 2, 10);
        loss.received(MediaKind::Audio, 2, 13);
        let taken = loss.take();
        assert_eq!(taken, [(MediaKind::Audio, 2), (MediaKind::Video, 2)]);
        assert_eq!(loss.take(), [(MediaKind::Audio, 0), (MediaKind::Video, 0)]);
    }
}
