//! Sessions we offer: Live777's cascade (a pull is a publisher of a room whose media comes from
//! a remote WHEP endpoint; a push is a subscriber of a room whose media goes to a remote WHIP
//! endpoint) and server-offer subscribers (Janus). Signaling delivers our offer and hands back
//! the answer.

use std::net::SocketAddr;
use std::time::Instant;

use rtc::peer_connection::sdp::RTCSessionDescription;
use rtc::rtp_transceiver::{RTCRtpTransceiverDirection, RTCRtpTransceiverInit};

use super::engine::Engine;
use super::feed::{CodecIntent, DEFAULT_FEED, Feed, FeedKey};
use super::offer::{self, MediaKind};
use super::outputs::negotiated_outputs;
use super::peer::{IceMode, Peer, PeerMedia};
use super::send_track::{send_track, stream_id};
use super::sessions::{AddedTrack, intent_from_offered, nacks_of, rtc_kind};
use super::{DialOffer, DialRequest, MediaError, OfferRequest, Role};

/// A cascade session's remote end, kept on its [`Peer`].
#[derive(Debug)]
pub(crate) struct Cascade {
    pub link: super::CascadeLink,
    pub token: Option<String>,
}

/// The UDP addresses of the `a=candidate` lines of an SDP (where a full ICE agent's checks
/// and the remote's media come from).
pub(super) fn candidate_addresses(sdp: &str) -> Vec<SocketAddr> {
    sdp.lines()
        .filter_map(|l| {
            let l = l.trim_end_matches('\r');
            l.strip_prefix("a=candidate:")
                .or_else(|| l.strip_prefix("candidate:"))
        })
        .filter_map(|c| {
            let fields: Vec<&str> = c.split_whitespace().collect();
            match fields.as_slice() {
                [_, _, transport, _, ip, port, ..] if transport.eq_ignore_ascii_case("udp") => {
                    Some(SocketAddr::new(ip.parse().ok()?, port.parse().ok()?))
                }
                _ => None,
            }
        })
        .collect()
}

/// Creates our offer and sets it as the local description: its SDP.
pub(super) fn make_offer(
    pc: &mut rtc::peer_connection::RTCPeerConnection,
    now: Instant,
) -> Result<String, MediaError> {
    let offer = pc
        .create_offer(None)
        .map_err(|e| MediaError::Internal(format!("offer: {e}")))?;
    pc.set_local_description(now, offer)
        .map_err(|e| MediaError::Internal(format!("local offer: {e}")))?;
    pc.local_description()
        .map(|d| d.sdp)
        .ok_or_else(|| MediaError::Internal("no local description".into()))
}

impl Engine {
    pub(super) fn dial(&mut self, request: DialRequest) -> Result<DialOffer, MediaError> {
        let feed_key = match request.role {
            Role::Publisher => FeedKey::new(&request.room, DEFAULT_FEED),
            Role::Subscriber => self.resolve_feed(&OfferRequest {
                dialect: request.dialect,
                room: request.room.clone(),
                feed: request.feed.clone(),
                label: None,
                role: Role::Subscriber,
                offer_sdp: String::new(),
                create_room: false,
            }),
        };
        let existed = self.feeds.contains_key(&feed_key);
        let result = self.dial_session(request, feed_key.clone());
        if result.is_err() && !existed && self.feeds.get(&feed_key).is_some_and(Feed::is_empty) {
            self.feeds.remove(&feed_key);
        }
        result
    }

    fn dial_session(
        &mut self,
        request: DialRequest,
        feed_key: FeedKey,
    ) -> Result<DialOffer, MediaError> {
        let now = Instant::now();
        if request.role == Role::Publisher {
            self.feeds
                .entry(feed_key.clone())
                .or_insert_with(|| Feed::new(feed_key.clone()));
        }
        let nacks = nacks_of(&self.feeds, &feed_key);
        let built = self
            .factory
            .build(now, request.role, IceMode::FullOfferer, nacks)?;
        let mut pc = built.pc;
        let id = uuid::Uuid::new_v4().simple().to_string();
        let (media, sending) = match request.role {
            Role::Publisher => {
                if self
                    .feeds
                    .get(&feed_key)
                    .is_some_and(|f| f.publisher.is_some())
                {
                    return Err(MediaError::PublisherExists(request.room));
                }
                self.feeds
                    .entry(feed_key.clone())
                    .or_insert_with(|| Feed::new(feed_key.clone()));
                for kind in [MediaKind::Video, MediaKind::Audio] {
                    pc.add_transceiver_from_kind(
                        rtc_kind(kind),
                        Some(RTCRtpTransceiverInit {
                            direction: RTCRtpTransceiverDirection::Recvonly,
                            streams: vec![],
                            send_encodings: vec![],
                        }),
                    )
                    .map_err(|e| MediaError::Internal(format!("transceiver: {e}")))?;
                }
                (PeerMedia::Publisher { tracks: Vec::new() }, Vec::new())
            }
            Role::Subscriber => {
                let only = |feed: &str| {
                    request
                        .only_kinds
                        .iter()
                        .find(|(f, _)| f == feed)
                        .map(|(_, kinds)| kinds.clone())
                };
                let main_only = only(&feed_key.feed);
                let mut sending: Vec<(FeedKey, AddedTrack)> = self
                    .add_push_tracks(
                        &feed_key,
                        &stream_id(&feed_key, request.stream_per_feed),
                        &mut pc,
                        main_only.as_deref(),
                    )?
                    .into_iter()
                    .map(|t| (feed_key.clone(), t))
                    .collect();
                for more in &request.more_feeds {
                    let key = FeedKey::new(&request.room, more);
                    if key == feed_key || sending.iter().any(|(k, _)| *k == key) {
                        continue;
                    }
                    let kinds = only(more);
                    let stream = stream_id(&key, request.stream_per_feed);
                    let added = self.add_push_tracks(&key, &stream, &mut pc, kinds.as_deref())?;
                    sending.extend(added.into_iter().map(|t| (key.clone(), t)));
                }
                (
                    PeerMedia::Subscriber {
                        outputs: Vec::new(),
                    },
                    sending,
                )
            }
        };
        let offer_sdp = make_offer(&mut pc, now)?;
        let mut peer = Peer::new(
            id.clone(),
            request.dialect,
            feed_key.clone(),
            None,
            pc,
            media,
            &offer_sdp,
        )?;
        peer.srtp_keys = built.srtp_keys;
        peer.cascade = request.link.map(|link| Cascade {
            link,
            token: request.token,
        });
        let tracks = sending
            .iter()
            .map(|(source, (kind, ssrc, ..))| super::SentTrack {
                feed: source.feed.clone(),
                kind: kind.as_str(),
                ssrc: *ssrc,
            })
            .collect();
        peer.unanswered_tracks = sending;
        peer.we_offered = true;
        peer.stream_per_feed = request.stream_per_feed;
        self.add_peer(peer);
        Ok(DialOffer {
            session_id: id,
            offer_sdp,
            tracks,
        })
    }

    /// One send track per kind the feed's publisher sends (of `only`, when given), with its
    /// exact codec, in the media stream `stream`.
    pub(super) fn add_push_tracks(
        &mut self,
        feed_key: &FeedKey,
        stream: &str,
        pc: &mut rtc::peer_connection::RTCPeerConnection,
        only: Option<&[&str]>,
    ) -> Result<Vec<AddedTrack>, MediaError> {
        let publisher = self
            .feeds
            .get(feed_key)
            .and_then(|f| f.publisher)
            .and_then(|k| self.peers.get(&k));
        let Some(PeerMedia::Publisher { tracks }) = publisher.map(|p| &p.media) else {
            return Err(MediaError::RoomNotFound(feed_key.room.clone()));
        };
        let opened: Vec<CodecIntent> = tracks
            .iter()
            .filter_map(|t| {
                let codec = t.codec.as_ref()?;
                Some(CodecIntent {
                    kind: t.kind,
                    mime_type: codec.mime_type.clone(),
                    clock_rate: codec.clock_rate,
                    channels: codec.channels,
                    fmtp: codec.sdp_fmtp_line.clone(),
                })
            })
            .collect();
        // Every kind the publisher negotiated, in its m-line order, even before its first
        // packet opened the track (a subscriber joining right after the publisher connected
        // must not be offered audio only): the codec the track opened with, else the first
        // forwardable codec of our answer (what the publisher sends).
        let answered: Vec<CodecIntent> = publisher
            .and_then(|p| p.pc.local_description())
            .and_then(|d| offer::inspect(&d.sdp, Role::Subscriber).ok())
            .map(|summary| {
                summary
                    .media
                    .iter()
                    .filter_map(|m| {
                        let codec = m
                            .codecs
                            .iter()
                            .find(|c| offer::is_forwardable(&c.mime_type))?;
                        Some(intent_from_offered(m.kind, codec))
                    })
                    .collect()
            })
            .unwrap_or_default();
        let mut intents: Vec<CodecIntent> = answered
            .into_iter()
            .map(|a| {
                opened
                    .iter()
                    .find(|o| o.kind == a.kind)
                    .cloned()
                    .unwrap_or(a)
            })
            .collect();
        for track in opened {
            if !intents.iter().any(|i| i.kind == track.kind) {
                intents.push(track);
            }
        }
        if let Some(only) = only {
            intents.retain(|i| only.contains(&i.kind.as_str()));
        }
        if intents.is_empty() {
            return Err(MediaError::UnusableOffer(
                "the stream's publisher sends no media yet".into(),
            ));
        }
        let mut added = Vec::new();
        for intent in intents {
            let ssrc = rand::random::<u32>();
            let sender = pc
                .add_track(send_track(stream, &intent, ssrc))
                .map_err(|e| MediaError::Internal(format!("push track: {e}")))?;
            send_only(pc, sender);
            added.push((intent.kind, ssrc, sender, intent));
        }
        Ok(added)
    }

    pub(super) fn complete_dial(
        &mut self,
        room: &str,
        id: &str,
        answer_sdp: String,
        session_url: Option<String>,
    ) -> Result<(), MediaError> {
        let history = self.factory.nack_buffer_packets;
        let (key, peer) = self.find_peer(room, id)?;
        let remote_addresses = candidate_addresses(&answer_sdp);
        let settled = answer_sdp.clone();
        let answer = RTCSessionDescription::answer(answer_sdp)
            .map_err(|e| MediaError::MalformedOffer(e.to_string()))?;
        peer.pc
            .set_remote_description(Instant::now(), answer)
            .map_err(|e| MediaError::UnusableOffer(e.to_string()))?;
        peer.settle(settled);
        let early = std::mem::take(&mut peer.early_candidates);
        if let Some(cascade) = &mut peer.cascade {
            cascade.link.session_url = session_url;
        }
        let sending = std::mem::take(&mut peer.unanswered_tracks);
        let mut sources: Vec<FeedKey> = sending.iter().map(|(s, _)| s.clone()).collect();
        sources.dedup();
        if let PeerMedia::Subscriber { outputs } = &mut peer.media {
            for (source, track) in sending {
                outputs.extend(negotiated_outputs(
                    &mut peer.pc,
                    vec![track],
                    &source,
                    history,
                ));
            }
        }
        // A subscriber offered several feeds (Janus multistream join) receives each.
        for source in &sources {
            self.join_feed(key, source);
        }
        // Our checks' responses (and the remote's media) come from these addresses.
        for addr in remote_addresses {
            self.demux.add_addr(addr, key);
        }
        self.add_remote_candidates(key, early);
        self.mark_dirty(key);
        tracing::info!(session = %id, room, "answer to our offer applied");
        Ok(())
    }
}

/// Offers `sender`'s m-line `sendonly`, as Janus and WHIP clients do (`add_track` makes it
/// `sendrecv`, which invites the answerer to send media nobody reads).
fn send_only(
    pc: &mut rtc::peer_connection::RTCPeerConnection,
    sender: rtc::rtp_transceiver::RTCRtpSenderId,
) {
    let ids: Vec<_> = pc.get_transceivers().collect();
    let transceiver = ids.into_iter().find(|id| {
        pc.rtp_transceiver(*id)
            .is_some_and(|t| t.sender() == Some(sender))
    });
    if let Some(mut t) = transceiver.and_then(|id| pc.rtp_transceiver(id)) {
        t.set_direction(rtc::rtp_transceiver::RTCRtpTransceiverDirection::Sendonly);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn udp_candidate_addresses_are_read_from_an_answer() {
        let sdp = "v=0\r\na=candidate:1 1 udp 2130706431 127.0.0.1 7777 typ host\r\n\
                   a=candidate:2 1 tcp 1 127.0.0.1 9 typ host tcptype active\r\n\
                   a=candidate:3 1 UDP 2130706431 ::1 7778 typ host\r\n";
        let expected: Vec<SocketAddr> = vec![
            "127.0.0.1:7777".parse().unwrap(),
            "[::1]:7778".parse().unwrap(),
        ];
        assert_eq!(candidate_addresses(sdp), expected);
        // A trickled candidate (Janus `trickle`) has no `a=` prefix.
        let trickled = "candidate:1 1 udp 2130706431 10.0.0.5 5000 typ host";
        assert_eq!(
            candidate_addresses(trickled),
            vec!["10.0.0.5:5000".parse::<SocketAddr>().unwrap()]
        );
    }
}
