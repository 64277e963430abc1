//! What each session's links did in the last interval, for Janus `slowlink` and `media`
//! events: sequence numbers missing from what a publisher sends us (uplink), sequence numbers
//! a subscriber NACKs (downlink, what it lost of what we sent), and packets a publisher sent.

use rtc::peer_connection::RTCPeerConnection;
use rtc::rtp_transceiver::{RTCRtpReceiverId, RTCRtpSenderId};

use super::engine::Engine;
use super::offer::MediaKind;
use super::peer::PeerMedia;
use super::rewrite::seq_newer;

/// A jump beyond this is a restarted stream, not loss.
const MAX_GAP: u16 = 1000;

/// Lost (and, from a publisher, received) packets of one session since they were last taken.
#[derive(Debug, Default, Clone)]
pub(crate) struct SessionLoss {
    audio: u32,
    video: u32,
    /// Packets received per kind (audio, video).
    received: [u32; 2],
    /// The highest sequence number seen per received SSRC.
    highest: Vec<(u32, u16)>,
}

impl SessionLoss {
    /// A received packet: counts the sequence numbers skipped since the highest one seen.
    pub fn received(&mut self, kind: MediaKind, ssrc: u32, seq: u16) {
        let count = &mut self.received[usize::from(kind == MediaKind::Video)];
        *count = count.saturating_add(1);
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

    /// `(kind, lost, received)` per kind, counted from zero again.
    fn take(&mut self) -> [(MediaKind, u32, u32); 2] {
        let taken = [
            (MediaKind::Audio, self.audio, self.received[0]),
            (MediaKind::Video, self.video, self.received[1]),
        ];
        (self.audio, self.video, self.received) = (0, 0, [0; 2]);
        taken
    }
}

/// What one session's link of one kind did since the previous report: every publisher's
/// track kind is reported, a subscriber's only when it lost packets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkReport {
    pub room: String,
    pub session: String,
    /// `"audio"` or `"video"`.
    pub media: &'static str,
    /// The m-line of that kind.
    pub mid: Option<String>,
    /// Lost on the way to us (a publisher's packets), else on the way to the client.
    pub uplink: bool,
    pub lost: u32,
    /// Packets received (a publisher's; 0 for a subscriber): none means its media stopped.
    pub received: u32,
}

impl Engine {
    /// Every session's link reports since the previous call (which took them).
    pub(super) fn take_link_reports(&mut self) -> Vec<LinkReport> {
        let mut reports = Vec::new();
        for peer in self.peers.values_mut() {
            for (kind, lost, received) in peer.loss.take() {
                let (uplink, mid) = match &peer.media {
                    PeerMedia::Publisher { tracks } => {
                        let Some(track) = tracks.iter().find(|t| t.kind == kind) else {
                            continue;
                        };
                        (true, mid_of(&mut peer.pc, None, Some(track.receiver_id)))
                    }
                    PeerMedia::Subscriber { .. } if lost == 0 => continue,
                    PeerMedia::Subscriber { outputs } => {
                        let sender = outputs.iter().find(|o| o.kind == kind);
                        (
                            false,
                            mid_of(&mut peer.pc, sender.map(|o| o.sender_id), None),
                        )
                    }
                };
                reports.push(LinkReport {
                    room: peer.feed.room.clone(),
                    session: peer.id.clone(),
                    media: match kind {
                        MediaKind::Audio => "audio",
                        MediaKind::Video => "video",
                    },
                    mid,
                    uplink,
                    lost,
                    received,
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
        assert_eq!(taken, [(MediaKind::Audio, 2, 2), (MediaKind::Video, 2, 5)]);
        assert_eq!(
            loss.take(),
            [(MediaKind::Audio, 0, 0), (MediaKind::Video, 0, 0)]
        );
    }
}
