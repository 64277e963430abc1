//! Server-offer subscribers of the VideoRoom: join (multistream `streams` or legacy `feed`),
//! `configure` (media on/off, simulcast substream, VP8 temporal layer) and `switch` without
//! renegotiation.

use serde_json::{Value, json};

use super::super::protocol::{JsepKind, jsep};
use super::super::streams::media_sections;
use super::{
    Caller, Membership, PluginError, VideoRoom, bool_field, code, id_field, required_id,
    string_field,
};
use crate::media::{LayerChoice, SentTrack, VideoTuning};
use crate::policy::Action;

pub(super) type EventReply = (Value, Option<Value>);

/// A feed a subscription names: its gateway name, Janus id, display and `streams`.
pub(super) type KnownFeed = (String, u64, Option<String>, Vec<Value>);

impl VideoRoom {
    /// A subscriber's `configure`: media on/off per kind (`audio`/`video` booleans, or
    /// `streams:[{mid, send}]`), the simulcast layer (`substream`) and the highest VP8
    /// temporal layer (`temporal`), top level or per stream.
    pub(super) async fn configure_subscriber(
        &self,
        room: u64,
        session: &str,
        streams: &[Value],
        body: &Value,
    ) -> Result<(), PluginError> {
        let room_name = room.to_string();
        let mut substream = id_field(body, "substream")?;
        let mut temporal = id_field(body, "temporal")?;
        for entry in body["streams"].as_array().into_iter().flatten() {
            substream = substream.or(id_field(entry, "substream")?);
            temporal = temporal.or(id_field(entry, "temporal")?);
        }
        for (scope, on) in super::participants::media_switches(body, streams)? {
            self.gate
                .pause_session(&room_name, session, scope, !on)
                .await
                .map_err(PluginError::from_gate)?;
        }
        if let Some(substream) = substream {
            let layers = self
                .gate
                .session_layers(&room_name, session)
                .await
                .map_err(PluginError::from_gate)?;
            if let Some(rid) = layer_for_substream(&layers, substream) {
                self.gate
                    .select_layer(&room_name, session, LayerChoice::Rid(rid))
                    .await
                    .map_err(PluginError::from_gate)?;
            }
        }
        if let Some(temporal) = temporal {
            let layer = u8::try_from(temporal).unwrap_or(u8::MAX);
            self.gate
                .tune_video(
                    &room_name,
                    session,
                    VideoTuning::MaxTemporalLayer(Some(layer)),
                )
                .await
                .map_err(PluginError::from_gate)?;
        }
        Ok(())
    }

    /// The publisher `feed` of `room`: the gateway's feed name, its display and `streams`.
    pub(super) async fn feed(
        &self,
        room: u64,
        feed: u64,
    ) -> Result<(String, Option<String>, Vec<Value>), PluginError> {
        let janus = self.with_room(room, |r| {
            Ok(r.participants
                .get(&feed)
                .and_then(|p| Some((p.display.clone(), p.publishing.as_ref()?.streams.clone()))))
        })?;
        if let Some((display, mut streams)) = janus {
            // What a subscriber can take: disabled m-lines carry nothing.
            streams.retain(|s| s["disabled"] != true);
            return Ok((feed.to_string(), display, streams));
        }
        self.foreign_feeds(room)
            .await
            .into_iter()
            .find(|f| f.id == feed)
            .map(|f| (f.feed.clone(), Some(f.feed), f.streams))
            .ok_or_else(|| PluginError::new(code::NO_SUCH_FEED, format!("No such feed ({feed})")))
    }

    /// A subscriber's feeds: `feed` (legacy, `true`) or those of the `streams` entries.
    fn subscription_feeds(body: &Value) -> Result<(Vec<u64>, bool), PluginError> {
        if let Some(feed) = id_field(body, "feed")? {
            return Ok((vec![feed], true));
        }
        let Some(streams) = body.get("streams") else {
            return Err(PluginError::missing("feed"));
        };
        let streams = streams
            .as_array()
            .filter(|s| !s.is_empty())
            .ok_or_else(|| PluginError::invalid("streams", "a non-empty array"))?;
        let mut feeds = Vec::new();
        for stream in streams {
            let feed = required_id(stream, "feed")?;
            if !feeds.contains(&feed) {
                feeds.push(feed);
            }
        }
        Ok((feeds, false))
    }

    /// The kinds a join asks of each feed, where it does not ask for all: the `mid`s of its
    /// `streams` entries (the publisher's m-lines), or legacy `offer_audio`/`offer_video`.
    fn asked_kinds(
        body: &Value,
        known: &[KnownFeed],
    ) -> Result<Vec<(String, Vec<&'static str>)>, PluginError> {
        let flag = |name: &str| bool_field(body, name).map(|on| on.unwrap_or(true));
        if body.get("feed").is_some() {
            let kinds: Vec<&'static str> = [
                ("audio", flag("offer_audio")?),
                ("video", flag("offer_video")?),
            ]
            .into_iter()
            .filter_map(|(kind, on)| on.then_some(kind))
            .collect();
            return match (kinds.len(), known.first()) {
                (2, _) | (_, None) => Ok(Vec::new()),
                (0, _) => Err(PluginError::new(
                    code::INVALID_ELEMENT,
                    "Nothing to subscribe to",
                )),
                (_, Some(feed)) => Ok(vec![(feed.0.clone(), kinds)]),
            };
        }
        let entries = body["streams"].as_array().cloned().unwrap_or_default();
        let mut asked = Vec::new();
        for (name, id, _, feed_streams) in known {
            let mut kinds: Vec<&'static str> = Vec::new();
            let mut every = false;
            for entry in entries.iter().filter(|e| e["feed"].as_u64() == Some(*id)) {
                let Some(mid) = string_field(entry, "mid")? else {
                    every = true;
                    continue;
                };
                let kind = feed_streams
                    .iter()
                    .find(|s| s["mid"] == mid.as_str())
                    .and_then(|s| s["type"].as_str())
                    .ok_or_else(|| {
                        PluginError::new(
                            code::INVALID_ELEMENT,
                            format!("No such mid '{mid}' in feed {id}"),
                        )
                    })?;
                let kind = if kind == "audio" { "audio" } else { "video" };
                if !kinds.contains(&kind) {
                    kinds.push(kind);
                }
            }
            if !every && kinds.len() < 2 {
                asked.push((name.clone(), kinds));
            }
        }
        Ok(asked)
    }

    /// The one feed a `switch` moves to.
    fn switch_feed(body: &Value) -> Result<u64, PluginError> {
        match Self::subscription_feeds(body)?.0.as_slice() {
            [feed] => Ok(*feed),
            _ => Err(PluginError::new(
                code::UNKNOWN_ERROR,
                "a switch moves to one feed at a time on this gateway",
            )),
        }
    }

    /// The `streams` of a subscription: each m-line of our offer with the feed it carries
    /// (matched by SSRC), that feed's display and m-line; m-lines carrying nothing are
    /// inactive.
    pub(super) fn offer_streams(
        offer_sdp: &str,
        tracks: &[SentTrack],
        known: &[KnownFeed],
    ) -> Vec<Value> {
        media_sections(offer_sdp)
            .iter()
            .map(|s| {
                let track = tracks
                    .iter()
                    .find(|t| Some(t.ssrc) == s.ssrc && t.kind == s.kind);
                let mut entry = json!({"type": s.kind, "active": false, "mindex": s.mindex,
                    "mid": s.mid, "ready": false, "send": true});
                let Some(track) = track else {
                    return entry;
                };
                let (id, display, feed_streams) = match known.iter().find(|k| k.0 == track.feed) {
                    Some((_, id, display, feed_streams)) => {
                        (*id, display.clone(), feed_streams.clone())
                    }
                    None => (
                        super::bridge::foreign_id(&track.feed),
                        Some(track.feed.clone()),
                        Vec::new(),
                    ),
                };
                entry["active"] = json!(true);
                entry["feed_id"] = json!(id);
                entry["feed_display"] = json!(display);
                if let Some(source) = feed_streams.iter().find(|f| f["type"] == s.kind.as_str()) {
                    entry["feed_mid"] = source["mid"].clone();
                }
                if let Some(codec) = &s.codec {
                    entry["codec"] = json!(codec);
                }
                entry
            })
            .collect()
    }

    pub(super) async fn join_subscriber(
        &self,
        caller: &Caller,
        body: &Value,
    ) -> Result<EventReply, PluginError> {
        let room = required_id(body, "room")?;
        self.adopt_gateway_room(room).await;
        let (feeds, legacy) = Self::subscription_feeds(body)?;
        let private_id = id_field(body, "private_id")?;
        let autoupdate = bool_field(body, "autoupdate")?.unwrap_or(true);
        // Each publisher's tracks in a stream of their own (grouped, in sync), as Janus does.
        let use_msid = bool_field(body, "use_msid")?.unwrap_or(false);
        self.with_room(room, |r| {
            let known = r
                .participants
                .values()
                .any(|p| Some(u64::from(p.private_id)) == private_id);
            if r.config.require_pvtid && !known {
                return Err(PluginError::new(
                    code::UNAUTHORIZED,
                    "Unauthorized (this room requires a valid private_id)",
                ));
            }
            Ok(())
        })?;
        let mut known: Vec<KnownFeed> = Vec::new();
        for id in &feeds {
            let (name, display, feed_streams) = self.feed(room, *id).await?;
            known.push((name, *id, display, feed_streams));
        }
        let e2ee = self.subscription_e2ee(room, &feeds)?;
        self.admit_join(caller, room, Action::Subscribe).await?;
        let room_name = room.to_string();
        let names: Vec<String> = known.iter().map(|k| k.0.clone()).collect();
        let only_kinds = Self::asked_kinds(body, &known)?;
        let offer = self
            .gate
            .offer_subscriber(&caller.facts, &room_name, &names, only_kinds, use_msid)
            .await
            .map_err(PluginError::from_gate)?;
        let streams = Self::offer_streams(&offer.offer_sdp, &offer.tracks, &known);
        let feed = feeds.first().copied().unwrap_or_default();
        self.set_membership(
            caller.handle.id,
            Some(Membership::Subscriber {
                room,
                janus_session: caller.session.id,
                session: offer.session_id,
                feed,
                streams: streams.clone(),
                autoupdate,
                delays: Vec::new(),
            }),
        );
        self.offers.offered(caller.handle.id);
        caller.handle.set_e2ee(e2ee);
        self.apply_held_candidates(caller.handle.id).await;
        let mut data = json!({"videoroom": "attached", "room": room, "streams": streams});
        if legacy {
            data["id"] = json!(feed);
            data["display"] = json!(known.first().and_then(|k| k.2.clone()));
            data["warning"] = json!("deprecated_api");
        }
        Ok((data, Some(jsep(JsepKind::Offer, &offer.offer_sdp))))
    }

    pub(super) async fn switch(
        &self,
        caller: &Caller,
        body: &Value,
        room: u64,
        session: &str,
        from: u64,
        streams: Vec<Value>,
    ) -> Result<EventReply, PluginError> {
        let to = Self::switch_feed(body)?;
        let (feed_name, display, feed_streams) = self.feed(room, to).await?;
        self.check_same_e2ee(room, to, caller)?;
        // `sub_mid` names the m-line(s) to switch: those receiving that m-line's feed. Without
        // it every m-line switches (the legacy form).
        let sub_mid = body["streams"][0]["sub_mid"].as_str();
        let switched_feed: Option<u64> = sub_mid.and_then(|mid| {
            streams
                .iter()
                .find(|s| s["mid"] == mid)
                .and_then(|s| s["feed_id"].as_u64())
        });
        let from_name = match switched_feed {
            Some(id) => Some(self.feed_name(room, id).await),
            None => None,
        };
        self.gate
            .switch_feed(&room.to_string(), session, from_name.as_deref(), &feed_name)
            .await
            .map_err(PluginError::from_gate)?;
        let mut changes = 0;
        let streams: Vec<Value> = streams
            .into_iter()
            .map(|mut s| {
                if switched_feed.is_some_and(|f| s["feed_id"] != f) {
                    return s;
                }
                changes += 1;
                let source = feed_streams.iter().find(|f| f["type"] == s["type"]);
                s["feed_id"] = json!(to);
                s["feed_display"] = json!(display);
                if let Some(source) = source {
                    s["feed_mid"] = source["mid"].clone();
                }
                s
            })
            .collect();
        self.set_subscription(caller, session, to, streams.clone());
        tracing::info!(room, from, to, "janus subscriber switched");
        Ok((
            json!({"videoroom": "event", "switched": "ok", "room": room,
                   "changes": changes, "streams": streams}),
            None,
        ))
    }

    /// Records what the caller's handle now receives on media session `session`, unless it
    /// left (or subscribed anew) meanwhile.
    pub(super) fn set_subscription(
        &self,
        caller: &Caller,
        session: &str,
        feed: u64,
        streams: Vec<Value>,
    ) {
        self.update_subscriber(caller.handle.id, session, |membership| {
            if let Membership::Subscriber {
                feed: received,
                streams: lines,
                ..
            } = membership
            {
                *received = feed;
                *lines = streams;
            }
        });
    }
}

/// The simulcast rid Janus's `substream` (0 lowest … 2 highest) means among `layers`,
/// ranked by their usual names (`q`/`h`/`f`, `low`/`mid`/`high`, `0`/`1`/`2`); `None` when the
/// publisher sends no simulcast.
fn layer_for_substream(layers: &[String], substream: u64) -> Option<String> {
    let rank = |rid: &str| match rid {
        "q" | "l" | "low" | "lo" | "0" => 0,
        "h" | "m" | "mid" | "medium" | "1" => 1,
        _ => 2,
    };
    let mut ranked: Vec<&String> = layers.iter().collect();
    ranked.sort_by_key(|rid| rank(rid));
    let last = ranked.len().checked_sub(1)?;
    let index = usize::try_from(substream).unwrap_or(usize::MAX).min(last);
    Some(ranked[index].clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn substream_indices_pick_layers_from_lowest_to_highest() {
        let layers: Vec<String> = ["f", "q", "h"].map(String::from).to_vec();
        assert_eq!(layer_for_substream(&layers, 0).as_deref(), Some("q"));
        assert_eq!(layer_for_substream(&layers, 1).as_deref(), Some("h"));
        assert_eq!(layer_for_substream(&layers, 2).as_deref(), Some("f"));
        assert_eq!(layer_for_substream(&layers, 9).as_deref(), Some("f"));
        assert_eq!(layer_for_substream(&[], 0), None);
    }
}
