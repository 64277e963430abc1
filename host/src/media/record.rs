//! Recording publishers' tracks to files (`[record]`, go-live's `RECORD_ENABLED`): VP8, VP9 and
//! AV1 to IVF, Opus to Ogg, named `{room}_{trackId}_{unixSeconds}.{ivf|ogg}`.
//!
//! File I/O stays off the media thread: it sends packets to one recorder thread, which owns the
//! writers and finalizes a file (IVF frame count, last Ogg page) when its track ends or the
//! gateway shuts down.

use std::collections::HashMap;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{SystemTime, UNIX_EPOCH};

use rtc::media::io::Writer;
use rtc::media::io::ivf_writer::IvfCodec;
use rtc::media::io::ogg_writer::OggWriter;
use rtc::rtp;

use super::ivf::TimedIvfWriter;

/// What the media thread tells the recorder.
enum RecordCommand {
    Start {
        track: u64,
        path: PathBuf,
        format: Format,
    },
    Packet {
        track: u64,
        packet: rtp::Packet,
    },
    Stop {
        track: u64,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Ivf(IvfCodec),
    Ogg,
}

impl Format {
    /// The container for a codec, if it is recorded (H.264 is not, as in go-live).
    fn for_mime(mime_lower: &str) -> Option<Self> {
        match mime_lower {
            "video/vp8" => Some(Format::Ivf(IvfCodec::Vp8)),
            "video/vp9" => Some(Format::Ivf(IvfCodec::Vp9)),
            "video/av1" => Some(Format::Ivf(IvfCodec::Av1)),
            "audio/opus" => Some(Format::Ogg),
            _ => None,
        }
    }

    fn extension(self) -> &'static str {
        match self {
            Format::Ivf(_) => "ivf",
            Format::Ogg => "ogg",
        }
    }
}

/// The media thread's handle on the recorder thread.
pub(crate) struct Recorder {
    commands: mpsc::Sender<RecordCommand>,
    thread: Option<std::thread::JoinHandle<()>>,
    next_track: u64,
}

/// A recorded track, as the media thread refers to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RecordedTrack(u64);

fn unix_seconds() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Characters kept in a file name part; anything else becomes `_`.
fn file_part(text: &str) -> String {
    let part: String = text
        .chars()
        .take(64)
        .map(|c| match c {
            'a'..='z' | 'A'..='Z' | '0'..='9' | '-' | '_' => c,
            _ => '_',
        })
        .collect();
    if part.is_empty() { "_".into() } else { part }
}

impl Recorder {
    /// Starts the recorder thread.
    pub fn start() -> std::io::Result<Self> {
        let (commands, rx) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("gatehouse-record".into())
            .spawn(move || run(rx))?;
        Ok(Self {
            commands,
            thread: Some(thread),
            next_track: 1,
        })
    }

    /// Starts a file in `dir` (created if missing) for a publisher track, if its codec is
    /// recorded.
    pub fn start_track(
        &mut self,
        dir: &Path,
        room: &str,
        track_id: &str,
        mime_lower: &str,
    ) -> Option<RecordedTrack> {
        let format = Format::for_mime(mime_lower)?;
        let name = format!(
            "{}_{}_{}.{}",
            file_part(room),
            file_part(track_id),
            unix_seconds(),
            format.extension()
        );
        self.start_file(dir.join(name), format)
    }

    /// Starts `{name}-{kind}.{ext}` in `dir` for a publisher track (Janus's `filename`,
    /// reduced to a plain file name); an existing file is never overwritten (see `open`).
    pub fn start_named_track(
        &mut self,
        dir: &Path,
        name: &str,
        kind: &str,
        mime_lower: &str,
    ) -> Option<RecordedTrack> {
        let format = Format::for_mime(mime_lower)?;
        let path = dir.join(format!("{}-{kind}.{}", file_part(name), format.extension()));
        self.start_file(path, format)
    }

    fn start_file(&mut self, path: PathBuf, format: Format) -> Option<RecordedTrack> {
        let track = self.next_track;
        self.next_track += 1;
        self.commands
            .send(RecordCommand::Start {
                track,
                path,
                format,
            })
            .ok()?;
        Some(RecordedTrack(track))
    }

    pub fn packet(&self, track: RecordedTrack, packet: &rtp::Packet) {
        let _ = self.commands.send(RecordCommand::Packet {
            track: track.0,
            packet: packet.clone(),
        });
    }

    pub fn stop_track(&self, track: RecordedTrack) {
        let _ = self.commands.send(RecordCommand::Stop { track: track.0 });
    }
}

impl Drop for Recorder {
    /// Finalizes every open file before the process goes on (shutdown, SIGTERM).
    fn drop(&mut self) {
        let (closed, _) = mpsc::channel();
        drop(std::mem::replace(&mut self.commands, closed));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Opens a new file at `path`, or at `{stem}_1.{ext}`, `{stem}_2.{ext}`, … when that name is
/// taken: a recording never overwrites another (same `filename` twice, two tracks of a kind).
fn open(
    path: &Path,
    format: Format,
) -> rtc::shared::error::Result<(PathBuf, Box<dyn Writer + Send>)> {
    let io = |e: std::io::Error| rtc::shared::error::Error::Other(e.to_string());
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned());
    let mut created = None;
    for n in 0..1000 {
        let candidate = match (n, &stem) {
            (0, _) | (_, None) => path.to_path_buf(),
            (n, Some(stem)) => path.with_file_name(format!("{stem}_{n}.{}", format.extension())),
        };
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&candidate)
        {
            Ok(file) => {
                created = Some((candidate, file));
                break;
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(io(e)),
        }
    }
    let (path, file) = created.ok_or_else(|| {
        io(std::io::Error::new(
            std::io::ErrorKind::AlreadyExists,
            "no free file name",
        ))
    })?;
    let file = BufWriter::new(file);
    let writer: Box<dyn Writer + Send> = match format {
        Format::Ivf(codec) => Box::new(TimedIvfWriter::new(file, codec)?),
        Format::Ogg => Box::new(OggWriter::new(file, 48_000, 2)?),
    };
    Ok((path, writer))
}

fn run(commands: mpsc::Receiver<RecordCommand>) {
    let mut writers: HashMap<u64, (PathBuf, Box<dyn Writer + Send>)> = HashMap::new();
    let close = |path: &Path, mut writer: Box<dyn Writer + Send>| match writer.close() {
        Ok(()) => tracing::info!(path = %path.display(), "recording finished"),
        Err(e) => tracing::warn!(path = %path.display(), error = %e, "recording not finalized"),
    };
    while let Ok(command) = commands.recv() {
        match command {
            RecordCommand::Start {
                track,
                path,
                format,
            } => match open(&path, format) {
                Ok((path, writer)) => {
                    tracing::info!(path = %path.display(), "recording started");
                    writers.insert(track, (path, writer));
                }
                Err(e) => tracing::warn!(path = %path.display(), error = %e, "cannot record"),
            },
            RecordCommand::Packet { track, packet } => {
                if let Some((path, writer)) = writers.get_mut(&track)
                    && let Err(e) = writer.write_rtp(&packet)
                {
                    tracing::debug!(path = %path.display(), error = %e, "packet not recorded");
                }
            }
            RecordCommand::Stop { track } => {
                if let Some((path, writer)) = writers.remove(&track) {
                    close(&path, writer);
                }
            }
        }
    }
    for (_, (path, writer)) in writers.drain() {
        close(&path, writer);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_keep_only_safe_characters() {
        assert_eq!(file_part("demo"), "demo");
        assert_eq!(file_part("../etc/x y"), "___etc_x_y");
        assert_eq!(file_part(""), "_");
    }

    #[test]
    fn only_vp8_vp9_av1_and_opus_are_recorded() {
        assert_eq!(
            Format::for_mime("video/vp8"),
            Some(Format::Ivf(IvfCodec::Vp8))
        );
        assert_eq!(Format::for_mime("audio/opus"), Some(Format::Ogg));
        assert_eq!(Format::for_mime("video/h264"), None);
    }

    #[test]
    fn a_recording_never_overwrites_a_file_of_the_same_name() {
        let dir =
            std::env::temp_dir().join(format!("gatehouse-record-open-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let path = dir.join("alice-audio.ogg");
        let names: Vec<PathBuf> = (0..3)
            .map(|_| open(&path, Format::Ogg).unwrap().0)
            .collect();
        assert_eq!(
            names,
            [
                dir.join("alice-audio.ogg"),
                dir.join("alice-audio_1.ogg"),
                dir.join("alice-audio_2.ogg")
            ]
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
