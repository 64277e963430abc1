//! What the engine does with a PeerConnection's events: connection and ICE state changes
//! (keyframes for late joiners and after ICE restarts) and publisher tracks opening.

use std::time::{Duration, Instant};

use rtc::peer_connection::event::{RTCPeerConnectionEvent, RTCTrackEvent};
use rtc::peer_connection::state::RTCIceConnectionState;

use super::engine::Engine;
use super::feedback::KeyframeRequestPacer;
use super::keyframe::VideoCodec;
use super::offer::MediaKind;
use super::peer::{PeerMedia, PublishedTrack};
use super::simulcast::Layer;

impl Engine {
    pub(super) fn on_event(&mut self, key: u64, event: RTCPeerConnectionEvent) {
        match event {
            RTCPeerConnectionEvent::OnConnectionStateChangeEvent(state) => {
                let Some(peer) = self.peers.get_mut(&key) else {
                    return;
                };
                tracing::info!(session = %peer.id, room = %peer.feed.room, feed = %peer.feed.feed, %state, "session state");
                peer.state = state;
                if peer.is_connected() && matches!(peer.media, PeerMedia::Subscriber { .. }) {
                    self.start_egress(key);
                    // A late joiner needs a keyframe now, not at the next periodic one.
                    if self.config.keyframe_cache {
                        self.replay_cached_keyframe(key);
                    }
                    let now = Instant::now();
                    for feed in self.sources(key) {
                        self.request_feed_keyframe(&feed, now);
                    }
                }
            }
            RTCPeerConnectionEvent::OnIceConnectionStateChangeEvent(state) => {
                self.on_ice_state(key, state);
            }
            RTCPeerConnectionEvent::OnTrack(RTCTrackEvent::OnOpen(init)) => {
                self.on_track_open(key, init);
            }
            _ => {}
        }
    }

    fn on_ice_state(&mut self, key: u64, state: RTCIceConnectionState) {
        let Some(peer) = self.peers.get_mut(&key) else {
            return;
        };
        peer.ice_connected = matches!(
            state,
            RTCIceConnectionState::Connected | RTCIceConnectionState::Completed
        );
        if !peer.ice_connected {
            return;
        }
        peer.pending_nomination = None;
        if !std::mem::take(&mut peer.ice_restarting) {
            return;
        }
        tracing::info!(session = %peer.id, "ICE reconnected after restart");
        // Media sent while no pair was selected is lost for good (rtc drops traffic from the
        // old pair once restarted, and its NACK state restarts too): the affected subscribers
        // restart video on a fresh keyframe rather than NACK in vain for the gap.
        let feed = peer.feed.clone();
        let affected: Vec<u64> = match &peer.media {
            PeerMedia::Subscriber { .. } => vec![key],
            PeerMedia::Publisher { .. } => self
                .feeds
                .get(&feed)
                .map(|f| f.subscribers.clone())
                .unwrap_or_default(),
        };
        for subscriber in affected {
            if let Some(PeerMedia::Subscriber { outputs }) =
                self.peers.get_mut(&subscriber).map(|p| &mut p.media)
            {
                outputs
                    .iter_mut()
                    .for_each(|o| o.forwarder.restart_on_keyframe());
            }
        }
        self.refresh_route(key);
        self.request_feed_keyframe(&feed, Instant::now());
    }

    fn on_track_open(&mut self, key: u64, init: rtc::peer_connection::event::RTCTrackEventInit) {
        let Some((room, own_recording)) = self
            .peers
            .get(&key)
            .map(|p| (p.feed.room.clone(), p.own_recording.clone()))
        else {
            return;
        };
        let record_dir = match own_recording {
            Some(_) => None,
            None => self.recording_dir(&room),
        };
        let Some(peer) = self.peers.get_mut(&key) else {
            return;
        };
        let Some(receiver) = peer.pc.rtp_receiver(init.receiver_id) else {
            return;
        };
        let track = receiver.track();
        let kind = match track.kind() {
            rtc::rtp_transceiver::rtp_sender::RtpCodecKind::Audio => MediaKind::Audio,
            rtc::rtp_transceiver::rtp_sender::RtpCodecKind::Video => MediaKind::Video,
            _ => return,
        };
        let codec = track.codec(init.ssrc).cloned();
        let mime_lower = codec
            .as_ref()
            .map(|c| c.mime_type.to_ascii_lowercase())
            .unwrap_or_default();
        let PeerMedia::Publisher { tracks } = &mut peer.media else {
            return;
        };
        let layer = Layer {
            ssrc: init.ssrc,
            rid: init.rid.clone(),
        };
        if let Some(track) = tracks.iter_mut().find(|t| t.track_id == init.track_id) {
            tracing::info!(session = %peer.id, room = %peer.feed.room, rid = ?layer.rid,
                ssrc = init.ssrc, "publisher simulcast layer open");
            std::sync::Arc::make_mut(&mut track.layers).push(layer);
            return;
        }
        tracing::info!(session = %peer.id, room = %peer.feed.room, feed = %peer.feed.feed, kind = kind.as_str(),
            codec = %mime_lower, ssrc = init.ssrc, rid = ?layer.rid, "publisher track open");
        let recording = match (&own_recording, record_dir) {
            (Some(own), _) => super::room_recording::start_own_track(
                &mut self.recorder,
                &self.record_dir,
                own,
                (&room, &init.track_id),
                kind,
                &mime_lower,
            ),
            (None, Some(dir)) => self.recorder.as_mut().and_then(|recorder| {
                recorder.start_track(&dir, &room, &init.track_id, &mime_lower)
            }),
            (None, None) => None,
        };
        let audio_level = super::audio_level::LevelWindow::new(match kind {
            MediaKind::Audio => peer
                .pc
                .local_description()
                .and_then(|d| super::audio_level::extension_id(&d.sdp)),
            MediaKind::Video => None,
        });
        tracks.push(PublishedTrack {
            track_id: init.track_id,
            receiver_id: init.receiver_id,
            kind,
            layers: std::sync::Arc::new(vec![layer]),
            video_codec: VideoCodec::from_mime(&mime_lower),
            mime_lower: mime_lower.into(),
            codec,
            pacer: KeyframeRequestPacer::new(Duration::from_millis(
                self.config.keyframe_request_interval_ms,
            )),
            recording,
            audio_level,
        });
    }
}
