//! A room's own recording (VideoRoom `record`, `rec_dir`, and the `enable_recording` request):
//! its publishers' tracks are written by the media core's recorder (VP8/VP9/AV1 → IVF, Opus →
//! Ogg). `rec_dir` is a sub-directory of the gateway's `[record] dir`, since anyone who may
//! create rooms must not choose where the gateway writes.

use serde_json::{Value, json};

use super::{PluginError, VideoRoom, code, required_id};

/// `rec_dir` as a room may name it: relative, plain names only.
pub(super) fn check_rec_dir(dir: Option<&str>) -> Result<(), PluginError> {
    let Some(dir) = dir else {
        return Ok(());
    };
    let plain = std::path::Path::new(dir)
        .components()
        .all(|c| matches!(c, std::path::Component::Normal(_)));
    if plain && !dir.is_empty() {
        Ok(())
    } else {
        Err(PluginError::new(
            code::INVALID_ELEMENT,
            format!(
                "Invalid rec_dir '{dir}': a relative directory under the gateway's [record] dir"
            ),
        ))
    }
}

impl VideoRoom {
    /// Tells the media core whether (and where) `room` records, from its settings.
    pub(super) fn apply_recording(&self, room: u64) {
        let setting = self.rooms.lock().ok().and_then(|rooms| {
            let r = rooms.get(&room)?;
            r.config.record.then(|| r.config.rec_dir.clone())
        });
        self.gate.record_room(
            &room.to_string(),
            setting.map(|dir| dir.map(std::path::PathBuf::from)),
        );
    }

    /// `enable_recording`: `{room, secret?, record: bool}` turns the room's recording on or
    /// off for the tracks that open from now on.
    pub(super) fn enable_recording(&self, body: &Value) -> Result<Value, PluginError> {
        let room = required_id(body, "room")?;
        let record = body
            .get("record")
            .and_then(Value::as_bool)
            .ok_or_else(|| PluginError::new(code::MISSING_ELEMENT, "Missing element (record)"))?;
        self.with_room(room, |r| {
            r.config.check_secret(body)?;
            r.config.record = record;
            Ok(())
        })?;
        self.apply_recording(room);
        Ok(json!({"videoroom": "success", "record": record}))
    }
}
