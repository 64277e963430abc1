//! `permanent` rooms: Janus writes them back to its `janus.plugin.videoroom.jcfg`; the gateway
//! writes them back to its own TOML, as the `[[janus.rooms]]` tables of the `--config` file
//! (edited in place: every other line, comment included, stays as it was), or, with
//! `[janus] rooms_file`, to a file of `[[rooms]]` tables of their own, loaded at start.
//! Either is rewritten on every permanent create, edit and destroy (aside, then renamed).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{PluginError, RoomConfig, code};

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RoomsFile {
    #[serde(default)]
    rooms: Vec<RoomConfig>,
}

/// Where permanent rooms are written.
#[derive(Debug, Clone)]
pub struct PermanentRooms {
    path: PathBuf,
    /// The gateway's own config file (its `[[janus.rooms]]`), not a rooms file.
    in_gateway_config: bool,
}

impl PermanentRooms {
    /// A rooms file of its own (`[janus] rooms_file`).
    pub fn new(path: PathBuf) -> Self {
        Self {
            path,
            in_gateway_config: false,
        }
    }

    /// The `[[janus.rooms]]` of the gateway's config file at `path`.
    pub fn in_gateway_config(path: PathBuf) -> Self {
        Self {
            path,
            in_gateway_config: true,
        }
    }

    /// The rooms saved so far (none when the file does not exist yet; a gateway config's
    /// rooms were read with it).
    pub fn load(&self) -> Result<Vec<RoomConfig>, String> {
        if self.in_gateway_config {
            return Ok(Vec::new());
        }
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
        let text = if self.in_gateway_config {
            let config = std::fs::read_to_string(&self.path).map_err(|e| fail("read", &e))?;
            with_janus_rooms(&config, &rooms).map_err(|e| fail("edit", &e))?
        } else {
            toml::to_string(&RoomsFile { rooms }).map_err(|e| fail("encode", &e))?
        };
        let temporary = temporary_path(&self.path);
        std::fs::write(&temporary, text).map_err(|e| fail("write", &e))?;
        std::fs::rename(&temporary, &self.path).map_err(|e| fail("rename", &e))
    }
}

/// `config` (a gateway TOML) with its `[[janus.rooms]]` replaced by `rooms`, everything else
/// kept as written.
fn with_janus_rooms(config: &str, rooms: &[RoomConfig]) -> Result<String, String> {
    let mut document: toml_edit::DocumentMut = config.parse().map_err(|e| format!("{e}"))?;
    let mut tables = toml_edit::ArrayOfTables::new();
    for room in rooms {
        let text = toml::to_string(room).map_err(|e| e.to_string())?;
        let parsed: toml_edit::DocumentMut = text.parse().map_err(|e| format!("{e}"))?;
        tables.push(parsed.as_table().clone());
    }
    let janus = document
        .entry("janus")
        .or_insert_with(|| toml_edit::Item::Table(toml_edit::Table::new()))
        .as_table_mut()
        .ok_or("`janus` is not a table")?;
    if rooms.is_empty() {
        janus.remove("rooms");
    } else {
        janus.insert("rooms", toml_edit::Item::ArrayOfTables(tables));
    }
    Ok(document.to_string())
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

    #[test]
    fn rooms_written_into_the_gateway_config_keep_its_other_lines_and_comments() {
        let config = "# my gateway\n[http]\nlisten = \"0.0.0.0:7777\" # port\n\n[janus]\n\
            session_timeout_secs = 60\n\n[[janus.rooms]]\nroom = 1\n";
        let room = RoomConfig {
            room: 42,
            description: "kept".into(),
            ..RoomConfig::default()
        };
        let edited = with_janus_rooms(config, &[room]).unwrap();
        assert!(edited.starts_with("# my gateway\n[http]\nlisten = \"0.0.0.0:7777\" # port\n"));
        let parsed = crate::config::Config::from_toml(&edited, "edited").unwrap();
        let rooms: Vec<u64> = parsed.janus.rooms.iter().map(|r| r.room).collect();
        assert_eq!(rooms, [42]);
        assert_eq!(parsed.janus.session_timeout_secs, 60);
        let emptied = with_janus_rooms(&edited, &[]).unwrap();
        assert!(
            crate::config::Config::from_toml(&emptied, "e")
                .unwrap()
                .janus
                .rooms
                .is_empty()
        );
    }
}
