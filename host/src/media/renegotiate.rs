//! A session we offered takes feeds on or off (Janus `subscribe`/`unsubscribe`/`update`):
//! send tracks are added for new feeds or removed, and a new offer goes to the client, whose
//! answer completes it as the first one did (`Engine::complete_dial`).

use std::time::Instant;

use super::engine::{Engine, contained};
use super::feed::FeedKey;
use super::offer::MediaKind;
use super::peer::{Peer, PeerMedia};
use super::{MediaError, Renegotiated, SentTrack};

impl Engine {
    /// Adds the feeds `add` to subscriber `id` and removes `remove`, and makes the new offer.
    pub(super) fn renegotiate(
        &mut self,
        room: &str,
        id: &str,
        add: &[String],
        remove: &[String],
        restart_ice: bool,
    ) -> Result<Renegotiated, MediaError> {
        let key = self.find(room, id)?;
        for feed in add {
            if self
                .feeds
                .get(&FeedKey::new(room, feed))
                .and_then(|f| f.publisher)
                .is_none()
            {
                return Err(MediaError::FeedNotFound {
                    room: room.to_owned(),
                    feed: feed.clone(),
                });
            }
        }
        // Out of the map while tracks are added: that reads the publishers' sessions.
        let Some(mut peer) = self.peers.remove(&key) else {
            return Err(MediaError::SessionNotFound(id.to_owned()));
        };
        // A panic inside rtc must not lose the session: it goes back into the map either way.
        let result = contained(|| {
            self.renegotiate_peer(&mut peer, key, room, id, (add, remove), restart_ice)
        })
        .unwrap_or_else(|panic| Err(MediaError::Internal(panic)));
        self.peers.insert(key, peer);
        let removed: Vec<FeedKey> = remove.iter().map(|f| FeedKey::new(room, f)).collect();
        for feed in &removed {
            if !self.receives(key, feed) {
                self.leave_feed(key, feed);
            }
        }
        if result.is_ok() {
            for feed in add {
                self.join_feed(key, &FeedKey::new(room, feed));
            }
            let now = Instant::now();
            for feed in add {
                self.request_feed_keyframe(&FeedKey::new(room, feed), now);
            }
        }
        self.mark_dirty(key);
        result
    }

    fn renegotiate_peer(
        &mut self,
        peer: &mut Peer,
        key: u64,
        room: &str,
        id: &str,
        (add, remove): (&[String], &[String]),
        restart_ice: bool,
    ) -> Result<Renegotiated, MediaError> {
        if !peer.we_offered {
            return Err(MediaError::UnusableOffer(
                "only a session the gateway offered is renegotiated by it".into(),
            ));
        }
        let PeerMedia::Subscriber { outputs } = &mut peer.media else {
            return Err(MediaError::UnusableOffer(
                "only a subscriber takes feeds".into(),
            ));
        };
        let pc = &mut peer.pc;
        for feed in remove.iter().map(|f| FeedKey::new(room, f)) {
            outputs.retain(|o| {
                if o.source != feed {
                    return true;
                }
                if let Err(e) = pc.remove_track(o.sender_id) {
                    tracing::debug!(session = %id, error = %e, "send track removal failed");
                }
                false
            });
            peer.unanswered_tracks.retain(|(source, _)| *source != feed);
        }
        // Feeds already received are not added twice.
        for feed in add.iter().map(|f| FeedKey::new(room, f)) {
            if outputs.iter().any(|o| o.source == feed)
                || peer.unanswered_tracks.iter().any(|(s, _)| *s == feed)
            {
                continue;
            }
            let stream = super::send_track::stream_id(&feed, peer.stream_per_feed);
            let added = self.add_push_tracks(&feed, &stream, pc, None)?;
            peer.unanswered_tracks
                .extend(added.into_iter().map(|t| (feed.clone(), t)));
        }
        let now = Instant::now();
        if restart_ice {
            pc.restart_ice();
        }
        let offer_sdp = super::cascade::make_offer(pc, now)?;
        if restart_ice && let Some(ufrag) = super::offer::first_attribute(&offer_sdp, "ice-ufrag") {
            // The client's checks name the new credentials from now on.
            peer.local_ufrag = ufrag.to_owned();
            peer.ice_restarting = true;
            self.demux.add_ufrag(ufrag.to_owned(), key);
        }
        let sent = |source: &FeedKey, kind: MediaKind, ssrc: u32| SentTrack {
            feed: source.feed.clone(),
            kind: kind.as_str(),
            ssrc,
        };
        let mut tracks: Vec<SentTrack> = outputs
            .iter()
            .map(|o| sent(&o.source, o.kind, o.forwarder.out_ssrc()))
            .collect();
        tracks.extend(
            peer.unanswered_tracks
                .iter()
                .map(|(source, (kind, ssrc, ..))| sent(source, *kind, *ssrc)),
        );
        tracing::info!(session = %id, room, ?add, ?remove, "subscriber renegotiating");
        Ok(Renegotiated { offer_sdp, tracks })
    }
}
