//! Leaving a room: `unpublish`, and `leave` (the request, a detach, a kick or the session's
//! end), which ends the handle's media session.

use serde_json::{Value, json};

use super::super::sessions::Session;
use super::{Membership, PluginError, VideoRoom, code};
use crate::media::PublisherLeave;

type EventReply = (Value, Option<Value>);

/// Why a handle leaves its room, which decides what is announced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Departure {
    /// The `leave` request: the dispatcher sends `hangup` after the `left` event.
    Request,
    /// Detach, session end, a failed joinandconfigure: `hangup` at once.
    Gone,
    /// A `kick`: `hangup` at once; the room hears `kicked`, not `leaving`.
    Kicked,
}

impl VideoRoom {
    /// Whether the handle's last offer came from us (a subscriber): only then is an answer
    /// expected (else the core's 469).
    pub fn awaits_answer(&self, handle: u64) -> bool {
        matches!(self.membership(handle), Some(Membership::Subscriber { .. }))
    }

    /// The core's `hangup` request: the handle's PeerConnection closes, and it stays attached.
    /// A publisher stays in its room, unpublished; a subscriber stops subscribing. Whether
    /// there was a PeerConnection (and so a `hangup` event to send).
    pub async fn hang_up(&self, handle: u64) -> bool {
        match self.membership(handle) {
            Some(Membership::Publisher { room, id }) => {
                let janus_session = self.with_room(room, |r| {
                    Ok(r.participants.get(&id).map(|p| p.janus_session))
                });
                if let Ok(Some(janus_session)) = janus_session {
                    self.pc_gone(janus_session, handle);
                }
                self.unpublish(room, id).await.is_ok()
            }
            Some(Membership::Subscriber {
                room,
                session,
                janus_session,
                ..
            }) => {
                self.set_membership(handle, None);
                self.pc_gone(janus_session, handle);
                let _ = self
                    .gate
                    .end_session(&room.to_string(), &session, PublisherLeave::IdleSubscribers)
                    .await;
                true
            }
            None => false,
        }
    }

    pub(super) async fn unpublish(&self, room: u64, id: u64) -> Result<(), PluginError> {
        let publishing = self.with_room(room, |r| {
            let p = r
                .participants
                .get_mut(&id)
                .ok_or_else(|| PluginError::new(code::JOIN_FIRST, "Join the room first"))?;
            p.publishing.take().ok_or_else(|| {
                PluginError::new(code::NOT_PUBLISHED, "Can't unpublish, not published")
            })
        })?;
        let _ = self
            .gate
            .end_session(
                &room.to_string(),
                &publishing.session,
                PublisherLeave::IdleSubscribers,
            )
            .await;
        self.notify_room(
            room,
            Some(id),
            &json!({"videoroom": "event", "room": room, "unpublished": id}),
        );
        self.autoupdate_subscribers(room, &[id]);
        Ok(())
    }

    /// A handle leaves its room; its media session ends (see [`Departure`] for what is said).
    pub(super) async fn leave(
        &self,
        session: &Session,
        handle: u64,
        departure: Departure,
    ) -> Result<EventReply, PluginError> {
        let Some(membership) = self.membership(handle) else {
            return Err(PluginError::new(code::JOIN_FIRST, "Join the room first"));
        };
        self.set_membership(handle, None);
        self.pc_gone(session.id, handle);
        let mut stopped_feed = None;
        let (room, media_session, data) = match membership {
            Membership::Publisher { room, id } => {
                let removed = self
                    .rooms
                    .lock()
                    .ok()
                    .and_then(|mut r| r.get_mut(&room)?.participants.remove(&id));
                if departure != Departure::Kicked {
                    self.notify_room(
                        room,
                        Some(id),
                        &json!({"videoroom": "event", "room": room, "leaving": id}),
                    );
                }
                let media = removed.and_then(|p| p.publishing).map(|p| p.session);
                stopped_feed = media.as_ref().map(|_| id);
                (
                    room,
                    media,
                    json!({"videoroom": "event", "room": room, "leaving": "ok"}),
                )
            }
            Membership::Subscriber { room, session, .. } => (
                room,
                Some(session),
                json!({"videoroom": "event", "room": room, "left": "ok"}),
            ),
        };
        if let Some(media_session) = media_session {
            let _ = self
                .gate
                .end_session(
                    &room.to_string(),
                    &media_session,
                    PublisherLeave::IdleSubscribers,
                )
                .await;
            if departure != Departure::Request {
                session.push(close_pc_hangup(session.id, handle));
            }
        }
        if let Some(feed) = stopped_feed {
            self.autoupdate_subscribers(room, &[feed]);
        }
        Ok((data, None))
    }
}

/// The core's `hangup` for a PeerConnection the plugin closed.
pub(super) fn close_pc_hangup(session: u64, handle: u64) -> Value {
    json!({"janus": "hangup", "session_id": session, "sender": handle, "reason": "Close PC"})
}
