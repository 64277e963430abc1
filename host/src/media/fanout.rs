//! RTP fan-out: one publisher packet to every connected subscriber of its feed (rewritten per
//! subscriber by its `OutputForwarder`), and keyframe requests back to the publisher, paced.

use std::sync::Arc;
use std::time::Instant;

use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::shared::marshal::MarshalSize;

use super::LayerChoice;
use super::engine::{Engine, contained};
use super::feed::{Feed, FeedKey};
use super::feedback::PacerDecision;
use super::forward::{Skip, SourcePacketInfo};
use super::keyframe::VideoCodec;
use super::offer::MediaKind;
use super::peer::PeerMedia;
use super::simulcast;
use super::temporal::Vp8Temporal;

/// A publisher packet after the per-publisher work, ready for the subscriber loop.
struct Ingested {
    packet: rtc::rtp::Packet,
    kind: MediaKind,
    /// The packet's simulcast layer, and the track's layers when it has more than one.
    layer: usize,
    layers: Option<Arc<Vec<simulcast::Layer>>>,
    mime_lower: Arc<str>,
    video_codec: Option<VideoCodec>,
    /// The payload's keyframe and temporal-layer fields, parsed once here.
    is_keyframe_start: bool,
    temporal: Option<Vp8Temporal>,
    /// Marshalled size, for the feed's traffic counters.
    bytes: u64,
}

impl Engine {
    /// Forwards the RTP packets one drain of a publisher produced to every connected subscriber
    /// of its feed. Subscribers are the outer loop, so one subscriber's packets of a burst leave
    /// back to back and the kernel can segment them from one buffer (UDP GSO).
    pub(super) fn fan_out(&mut self, publisher: u64, received: Vec<(String, rtc::rtp::Packet)>) {
        let batch: Vec<Ingested> = received
            .into_iter()
            .filter_map(|(track_id, packet)| self.ingest(publisher, &track_id, packet))
            .collect();
        if batch.is_empty() {
            return;
        }
        let Some(feed) = self
            .peers
            .get(&publisher)
            .and_then(|peer| self.feeds.get(&peer.feed))
        else {
            return;
        };
        let infos: Vec<SourcePacketInfo<'_>> = batch
            .iter()
            .map(|i| SourcePacketInfo {
                mime_lower: &i.mime_lower,
                video_codec: i.video_codec,
                is_keyframe_start: i.is_keyframe_start,
                temporal: i.temporal,
            })
            .collect();
        let now = Instant::now();
        let mut wants_keyframe = Vec::new();
        let mut faulty = Vec::new();
        let mut traffic = feed.traffic.get();
        // Disjoint field borrows: the feed's subscriber list is read while peers are written.
        let (peers, datagrams, sockets) = (&mut self.peers, &mut self.datagrams, &self.sockets);
        for key in &feed.subscribers {
            let Some(sub) = peers.get_mut(key) else {
                continue;
            };
            if !sub.can_receive_media(now) {
                continue;
            }
            let playout_delay_ext = sub.playout_delay_ext;
            let (Some(egress), Some(route)) = (sub.egress.as_mut(), sub.route) else {
                continue;
            };
            let PeerMedia::Subscriber { outputs } = &mut sub.media else {
                continue;
            };
            // The output per kind, looked up once per subscriber (source keys are strings).
            let mut output_of: [Option<Option<usize>>; 2] = [None, None];
            // Still waiting for a keyframe after this batch (a later packet may open the gate).
            let mut awaiting = [false; 2];
            for (ingested, info) in batch.iter().zip(&infos) {
                let kind = ingested.kind;
                let slot = &mut output_of[usize::from(kind == MediaKind::Video)];
                let index = *slot.get_or_insert_with(|| {
                    outputs
                        .iter()
                        .position(|o| o.kind == kind && o.source == feed.key)
                });
                let Some(output) = index.and_then(|i| outputs.get_mut(i)) else {
                    continue;
                };
                let wanted = match &ingested.layers {
                    Some(layers) => {
                        simulcast::chosen_layer(layers, &output.layer) == Some(ingested.layer)
                    }
                    None => output.layer != LayerChoice::Off,
                };
                if !wanted || output.paused {
                    continue;
                }
                let packet = &ingested.packet;
                let mut header = packet.header.clone();
                let waiting = &mut awaiting[usize::from(kind == MediaKind::Video)];
                match output.forwarder.prepare(&mut header, info, now) {
                    Ok(()) => *waiting = false,
                    Err(Skip::AwaitingKeyframe) => {
                        *waiting = true;
                        continue;
                    }
                    Err(_) => continue,
                }
                if let Some(id) = playout_delay_ext
                    && kind == MediaKind::Video
                    && let Some(delay) = output
                        .playout_delay
                        .as_ref()
                        .or(feed.playout_delay.as_ref())
                {
                    delay.write(&mut header, id);
                }
                let sent = contained(|| {
                    datagrams.send_rtp(sockets, egress, route, &header, &packet.payload)
                });
                match sent {
                    Ok(Ok(())) => {
                        output.sent.on_sent(&header, &packet.payload, now);
                        traffic.egress_packets += 1;
                        traffic.egress_bytes += ingested.bytes;
                    }
                    Ok(Err(e)) => {
                        tracing::trace!(session = %sub.id, error = %e, "forward not protected");
                    }
                    Err(panic) => {
                        faulty.push((*key, format!("forwarding panicked: {panic}")));
                        break;
                    }
                }
            }
            for (kind, waiting) in [MediaKind::Audio, MediaKind::Video]
                .into_iter()
                .zip(awaiting)
            {
                if waiting && !wants_keyframe.contains(&kind) {
                    wants_keyframe.push(kind);
                }
            }
        }
        feed.traffic.set(traffic);
        for (key, why) in faulty {
            self.doom(key, why);
        }
        for kind in wants_keyframe {
            self.request_keyframe(publisher, kind, now);
        }
    }

    /// The per-publisher work on one received packet: recording, loss and audio-level
    /// accounting, the keyframe cache, ingress counters and plain RTP forwarders. `None` when
    /// the packet goes to no subscriber (unknown track or layer, muted publisher).
    fn ingest(
        &mut self,
        publisher: u64,
        track_id: &str,
        mut packet: rtc::rtp::Packet,
    ) -> Option<Ingested> {
        let peer = self.peers.get(&publisher)?;
        let PeerMedia::Publisher { tracks } = &peer.media else {
            return None;
        };
        let track = tracks.iter().find(|t| t.track_id == track_id)?;
        let layer = track
            .layers
            .iter()
            .position(|l| l.ssrc == packet.header.ssrc)?;
        let default_layer = layer == simulcast::default_layer(&track.layers);
        // Each subscriber gets one layer: the list is needed only with simulcast.
        let layers = (track.layers.len() > 1).then(|| Arc::clone(&track.layers));
        let kind = track.kind;
        let level_extension = track.audio_level.extension;
        let mime_lower = Arc::clone(&track.mime_lower);
        let video_codec = track.video_codec;
        let class = SourcePacketInfo::classify(&mime_lower, video_codec, &packet.payload);
        let (is_keyframe_start, temporal) = (class.is_keyframe_start, class.temporal);
        if let (Some(recording), Some(recorder), true) =
            (track.recording, &self.recorder, default_layer)
        {
            recorder.packet(recording, &packet);
        }
        if let Some(peer) = self.peers.get_mut(&publisher) {
            let header = &packet.header;
            peer.loss
                .received(kind, header.ssrc, header.sequence_number);
            if is_keyframe_start
                && let PeerMedia::Publisher { tracks } = &mut peer.media
                && let Some(track) = tracks.iter_mut().find(|t| t.track_id == track_id)
            {
                track.pacer.keyframe_arrived();
            }
        }
        let level = level_extension
            .and_then(|id| packet.header.get_extension(id))
            .and_then(|payload| payload.first().copied());
        if let Some(level) = level {
            self.observe_audio_level(publisher, track_id, level);
        }
        let peer = self.peers.get(&publisher)?;
        let muted = peer.muted.contains(&kind);
        // Extensions are per leg: drop them once here so the per-subscriber header copies
        // allocate nothing.
        packet.header.extensions.clear();
        packet.header.extensions_padding = 0;
        packet.header.extension = false;
        if self.config.keyframe_cache
            && kind == MediaKind::Video
            && default_layer
            && let Some(feed) = self.feeds.get_mut(&peer.feed)
        {
            feed.keyframe_cache.observe(&packet, is_keyframe_start);
        }
        let feed = self.feeds.get(&peer.feed)?;
        let bytes = (packet.header.marshal_size() + packet.payload.len()) as u64;
        let mut traffic = feed.traffic.get();
        traffic.ingress_packets += 1;
        traffic.ingress_bytes += bytes;
        feed.traffic.set(traffic);
        if muted {
            return None;
        }
        if !feed.rtp_forwarders.is_empty() && default_layer {
            let key = feed.key.clone();
            self.forward_plain(&key, kind, &packet);
        }
        Some(Ingested {
            packet,
            kind,
            layer,
            layers,
            mime_lower,
            video_codec,
            is_keyframe_start,
            temporal,
            bytes,
        })
    }

    /// Sends the feed's cached keyframe to a subscriber that just connected for the first time,
    /// then holds its video until the next live keyframe (the deltas in between reference
    /// frames it lacks).
    pub(super) fn replay_cached_keyframe(&mut self, subscriber: u64) {
        let Some(sub) = self.peers.get(&subscriber) else {
            return;
        };
        let Some(feed) = self.feeds.get(&sub.feed) else {
            return;
        };
        let Some(track) = feed
            .publisher
            .and_then(|p| self.peers.get(&p))
            .and_then(|p| match &p.media {
                PeerMedia::Publisher { tracks } => {
                    tracks.iter().find(|t| t.kind == MediaKind::Video)
                }
                PeerMedia::Subscriber { .. } => None,
            })
        else {
            return;
        };
        let (mime_lower, video_codec) = (track.mime_lower.clone(), track.video_codec);
        let feed_delay = feed.playout_delay.clone();
        let cached = feed.keyframe_cache.keyframe();
        if cached.is_empty() {
            return;
        }
        let now = Instant::now();
        let Some(sub) = self.peers.get_mut(&subscriber) else {
            return;
        };
        let PeerMedia::Subscriber { outputs } = &mut sub.media else {
            return;
        };
        let source = sub.feed.clone();
        let Some(output) = outputs
            .iter_mut()
            .find(|o| o.kind == MediaKind::Video && o.source == source)
        else {
            return;
        };
        if output.forwarder.counters.forwarded > 0 {
            return; // connected again (ICE restart): it already has the live stream
        }
        let playout_delay_ext = sub.playout_delay_ext;
        let (Some(egress), Some(route)) = (sub.egress.as_mut(), sub.route) else {
            return;
        };
        let mut replayed = 0;
        for packet in cached {
            let info = SourcePacketInfo::classify(&mime_lower, video_codec, &packet.payload);
            let mut header = packet.header.clone();
            if output.forwarder.prepare(&mut header, &info, now).is_err() {
                continue;
            }
            if let (Some(id), Some(delay)) = (
                playout_delay_ext,
                output.playout_delay.as_ref().or(feed_delay.as_ref()),
            ) {
                delay.write(&mut header, id);
            }
            match self
                .datagrams
                .send_rtp(&self.sockets, egress, route, &header, &packet.payload)
            {
                Ok(()) => {
                    output.sent.on_sent(&header, &packet.payload, now);
                    replayed += 1;
                }
                Err(e) => tracing::debug!(session = %sub.id, error = %e, "cached packet not sent"),
            }
        }
        output.forwarder.restart_on_keyframe();
        tracing::debug!(session = %sub.id, packets = replayed, "cached keyframe replayed");
    }

    /// A subscriber's PLI/FIR: ask its feed's publisher for a keyframe (paced).
    pub(super) fn on_keyframe_request(&mut self, key: u64) {
        let Some(peer) = self.peers.get(&key) else {
            return;
        };
        if matches!(peer.media, PeerMedia::Subscriber { .. }) {
            let now = Instant::now();
            for feed in self.sources(key) {
                self.request_feed_keyframe(&feed, now);
            }
        }
    }

    pub(super) fn request_feed_keyframe(&mut self, feed: &FeedKey, now: Instant) {
        if let Some(publisher) = self.feeds.get(feed).and_then(|f| f.publisher) {
            self.request_keyframe(publisher, MediaKind::Video, now);
        }
    }

    /// Sends the keyframe requests deferred by pacing whose time has come, unless the
    /// publisher sent a keyframe meanwhile.
    pub(super) fn send_deferred_keyframe_requests(&mut self, now: Instant) {
        if self.deferred_keyframes.iter().all(|(at, _)| *at > now) {
            return;
        }
        let (due, later) = std::mem::take(&mut self.deferred_keyframes)
            .into_iter()
            .partition::<Vec<_>, _>(|(at, _)| *at <= now);
        self.deferred_keyframes = later;
        for (_, publisher) in due {
            let Some(peer) = self.peers.get_mut(&publisher) else {
                continue;
            };
            let PeerMedia::Publisher { tracks } = &mut peer.media else {
                continue;
            };
            let wanted: Vec<_> = tracks
                .iter_mut()
                .filter_map(|t| {
                    (t.kind == MediaKind::Video && t.pacer.take_deferred(now)).then_some(&*t)
                })
                .flat_map(|t| t.layers.iter().map(|l| (t.receiver_id, l.ssrc)))
                .collect();
            send_plis(peer, &wanted, now);
            count_keyframe_requests(self.feeds.get(&peer.feed), wanted.len());
            self.mark_dirty(publisher);
        }
    }

    /// Sends a PLI for each of the publisher's `kind` tracks, at most once per pacing interval
    /// (a request inside the interval is deferred to its end).
    pub(super) fn request_keyframe(&mut self, publisher: u64, kind: MediaKind, now: Instant) {
        if kind != MediaKind::Video {
            return;
        }
        let Some(peer) = self.peers.get_mut(&publisher) else {
            return;
        };
        if !peer.is_connected() {
            return;
        }
        let PeerMedia::Publisher { tracks } = &mut peer.media else {
            return;
        };
        let mut due = Vec::new();
        for track in tracks.iter_mut().filter(|t| t.kind == MediaKind::Video) {
            match track.pacer.allow(now) {
                // Every layer: the subscriber may be on any of them.
                PacerDecision::Send => {
                    due.extend(track.layers.iter().map(|l| (track.receiver_id, l.ssrc)))
                }
                PacerDecision::DeferUntil(at) => self.deferred_keyframes.push((at, publisher)),
                PacerDecision::Coalesced => {}
            }
        }
        send_plis(peer, &due, now);
        count_keyframe_requests(self.feeds.get(&peer.feed), due.len());
        self.mark_dirty(publisher);
    }
}

/// Writes a PLI upstream for each `(receiver, media SSRC)` of a publisher.
fn send_plis(
    peer: &mut super::peer::Peer,
    targets: &[(rtc::rtp_transceiver::RTCRtpReceiverId, u32)],
    now: Instant,
) {
    for &(receiver_id, media_ssrc) in targets {
        if let Some(mut receiver) = peer.pc.rtp_receiver(receiver_id) {
            let pli = PictureLossIndication {
                sender_ssrc: 0,
                media_ssrc,
            };
            if let Err(e) = receiver.write_rtcp(now, vec![Box::new(pli)]) {
                tracing::debug!(error = %e, "PLI not sent");
            }
        }
    }
}

fn count_keyframe_requests(feed: Option<&Feed>, sent: usize) {
    if let Some(feed) = feed
        && sent > 0
    {
        let mut traffic = feed.traffic.get();
        traffic.keyframe_requests += sent as u64;
        feed.traffic.set(traffic);
    }
}
