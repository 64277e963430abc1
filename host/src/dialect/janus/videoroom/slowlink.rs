//! `slowlink` events (`[janus] slowlink_threshold`): once a second, each handle whose
//! PeerConnection lost at least that many packets of a kind in the last second is told, with
//! `uplink: true` for what it sends us and `false` for what it receives.

use serde_json::json;

use super::{Membership, VideoRoom};

impl VideoRoom {
    /// Sends the `slowlink` events of the last second; nothing when `threshold` is 0.
    pub async fn report_slowlinks(&self, threshold: u32) {
        if threshold == 0 {
            return;
        }
        let Ok(reports) = self.gate.take_loss_reports().await else {
            return;
        };
        for report in reports.iter().filter(|r| r.lost >= threshold) {
            let Ok(room) = report.room.parse::<u64>() else {
                continue;
            };
            let Some((janus_session, handle)) = self.handle_of(room, &report.session) else {
                continue;
            };
            if let Some(session) = self.sessions.get(janus_session) {
                session.push(json!({"janus": "slowlink", "session_id": janus_session,
                    "sender": handle, "mid": report.mid, "media": report.media,
                    "uplink": report.uplink, "lost": report.lost}));
            }
        }
    }

    /// The Janus session and handle whose PeerConnection is the gateway session `media`.
    fn handle_of(&self, room: u64, media: &str) -> Option<(u64, u64)> {
        let subscriber = self
            .members
            .lock()
            .ok()?
            .iter()
            .find_map(|(handle, m)| match m {
                Membership::Subscriber {
                    session,
                    janus_session,
                    ..
                } if session == media => Some((*janus_session, *handle)),
                _ => None,
            });
        if subscriber.is_some() {
            return subscriber;
        }
        let rooms = self.rooms.lock().ok()?;
        rooms.get(&room)?.participants.values().find_map(|p| {
            let publishing = p.publishing.as_ref()?;
            (publishing.session == media).then_some((p.janus_session, p.handle))
        })
    }
}
