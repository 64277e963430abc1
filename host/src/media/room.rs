//! The stream model's room: one publisher feed and its subscribers (DESIGN.md §1).

use std::time::SystemTime;

use super::keyframe_cache::KeyframeCache;
use super::offer::MediaKind;

/// A codec chosen for a room's kind before any publisher sent it: what early subscribers were
/// negotiated with, and what a later publisher's answer prefers so they can be served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CodecIntent {
    pub kind: MediaKind,
    pub mime_type: String,
    pub clock_rate: u32,
    pub channels: u16,
    pub fmtp: String,
}

/// A room and who is in it; sessions are referred to by their engine keys.
#[derive(Debug)]
pub(crate) struct Room {
    pub name: String,
    pub created_at: SystemTime,
    pub publisher: Option<u64>,
    pub subscribers: Vec<u64>,
    pub publisher_left_at: Option<SystemTime>,
    pub subscriber_left_at: Option<SystemTime>,
    pub intents: Vec<CodecIntent>,
    /// A `Cell` so the fan-out can count while it holds the subscriber list borrowed.
    pub traffic: std::cell::Cell<super::Traffic>,
    /// Filled only when `[webrtc] keyframe_cache` is on.
    pub keyframe_cache: KeyframeCache,
}

impl Room {
    pub fn new(name: String) -> Self {
        Self {
            name,
            created_at: SystemTime::now(),
            publisher: None,
            subscribers: Vec::new(),
            publisher_left_at: None,
            subscriber_left_at: None,
            intents: Vec::new(),
            traffic: Default::default(),
            keyframe_cache: KeyframeCache::default(),
        }
    }

    /// The codec intent for `kind`, if one was recorded.
    pub fn intent(&self, kind: MediaKind) -> Option<&CodecIntent> {
        self.intents.iter().find(|i| i.kind == kind)
    }

    /// Records `intent` unless the kind already has one.
    pub fn set_intent_if_absent(&mut self, intent: CodecIntent) {
        if self.intent(intent.kind).is_none() {
            self.intents.push(intent);
        }
    }

    /// Removes a session from the room; returns true when it was the publisher.
    pub fn remove(&mut self, session: u64) -> bool {
        if self.publisher == Some(session) {
            self.publisher = None;
            self.keyframe_cache.clear();
            self.publisher_left_at = Some(SystemTime::now());
            return true;
        }
        let before = self.subscribers.len();
        self.subscribers.retain(|s| *s != session);
        if before != self.subscribers.len() && self.subscribers.is_empty() {
            self.subscriber_left_at = Some(SystemTime::now());
        }
        false
    }

    /// Nobody is in the room.
    pub fn is_empty(&self) -> bool {
        self.publisher.is_none() && self.subscribers.is_empty()
    }

    /// Drops codec intents once nobody depends on them, so the next party chooses afresh.
    pub fn forget_intents_if_empty(&mut self) {
        if self.subscribers.is_empty() {
            self.intents.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_subscriber_leaving_stamps_leave_time() {
        let mut room = Room::new("demo".into());
        room.subscribers = vec![1, 2];
        assert!(!room.remove(1));
        assert!(room.subscriber_left_at.is_none());
        assert!(!room.remove(2));
        assert!(room.subscriber_left_at.is_some());
        assert!(room.is_empty());
    }

    #[test]
    fn publisher_leaving_is_reported() {
        let mut room = Room::new("demo".into());
        room.publisher = Some(9);
        assert!(room.remove(9));
        assert!(room.publisher_left_at.is_some());
    }

    #[test]
    fn first_intent_per_kind_wins() {
        let mut room = Room::new("demo".into());
        let vp8 = CodecIntent {
            kind: MediaKind::Video,
            mime_type: "video/VP8".into(),
            clock_rate: 90_000,
            channels: 0,
            fmtp: String::new(),
        };
        let h264 = CodecIntent {
            mime_type: "video/H264".into(),
            ..vp8.clone()
        };
        room.set_intent_if_absent(vp8.clone());
        room.set_intent_if_absent(h264);
        assert_eq!(room.intent(MediaKind::Video), Some(&vp8));
    }
}
