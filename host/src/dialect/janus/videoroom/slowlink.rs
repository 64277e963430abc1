//! The media core's link reports, taken once a second: `slowlink` events
//! (`[janus] slowlink_threshold`: each handle whose PeerConnection lost at least that many
//! packets of a kind in the last second is told, with `uplink: true` for what it sends us and
//! `false` for what it receives) and publishers' `media` events (see `media_state`).

use serde_json::json;

use crate::media::LinkReport;

use super::{Membership, VideoRoom};

impl VideoRoom {
    /// Takes the last second's link reports and sends what they call for.
    pub async fn report_links(&self, slowlink_threshold: u32) {
        let Ok(reports) = self.gate.take_link_reports().await else {
            return;
        };
        self.report_slowlinks(&reports, slowlink_threshold);
        self.report_media_states(&reports);
    }

    /// Sends the `slowlink` events of the last second; nothing when `threshold` is 0.
    fn report_slowlinks(&self, reports: &[LinkReport], threshold: u32) {
        if threshold == 0 {
            return;
        }
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
    pub(super) fn handle_of(&self, room: u64, media: &str) -> Option<(u64, u64)> {
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
