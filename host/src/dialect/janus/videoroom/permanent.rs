//! `permanent` rooms: Janus writes them back to its `janus.plugin.videoroom.jcfg`; the gateway
//! keeps them in a TOML file of its own (`[janus] rooms_file`, `[[rooms]]` tables with the keys
//! of `[[janus.rooms]]`), rewritten whole on every permanent create, edit and destroy and
//! loaded at start. The operator's config file is never rewritten.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{PluginError, RoomConfig, code};

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RoomsFile {
    #[serde(default)]
    rooms: Vec<RoomConfig>,
}

/// The rooms file, when one is configured.
#[derive(Debug, Clone)]
pub struct PermanentRooms {
    path: PathBuf,
}

impl PermanentRooms {
    pub fn new(path: PathBuf) -> Self {
        Self { path }
    }

    /// The rooms saved so far (none when the file does not exist yet).
    pub fn load(&self) -> Result<Vec<RoomConfig>, String> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(format!("{}: {e}", self.path.display())),
        };
        toml::from_str::<RoomsFile>(&text)
            .map(|file| file.rooms)
            .map_err(|e| format!("{}: {e}", self.path.display()))
    }

    /// Replaces the file's rooms with `rooms` (written aside, then renamed: never half a file).
    pub fn save(&self, rooms: Vec<RoomConfig>) -> Result<(), PluginError> {
        let fail = |what: &str, e: &dyn std::fmt::Display| {
            PluginError::new(
                code::UNKNOWN_ERROR,
                format!(
                    "Error saving the rooms file {} ({what}: {e})",
                    self.path.display()
                ),
            )
        };
        let text = toml::to_string(&RoomsFile { rooms }).map_err(|e| fail("encode", &e))?;
        let temporary = temporary_path(&self.path);
        std::fs::write(&temporary, text).map_err(|e| fail("write", &e))?;
        std::fs::rename(&temporary, &self.path).map_err(|e| fail("rename", &e))
    }
}

fn temporary_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".tmp");
    path.with_file_name(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saved_rooms_load_back_and_a_missing_file_is_no_rooms() {
        let dir = std::env::temp_dir().join(format!("gh-rooms-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = PermanentRooms::new(dir.join("rooms.toml"));
        assert!(file.load().unwrap().is_empty());
        let room = RoomConfig {
            room: 42,
            description: "kept".into(),
            pin: Some("9".into()),
            ..RoomConfig::default()
        };
        file.save(vec![room]).unwrap();
        let loaded = file.load().unwrap();
        assert_eq!((loaded[0].room, loaded[0].pin.as_deref()), (42, Some("9")));
        file.save(Vec::new()).unwrap();
        assert!(file.load().unwrap().is_empty());
        std::fs::remove_dir_all(dir).unwrap();
    }
}
