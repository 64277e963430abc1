//! Janus 1.x `autoupdate`: when a publisher stops, each subscriber handle receiving it (and
//! not joined with `autoupdate: false`) gets an `updated` event with a new offer in which the
//! publisher's m-lines are inactive; the client answers it with `start`.

use super::offer_queue::FeedChange;
use super::updates::{Asked, receives};
use super::{Caller, Membership, VideoRoom};
use crate::gate::{RequestFacts, RoomRequirements};

/// A subscriber handle to update: its handle, Janus session and media session, and which of
/// the stopped feeds it receives.
type Receiving = (u64, u64, String, Vec<u64>);

impl VideoRoom {
    /// Publishers `feeds` of `room` stopped: renegotiates every subscriber receiving any of
    /// them, once for all of them, one subscriber after another.
    pub(super) fn autoupdate_subscribers(&self, room: u64, feeds: &[u64]) {
        if feeds.is_empty() {
            return;
        }
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
                    } if *r == room => {
                        let gone: Vec<u64> = feeds
                            .iter()
                            .copied()
                            .filter(|f| receives(streams, *f))
                            .collect();
                        (!gone.is_empty()).then(|| (*handle, *janus_session, session.clone(), gone))
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
                videoroom.autoupdate(room, subscriber).await;
            }
        });
    }

    async fn autoupdate(&self, room: u64, (handle, janus_session, session, gone): Receiving) {
        // What it receives now: an update of its own may have come in between.
        match self.membership(handle) {
            Some(Membership::Subscriber {
                session: current, ..
            }) if current == session => {}
            _ => return,
        }
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
        let change = FeedChange {
            remove: gone.clone(),
            ..FeedChange::default()
        };
        // Queued behind an unanswered offer, it goes out after the answer, without an event now.
        match self.ask_offer(&caller, change).await {
            Ok(Asked::Offer(offer)) => {
                tracing::info!(
                    room,
                    ?gone,
                    session,
                    "janus subscriber updated: publishers gone"
                );
                let (data, jsep) = offer.updated();
                caller.notify(data, jsep);
            }
            Ok(Asked::Queued | Asked::Unchanged) => {}
            Err(e) => tracing::debug!(room, ?gone, session, error = %e.reason,
                "janus subscriber not updated"),
        }
    }

    /// The gateway feed name of Janus feed `id`, also once its publisher is gone: a Janus
    /// participant's id, or the feed of another dialect whose id it is (or was).
    pub(super) async fn feed_name(&self, room: u64, id: u64) -> String {
        if let Ok((name, ..)) = self.feed(room, id).await {
            return name;
        }
        self.with_room(room, |r| {
            Ok(r.foreign_stopped
                .iter()
                .rev()
                .find(|(stopped, _)| *stopped == id)
                .map(|(_, name)| name.clone()))
        })
        .ok()
        .flatten()
        .unwrap_or_else(|| id.to_string())
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
