//! A client's new offer on a live session it made the first offer of: a Janus publisher's
//! `configure` + jsep (tracks added or removed, directions changed) and an ICE restart (WHIP
//! `PATCH`, or new credentials inside such an offer). The session, its feed and its
//! subscribers stay; the answer is the session's next local SDP.

use std::time::Instant;

use rtc::peer_connection::sdp::RTCSessionDescription;

use super::MediaError;
use super::engine::{Engine, contained};
use super::offer;
use super::peer::{Peer, PeerMedia};

impl Engine {
    /// Applies publisher `id`'s new offer and returns the answer.
    pub(super) fn reoffer_publisher(
        &mut self,
        room: &str,
        id: &str,
        offer_sdp: String,
    ) -> Result<String, MediaError> {
        offer::inspect_reoffer(&offer_sdp)?;
        let key = self.find(room, id)?;
        let publisher = self
            .peers
            .get(&key)
            .is_some_and(|p| matches!(p.media, PeerMedia::Publisher { .. }));
        if !publisher {
            return Err(MediaError::UnusableOffer(
                "only a publisher sends a new offer on its session".into(),
            ));
        }
        let answer = self.answer_new_offer(key, offer_sdp)?;
        Ok(offer::tidy_answer(&answer))
    }

    /// Applies a new offer from the client of session `key` and returns our answer (rtc's
    /// SDP). New ICE credentials in it restart ICE: the answer then carries ours, which the
    /// client's checks name from now on. A failed answer rolls the offer back; if even that
    /// fails, the session ends.
    pub(super) fn answer_new_offer(
        &mut self,
        key: u64,
        offer_sdp: String,
    ) -> Result<String, MediaError> {
        // Out of the map while it is renegotiated: the feed's codec preferences are read.
        let Some(mut peer) = self.peers.remove(&key) else {
            return Err(MediaError::SessionNotFound(key.to_string()));
        };
        // A panic inside rtc must not lose the session: it goes back into the map either way.
        let result = contained(|| self.apply_new_offer(&mut peer, offer_sdp))
            .unwrap_or_else(|panic| Err(MediaError::Internal(panic)));
        let new_ufrag = match &result {
            Ok(answer) => offer::first_attribute(answer, "ice-ufrag")
                .filter(|ufrag| *ufrag != peer.local_ufrag)
                .map(str::to_owned),
            Err(_) => None,
        };
        if let Some(ufrag) = new_ufrag {
            peer.local_ufrag = ufrag.clone();
            peer.ice_connected = false;
            peer.ice_restarting = true;
            self.demux.add_ufrag(ufrag, key);
            tracing::info!(session = %peer.id, "ICE restarted");
        }
        let doomed = match &result {
            // Half-negotiated (or rtc panicked): the session cannot be trusted to carry media.
            Err(MediaError::Internal(why)) => Some(why.clone()),
            _ => None,
        };
        self.peers.insert(key, peer);
        if let Some(why) = doomed {
            self.doom(key, why);
        }
        self.mark_dirty(key);
        result
    }

    fn apply_new_offer(
        &mut self,
        peer: &mut Peer,
        offer_sdp: String,
    ) -> Result<String, MediaError> {
        if peer.we_offered {
            return Err(MediaError::UnusableOffer(
                "this session's offers come from the gateway".into(),
            ));
        }
        let now = Instant::now();
        let offer = RTCSessionDescription::offer(offer_sdp)
            .map_err(|e| MediaError::MalformedOffer(e.to_string()))?;
        peer.pc
            .set_remote_description(now, offer)
            .map_err(|e| MediaError::UnusableOffer(e.to_string()))?;
        if matches!(peer.media, PeerMedia::Publisher { .. }) {
            // Tracks the offer adds answer with the codec the feed's subscribers negotiated.
            self.prefer_feed_codecs(&peer.feed, &mut peer.pc);
        }
        let answered = peer
            .pc
            .create_answer(None)
            .and_then(|answer| peer.pc.set_local_description(now, answer));
        if let Err(e) = answered {
            // Back to the negotiated state, so the session goes on as before the offer.
            let rolled_back = RTCSessionDescription::rollback(None)
                .and_then(|rollback| peer.pc.set_remote_description(now, rollback));
            if let Err(rollback) = rolled_back {
                return Err(MediaError::Internal(format!(
                    "answer failed ({e}) and the offer could not be rolled back ({rollback})"
                )));
            }
            return Err(MediaError::UnusableOffer(e.to_string()));
        }
        let sdp = peer
            .pc
            .local_description()
            .map(|d| d.sdp)
            .ok_or_else(|| MediaError::Internal("no local description".into()))?;
        peer.settle(sdp.clone());
        Ok(sdp)
    }
}
