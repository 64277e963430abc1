//! `subscribe`, `unsubscribe` and `update`, and the offers a publisher leaving or an ICE
//! restart makes: feeds taken on or off a subscriber's PeerConnection, one offer at a time
//! (`offer_queue`). The client answers each offer with `start`.

use serde_json::{Value, json};

use super::super::protocol::{JsepKind, jsep};
use super::offer_queue::{FeedChange, OfferTurn};
use super::subscribers::{EventReply, KnownFeed};
use super::{
    Caller, Membership, PluginError, VideoRoom, code, id_field, required_id, string_field,
};
use crate::policy::Action;

/// A new offer for a subscriber: its room, every m-line, and the jsep.
pub(super) struct NewOffer {
    pub room: u64,
    pub streams: Vec<Value>,
    pub jsep: Value,
}

impl NewOffer {
    /// Janus's `updated` event carrying it.
    pub fn updated(self) -> EventReply {
        (
            json!({"videoroom": "updated", "room": self.room, "streams": self.streams}),
            Some(self.jsep),
        )
    }
}

/// What asking for an offer led to.
pub(super) enum Asked {
    Offer(NewOffer),
    /// Nothing to change: no offer.
    Unchanged,
    /// It waits for the answer to the offer before (Janus's `updating`).
    Queued,
}

impl VideoRoom {
    /// `subscribe`, `unsubscribe` or `update` by a subscriber in `room` receiving `streams`:
    /// `updated` with the new offer, `updated` without one when nothing changes, or
    /// `updating` while the previous offer is unanswered.
    pub(super) async fn update_subscription(
        &self,
        caller: &Caller,
        request: &str,
        body: &Value,
        room: u64,
        streams: &[Value],
    ) -> Result<EventReply, PluginError> {
        let change = self
            .requested_change(caller, request, body, room, streams)
            .await?;
        Ok(match self.ask_offer(caller, change).await? {
            Asked::Offer(offer) => offer.updated(),
            Asked::Unchanged => (json!({"videoroom": "updated", "room": room}), None),
            Asked::Queued => (json!({"videoroom": "updating", "room": room}), None),
        })
    }

    /// Makes the offer for `change` now, or queues it behind the unanswered one.
    pub(super) async fn ask_offer(
        &self,
        caller: &Caller,
        change: FeedChange,
    ) -> Result<Asked, PluginError> {
        if self.offers.claim(caller.handle.id, change.clone()) == OfferTurn::Queued {
            return Ok(Asked::Queued);
        }
        let made = self.offer_change(caller, change, false).await;
        if !matches!(made, Ok(Some(_))) {
            // No offer went out: what queued meanwhile goes now.
            self.offer_waiting(caller).await;
        }
        Ok(made?.map_or(Asked::Unchanged, Asked::Offer))
    }

    /// The subscriber answered (or an offer was not made): the offer for the changes that
    /// waited, if any, goes out as an unsolicited `updated` event.
    pub(super) async fn offer_waiting(&self, caller: &Caller) {
        let handle = caller.handle.id;
        while let Some(change) = self.offers.settled(handle) {
            match self.offer_change(caller, change, true).await {
                Ok(Some(offer)) => {
                    let (data, jsep) = offer.updated();
                    caller.notify(data, jsep);
                    return;
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::debug!(handle, error = %e.reason, "janus queued offer not made")
                }
            }
        }
    }

    /// Renegotiates the caller's subscription with `change` (feeds gone by now are skipped).
    /// `None` when it changes nothing and `always` is false.
    async fn offer_change(
        &self,
        caller: &Caller,
        change: FeedChange,
        always: bool,
    ) -> Result<Option<NewOffer>, PluginError> {
        let Some(Membership::Subscriber {
            room,
            session,
            streams,
            ..
        }) = self.membership(caller.handle.id)
        else {
            return Err(PluginError::new(code::JOIN_FIRST, "Join the room first"));
        };
        let mut known: Vec<KnownFeed> = Vec::new();
        for id in change.add.iter().filter(|f| !receives(&streams, **f)) {
            if let Ok((name, display, feed_streams)) = self.feed(room, *id).await {
                known.push((name, *id, display, feed_streams));
            }
        }
        let mut remove = Vec::new();
        for id in change.remove.iter().filter(|f| receives(&streams, **f)) {
            remove.push(self.feed_name(room, *id).await);
        }
        if known.is_empty() && remove.is_empty() && !change.restart_ice && !always {
            return Ok(None);
        }
        let add: Vec<String> = known.iter().map(|k| k.0.clone()).collect();
        let renegotiated = self
            .gate
            .renegotiate(&room.to_string(), &session, add, remove, change.restart_ice)
            .await
            .map_err(PluginError::from_gate)?;
        // Feeds received from before keep their ids and displays.
        for stream in &streams {
            if let Some(id) = stream["feed_id"].as_u64()
                && !known.iter().any(|k| k.1 == id)
                && let Ok((name, display, feed_streams)) = self.feed(room, id).await
            {
                known.push((name, id, display, feed_streams));
            }
        }
        let updated = Self::offer_streams(&renegotiated.offer_sdp, &renegotiated.tracks, &known);
        let feed = updated
            .iter()
            .find_map(|s| s["feed_id"].as_u64())
            .unwrap_or_default();
        self.set_subscription(caller, &session, feed, updated.clone());
        let mut jsep = jsep(JsepKind::Offer, &renegotiated.offer_sdp);
        if change.restart_ice {
            jsep["restart"] = json!(true);
        }
        tracing::info!(room, session, ?change, "janus subscriber offered anew");
        Ok(Some(NewOffer {
            room,
            streams: updated,
            jsep,
        }))
    }

    /// The change a `subscribe`, `unsubscribe` or `update` asks for, checked: the feeds it
    /// adds exist, the `sub_mid`s it removes name m-lines of `streams`.
    async fn requested_change(
        &self,
        caller: &Caller,
        request: &str,
        body: &Value,
        room: u64,
        streams: &[Value],
    ) -> Result<FeedChange, PluginError> {
        let (subscribe, unsubscribe) = match request {
            "subscribe" => (Some(required(body, "streams")?), None),
            "unsubscribe" => (None, Some(required(body, "streams")?)),
            _ => (body.get("subscribe"), body.get("unsubscribe")),
        };
        if subscribe.is_none() && unsubscribe.is_none() {
            return Err(PluginError::missing("subscribe"));
        }
        let mut change = FeedChange::default();
        for entry in entries(subscribe, "subscription")? {
            let id = required_id(&entry, "feed")?;
            self.feed(room, id).await?;
            self.check_same_e2ee(room, id, caller)?;
            change.add.push(id);
        }
        if !change.add.is_empty() {
            // Decided now, with this request's credentials: the offer may come later.
            self.gate
                .decide(&caller.facts, Action::Subscribe, &room.to_string())
                .await
                .map_err(PluginError::from_gate)?;
        }
        for entry in entries(unsubscribe, "unsubscription")? {
            let id = match (id_field(&entry, "feed")?, string_field(&entry, "sub_mid")?) {
                (Some(id), _) => id,
                (None, Some(mid)) => streams
                    .iter()
                    .find(|s| s["mid"] == mid.as_str())
                    .and_then(|s| s["feed_id"].as_u64())
                    .ok_or_else(|| {
                        PluginError::new(code::INVALID_ELEMENT, format!("No such sub_mid '{mid}'"))
                    })?,
                (None, None) => return Err(PluginError::missing("feed")),
            };
            change.remove.push(id);
        }
        Ok(change)
    }
}

fn required<'a>(body: &'a Value, name: &str) -> Result<&'a Value, PluginError> {
    body.get(name).ok_or_else(|| PluginError::missing(name))
}

/// The entries of a `subscribe`/`unsubscribe` list (absent: none; empty: a mistake).
fn entries(value: Option<&Value>, what: &str) -> Result<Vec<Value>, PluginError> {
    match value {
        None => Ok(Vec::new()),
        Some(Value::Array(items)) if items.is_empty() => Err(PluginError::new(
            code::INVALID_ELEMENT,
            format!("Empty {what} list"),
        )),
        Some(Value::Array(items)) => Ok(items.clone()),
        Some(_) => Err(PluginError::invalid(what, "an array")),
    }
}

/// Whether an active m-line of `streams` carries `feed`.
pub(super) fn receives(streams: &[Value], feed: u64) -> bool {
    streams
        .iter()
        .any(|s| s["feed_id"].as_u64() == Some(feed) && s["active"] != false)
}
