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
        let (_, peer) = self.find_peer(room, id)?;
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

    /// Stops (`muted`) or resumes forwarding publisher `id`'s media (the kinds `scope` names)
    /// to every subscriber; subscribers restart video on the next keyframe, requested now.
    pub(super) fn mute_publisher(
        &mut self,
        room: &str,
        id: &str,
        scope: PauseScope,
        muted: bool,
    ) -> Result<(), MediaError> {
        let (_, peer) = self.find_peer(room, id)?;
        if !matches!(peer.media, PeerMedia::Publisher { .. }) {
            return Err(MediaError::UnusableOffer(
                "only a publisher is muted".into(),
            ));
        }
        let kinds: &[MediaKind] = match scope {
            PauseScope::All => &[MediaKind::Audio, MediaKind::Video],
            PauseScope::Audio => &[MediaKind::Audio],
            PauseScope::Video => &[MediaKind::Video],
        };
        for kind in kinds {
            peer.muted.retain(|k| k != kind);
            if muted {
                peer.muted.push(*kind);
            }
        }
        let feed = peer.feed.clone();
        let subscribers = self
            .feeds
            .get(&feed)
            .map(|f| f.subscribers.clone())
            .unwrap_or_default();
        for subscriber in subscribers {
            if let Some(PeerMedia::Subscriber { outputs }) =
                self.peers.get_mut(&subscriber).map(|p| &mut p.media)
            {
                outputs
                    .iter_mut()
                    .filter(|o| o.source == feed && kinds.contains(&o.kind))
                    .for_each(|o| o.forwarder.restart_on_keyframe());
            }
        }
        tracing::info!(session = %id, room, muted, ?scope, "publisher muted or unmuted");
        if !muted {
            self.request_feed_keyframe(&feed, Instant::now());
        }
        Ok(())
    }

    /// Moves subscriber `id`'s outputs receiving feed `from` (all of them when `None`) to feed
    /// `to` of its room.
    pub(super) fn switch_feed(
        &mut self,
        room: &str,
        id: &str,
        from: Option<&str>,
        to: &str,
    ) -> Result<(), MediaError> {
        let key = self.find(room, id)?;
        let target = FeedKey::new(room, to);
        if self.feeds.get(&target).and_then(|f| f.publisher).is_none() {
            return Err(MediaError::FeedNotFound {
                room: room.to_owned(),
                feed: to.to_owned(),
            });
        }
        let from = from.map(|f| FeedKey::new(room, f));
        let Some(peer) = self.peers.get_mut(&key) else {
            return Err(MediaError::SessionNotFound(id.to_owned()));
        };
        let PeerMedia::Subscriber { outputs } = &mut peer.media else {
            return Err(MediaError::UnusableOffer(
                "only a subscriber switches feeds".into(),
            ));
        };
        let mut previous = Vec::new();
        for output in outputs
            .iter_mut()
            .filter(|o| from.as_ref().is_none_or(|f| o.source == *f) && o.source != target)
        {
            previous.push(std::mem::replace(&mut output.source, target.clone()));
            output.forwarder.restart_on_keyframe();
        }
        if previous.is_empty() {
            return Ok(());
        }
        if previous.contains(&peer.feed) {
            peer.feed = target.clone();
        }
        previous.dedup();
        for old in &previous {
            if !self.receives(key, old) {
                self.leave_feed(key, old);
            }
        }
        self.join_feed(key, &target);
        tracing::info!(session = %id, room, from = ?previous.iter().map(|f| &f.feed).collect::<Vec<_>>(),
            to, "subscriber switched feeds");
        self.request_feed_keyframe(&target, Instant::now());
        Ok(())
    }

    /// Whether subscriber `key` still has an output receiving `feed` (or it is its main feed).
    pub(super) fn receives(&self, key: u64, feed: &FeedKey) -> bool {
        self.peers.get(&key).is_some_and(|p| {
            p.feed == *feed
                || matches!(&p.media, PeerMedia::Subscriber { outputs }
                    if outputs.iter().any(|o| o.source == *feed))
        })
    }

    /// The feeds subscriber `key` receives: its main feed first, then the others.
    pub(super) fn sources(&self, key: u64) -> Vec<FeedKey> {
        let Some(peer) = self.peers.get(&key) else {
            return Vec::new();
        };
        let mut sources = vec![peer.feed.clone()];
        if let PeerMedia::Subscriber { outputs } = &peer.media {
            for output in outputs {
                if !sources.contains(&output.source) {
                    sources.push(output.source.clone());
                }
            }
        }
        sources
    }

    /// Lists subscriber `key` in `feed`'s subscribers.
    pub(super) fn join_feed(&mut self, key: u64, feed: &FeedKey) {
        if let Some(feed) = self.feeds.get_mut(feed)
            && !feed.subscribers.contains(&key)
        {
            feed.subscribers.push(key);
        }
    }

    /// Takes subscriber `key` out of `feed`; an empty feed goes (its traffic kept).
    pub(super) fn leave_feed(&mut self, key: u64, feed: &FeedKey) {
        if let Some(f) = self.feeds.get_mut(feed) {
            f.remove(key);
            f.forget_intents_if_empty();
        }
        if self.feeds.get(feed).is_some_and(Feed::is_empty)
            && let Some(old) = self.feeds.remove(feed)
        {
            self.removed_feeds_traffic.add(&old.totals());
        }
    }
}
