//! Session lifecycle on the media thread: opening from an offer, trickle, ICE restart, closing,
//! and the snapshots signaling reads.

use std::time::Instant;

use rtc::peer_connection::RTCPeerConnection;
use rtc::peer_connection::sdp::RTCSessionDescription;
use rtc::peer_connection::transport::RTCIceCandidateInit;
use rtc::rtp_transceiver::rtp_sender::{RTCRtpCodec, RTCRtpCodecParameters, RtpCodecKind};
use rtc::sansio::Protocol;

use super::engine::Engine;
use super::feed::{CodecIntent, DEFAULT_FEED, Feed, FeedKey};
use super::offer::{self, MediaKind, OfferSummary, OfferedCodec};
use super::peer::{IceMode, Peer, PeerMedia};
use super::{
    IceRestartAnswer, MediaError, OfferRequest, PublisherLeave, RemoteCandidate, Role,
    SessionAnswer, SessionIce,
};

/// Candidates kept per session while it waits for the answer to our offer.
const EARLY_CANDIDATES_KEPT: usize = 32;

pub(super) fn rtc_kind(kind: MediaKind) -> RtpCodecKind {
    match kind {
        MediaKind::Audio => RtpCodecKind::Audio,
        MediaKind::Video => RtpCodecKind::Video,
    }
}

pub(super) fn rtc_codec(intent: &CodecIntent) -> RTCRtpCodec {
    RTCRtpCodec {
        mime_type: intent.mime_type.clone(),
        clock_rate: intent.clock_rate,
        channels: intent.channels,
        sdp_fmtp_line: intent.fmtp.clone(),
        rtcp_feedback: Vec::new(),
    }
}

/// A send track added to a subscriber: `(kind, SSRC, sender, codec)`.
/// The NACK counter of a feed (a detached one if the feed is gone).
pub(super) fn nacks_of(
    feeds: &std::collections::HashMap<FeedKey, Feed>,
    key: &FeedKey,
) -> std::sync::Arc<std::sync::atomic::AtomicU64> {
    feeds.get(key).map(|f| f.nacks.clone()).unwrap_or_default()
}

pub(super) type AddedTrack = (
    MediaKind,
    u32,
    rtc::rtp_transceiver::RTCRtpSenderId,
    CodecIntent,
);

pub(super) fn intent_from_offered(kind: MediaKind, codec: &OfferedCodec) -> CodecIntent {
    CodecIntent {
        kind,
        mime_type: codec.mime_type.clone(),
        clock_rate: codec.clock_rate,
        channels: codec.channels,
        fmtp: codec.fmtp.clone(),
    }
}

fn remote_init(c: RemoteCandidate) -> RTCIceCandidateInit {
    RTCIceCandidateInit {
        candidate: c.candidate,
        sdp_mid: c.mid,
        sdp_mline_index: Some(c.mline_index),
        ..Default::default()
    }
}

impl Engine {
    pub(super) fn open(&mut self, request: OfferRequest) -> Result<SessionAnswer, MediaError> {
        let key = self.resolve_feed(&request);
        let existed = self.feeds.contains_key(&key);
        let result = self.open_session(request, key.clone());
        // An offer that failed must not leave behind the feed it auto-created.
        if result.is_err() && !existed && self.feeds.get(&key).is_some_and(Feed::is_empty) {
            self.feeds.remove(&key);
        }
        result
    }

    /// The feed an offer addresses (see [`OfferRequest::feed`]).
    pub(super) fn resolve_feed(&self, request: &OfferRequest) -> FeedKey {
        if let Some(feed) = &request.feed {
            return FeedKey::new(&request.room, feed);
        }
        let default = FeedKey::new(&request.room, DEFAULT_FEED);
        if request.role == Role::Publisher || self.feeds.contains_key(&default) {
            return default;
        }
        self.feeds
            .values()
            .filter(|f| f.key.room == request.room)
            .min_by_key(|f| (f.publisher.is_none(), f.created_at))
            .map_or(default, |f| f.key.clone())
    }

    /// Refuses a subscriber while this thread is busier than `[webrtc] max_loop_load`.
    fn admit_subscriber_load(&self) -> Result<(), MediaError> {
        let load = self.load.load(Instant::now());
        if load <= self.config.max_loop_load {
            return Ok(());
        }
        self.load.gauge().count_refusal();
        tracing::warn!(
            load = format!("{:.0}%", load * 100.0),
            limit = format!("{:.0}%", self.config.max_loop_load * 100.0),
            "subscriber refused: media thread saturated"
        );
        Err(MediaError::Overloaded {
            load_percent: (load * 100.0).round() as u32,
        })
    }

    fn open_session(
        &mut self,
        request: OfferRequest,
        feed_key: FeedKey,
    ) -> Result<SessionAnswer, MediaError> {
        let summary = offer::inspect(&request.offer_sdp, request.role)?;
        if request.role == Role::Subscriber {
            self.admit_subscriber_load()?;
        }
        let room_exists = self.room_exists(&request.room);
        match self.feeds.get(&feed_key) {
            Some(feed) if request.role == Role::Publisher && feed.publisher.is_some() => {
                return Err(MediaError::PublisherExists(request.room));
            }
            Some(_) => {}
            None if request.create_room || (room_exists && request.role == Role::Publisher) => {
                if !room_exists {
                    tracing::info!(room = %request.room, "room created");
                }
                self.feeds
                    .insert(feed_key.clone(), Feed::new(feed_key.clone()));
            }
            None if room_exists => {
                return Err(MediaError::FeedNotFound {
                    room: feed_key.room,
                    feed: feed_key.feed,
                });
            }
            None => return Err(MediaError::RoomNotFound(request.room)),
        }
        let now = Instant::now();
        let built = self.factory.build(
            now,
            request.role,
            IceMode::LiteAnswerer,
            nacks_of(&self.feeds, &feed_key),
        )?;
        let mut pc = built.pc;
        let offer = RTCSessionDescription::offer(request.offer_sdp)
            .map_err(|e| MediaError::MalformedOffer(e.to_string()))?;
        pc.set_remote_description(now, offer)
            .map_err(|e| MediaError::UnusableOffer(e.to_string()))?;
        let media = match request.role {
            Role::Publisher => {
                self.prefer_feed_codecs(&feed_key, &mut pc);
                PeerMedia::Publisher { tracks: Vec::new() }
            }
            Role::Subscriber => PeerMedia::Subscriber {
                outputs: Vec::new(),
            },
        };
        let id = uuid::Uuid::new_v4().simple().to_string();
        let subscriber_tracks = match request.role {
            Role::Subscriber => self.add_subscriber_tracks(&feed_key, &summary, &mut pc)?,
            Role::Publisher => Vec::new(),
        };
        let answer = pc
            .create_answer(None)
            .map_err(|e| MediaError::UnusableOffer(e.to_string()))?;
        pc.set_local_description(now, answer)
            .map_err(|e| MediaError::UnusableOffer(e.to_string()))?;
        let answer_sdp = pc
            .local_description()
            .map(|d| d.sdp)
            .ok_or_else(|| MediaError::Internal("no local description".into()))?;
        let mut peer = Peer::new(
            id.clone(),
            request.dialect,
            feed_key.clone(),
            request.label,
            pc,
            media,
            &answer_sdp,
        )?;
        peer.srtp_keys = built.srtp_keys;
        if let PeerMedia::Subscriber { outputs } = &mut peer.media {
            let history = self.factory.nack_buffer_packets;
            *outputs = super::outputs::negotiated_outputs(
                &mut peer.pc,
                subscriber_tracks,
                &feed_key,
                history,
            );
        }
        let etag = peer.etag();
        self.add_peer(peer);
        Ok(SessionAnswer {
            session_id: id,
            answer_sdp: offer::tidy_answer(&answer_sdp),
            etag,
        })
    }

    /// Registers a new session with the engine (demux, ids, its feed) and returns its key.
    pub(super) fn add_peer(&mut self, peer: Peer) -> u64 {
        let key = self.next_key;
        self.next_key += 1;
        self.demux.add_ufrag(peer.local_ufrag.clone(), key);
        self.keys_by_id.insert(peer.id.clone(), key);
        let role = peer.role();
        tracing::info!(session = %peer.id, room = %peer.feed.room, feed = %peer.feed.feed,
            role = role.as_str(), "session opened");
        if let Some(feed) = self.feeds.get_mut(&peer.feed) {
            match role {
                Role::Publisher => {
                    feed.publisher = Some(key);
                    feed.publisher_left_at = None;
                }
                Role::Subscriber => {
                    feed.subscribers.push(key);
                    feed.subscriber_left_at = None;
                }
            }
        }
        self.peers.insert(key, peer);
        self.mark_dirty(key);
        key
    }

    /// A publisher arriving in a feed whose subscribers already negotiated a codec gets an
    /// answer that prefers that codec, so the early subscribers can be served (Live777 #406).
    pub(super) fn prefer_feed_codecs(&self, feed: &FeedKey, pc: &mut RTCPeerConnection) {
        let Some(feed) = self.feeds.get(feed) else {
            return;
        };
        let transceivers: Vec<_> = pc.get_transceivers().collect();
        for id in transceivers {
            let kind = pc
                .rtp_transceiver(id)
                .and_then(|t| t.receiver())
                .and_then(|r| pc.rtp_receiver(r).map(|r| r.track().kind()));
            let Some(intent) = kind.and_then(|k| {
                [MediaKind::Audio, MediaKind::Video]
                    .into_iter()
                    .find(|m| rtc_kind(*m) == k)
                    .and_then(|m| feed.intent(m))
            }) else {
                continue;
            };
            let preferred = RTCRtpCodecParameters {
                rtp_codec: rtc_codec(intent),
                payload_type: 0,
            };
            if let Some(mut transceiver) = pc.rtp_transceiver(id)
                && let Err(e) = transceiver.set_codec_preferences(vec![preferred])
            {
                tracing::debug!(error = %e, codec = %intent.mime_type,
                    "publisher does not offer the room's codec");
            }
        }
    }

    /// Adds one send track per offered kind, with the codec the feed's publisher sends (or the
    /// feed's recorded intent, or the client's first forwardable codec when no one sends yet).
    fn add_subscriber_tracks(
        &mut self,
        feed_key: &FeedKey,
        summary: &OfferSummary,
        pc: &mut RTCPeerConnection,
    ) -> Result<Vec<AddedTrack>, MediaError> {
        let publishing = self.publishing_codecs(feed_key);
        let mut added = Vec::new();
        for media in &summary.media {
            let kind = media.kind;
            let feed = self
                .feeds
                .get_mut(feed_key)
                .ok_or_else(|| MediaError::RoomNotFound(feed_key.room.clone()))?;
            let wanted = publishing
                .iter()
                .find(|(k, _)| *k == kind)
                .map(|(_, mime)| mime.clone())
                .or_else(|| feed.intent(kind).map(|i| i.mime_type.to_ascii_lowercase()));
            let chosen = match &wanted {
                Some(mime) => media
                    .codecs
                    .iter()
                    .find(|c| c.mime_type.eq_ignore_ascii_case(mime))
                    .ok_or_else(|| {
                        MediaError::UnusableOffer(format!(
                            "the stream's {} codec {mime} is not in the offer",
                            kind.as_str()
                        ))
                    })?,
                None => media
                    .codecs
                    .iter()
                    .find(|c| offer::is_forwardable(&c.mime_type))
                    .ok_or_else(|| MediaError::UnusableOffer("no forwardable codec".into()))?,
            };
            let intent = intent_from_offered(kind, chosen);
            feed.set_intent_if_absent(intent.clone());
            let ssrc = rand::random::<u32>();
            let sender = pc
                .add_track(super::send_track::send_track(
                    &super::send_track::stream_id(feed_key, false),
                    &intent,
                    ssrc,
                ))
                .map_err(|e| MediaError::UnusableOffer(e.to_string()))?;
            added.push((kind, ssrc, sender, intent));
        }
        Ok(added)
    }

    /// `(kind, lowercase MIME)` of what the feed's publisher is sending now.
    fn publishing_codecs(&self, feed: &FeedKey) -> Vec<(MediaKind, String)> {
        let publisher = self.feeds.get(feed).and_then(|f| f.publisher);
        match publisher.and_then(|k| self.peers.get(&k)).map(|p| &p.media) {
            Some(PeerMedia::Publisher { tracks }) => tracks
                .iter()
                .map(|t| (t.kind, t.mime_lower.to_string()))
                .collect(),
            _ => Vec::new(),
        }
    }

    pub(super) fn trickle(
        &mut self,
        room: &str,
        id: &str,
        candidates: Vec<RemoteCandidate>,
    ) -> Result<(), MediaError> {
        let (key, peer) = self.find_peer(room, id)?;
        if peer.pc.remote_description().is_none() {
            // A client answering our offer may trickle before its answer is applied.
            let room_left = EARLY_CANDIDATES_KEPT.saturating_sub(peer.early_candidates.len());
            peer.early_candidates
                .extend(candidates.into_iter().take(room_left));
            return Ok(());
        }
        self.add_remote_candidates(key, candidates);
        Ok(())
    }

    /// Gives a session's agent the client's candidates (and, when we run the checks, routes
    /// their responses to it).
    pub(super) fn add_remote_candidates(&mut self, key: u64, candidates: Vec<RemoteCandidate>) {
        let Some(peer) = self.peers.get_mut(&key) else {
            return;
        };
        let id = &peer.id;
        let mut routes = Vec::new();
        for candidate in candidates {
            if peer.we_offered {
                routes.extend(super::cascade::candidate_addresses(&candidate.candidate));
            }
            // Unresolvable or unsupported candidates are dropped, not fatal (RFC 9725 §4.3.1).
            if let Err(e) = peer.pc.add_remote_candidate(remote_init(candidate)) {
                tracing::debug!(session = %id, error = %e, "remote candidate ignored");
            }
        }
        // Our checks' responses come from these addresses (see `Engine::complete_dial`).
        for addr in routes {
            self.demux.add_addr(addr, key);
        }
        self.mark_dirty(key);
    }

    pub(super) fn ice_restart(
        &mut self,
        room: &str,
        id: &str,
        ufrag: &str,
        pwd: &str,
        candidates: Vec<RemoteCandidate>,
    ) -> Result<IceRestartAnswer, MediaError> {
        let (key, peer) = self.find_peer(room, id)?;
        let previous = peer
            .pc
            .remote_description()
            .map(|d| d.sdp.clone())
            .ok_or_else(|| MediaError::IceRestart("no remote description".into()))?;
        let restarted = offer::with_new_ice_credentials(&previous, ufrag, pwd);
        let sdp = self
            .answer_new_offer(key, restarted)
            .map_err(|e| MediaError::IceRestart(e.to_string()))?;
        let Some(peer) = self.peers.get_mut(&key) else {
            return Err(MediaError::SessionNotFound(id.to_owned()));
        };
        let new_pwd = offer::first_attribute(&sdp, "ice-pwd")
            .ok_or_else(|| MediaError::IceRestart("answer has no ice-pwd".into()))?
            .to_owned();
        for candidate in candidates {
            if let Err(e) = peer.pc.add_remote_candidate(remote_init(candidate)) {
                tracing::debug!(session = %id, error = %e, "remote candidate ignored");
            }
        }
        Ok(IceRestartAnswer {
            candidates: self.factory.candidate_lines(&sdp),
            ufrag: peer.local_ufrag.clone(),
            pwd: new_pwd,
            mid: peer.first_mid.clone(),
            etag: peer.etag(),
        })
    }

    pub(super) fn session_ice(&mut self, room: &str, id: &str) -> Result<SessionIce, MediaError> {
        let (_, peer) = self.find_peer(room, id)?;
        let remote_ufrag = peer
            .pc
            .remote_description()
            .and_then(|d| offer::first_attribute(&d.sdp, "ice-ufrag"))
            .map(str::to_owned);
        Ok(SessionIce {
            etag: peer.etag(),
            remote_ufrag,
        })
    }

    pub(super) fn close_by_id(
        &mut self,
        room: &str,
        id: &str,
        on_publisher_leave: PublisherLeave,
    ) -> Result<Role, MediaError> {
        let key = self.find(room, id)?;
        let role = self
            .peers
            .get(&key)
            .map(Peer::role)
            .ok_or_else(|| MediaError::SessionNotFound(id.to_owned()))?;
        self.close(key, "closed by request", on_publisher_leave);
        Ok(role)
    }

    /// Ends a session gracefully (DTLS close_notify on the wire), frees its state and updates
    /// its feed.
    pub(super) fn close(&mut self, key: u64, why: &str, on_publisher_leave: PublisherLeave) {
        if let Some(peer) = self.peers.get_mut(&key)
            && let Err(e) = peer.pc.close()
        {
            tracing::debug!(session = %peer.id, error = %e, "close");
        }
        self.flush(key);
        self.forget(key, why, on_publisher_leave);
    }

    /// Frees a session's state and updates its feed, without touching its PeerConnection
    /// (which may be broken after an internal fault).
    pub(super) fn forget(&mut self, key: u64, why: &str, on_publisher_leave: PublisherLeave) {
        let Some(peer) = self.peers.remove(&key) else {
            return;
        };
        self.demux.remove_session(key);
        self.keys_by_id.remove(&peer.id);
        if let Some(cascade) = &peer.cascade
            && let Some(session_url) = &cascade.link.session_url
        {
            // The remote's session outlives ours unless it is deleted.
            let _ = self.cascade_ended.send(super::CascadeEnded {
                session_url: session_url.clone(),
                token: cascade.token.clone(),
            });
        }
        tracing::info!(session = %peer.id, room = %peer.feed.room, feed = %peer.feed.feed, reason = why, "session ended");
        // Nobody listening is fine.
        let _ = self.ended.send(super::SessionEnded {
            room: peer.feed.room.clone(),
            session: peer.id.clone(),
            reason: why.to_owned(),
        });
        if let (PeerMedia::Publisher { tracks }, Some(recorder)) = (&peer.media, &self.recorder) {
            tracks
                .iter()
                .filter_map(|t| t.recording)
                .for_each(|r| recorder.stop_track(r));
        }
        if let PeerMedia::Subscriber { outputs } = &peer.media {
            let mut others: Vec<FeedKey> = outputs
                .iter()
                .map(|o| o.source.clone())
                .filter(|s| *s != peer.feed)
                .collect();
            others.dedup();
            for source in others {
                self.leave_feed(key, &source);
            }
            for output in outputs {
                let c = output.forwarder.counters;
                tracing::info!(session = %peer.id, kind = output.kind.as_str(),
                    forwarded = c.forwarded, awaiting_keyframe = c.awaiting_keyframe,
                    stale_source = c.stale_source, codec_not_negotiated = c.codec_not_negotiated,
                    "subscriber output totals");
            }
        }
        let Some(feed) = self.feeds.get_mut(&peer.feed) else {
            return;
        };
        let was_publisher = feed.remove(key);
        let to_close = if was_publisher && on_publisher_leave == PublisherLeave::CloseSubscribers {
            std::mem::take(&mut feed.subscribers)
        } else {
            Vec::new()
        };
        feed.forget_intents_if_empty();
        let empty = feed.is_empty();
        for subscriber in to_close {
            self.close(
                subscriber,
                "publisher left",
                PublisherLeave::IdleSubscribers,
            );
        }
        if empty
            && self.feeds.get(&peer.feed).is_some_and(Feed::is_empty)
            && let Some(feed) = self.feeds.remove(&peer.feed)
        {
            self.removed_feeds_traffic.add(&feed.totals());
            tracing::info!(room = %peer.feed.room, feed = %peer.feed.feed, "feed removed");
            if !self.room_exists(&peer.feed.room) {
                tracing::info!(room = %peer.feed.room, "room removed");
            }
        }
    }
}
