//! Which rooms and publishers are recorded, and where: every room with `[record] enabled`,
//! rooms that record on their own account (Janus VideoRoom `record`, optionally in their own
//! `rec_dir`), and single publishers that asked (Janus `record` and `filename` on `publish` or
//! `configure`). A room's setting applies to tracks that open afterwards, as in Janus; a
//! publisher's applies to its tracks at once.

use std::path::{Path, PathBuf};

use super::MediaError;
use super::engine::Engine;
use super::offer::MediaKind;
use super::peer::PeerMedia;
use super::record::{RecordedTrack, Recorder};

/// A publisher's own recording: where (a sub-directory of `[record] dir`, plain names only)
/// and under which name (`{filename}-audio.ogg`, `{filename}-video.ivf`; the room's naming
/// without one).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OwnRecording {
    pub subdir: Option<PathBuf>,
    pub filename: Option<String>,
}

impl Engine {
    /// Records the tracks `room`'s publishers open from now on into `[record] dir`, or its
    /// sub-directory `subdir`; `None` stops that (the room is still recorded when `[record]
    /// enabled`). Only plain names of `subdir` count: nothing is written outside `dir`.
    pub(super) fn record_room(&mut self, room: String, recording: Option<Option<PathBuf>>) {
        let dir = recording.map(|subdir| dir_under(&self.record_dir, subdir.as_deref()));
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
        recorder_started(&mut self.recorder).then_some(dir)
    }

    /// Starts (or, with `None`, stops) recording publisher session `id`'s tracks: those open
    /// now, and those that open later.
    pub(super) fn record_publisher(
        &mut self,
        room: &str,
        id: &str,
        recording: Option<OwnRecording>,
    ) -> Result<(), MediaError> {
        let key = self.find(room, id)?;
        let Some(peer) = self.peers.get_mut(&key) else {
            return Err(MediaError::SessionNotFound(id.to_owned()));
        };
        peer.own_recording = recording.clone();
        let Some(recording) = recording else {
            let PeerMedia::Publisher { tracks } = &mut peer.media else {
                return Ok(());
            };
            for track in tracks {
                if let (Some(file), Some(recorder)) = (track.recording.take(), &self.recorder) {
                    recorder.stop_track(file);
                }
            }
            return Ok(());
        };
        let unrecorded: Vec<(String, MediaKind, String)> = match &peer.media {
            PeerMedia::Publisher { tracks } => tracks
                .iter()
                .filter(|t| t.recording.is_none())
                .map(|t| (t.track_id.clone(), t.kind, t.mime_lower.to_string()))
                .collect(),
            PeerMedia::Subscriber { .. } => return Ok(()),
        };
        for (track_id, kind, mime_lower) in unrecorded {
            let file = start_own_track(
                &mut self.recorder,
                &self.record_dir,
                &recording,
                (room, &track_id),
                kind,
                &mime_lower,
            );
            if let Some(PeerMedia::Publisher { tracks }) =
                self.peers.get_mut(&key).map(|p| &mut p.media)
                && let Some(track) = tracks.iter_mut().find(|t| t.track_id == track_id)
            {
                track.recording = file;
            }
        }
        Ok(())
    }
}

/// `[record] dir`, or its sub-directory `subdir` (only its plain names count: nothing is
/// written outside `dir`).
fn dir_under(base: &Path, subdir: Option<&Path>) -> PathBuf {
    let mut dir = base.to_path_buf();
    for part in subdir.iter().flat_map(|s| s.components()) {
        if let std::path::Component::Normal(name) = part {
            dir.push(name);
        }
    }
    dir
}

/// Whether the recorder thread runs (started the first time it is needed).
fn recorder_started(recorder: &mut Option<Recorder>) -> bool {
    if recorder.is_none() {
        match Recorder::start() {
            Ok(started) => *recorder = Some(started),
            Err(e) => {
                tracing::warn!(error = %e, "cannot start the recorder");
                return false;
            }
        }
    }
    true
}

/// A file for one track (`(room, track id)`) of a publisher that records on its own account.
pub(super) fn start_own_track(
    recorder: &mut Option<Recorder>,
    record_dir: &Path,
    recording: &OwnRecording,
    (room, track_id): (&str, &str),
    kind: MediaKind,
    mime_lower: &str,
) -> Option<RecordedTrack> {
    let dir = dir_under(record_dir, recording.subdir.as_deref());
    if !recorder_started(recorder) {
        return None;
    }
    let recorder = recorder.as_mut()?;
    match &recording.filename {
        Some(name) => recorder.start_named_track(&dir, name, kind.as_str(), mime_lower),
        None => recorder.start_track(&dir, room, track_id, mime_lower),
    }
}
