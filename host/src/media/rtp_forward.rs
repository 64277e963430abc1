//! Plain RTP forwarders (Janus `rtp_forward`): a publisher's packets, decrypted, sent as plain
//! RTP to a UDP address (an ffmpeg or GStreamer pipeline, a recorder, another server), with
//! the SSRC and payload type the operator asked for.

use std::net::SocketAddr;

use rtc::shared::marshal::Marshal;

use super::engine::Engine;
use super::feed::FeedKey;
use super::offer::MediaKind;
use super::{MediaError, RtpForwarderInfo};

/// One forwarder of a feed.
#[derive(Debug, Clone)]
pub(crate) struct RtpForwarder {
    pub id: u32,
    pub kind: MediaKind,
    pub destination: SocketAddr,
    /// Written instead of the publisher's SSRC.
    pub ssrc: u32,
    /// Written instead of the publisher's payload type, when set.
    pub payload_type: Option<u8>,
}

impl RtpForwarder {
    fn info(&self, feed: &FeedKey) -> RtpForwarderInfo {
        RtpForwarderInfo {
            id: self.id,
            feed: feed.feed.clone(),
            kind: self.kind.as_str(),
            destination: self.destination,
            ssrc: self.ssrc,
            payload_type: self.payload_type,
        }
    }
}

/// Most forwarders one feed may have (each packet is copied once per forwarder).
const MAX_FORWARDERS_PER_FEED: usize = 16;

impl Engine {
    /// Starts forwarding `kind` of feed `feed` of `room` to `destination`.
    pub(super) fn add_rtp_forwarder(
        &mut self,
        room: &str,
        feed: &str,
        kind: &str,
        destination: SocketAddr,
        ssrc: Option<u32>,
        payload_type: Option<u8>,
    ) -> Result<RtpForwarderInfo, MediaError> {
        let key = FeedKey::new(room, feed);
        let kind = match kind {
            "audio" => MediaKind::Audio,
            "video" => MediaKind::Video,
            other => {
                return Err(MediaError::UnusableOffer(format!(
                    "no media kind `{other}`"
                )));
            }
        };
        let feed_state = self
            .feeds
            .get_mut(&key)
            .filter(|f| f.publisher.is_some())
            .ok_or_else(|| MediaError::FeedNotFound {
                room: room.to_owned(),
                feed: feed.to_owned(),
            })?;
        if feed_state.rtp_forwarders.len() >= MAX_FORWARDERS_PER_FEED {
            return Err(MediaError::UnusableOffer(format!(
                "at most {MAX_FORWARDERS_PER_FEED} RTP forwarders per feed"
            )));
        }
        let id = loop {
            let id = rand::random::<u32>() & 0x7fff_ffff;
            if id != 0 && !feed_state.rtp_forwarders.iter().any(|f| f.id == id) {
                break id;
            }
        };
        let forwarder = RtpForwarder {
            id,
            kind,
            destination,
            ssrc: ssrc.unwrap_or_else(rand::random),
            payload_type,
        };
        let info = forwarder.info(&key);
        feed_state.rtp_forwarders.push(forwarder);
        tracing::info!(room, feed, kind = kind.as_str(), %destination, id, "RTP forwarder started");
        if kind == MediaKind::Video {
            self.request_feed_keyframe(&key, std::time::Instant::now());
        }
        Ok(info)
    }

    /// Stops forwarder `id` of feed `feed`; `false` when there is none.
    pub(super) fn remove_rtp_forwarder(&mut self, room: &str, feed: &str, id: u32) -> bool {
        let Some(feed_state) = self.feeds.get_mut(&FeedKey::new(room, feed)) else {
            return false;
        };
        let before = feed_state.rtp_forwarders.len();
        feed_state.rtp_forwarders.retain(|f| f.id != id);
        before != feed_state.rtp_forwarders.len()
    }

    /// Every forwarder of `room`.
    pub(super) fn rtp_forwarders(&self, room: &str) -> Vec<RtpForwarderInfo> {
        self.feeds
            .values()
            .filter(|f| f.key.room == room)
            .flat_map(|f| f.rtp_forwarders.iter().map(|r| r.info(&f.key)))
            .collect()
    }

    /// Queues `packet` (of `kind`, from `feed`) for each of the feed's forwarders of that kind.
    pub(super) fn forward_plain(
        &mut self,
        feed: &FeedKey,
        kind: MediaKind,
        packet: &rtc::rtp::Packet,
    ) {
        let Some(feed_state) = self.feeds.get(feed) else {
            return;
        };
        for forwarder in feed_state.rtp_forwarders.iter().filter(|f| f.kind == kind) {
            let mut copy = packet.clone();
            copy.header.ssrc = forwarder.ssrc;
            if let Some(pt) = forwarder.payload_type {
                copy.header.payload_type = pt;
            }
            match copy.marshal() {
                Ok(bytes) => self
                    .datagrams
                    .push(&self.sockets, 0, bytes, forwarder.destination),
                Err(e) => tracing::debug!(error = %e, "RTP forwarder packet not encodable"),
            }
        }
    }
}
