//! Janus 1.x `autoupdate`: when a publisher stops, each subscriber handle receiving it (and
//! not joined with `autoupdate: false`) gets an `updated` event with a new offer in which the
//! publisher's m-lines are inactive; the client answers it with `start`.

use serde_json::{Value, json};

use super::bridge::foreign_id;
use super::{Caller, Membership, VideoRoom};
use crate::gate::{RequestFacts, RoomRequirements};

/// A subscriber handle to update: its handle, Janus session, media session and streams.
type Receiving = (u64, u64, String, Vec<Value>);

impl VideoRoom {
    /// Publisher `feed` of `room` stopped: renegotiates every subscriber that receives it.
    pub(super) fn autoupdate_subscribers(&self, room: u64, feed: u64) {
        let receiving: Vec<Receiving> = match self.members.lock() {
            Ok(members) => members
                .iter()
                .filter_map(|(handle, m)| match m {
                    Membership::Subscriber {
                        room: r,
                        janus_session,
                        session,
                        streams,
                        autoupdate: true,
                        ..
                    } if *r == room && receives(streams, feed) => {
                        Some((*handle, *janus_session, session.clone(), streams.clone()))
                    }
                    _ => None,
                })
                .collect(),
            Err(_) => return,
        };
        if receiving.is_empty() {
            return;
        }
        let me = self.me.clone();
        tokio::spawn(async move {
            let Some(videoroom) = me.upgrade() else {
                return;
            };
            for subscriber in receiving {
                videoroom.autoupdate(room, feed, subscriber).await;
            }
        });
    }

    async fn autoupdate(
        &self,
        room: u64,
        feed: u64,
        (handle, janus_session, session, streams): Receiving,
    ) {
        let Some(janus) = self.sessions.get(janus_session) else {
            return;
        };
        let Some(handle) = janus.handle(handle) else {
            return;
        };
        let caller = Caller {
            session: janus.clone(),
            handle,
            transaction: String::new(),
            facts: gateway_facts(),
        };
        let body = json!({"streams": [{"feed": feed}]});
        match self
            .update_subscription(&caller, "unsubscribe", &body, room, &session, streams)
            .await
        {
            Ok((data, offer)) => {
                tracing::info!(
                    room,
                    feed,
                    session,
                    "janus subscriber updated: publisher gone"
                );
                janus.push(super::super::protocol::plugin_message(
                    "event",
                    janus.id,
                    caller.handle.id,
                    None,
                    data,
                    offer,
                ));
            }
            Err(e) => tracing::debug!(room, feed, session, error = %e.reason,
                "janus subscriber not updated"),
        }
    }

    /// The gateway feed name of Janus feed `id`, also once its publisher is gone: a Janus
    /// participant's id, or the feed of another dialect whose id it is.
    pub(super) async fn feed_name(&self, room: u64, id: u64) -> String {
        if let Ok((name, ..)) = self.feed(room, id).await {
            return name;
        }
        let Ok(Some(snapshot)) = self.gate.room(&room.to_string()).await else {
            return id.to_string();
        };
        let janus_named = id.to_string();
        snapshot
            .sessions
            .iter()
            .map(|s| &s.feed)
            .find(|f| **f != janus_named && foreign_id(f) == id)
            .cloned()
            .unwrap_or(janus_named)
    }
}

/// The facts of a request the gateway makes itself. Only feeds are removed with them, which
/// no policy decides on; the unspecified address matches no allowlist.
fn gateway_facts() -> RequestFacts {
    RequestFacts {
        dialect: "janus",
        method: "POST".into(),
        path: "/janus".into(),
        headers: Vec::new(),
        client_ip: std::net::Ipv4Addr::UNSPECIFIED.into(),
        pin: None,
        room_rules: RoomRequirements::default(),
    }
}

/// Whether an active m-line of `streams` carries `feed`.
fn receives(streams: &[Value], feed: u64) -> bool {
    streams
        .iter()
        .any(|s| s["feed_id"].as_u64() == Some(feed) && s["active"] != false)
}
