//! Janus's `media` events for publishers: a kind that brought no packet for a second is
//! announced with `receiving: false` (and `seconds`, Janus's `no_media_timer`), and again with
//! `receiving: true` when its packets come back. (`webrtcup` announces every stream received.)

use serde_json::json;

use crate::media::LinkReport;

use super::VideoRoom;

/// Janus's `no_media_timer`: reports cover one second.
const NO_MEDIA_SECONDS: u64 = 1;

impl VideoRoom {
    /// Announces the publishers' kinds that stopped or resumed in the last second.
    pub(super) fn report_media_states(&self, reports: &[LinkReport]) {
        for report in reports.iter().filter(|r| r.uplink) {
            let Ok(room) = report.room.parse::<u64>() else {
                continue;
            };
            let receiving = report.received > 0;
            let changed = self.with_room(room, |r| {
                let Some(p) = r.participants.values_mut().find(|p| {
                    p.publishing
                        .as_ref()
                        .is_some_and(|pub_| pub_.session == report.session)
                }) else {
                    return Ok(false);
                };
                let Some(publishing) = p.publishing.as_mut().filter(|p| p.live) else {
                    return Ok(false);
                };
                let silent = publishing.silent.contains(&report.media);
                match (receiving, silent) {
                    (false, false) => publishing.silent.push(report.media),
                    (true, true) => publishing.silent.retain(|k| *k != report.media),
                    _ => return Ok(false),
                }
                Ok(true)
            });
            if !matches!(changed, Ok(true)) {
                continue;
            }
            let Some((janus_session, handle)) = self.handle_of(room, &report.session) else {
                continue;
            };
            let Some(session) = self.sessions.get(janus_session) else {
                continue;
            };
            let mut event = json!({"janus": "media", "session_id": janus_session,
                "sender": handle, "mid": report.mid, "type": report.media,
                "receiving": receiving});
            if !receiving {
                event["seconds"] = json!(NO_MEDIA_SECONDS);
            }
            tracing::debug!(room, session = %report.session, media = report.media, receiving,
                "janus publisher media state");
            session.push(event);
        }
    }
}
