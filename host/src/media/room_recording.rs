//! Which rooms are recorded, and where: every room with `[record] enabled`, and rooms that
//! record on their own account (Janus VideoRoom `record`, optionally in their own `rec_dir`).
//! A setting applies to tracks that open afterwards, as in Janus.

use std::path::PathBuf;

use super::engine::Engine;
use super::record::Recorder;

impl Engine {
    /// Records the tracks `room`'s publishers open from now on into `[record] dir`, or its
    /// sub-directory `subdir`; `None` stops that (the room is still recorded when `[record]
    /// enabled`). Only plain names of `subdir` count: nothing is written outside `dir`.
    pub(super) fn record_room(&mut self, room: String, recording: Option<Option<PathBuf>>) {
        let dir = recording.map(|subdir| {
            let mut dir = self.record_dir.clone();
            for part in subdir.iter().flat_map(|s| s.components()) {
                if let std::path::Component::Normal(name) = part {
                    dir.push(name);
                }
            }
            dir
        });
        match dir {
            Some(dir) => {
                tracing::info!(room, dir = %dir.display(), "room recording on");
                self.room_recordings.insert(room, dir);
            }
            None => {
                self.room_recordings.remove(&room);
            }
        }
    }

    /// Where a track of `room` opening now is recorded, if it is; starts the recorder thread
    /// the first time a room needs it.
    pub(super) fn recording_dir(&mut self, room: &str) -> Option<PathBuf> {
        let dir = self
            .room_recordings
            .get(room)
            .cloned()
            .or_else(|| self.record_all.then(|| self.record_dir.clone()))?;
        if self.recorder.is_none() {
            match Recorder::start() {
                Ok(recorder) => self.recorder = Some(recorder),
                Err(e) => {
                    tracing::warn!(room, error = %e, "cannot start the recorder");
                    return None;
                }
            }
        }
        Some(dir)
    }
}
