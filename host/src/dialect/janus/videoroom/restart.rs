//! Renegotiation over Janus: a publisher's `configure` with a new offer (tracks added or
//! removed, or an ICE restart), and a subscriber's `configure {restart: true}` (we offer new
//! credentials; the client answers with `start`).

use serde_json::{Value, json};

use super::super::protocol::{JsepKind, jsep};
use super::super::streams::{codec_of, media_sections, publisher_streams};
use super::offer_queue::FeedChange;
use super::updates::Asked;
use super::{Caller, PluginError, VideoRoom, code};

type EventReply = (Value, Option<Value>);

impl VideoRoom {
    /// Whether participant `id` of `room` publishes (a new offer is then a renegotiation).
    pub(super) fn is_publishing(&self, room: u64, id: u64) -> bool {
        self.with_room(room, |r| {
            Ok(r.participants
                .get(&id)
                .is_some_and(|p| p.publishing.is_some()))
        })
        .unwrap_or(false)
    }

    /// A publishing participant's new offer: tracks added or removed, directions changed, or
    /// new ICE credentials (an ICE restart), answered on the same session. When its streams
    /// change, the room hears its new `publishers` entry, as from Janus.
    pub(super) async fn reoffer_publisher(
        &self,
        room: u64,
        id: u64,
        offer: &str,
        body: &Value,
    ) -> Result<EventReply, PluginError> {
        let (session, codecs, opus, rules) = self.with_room(room, |r| {
            let publishing = r
                .participants
                .get(&id)
                .and_then(|p| p.publishing.as_ref())
                .ok_or_else(|| PluginError::new(code::JOIN_FIRST, "Join the room first"))?;
            // What was negotiated stays: a renegotiation does not switch codecs.
            let codecs = (
                publishing
                    .audio_codec
                    .clone()
                    .unwrap_or_else(|| r.config.audiocodec.clone()),
                publishing
                    .video_codec
                    .clone()
                    .unwrap_or_else(|| r.config.videocodec.clone()),
            );
            Ok((
                publishing.session.clone(),
                codecs,
                (r.config.opus_fec, r.config.opus_dtx),
                r.config.offer_rules(),
            ))
        })?;
        let offer = rules.apply(offer, &codecs.0, &codecs.1).map_err(|kind| {
            PluginError::new(
                code::INVALID_SDP,
                format!("the new offer's {kind} has none of the codecs this publisher may send"),
            )
        })?;
        let answer = self
            .gate
            .reoffer_publisher(&room.to_string(), &session, offer)
            .await
            .map_err(PluginError::from_gate)?;
        let sections = media_sections(&answer);
        let streams = publisher_streams(&sections);
        let changed = self.with_room(room, |r| {
            let participant = r.participants.get_mut(&id);
            let Some(p) = participant.and_then(|p| p.publishing.as_mut()) else {
                return Ok(false);
            };
            let streams_changed = p.streams.len() != streams.len()
                || p.streams.iter().zip(&streams).any(|(a, b)| {
                    ["mid", "type", "codec", "disabled"]
                        .iter()
                        .any(|key| a.get(key) != b.get(key))
                });
            if !streams_changed {
                return Ok(false);
            }
            p.audio_codec = codec_of(&sections, "audio").map(str::to_owned);
            p.video_codec = codec_of(&sections, "video").map(str::to_owned);
            // Descriptions given earlier stay with their mids.
            let described: Vec<(Value, Value)> = p
                .streams
                .iter()
                .filter(|s| s.get("description").is_some())
                .map(|s| (s["mid"].clone(), s["description"].clone()))
                .collect();
            p.streams = streams;
            for stream in &mut p.streams {
                if let Some((_, text)) = described.iter().find(|(mid, _)| stream["mid"] == *mid) {
                    stream["description"] = text.clone();
                }
            }
            Ok(true)
        })?;
        // Descriptions of streams this offer added (the earlier pass knew only the old ones).
        self.describe_streams(room, id, body)?;
        let (entry, streams) = self.with_room(room, |r| {
            let p = r.participants.get(&id);
            Ok((
                p.and_then(|p| p.publisher_entry()),
                p.and_then(|p| p.publishing.as_ref())
                    .map(|p| p.streams.clone())
                    .unwrap_or_default(),
            ))
        })?;
        tracing::info!(
            room,
            id,
            streams = streams.len(),
            "janus publisher renegotiated"
        );
        if let (true, Some(entry)) = (changed, entry) {
            let event = json!({"videoroom": "event", "room": room, "publishers": [entry]});
            self.notify_room(room, Some(id), &event);
        }
        let answer = super::super::streams::opus_params(&answer, opus.0, opus.1);
        Ok((
            json!({"videoroom": "event", "room": room, "configured": "ok",
                "audio_codec": codec_of(&sections, "audio"),
                "video_codec": codec_of(&sections, "video"), "streams": streams}),
            Some(jsep(JsepKind::Answer, &answer)),
        ))
    }

    /// A subscriber's `configure {restart: true}`: a new offer with new ICE credentials, or
    /// none yet while our previous offer is unanswered (it follows the answer, as in Janus).
    pub(super) async fn restart_subscriber_ice(
        &self,
        caller: &Caller,
    ) -> Result<Option<Value>, PluginError> {
        let restart = FeedChange {
            restart_ice: true,
            ..FeedChange::default()
        };
        Ok(match self.ask_offer(caller, restart).await? {
            Asked::Offer(offer) => Some(offer.jsep),
            Asked::Queued | Asked::Unchanged => None,
        })
    }
}
