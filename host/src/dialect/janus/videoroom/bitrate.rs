//! What publishers' encoders are told: the codec they may pick (`audiocodec`/`videocodec`),
//! bitrate caps (the room's `bitrate` and a publisher's own `configure {bitrate}`, which
//! replaces the room's for that publisher, 0 lifting it, both bounded by the room's cap when
//! it has `bitrate_cap`), sent by REMB, and keyframe requests (`configure {keyframe}`).

use serde_json::Value;

use crate::media::BitrateCaps;

use super::{PluginError, Room, VideoRoom, bool_field, code, string_field};

impl Room {
    /// Its publishers' caps, unless none has any.
    pub(super) fn bitrate_caps(&self) -> Option<(u64, BitrateCaps)> {
        let sessions: Vec<(String, u64)> = self
            .participants
            .values()
            .filter_map(|p| Some((p.publishing.as_ref()?.session.clone(), p.bitrate?)))
            .collect();
        let capped = self.config.bitrate > 0 || sessions.iter().any(|(_, bits)| *bits > 0);
        capped.then(|| {
            let caps = BitrateCaps {
                room: self.config.bitrate,
                sessions,
            };
            (self.config.room, caps)
        })
    }
}

impl VideoRoom {
    /// Reminds the publishers of every room of their cap (REMB), every other second as Janus
    /// does, so an estimate grown meanwhile is capped again.
    pub async fn cap_bitrates(&self, elapsed_secs: u64) {
        if !elapsed_secs.is_multiple_of(2) {
            return;
        }
        let capped: Vec<(u64, BitrateCaps)> = self
            .rooms
            .lock()
            .map(|rooms| rooms.values().filter_map(Room::bitrate_caps).collect())
            .unwrap_or_default();
        for (room, caps) in capped {
            let _ = self.gate.cap_bitrate(&room.to_string(), caps).await;
        }
    }

    /// A publisher's own cap: kept for the reminders, and told at once if it publishes.
    pub(super) async fn set_publisher_bitrate(
        &self,
        room: u64,
        id: u64,
        bits_per_sec: u64,
    ) -> Result<(), PluginError> {
        let (session, bits_per_sec) = self.with_room(room, |r| {
            let bits = own_bitrate(bits_per_sec, r.config.bitrate, r.config.bitrate_cap);
            let p = r
                .participants
                .get_mut(&id)
                .ok_or_else(|| PluginError::new(code::JOIN_FIRST, "Join the room first"))?;
            p.bitrate = Some(bits);
            Ok((p.publishing.as_ref().map(|p| p.session.clone()), bits))
        })?;
        if let Some(session) = session
            && bits_per_sec > 0
        {
            let caps = BitrateCaps {
                room: 0,
                sessions: vec![(session, bits_per_sec)],
            };
            let _ = self.gate.cap_bitrate(&room.to_string(), caps).await;
        }
        Ok(())
    }
}

/// The cap a publisher's `configure {bitrate}` gets: what it asks (0: none), unless the room
/// has `bitrate_cap` and a `bitrate`, which then bounds it.
fn own_bitrate(asked: u64, room_bitrate: u64, bitrate_cap: bool) -> u64 {
    match (bitrate_cap && room_bitrate > 0, asked) {
        (true, 0) => room_bitrate,
        (true, asked) => asked.min(room_bitrate),
        (false, asked) => asked,
    }
}

/// Whether a publisher's `configure` asks for a keyframe (`keyframe: true`, for the whole
/// publisher or in one of its `streams` entries).
pub(super) fn keyframe_asked(body: &Value) -> Result<bool, PluginError> {
    let mut asked = bool_field(body, "keyframe")?.unwrap_or(false);
    if let Some(Value::Array(streams)) = body.get("streams") {
        for entry in streams {
            asked |= bool_field(entry, "keyframe")?.unwrap_or(false);
        }
    }
    Ok(asked)
}

/// The codec a publisher asks for in `field` (one of the room's `allowed` list), or the list.
pub(super) fn chosen_codec(
    body: &Value,
    field: &str,
    allowed: &str,
) -> Result<String, PluginError> {
    let Some(wanted) = string_field(body, field)? else {
        return Ok(allowed.to_owned());
    };
    let wanted = wanted.trim().to_ascii_lowercase();
    if allowed
        .split(',')
        .any(|c| c.trim().eq_ignore_ascii_case(&wanted))
    {
        Ok(wanted)
    } else {
        Err(PluginError::new(
            code::INVALID_ELEMENT,
            format!("Participant asked for {field} {wanted}, but the room allows {allowed}"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_publisher_may_pick_only_one_of_the_rooms_codecs() {
        let body = json!({"videocodec": "H264"});
        assert_eq!(
            chosen_codec(&body, "videocodec", "vp8,h264").unwrap(),
            "h264"
        );
        assert_eq!(
            chosen_codec(&json!({}), "videocodec", "vp8,h264").unwrap(),
            "vp8,h264"
        );
        let refused = chosen_codec(&json!({"videocodec": "vp9"}), "videocodec", "vp8,h264");
        assert_eq!(refused.map_err(|e| e.code), Err(code::INVALID_ELEMENT));
    }
}
