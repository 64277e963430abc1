//! Changing what a running subscriber receives, without renegotiation: pause and resume its
//! outputs, or switch it to another feed of its room (the forwarders rewrite sequence numbers
//! and timestamps across the change and restart video on the new feed's keyframe).

use std::time::Instant;

use super::engine::Engine;
use super::feed::{Feed, FeedKey};
use super::offer::MediaKind;
use super::peer::PeerMedia;
use super::{MediaError, PauseScope};

impl Engine {
    /// Stops (`paused`) or resumes forwarding to subscriber `id` (the outputs `scope` names).
    pub(super) fn pause(
        &mut self,
        room: &str,
        id: &str,
        scope: PauseScope,
        paused: bool,
    ) -> Result<(), MediaError> {
        let key = self.find(room, id)?;
        let Some(peer) = self.peers.get_mut(&key) else {
            return Err(MediaError::SessionNotFound(id.to_owned()));
        };
        let PeerMedia::Subscriber { outputs } = &mut peer.media else {
            return Err(MediaError::UnusableOffer("only a subscriber pauses".into()));
        };
        let mut resumed = false;
        let in_scope = |kind: MediaKind| match scope {
            PauseScope::All => true,
            PauseScope::Audio => kind == MediaKind::Audio,
            PauseScope::Video => kind == MediaKind::Video,
        };
        for output in outputs.iter_mut().filter(|o| in_scope(o.kind)) {
            if output.paused != paused {
                output.paused = paused;
                resumed |= !paused;
                output.forwarder.restart_on_keyframe();
            }
        }
        let feed = peer.feed.clone();
        tracing::info!(session = %id, room, paused, ?scope, "subscriber paused or resumed");
        if resumed {
            self.request_feed_keyframe(&feed, Instant::now());
        }
        Ok(())
    }

    /// Moves subscriber `id` to feed `feed` of its room.
    pub(super) fn switch_feed(
        &mut self,
        room: &str,
        id: &str,
        feed: &str,
    ) -> Result<(), MediaError> {
        let key = self.find(room, id)?;
        let target = FeedKey::new(room, feed);
        if self.feeds.get(&target).and_then(|f| f.publisher).is_none() {
            return Err(MediaError::FeedNotFound {
                room: room.to_owned(),
                feed: feed.to_owned(),
            });
        }
        let Some(peer) = self.peers.get_mut(&key) else {
            return Err(MediaError::SessionNotFound(id.to_owned()));
        };
        let PeerMedia::Subscriber { outputs } = &mut peer.media else {
            return Err(MediaError::UnusableOffer(
                "only a subscriber switches feeds".into(),
            ));
        };
        if peer.feed == target {
            return Ok(());
        }
        for output in outputs.iter_mut() {
            output.forwarder.restart_on_keyframe();
        }
        let previous = std::mem::replace(&mut peer.feed, target.clone());
        if let Some(old) = self.feeds.get_mut(&previous) {
            old.remove(key);
            old.forget_intents_if_empty();
        }
        if self.feeds.get(&previous).is_some_and(Feed::is_empty)
            && let Some(old) = self.feeds.remove(&previous)
        {
            self.removed_feeds_traffic.add(&old.totals());
        }
        if let Some(new) = self.feeds.get_mut(&target) {
            new.subscribers.push(key);
        }
        tracing::info!(session = %id, room, from = %previous.feed, to = feed, "subscriber switched feeds");
        self.request_feed_keyframe(&target, Instant::now());
        Ok(())
    }
}
