//! A publisher's PeerConnection coming up (`webrtcup`, `media`, then `publishers` to the
//! room, as Janus announces only live publishers) and the descriptions of its streams.

use std::time::Duration;

use serde_json::{Value, json};

use super::{Caller, PluginError, VideoRoom, string_field};

/// How long after an answer we watch for the session to connect (`webrtcup`).
const WEBRTCUP_WATCH: Duration = Duration::from_secs(30);

impl VideoRoom {
    /// Sends `webrtcup` once the session connects, then a `media` event per stream in
    /// `receiving` (a publisher's m-lines: we receive them); a `publisher` (room, id) is then
    /// live and announced to its room.
    pub(super) fn watch_webrtcup(
        &self,
        caller: &Caller,
        room: String,
        media_session: String,
        receiving: Vec<Value>,
        publisher: Option<(u64, u64)>,
    ) {
        let me = self.me.clone();
        let gate = self.gate.clone();
        let session = caller.session.clone();
        let handle = caller.handle.id;
        tokio::spawn(async move {
            let deadline = tokio::time::Instant::now() + WEBRTCUP_WATCH;
            while tokio::time::Instant::now() < deadline {
                let state = gate.room(&room).await.ok().flatten().and_then(|r| {
                    r.sessions
                        .into_iter()
                        .find(|s| s.id == media_session)
                        .map(|s| s.state)
                });
                match state.as_deref() {
                    Some("connected") => {
                        session.push(json!({"janus": "webrtcup", "session_id": session.id, "sender": handle}));
                        for stream in &receiving {
                            session.push(json!({"janus": "media", "session_id": session.id,
                                "sender": handle, "mid": stream["mid"], "type": stream["type"],
                                "receiving": true}));
                        }
                        if let (Some((room, id)), Some(videoroom)) = (publisher, me.upgrade()) {
                            videoroom.publisher_went_live(room, id, &media_session);
                        }
                        return;
                    }
                    None | Some("failed" | "closed") => return,
                    _ => tokio::time::sleep(Duration::from_millis(50)).await,
                }
            }
        });
    }

    /// A publisher's `descriptions: [{mid, description}]`: kept on its `streams` entries.
    pub(super) fn describe_streams(
        &self,
        room: u64,
        id: u64,
        body: &Value,
    ) -> Result<(), PluginError> {
        let Some(list) = body.get("descriptions") else {
            return Ok(());
        };
        let list = list
            .as_array()
            .ok_or_else(|| PluginError::invalid("descriptions", "an array"))?;
        let mut described = Vec::new();
        for entry in list {
            let mid = string_field(entry, "mid")?.ok_or_else(|| PluginError::missing("mid"))?;
            let text = string_field(entry, "description")?
                .ok_or_else(|| PluginError::missing("description"))?;
            described.push((mid, text));
        }
        self.with_room(room, |r| {
            let streams = r
                .participants
                .get_mut(&id)
                .and_then(|p| p.publishing.as_mut())
                .map(|p| &mut p.streams);
            for stream in streams.into_iter().flatten() {
                if let Some((_, text)) = described.iter().find(|(mid, _)| stream["mid"] == *mid) {
                    stream["description"] = json!(text);
                }
            }
            Ok(())
        })
    }

    /// A publisher's PeerConnection is up: it is listed from now on, and the room told.
    fn publisher_went_live(&self, room: u64, id: u64, media_session: &str) {
        let entry = self.with_room(room, |r| {
            let entry = r.participants.get_mut(&id).and_then(|p| {
                let publishing = p.publishing.as_mut()?;
                if publishing.session != media_session {
                    return None; // republished meanwhile
                }
                publishing.live = true;
                p.publisher_entry()
            });
            Ok(entry)
        });
        if let Ok(Some(entry)) = entry {
            let event = json!({"videoroom": "event", "room": room, "publishers": [entry]});
            self.notify_room(room, Some(id), &event);
        }
    }
}
