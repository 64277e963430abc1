//! Publishers of other dialects in Janus rooms: a gateway room with a numeric name is Janus
//! room `N` (created in the VideoRoom's registry on first use), and every publisher that did
//! not come through Janus (WHIP, Live777, runner365…) is listed as a participant whose id is
//! its feed name when numeric, else a stable hash of it, with the `streams` of its SDP answer.
//! Participants hear of them as of Janus publishers: `publishers` when one starts,
//! `unpublished` when it stops (checked once a second).

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::super::streams::{media_sections, publisher_streams};
use super::{Room, RoomConfig, VideoRoom};
use crate::media::Role;

/// Stopped publishers of other dialects whose feed names a room remembers.
const FOREIGN_STOPPED_KEPT: usize = 32;

/// A publisher of another dialect, as Janus clients see it.
#[derive(Debug, Clone)]
pub(super) struct ForeignFeed {
    pub id: u64,
    /// The gateway's feed name.
    pub feed: String,
    /// Its m-lines as Janus lists a publisher's (`type`, `mindex`, `mid`, `codec`).
    pub streams: Vec<Value>,
}

impl ForeignFeed {
    pub fn publisher_entry(&self) -> Value {
        let mut entry = json!({"id": self.id, "display": self.feed, "streams": self.streams,
            "talking": false});
        for kind in ["audio", "video"] {
            if let Some(codec) = self.streams.iter().find(|s| s["type"] == kind) {
                entry[format!("{kind}_codec")] = codec["codec"].clone();
            }
        }
        entry
    }

    pub fn participant_entry(&self) -> Value {
        json!({"id": self.id, "display": self.feed, "publisher": true, "talking": false})
    }
}

/// The Janus id of a foreign feed: its name when numeric, else FNV-1a of it below 2^53.
pub(super) fn foreign_id(feed: &str) -> u64 {
    if let Ok(id) = feed.parse::<u64>()
        && id > 0
        && id < (1 << 53)
    {
        return id;
    }
    let hash = feed.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    (hash & 0x1F_FFFF_FFFF_FFFF).max(1)
}

impl VideoRoom {
    /// Publishers of room `room` that did not come through Janus.
    pub(super) async fn foreign_feeds(&self, room: u64) -> Vec<ForeignFeed> {
        let Ok(Some(snapshot)) = self.gate.room(&room.to_string()).await else {
            return Vec::new();
        };
        snapshot
            .sessions
            .iter()
            .filter(|s| s.role == Role::Publisher && s.dialect != "janus")
            // Listed once their PeerConnection is up, as Janus publishers are.
            .filter(|s| s.state == "connected")
            .map(|s| ForeignFeed {
                id: foreign_id(&s.feed),
                feed: s.feed.clone(),
                streams: s
                    .answer_sdp
                    .as_deref()
                    .map(|sdp| publisher_streams(&media_sections(sdp)))
                    .unwrap_or_default(),
            })
            .collect()
    }

    /// Tells each room's participants of the publishers of other dialects that started or
    /// stopped since the last call (`publishers` / `unpublished`, as for Janus publishers).
    pub async fn announce_foreign_publishers(&self) {
        let rooms: Vec<u64> = match self.rooms.lock() {
            Ok(rooms) => rooms.keys().copied().collect(),
            Err(_) => return,
        };
        for room in rooms {
            let feeds = self.foreign_feeds(room).await;
            let (started, stopped, listening) = {
                let Ok(mut rooms) = self.rooms.lock() else {
                    return;
                };
                let Some(r) = rooms.get_mut(&room) else {
                    continue;
                };
                let now: BTreeMap<u64, String> =
                    feeds.iter().map(|f| (f.id, f.feed.clone())).collect();
                let started: Vec<Value> = feeds
                    .iter()
                    .filter(|f| !r.foreign_announced.contains_key(&f.id))
                    .map(ForeignFeed::publisher_entry)
                    .collect();
                let stopped: Vec<u64> = r
                    .foreign_announced
                    .keys()
                    .filter(|id| !now.contains_key(id))
                    .copied()
                    .collect();
                let announced = std::mem::replace(&mut r.foreign_announced, now);
                r.foreign_stopped
                    .extend(announced.into_iter().filter(|(id, _)| stopped.contains(id)));
                let excess = r.foreign_stopped.len().saturating_sub(FOREIGN_STOPPED_KEPT);
                r.foreign_stopped.drain(..excess);
                (started, stopped, !r.participants.is_empty())
            };
            // Subscriber handles are not participants: they are updated either way.
            self.autoupdate_subscribers(room, &stopped);
            if !listening {
                continue;
            }
            if !started.is_empty() {
                let event = json!({"videoroom": "event", "room": room, "publishers": started});
                self.notify_room(room, None, &event);
            }
            for id in stopped {
                let event = json!({"videoroom": "event", "room": room, "unpublished": id});
                self.notify_room(room, None, &event);
            }
        }
    }

    /// Makes Janus room `room` exist when the gateway has a room of that name (its publishers
    /// came through another dialect). Returns whether the Janus room exists now.
    pub(super) async fn adopt_gateway_room(&self, room: u64) -> bool {
        if self.rooms.lock().is_ok_and(|r| r.contains_key(&room)) {
            return true;
        }
        let exists = matches!(self.gate.room(&room.to_string()).await, Ok(Some(_)));
        if exists && let Ok(mut rooms) = self.rooms.lock() {
            rooms.entry(room).or_insert_with(|| Room {
                config: RoomConfig {
                    room,
                    description: format!("Room {room}"),
                    ..RoomConfig::default()
                },
                participants: Default::default(),
                permanent: false,
                foreign_announced: Default::default(),
                foreign_stopped: Default::default(),
            });
        }
        exists
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numeric_feed_names_are_their_own_ids_and_others_hash_stably_below_2_53() {
        assert_eq!(foreign_id("1234"), 1234);
        let id = foreign_id("default");
        assert_eq!(id, foreign_id("default"));
        assert!(id > 0 && id < (1 << 53));
        assert_ne!(id, foreign_id("other"));
        assert!(foreign_id(&(1u64 << 60).to_string()) < (1 << 53));
    }
}
