//! The stream model's feed: one publisher session in a room and the subscribers receiving it
//! (DESIGN.md §1). A room is the set of feeds sharing its name; single-publisher dialects use
//! the [`DEFAULT_FEED`].

use std::time::SystemTime;

use super::keyframe_cache::KeyframeCache;
use super::offer::MediaKind;

/// A codec chosen for a feed's kind before any publisher sent it: what early subscribers were
/// negotiated with, and what a later publisher's answer prefers so they can be served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CodecIntent {
    pub kind: MediaKind,
    pub mime_type: String,
    pub clock_rate: u32,
    pub channels: u16,
    pub fmtp: String,
}

/// The feed WHIP, Live777, the rooms API and LEB publish to, and runner365's `remoteUid` for it.
pub const DEFAULT_FEED: &str = "default";

/// Where a feed lives: its room and its name within the room.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct FeedKey {
    pub room: String,
    pub feed: String,
}

impl FeedKey {
    pub fn new(room: impl Into<String>, feed: impl Into<String>) -> Self {
        Self {
            room: room.into(),
            feed: feed.into(),
        }
    }
}

/// A feed and who is in it; sessions are referred to by their engine keys.
#[derive(Debug)]
pub(crate) struct Feed {
    pub key: FeedKey,
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
    /// Sequence numbers the subscribers NACKed, counted inside their interceptor chains.
    pub nacks: std::sync::Arc<std::sync::atomic::AtomicU64>,
    /// Plain RTP copies of the publisher's packets (Janus `rtp_forward`).
    pub rtp_forwarders: Vec<super::rtp_forward::RtpForwarder>,
    /// The publisher's playout delay for subscribers without their own.
    pub playout_delay: Option<super::playout_delay::DelaySetting>,
}

impl Feed {
    pub fn new(key: FeedKey) -> Self {
        Self {
            key,
            created_at: SystemTime::now(),
            publisher: None,
            subscribers: Vec::new(),
            publisher_left_at: None,
            subscriber_left_at: None,
            intents: Vec::new(),
            traffic: Default::default(),
            keyframe_cache: KeyframeCache::default(),
            nacks: Default::default(),
            rtp_forwarders: Vec::new(),
            playout_delay: None,
        }
    }

    /// Everything counted for this feed so far.
    pub fn totals(&self) -> super::Traffic {
        let mut traffic = self.traffic.get();
        traffic.nack_requests = self.nacks.load(std::sync::atomic::Ordering::Relaxed);
        traffic
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

    /// Removes a session from the feed; returns true when it was the publisher.
    pub fn remove(&mut self, session: u64) -> bool {
        if self.publisher == Some(session) {
            self.publisher = None;
            self.keyframe_cache.clear();
            self.playout_delay = None; // the publisher's setting, gone with it
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

    /// Nobody is in the feed.
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
        let mut feed = Feed::new(FeedKey::new("demo", DEFAULT_FEED));
        feed.subscribers = vec![1, 2];
        assert!(!feed.remove(1));
        assert!(feed.subscriber_left_at.is_none());
        assert!(!feed.remove(2));
        assert!(feed.subscriber_left_at.is_some());
        assert!(feed.is_empty());
    }

    #[test]
    fn publisher_leaving_is_reported() {
        let mut feed = Feed::new(FeedKey::new("demo", DEFAULT_FEED));
        feed.publisher = Some(9);
        assert!(feed.remove(9));
        assert!(feed.publisher_left_at.is_some());
    }

    #[test]
    fn first_intent_per_kind_wins() {
        let mut feed = Feed::new(FeedKey::new("demo", DEFAULT_FEED));
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
        feed.set_intent_if_absent(vp8.clone());
        feed.set_intent_if_absent(h264);
        assert_eq!(feed.intent(MediaKind::Video), Some(&vp8));
    }
}
