//! Leaving a room: `unpublish`, and `leave` (the request, a detach, a kick or the session's
//! end), which ends the handle's media session.

use serde_json::{Value, json};

use super::super::sessions::Session;
use super::{Membership, PluginError, VideoRoom, code};
use crate::media::PublisherLeave;

type EventReply = (Value, Option<Value>);

impl VideoRoom {
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
        Ok(())
    }

    /// A handle leaves its room (request, detach or session end); its media session ends,
    /// announced by `hangup` here when `announce_hangup`.
    pub(super) async fn leave(
        &self,
        session: &Session,
        handle: u64,
        announce_hangup: bool,
    ) -> Result<EventReply, PluginError> {
        let Some(membership) = self.membership(handle) else {
            return Err(PluginError::new(code::JOIN_FIRST, "Join the room first"));
        };
        self.set_membership(handle, None);
        let (room, media_session, data) = match membership {
            Membership::Publisher { room, id } => {
                let removed = self
                    .rooms
                    .lock()
                    .ok()
                    .and_then(|mut r| r.get_mut(&room)?.participants.remove(&id));
                self.notify_room(
                    room,
                    Some(id),
                    &json!({"videoroom": "event", "room": room, "leaving": id}),
                );
                let media = removed.and_then(|p| p.publishing).map(|p| p.session);
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
            if announce_hangup {
                session.push(close_pc_hangup(session.id, handle));
            }
        }
        Ok((data, None))
    }
}

/// The core's `hangup` for a PeerConnection the plugin closed.
pub(super) fn close_pc_hangup(session: u64, handle: u64) -> Value {
    json!({"janus": "hangup", "session_id": session, "sender": handle, "reason": "Close PC"})
}
