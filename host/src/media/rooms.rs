//! Room-level operations over a room's feeds: provisioning, deletion and the snapshots
//! signaling reads.

use std::collections::BTreeSet;
use std::time::{SystemTime, UNIX_EPOCH};

use super::engine::Engine;
use super::feed::{DEFAULT_FEED, Feed, FeedKey};
use super::peer::PeerMedia;
use super::{MediaError, PublisherLeave, RoomSnapshot, SessionSnapshot, Traffic};

pub(super) fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl Engine {
    pub(super) fn room_exists(&self, room: &str) -> bool {
        self.feeds.keys().any(|k| k.room == room)
    }

    pub(super) fn create_room(&mut self, name: String) -> Result<(), MediaError> {
        if self.room_exists(&name) {
            return Err(MediaError::RoomExists(name));
        }
        tracing::info!(room = %name, "room created by an operator");
        let key = FeedKey::new(name, DEFAULT_FEED);
        self.feeds.insert(key.clone(), Feed::new(key));
        Ok(())
    }

    /// The keys of a room's feeds, oldest first.
    fn feeds_of(&self, room: &str) -> Vec<FeedKey> {
        let mut feeds: Vec<&Feed> = self.feeds.values().filter(|f| f.key.room == room).collect();
        feeds.sort_by_key(|f| (f.created_at, f.key.feed.clone()));
        feeds.into_iter().map(|f| f.key.clone()).collect()
    }

    pub(super) fn delete_room(&mut self, name: &str) -> Result<(), MediaError> {
        let feeds = self.feeds_of(name);
        if feeds.is_empty() {
            return Err(MediaError::RoomNotFound(name.to_owned()));
        }
        for key in feeds {
            let sessions: Vec<u64> = self
                .feeds
                .get(&key)
                .map(|f| f.publisher.iter().chain(&f.subscribers).copied().collect())
                .unwrap_or_default();
            for session in sessions {
                self.close(session, "room deleted", PublisherLeave::CloseSubscribers);
            }
            if let Some(feed) = self.feeds.remove(&key) {
                self.removed_feeds_traffic.add(&feed.totals());
            }
        }
        tracing::info!(room = %name, "room removed by an operator");
        Ok(())
    }

    fn session_snapshot(&self, key: u64) -> Option<SessionSnapshot> {
        self.peers.get(&key).map(|p| SessionSnapshot {
            id: p.id.clone(),
            role: p.role(),
            dialect: p.dialect,
            feed: p.feed.feed.clone(),
            label: p.label.clone(),
            cascade: p.cascade.as_ref().map(|c| c.link.clone()),
            created_at_ms: unix_ms(p.created_at),
            state: p.state.to_string(),
            answer_sdp: match &p.media {
                PeerMedia::Publisher { .. } => Some(p.settled_sdp.clone()),
                PeerMedia::Subscriber { .. } => None,
            },
        })
    }

    fn published_tracks(&self, feed: &Feed) -> usize {
        feed.publisher
            .and_then(|p| self.peers.get(&p))
            .map_or(0, |p| match &p.media {
                PeerMedia::Publisher { tracks } => tracks.len(),
                PeerMedia::Subscriber { .. } => 0,
            })
    }

    /// One room's view over its feeds: publishers first, then subscribers, oldest feed first.
    pub(super) fn room_snapshot(&self, name: &str) -> Option<RoomSnapshot> {
        let feeds: Vec<&Feed> = self
            .feeds_of(name)
            .iter()
            .filter_map(|k| self.feeds.get(k))
            .collect();
        let first = feeds.first()?;
        let mut sessions: Vec<SessionSnapshot> = feeds
            .iter()
            .filter_map(|f| f.publisher)
            .filter_map(|k| self.session_snapshot(k))
            .collect();
        sessions.extend(
            feeds
                .iter()
                .flat_map(|f| &f.subscribers)
                .filter_map(|k| self.session_snapshot(*k)),
        );
        let publishers = feeds.iter().filter(|f| f.publisher.is_some()).count();
        let subscribers = feeds.iter().map(|f| f.subscribers.len()).sum();
        // "Left at" is the latest departure, and 0 while anyone of that role is present.
        let left_at = |present: bool, at: fn(&Feed) -> Option<SystemTime>| {
            if present {
                0
            } else {
                feeds.iter().filter_map(|f| at(f)).max().map_or(0, unix_ms)
            }
        };
        let mut traffic = Traffic::default();
        feeds.iter().for_each(|f| traffic.add(&f.totals()));
        Some(RoomSnapshot {
            name: name.to_owned(),
            created_at_ms: unix_ms(first.created_at),
            publishers,
            tracks: feeds.iter().map(|f| self.published_tracks(f)).sum(),
            subscribers,
            publisher_left_at_ms: left_at(publishers > 0, |f| f.publisher_left_at),
            subscriber_left_at_ms: left_at(subscribers > 0, |f| f.subscriber_left_at),
            sessions,
            traffic,
        })
    }

    pub(super) fn room_snapshots(&self) -> Vec<RoomSnapshot> {
        let names: BTreeSet<&str> = self.feeds.keys().map(|k| k.room.as_str()).collect();
        names
            .into_iter()
            .filter_map(|n| self.room_snapshot(n))
            .collect()
    }
}
