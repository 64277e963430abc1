//! Session lifecycle on the media thread: opening from an offer, trickle, ICE restart, closing,
//! and the snapshots signaling reads.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use rtc::media_stream::MediaStreamTrack;
use rtc::peer_connection::RTCPeerConnection;
use rtc::peer_connection::sdp::RTCSessionDescription;
use rtc::peer_connection::state::RTCPeerConnectionState;
use rtc::peer_connection::transport::RTCIceCandidateInit;
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodec, RTCRtpCodecParameters, RTCRtpCodingParameters, RTCRtpEncodingParameters,
    RtpCodecKind,
};
use rtc::sansio::Protocol;

use super::engine::Engine;
use super::forward::{NegotiatedCodec, OutputForwarder};
use super::offer::{self, MediaKind, OfferSummary, OfferedCodec};
use super::peer::{OutputTrack, Peer, PeerMedia};
use super::room::{CodecIntent, Room};
use super::{
    IceRestartAnswer, MediaError, OfferRequest, PublisherLeave, RemoteCandidate, Role,
    RoomSnapshot, SessionAnswer, SessionIce, SessionSnapshot,
};

fn rtc_kind(kind: MediaKind) -> RtpCodecKind {
    match kind {
        MediaKind::Audio => RtpCodecKind::Audio,
        MediaKind::Video => RtpCodecKind::Video,
    }
}

fn rtc_codec(intent: &CodecIntent) -> RTCRtpCodec {
    RTCRtpCodec {
        mime_type: intent.mime_type.clone(),
        clock_rate: intent.clock_rate,
        channels: intent.channels,
        sdp_fmtp_line: intent.fmtp.clone(),
        rtcp_feedback: Vec::new(),
    }
}

fn intent_from_offered(kind: MediaKind, codec: &OfferedCodec) -> CodecIntent {
    CodecIntent {
        kind,
        mime_type: codec.mime_type.clone(),
        clock_rate: codec.clock_rate,
        channels: codec.channels,
        fmtp: codec.fmtp.clone(),
    }
}

fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
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
        let room = request.room.clone();
        let existed = self.rooms.contains_key(&room);
        let result = self.open_session(request);
        // An offer that failed must not leave behind the room it auto-created.
        if result.is_err() && !existed && self.rooms.get(&room).is_some_and(Room::is_empty) {
            self.rooms.remove(&room);
        }
        result
    }

    fn open_session(&mut self, request: OfferRequest) -> Result<SessionAnswer, MediaError> {
        let summary = offer::inspect(&request.offer_sdp, request.role)?;
        match self.rooms.get(&request.room) {
            Some(room) if request.role == Role::Publisher && room.publisher.is_some() => {
                return Err(MediaError::PublisherExists(request.room));
            }
            Some(_) => {}
            None if request.create_room => {
                tracing::info!(room = %request.room, "room created");
                self.rooms
                    .insert(request.room.clone(), Room::new(request.room.clone()));
            }
            None => return Err(MediaError::RoomNotFound(request.room)),
        }
        let now = Instant::now();
        let mut pc = self.factory.build(now, request.role)?;
        let offer = RTCSessionDescription::offer(request.offer_sdp)
            .map_err(|e| MediaError::MalformedOffer(e.to_string()))?;
        pc.set_remote_description(now, offer)
            .map_err(|e| MediaError::UnusableOffer(e.to_string()))?;
        let media = match request.role {
            Role::Publisher => {
                self.prefer_room_codecs(&request.room, &mut pc);
                PeerMedia::Publisher { tracks: Vec::new() }
            }
            Role::Subscriber => PeerMedia::Subscriber {
                outputs: Vec::new(),
            },
        };
        let id = uuid::Uuid::new_v4().simple().to_string();
        let subscriber_tracks = match request.role {
            Role::Subscriber => {
                self.add_subscriber_tracks(&request.room, &id, &summary, &mut pc)?
            }
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
        let local_ufrag = offer::first_attribute(&answer_sdp, "ice-ufrag")
            .ok_or_else(|| MediaError::Internal("answer has no ice-ufrag".into()))?
            .to_owned();
        let first_mid = offer::first_attribute(&answer_sdp, "mid")
            .unwrap_or("0")
            .to_owned();
        let mut peer = Peer {
            id: id.clone(),
            room: request.room.clone(),
            pc,
            media,
            state: RTCPeerConnectionState::New,
            created_at: SystemTime::now(),
            opened_at: now,
            last_received: now,
            local_ufrag: local_ufrag.clone(),
            first_mid,
            next_timeout: None,
            queued: false,
            input_pending: false,
            ice_connected: false,
            ice_restarting: false,
            pending_nomination: None,
        };
        if let PeerMedia::Subscriber { outputs } = &mut peer.media {
            *outputs = negotiated_outputs(&mut peer.pc, subscriber_tracks);
        }
        let etag = peer.etag();
        let key = self.next_key;
        self.next_key += 1;
        self.demux.add_ufrag(local_ufrag, key);
        self.keys_by_id.insert(id.clone(), key);
        self.peers.insert(key, peer);
        if let Some(room) = self.rooms.get_mut(&request.room) {
            match request.role {
                Role::Publisher => {
                    room.publisher = Some(key);
                    room.publisher_left_at = None;
                }
                Role::Subscriber => {
                    room.subscribers.push(key);
                    room.subscriber_left_at = None;
                }
            }
        }
        tracing::info!(session = %id, room = %request.room, role = ?request.role, "session opened");
        self.mark_dirty(key);
        Ok(SessionAnswer {
            session_id: id,
            answer_sdp: offer::tidy_answer(&answer_sdp),
            etag,
        })
    }

    /// A publisher arriving in a room whose subscribers already negotiated a codec gets an
    /// answer that prefers that codec, so the early subscribers can be served (Live777 #406).
    fn prefer_room_codecs(&self, room: &str, pc: &mut RTCPeerConnection) {
        let Some(room) = self.rooms.get(room) else {
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
                    .and_then(|m| room.intent(m))
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

    /// Adds one send track per offered kind, with the codec the room's publisher sends (or the
    /// room's recorded intent, or the client's first forwardable codec when no one sends yet).
    fn add_subscriber_tracks(
        &mut self,
        room_name: &str,
        session: &str,
        summary: &OfferSummary,
        pc: &mut RTCPeerConnection,
    ) -> Result<
        Vec<(
            MediaKind,
            u32,
            rtc::rtp_transceiver::RTCRtpSenderId,
            CodecIntent,
        )>,
        MediaError,
    > {
        let publishing = self.publishing_codecs(room_name);
        let mut added = Vec::new();
        for media in &summary.media {
            let kind = media.kind;
            let room = self
                .rooms
                .get_mut(room_name)
                .ok_or_else(|| MediaError::RoomNotFound(room_name.to_owned()))?;
            let wanted = publishing
                .iter()
                .find(|(k, _)| *k == kind)
                .map(|(_, mime)| mime.clone())
                .or_else(|| room.intent(kind).map(|i| i.mime_type.to_ascii_lowercase()));
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
            room.set_intent_if_absent(intent.clone());
            let ssrc = rand::random::<u32>();
            let track = MediaStreamTrack::new(
                room_name.to_owned(),
                format!("{}-{session}", kind.as_str()),
                format!("gatehouse-{}", kind.as_str()),
                rtc_kind(kind),
                vec![RTCRtpEncodingParameters {
                    rtp_coding_parameters: RTCRtpCodingParameters {
                        ssrc: Some(ssrc),
                        ..Default::default()
                    },
                    codec: rtc_codec(&intent),
                    ..Default::default()
                }],
            );
            let sender = pc
                .add_track(track)
                .map_err(|e| MediaError::UnusableOffer(e.to_string()))?;
            added.push((kind, ssrc, sender, intent));
        }
        Ok(added)
    }

    /// `(kind, lowercase MIME)` of what the room's publisher is sending now.
    fn publishing_codecs(&self, room: &str) -> Vec<(MediaKind, String)> {
        let publisher = self.rooms.get(room).and_then(|r| r.publisher);
        match publisher.and_then(|k| self.peers.get(&k)).map(|p| &p.media) {
            Some(PeerMedia::Publisher { tracks }) => tracks
                .iter()
                .map(|t| (t.kind, t.mime_lower.clone()))
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
        let key = self.find(room, id)?;
        let Some(peer) = self.peers.get_mut(&key) else {
            return Err(MediaError::SessionNotFound(id.to_owned()));
        };
        for candidate in candidates {
            // Unresolvable or unsupported candidates are dropped, not fatal (RFC 9725 §4.3.1).
            if let Err(e) = peer.pc.add_remote_candidate(remote_init(candidate)) {
                tracing::debug!(session = %id, error = %e, "remote candidate ignored");
            }
        }
        self.mark_dirty(key);
        Ok(())
    }

    pub(super) fn ice_restart(
        &mut self,
        room: &str,
        id: &str,
        ufrag: &str,
        pwd: &str,
        candidates: Vec<RemoteCandidate>,
    ) -> Result<IceRestartAnswer, MediaError> {
        let key = self.find(room, id)?;
        let Some(peer) = self.peers.get_mut(&key) else {
            return Err(MediaError::SessionNotFound(id.to_owned()));
        };
        let previous = peer
            .pc
            .remote_description()
            .map(|d| d.sdp.clone())
            .ok_or_else(|| MediaError::IceRestart("no remote description".into()))?;
        let restarted = offer::with_new_ice_credentials(&previous, ufrag, pwd);
        let now = Instant::now();
        let offer = RTCSessionDescription::offer(restarted)
            .map_err(|e| MediaError::IceRestart(e.to_string()))?;
        peer.pc
            .set_remote_description(now, offer)
            .map_err(|e| MediaError::IceRestart(e.to_string()))?;
        let answer = peer
            .pc
            .create_answer(None)
            .map_err(|e| MediaError::IceRestart(e.to_string()))?;
        peer.pc
            .set_local_description(now, answer)
            .map_err(|e| MediaError::IceRestart(e.to_string()))?;
        let sdp = peer
            .pc
            .local_description()
            .map(|d| d.sdp)
            .ok_or_else(|| MediaError::IceRestart("no local description".into()))?;
        let new_ufrag = offer::first_attribute(&sdp, "ice-ufrag")
            .ok_or_else(|| MediaError::IceRestart("answer has no ice-ufrag".into()))?
            .to_owned();
        let new_pwd = offer::first_attribute(&sdp, "ice-pwd")
            .ok_or_else(|| MediaError::IceRestart("answer has no ice-pwd".into()))?
            .to_owned();
        for candidate in candidates {
            if let Err(e) = peer.pc.add_remote_candidate(remote_init(candidate)) {
                tracing::debug!(session = %id, error = %e, "remote candidate ignored");
            }
        }
        peer.local_ufrag = new_ufrag.clone();
        peer.ice_connected = false;
        peer.ice_restarting = true;
        let answer = IceRestartAnswer {
            candidates: self.factory.candidate_lines(&sdp),
            ufrag: new_ufrag.clone(),
            pwd: new_pwd,
            mid: peer.first_mid.clone(),
            etag: peer.etag(),
        };
        self.demux.add_ufrag(new_ufrag, key);
        self.mark_dirty(key);
        tracing::info!(session = %id, "ICE restarted");
        Ok(answer)
    }

    pub(super) fn session_ice(&mut self, room: &str, id: &str) -> Result<SessionIce, MediaError> {
        let key = self.find(room, id)?;
        let Some(peer) = self.peers.get(&key) else {
            return Err(MediaError::SessionNotFound(id.to_owned()));
        };
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
    /// its room.
    pub(super) fn close(&mut self, key: u64, why: &str, on_publisher_leave: PublisherLeave) {
        if let Some(peer) = self.peers.get_mut(&key)
            && let Err(e) = peer.pc.close()
        {
            tracing::debug!(session = %peer.id, error = %e, "close");
        }
        self.flush(key);
        self.forget(key, why, on_publisher_leave);
    }

    /// Frees a session's state and updates its room, without touching its PeerConnection
    /// (which may be broken after an internal fault).
    pub(super) fn forget(&mut self, key: u64, why: &str, on_publisher_leave: PublisherLeave) {
        let Some(peer) = self.peers.remove(&key) else {
            return;
        };
        self.demux.remove_session(key);
        self.keys_by_id.remove(&peer.id);
        tracing::info!(session = %peer.id, room = %peer.room, reason = why, "session ended");
        if let (PeerMedia::Publisher { tracks }, Some(recorder)) = (&peer.media, &self.recorder) {
            tracks
                .iter()
                .filter_map(|t| t.recording)
                .for_each(|r| recorder.stop_track(r));
        }
        if let PeerMedia::Subscriber { outputs } = &peer.media {
            for output in outputs {
                let c = output.forwarder.counters;
                tracing::info!(session = %peer.id, kind = output.kind.as_str(),
                    forwarded = c.forwarded, awaiting_keyframe = c.awaiting_keyframe,
                    stale_source = c.stale_source, codec_not_negotiated = c.codec_not_negotiated,
                    "subscriber output totals");
            }
        }
        let Some(room) = self.rooms.get_mut(&peer.room) else {
            return;
        };
        let was_publisher = room.remove(key);
        let to_close = if was_publisher && on_publisher_leave == PublisherLeave::CloseSubscribers {
            std::mem::take(&mut room.subscribers)
        } else {
            Vec::new()
        };
        room.forget_intents_if_empty();
        let empty = room.is_empty();
        for subscriber in to_close {
            self.close(
                subscriber,
                "publisher left",
                PublisherLeave::IdleSubscribers,
            );
        }
        if empty
            && self.rooms.get(&peer.room).is_some_and(Room::is_empty)
            && let Some(room) = self.rooms.remove(&peer.room)
        {
            self.removed_rooms_traffic.add(&room.traffic.get());
            tracing::info!(room = %peer.room, "room removed");
        }
    }

    pub(super) fn create_room(&mut self, name: String) -> Result<(), MediaError> {
        if self.rooms.contains_key(&name) {
            return Err(MediaError::RoomExists(name));
        }
        tracing::info!(room = %name, "room created by an operator");
        self.rooms.insert(name.clone(), Room::new(name));
        Ok(())
    }

    pub(super) fn delete_room(&mut self, name: &str) -> Result<(), MediaError> {
        let room = self
            .rooms
            .get(name)
            .ok_or_else(|| MediaError::RoomNotFound(name.to_owned()))?;
        let sessions: Vec<u64> = room
            .publisher
            .iter()
            .chain(&room.subscribers)
            .copied()
            .collect();
        for key in sessions {
            self.close(key, "room deleted", PublisherLeave::CloseSubscribers);
        }
        if let Some(room) = self.rooms.remove(name) {
            self.removed_rooms_traffic.add(&room.traffic.get());
            tracing::info!(room = %name, "room removed by an operator");
        }
        Ok(())
    }

    pub(super) fn room_snapshot(&self, name: &str) -> Option<RoomSnapshot> {
        let room = self.rooms.get(name)?;
        let session = |key: &u64| {
            self.peers.get(key).map(|p| SessionSnapshot {
                id: p.id.clone(),
                role: p.role(),
                created_at_ms: unix_ms(p.created_at),
                state: p.state.to_string(),
            })
        };
        let mut sessions: Vec<_> = room.publisher.iter().filter_map(session).collect();
        sessions.extend(room.subscribers.iter().filter_map(session));
        Some(RoomSnapshot {
            name: room.name.clone(),
            created_at_ms: unix_ms(room.created_at),
            publishers: usize::from(room.publisher.is_some()),
            tracks: room
                .publisher
                .and_then(|p| self.peers.get(&p))
                .map_or(0, |p| match &p.media {
                    PeerMedia::Publisher { tracks } => tracks.len(),
                    PeerMedia::Subscriber { .. } => 0,
                }),
            subscribers: room.subscribers.len(),
            publisher_left_at_ms: room.publisher_left_at.map_or(0, unix_ms),
            subscriber_left_at_ms: room.subscriber_left_at.map_or(0, unix_ms),
            sessions,
            traffic: room.traffic.get(),
        })
    }

    pub(super) fn room_snapshots(&self) -> Vec<RoomSnapshot> {
        let mut names: Vec<&String> = self.rooms.keys().collect();
        names.sort();
        names
            .into_iter()
            .filter_map(|n| self.room_snapshot(n))
            .collect()
    }
}

/// Reads back what each subscriber sender negotiated and builds its forwarder.
fn negotiated_outputs(
    pc: &mut RTCPeerConnection,
    added: Vec<(
        MediaKind,
        u32,
        rtc::rtp_transceiver::RTCRtpSenderId,
        CodecIntent,
    )>,
) -> Vec<OutputTrack> {
    added
        .into_iter()
        .filter_map(|(kind, ssrc, sender_id, intent)| {
            let mut sender = pc.rtp_sender(sender_id)?;
            let codecs: Vec<NegotiatedCodec> = sender
                .get_parameters()
                .rtp_parameters
                .codecs
                .iter()
                .map(|c| NegotiatedCodec {
                    mime_lower: c.rtp_codec.mime_type.to_ascii_lowercase(),
                    payload_type: c.payload_type,
                })
                .collect();
            let forwarder =
                OutputForwarder::new(ssrc, intent.clock_rate, codecs, kind == MediaKind::Video);
            Some(OutputTrack {
                kind,
                sender_id,
                forwarder,
            })
        })
        .collect()
}
