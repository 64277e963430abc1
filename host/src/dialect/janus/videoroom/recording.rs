//! A room's own recording (VideoRoom `record`, `rec_dir`, and the `enable_recording` request)
//! and a publisher's (`record`, `filename` on `publish`/`configure`): tracks are written by the
//! media core's recorder (VP8/VP9/AV1 → IVF, Opus → Ogg). `rec_dir` is a sub-directory of the
//! gateway's `[record] dir`, since anyone who may create rooms must not choose where the
//! gateway writes; a `filename` is reduced to a plain file name in it.

use serde_json::{Value, json};

use crate::media::OwnRecording;

use super::{PluginError, VideoRoom, bool_field, code, required_id, string_field};

/// What a publisher's request says about its own recording: nothing (`None`), stop
/// (`Some(None)`) or record (`Some(Some(..))`).
pub(super) type RecordingChange = Option<Option<OwnRecording>>;

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

    /// A publisher's `record` and `filename`. With the room's `lock_record`, only a request
    /// carrying the room's secret changes recording; Janus ignores the others' `record`, and
    /// so do we.
    pub(super) fn publisher_recording(
        &self,
        room: u64,
        body: &Value,
    ) -> Result<RecordingChange, PluginError> {
        let Some(record) = bool_field(body, "record")? else {
            return Ok(None);
        };
        let filename = string_field(body, "filename")?;
        let subdir = self.with_room(room, |r| {
            let unlocked = !r.config.lock_record || r.config.check_secret(body).is_ok();
            Ok(unlocked.then(|| r.config.rec_dir.clone()))
        })?;
        let Some(subdir) = subdir else {
            return Ok(None);
        };
        Ok(Some(record.then(|| OwnRecording {
            subdir: subdir.map(std::path::PathBuf::from),
            filename,
        })))
    }

    /// The recording a new media session of participant `id` starts with: its request's own
    /// `record`, else what it asked before (`configure {record}` before publishing, or during an
    /// earlier publication).
    pub(super) fn recording_at_publish(
        &self,
        room: u64,
        id: u64,
        body: &Value,
    ) -> Result<RecordingChange, PluginError> {
        if let Some(change) = self.publisher_recording(room, body)? {
            return Ok(Some(change));
        }
        let kept = self.with_room(room, |r| {
            Ok(r.participants.get(&id).and_then(|p| p.recording.clone()))
        })?;
        Ok(kept.map(Some))
    }

    /// Applies a publisher's recording change to its media session.
    pub(super) async fn apply_publisher_recording(
        &self,
        room: u64,
        session: &str,
        change: RecordingChange,
    ) -> Result<(), PluginError> {
        let Some(recording) = change else {
            return Ok(());
        };
        self.gate
            .record_publisher(&room.to_string(), session, recording)
            .await
            .map_err(PluginError::from_gate)
    }
}
