//! A subscriber leg's sending side beyond the fan-out: its own SRTP context once DTLS is up,
//! answers to its NACKs from the send history, its sender reports, and the route its media
//! takes after an ICE restart.

use std::time::{Duration, Instant, SystemTime};

use rtc::rtcp::receiver_report::ReceiverReport;
use rtc::rtcp::transport_feedbacks::transport_layer_nack::TransportLayerNack;

use super::egress::SrtpEgress;
use super::engine::Engine;
use super::feedback::is_keyframe_request;
use super::peer::PeerMedia;

/// How often each output's RTCP sender report goes out (rtc's interceptor default).
const SENDER_REPORT_INTERVAL: Duration = Duration::from_secs(1);

impl Engine {
    /// RTCP the chain delivered: keyframe requests go upstream, NACKs are answered here.
    pub(super) fn on_rtcp_feedback(&mut self, key: u64, packets: &[Box<dyn rtc::rtcp::Packet>]) {
        if packets.iter().any(|p| is_keyframe_request(p.as_ref())) {
            self.on_keyframe_request(key);
        }
        for nack in packets
            .iter()
            .filter_map(|p| p.as_any().downcast_ref::<TransportLayerNack>())
        {
            self.on_subscriber_nack(key, nack);
        }
    }

    /// Builds a subscriber's own SRTP context from the keys its DTLS handshake derived; a
    /// session whose keys cannot be read is ended (it could never receive media).
    pub(super) fn start_egress(&mut self, key: u64) {
        // rtc's last handshake flight leaves first: media ahead of it would reach a client
        // that has no keys yet.
        self.flush(key);
        let Some(peer) = self.peers.get_mut(&key) else {
            return;
        };
        if peer.egress.is_some() {
            return;
        }
        let Some(tap) = peer.srtp_keys.take() else {
            return;
        };
        let egress = tap
            .local_keys()
            .map_err(|e| e.to_string())
            .and_then(|keys| {
                SrtpEgress::new(&keys, tap.inner().crypto()).map_err(|e| e.to_string())
            });
        match egress {
            Ok(egress) => peer.egress = Some(egress),
            Err(why) => self.doom(key, format!("SRTP keys unavailable: {why}")),
        }
    }

    /// Resends what a subscriber's NACK asks for, if still in its output's history.
    fn on_subscriber_nack(&mut self, key: u64, nack: &TransportLayerNack) {
        let Some(peer) = self.peers.get_mut(&key) else {
            return;
        };
        let (Some(egress), Some(route)) = (peer.egress.as_mut(), peer.route) else {
            return;
        };
        let PeerMedia::Subscriber { outputs } = &mut peer.media else {
            return;
        };
        let Some(output) = outputs
            .iter_mut()
            .find(|o| o.forwarder.out_ssrc() == nack.media_ssrc)
        else {
            return;
        };
        let requested: u32 = nack
            .nacks
            .iter()
            .map(|p| p.packet_list().len() as u32)
            .sum();
        peer.loss.add(output.kind, requested);
        for sequence_number in nack.nacks.iter().flat_map(|pair| pair.packet_list()) {
            let Some(packet) = output.sent.retransmission(nack.media_ssrc, sequence_number) else {
                continue;
            };
            if let Err(e) = self.datagrams.send_rtp(
                &self.sockets,
                egress,
                route,
                &packet.header,
                &packet.payload,
            ) {
                tracing::debug!(session = %peer.id, error = %e, "retransmission not sent");
            }
        }
    }

    /// Writes each connected subscriber output's sender report (through rtc, whose SRTCP
    /// context is separate from the forwarded RTP's).
    pub(super) fn send_sender_reports(&mut self, now: Instant) {
        self.next_sender_reports = now + SENDER_REPORT_INTERVAL;
        let wall = SystemTime::now();
        let mut written = Vec::new();
        for (key, peer) in self.peers.iter_mut() {
            if peer.egress.is_none() || !peer.can_receive_media(now) {
                continue;
            }
            let PeerMedia::Subscriber { outputs } = &peer.media else {
                continue;
            };
            for output in outputs {
                let ssrc = output.forwarder.out_ssrc();
                let Some(report) = output.sent.sender_report(ssrc, now, wall) else {
                    continue;
                };
                if let Some(mut sender) = peer.pc.rtp_sender(output.sender_id)
                    && let Err(e) = sender.write_rtcp(now, vec![Box::new(report)])
                {
                    tracing::debug!(session = %peer.id, error = %e, "sender report not sent");
                }
            }
            written.push(*key);
        }
        for key in written {
            self.mark_dirty(key);
        }
    }

    /// Sends an empty receiver report through rtc after ICE reconnected, so the route of the
    /// forwarded media (learned from rtc's own datagrams) moves to the new pair at once.
    pub(super) fn refresh_route(&mut self, key: u64) {
        let Some(peer) = self.peers.get_mut(&key) else {
            return;
        };
        if peer.egress.is_none() {
            return;
        }
        let PeerMedia::Subscriber { outputs } = &peer.media else {
            return;
        };
        let Some((sender_id, ssrc)) = outputs
            .first()
            .map(|o| (o.sender_id, o.forwarder.out_ssrc()))
        else {
            return;
        };
        let report = ReceiverReport {
            ssrc,
            ..Default::default()
        };
        if let Some(mut sender) = peer.pc.rtp_sender(sender_id)
            && let Err(e) = sender.write_rtcp(Instant::now(), vec![Box::new(report)])
        {
            tracing::debug!(session = %peer.id, error = %e, "route refresh not sent");
        }
        self.mark_dirty(key);
    }
}
