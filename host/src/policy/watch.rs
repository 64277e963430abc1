//! Hot reload: the policies directory is watched (non-recursively, debounced) and every
//! `<module>.wasm` that is created, written or renamed into it is installed again.
//!
//! Deployers should write a temporary file and rename it: a file written in place can be seen
//! half-written, which then fails to compile and never goes live (the old version stays).

use std::path::Path;
use std::sync::Weak;
use std::time::Duration;

use notify_debouncer_full::notify::{EventKind, RecommendedWatcher, RecursiveMode};
use notify_debouncer_full::{DebounceEventResult, Debouncer, RecommendedCache, new_debouncer};

use super::{Inner, PolicyError};

/// How long a file must be quiet before it is (re)loaded.
const DEBOUNCE: Duration = Duration::from_millis(250);

/// The module name a file serves: the stem of a `*.wasm` file. Editor and temporary files
/// (`.tmp`, `~`, `.swp`, hidden files) are ignored.
pub(crate) fn module_name(path: &Path) -> Option<String> {
    if path.extension()? != "wasm" {
        return None;
    }
    let stem = path.file_stem()?.to_str()?;
    if stem.is_empty() || stem.starts_with('.') {
        return None;
    }
    Some(stem.to_owned())
}

/// Keeps the directory watched while alive.
pub(crate) struct DirWatcher {
    _debouncer: Debouncer<RecommendedWatcher, RecommendedCache>,
}

impl DirWatcher {
    pub fn start(dir: &Path, plane: Weak<Inner>) -> Result<Self, PolicyError> {
        let handler = move |result: DebounceEventResult| {
            let Some(plane) = plane.upgrade() else {
                return;
            };
            match result {
                Ok(events) => {
                    let mut paths: Vec<_> = events
                        .iter()
                        .filter(|e| {
                            matches!(e.event.kind, EventKind::Create(_) | EventKind::Modify(_))
                        })
                        .flat_map(|e| e.event.paths.iter())
                        .filter(|p| module_name(p).is_some() && p.is_file())
                        .cloned()
                        .collect();
                    paths.sort();
                    paths.dedup();
                    for path in paths {
                        plane.reload_file(&path);
                    }
                }
                Err(errors) => {
                    for e in errors {
                        tracing::warn!(error = %e, "policies directory watch error");
                    }
                }
            }
        };
        let watch_error = |e: notify_debouncer_full::notify::Error| PolicyError::Read {
            path: dir.display().to_string(),
            reason: e.to_string(),
        };
        let mut debouncer = new_debouncer(DEBOUNCE, None, handler).map_err(watch_error)?;
        debouncer
            .watch(dir, RecursiveMode::NonRecursive)
            .map_err(watch_error)?;
        tracing::info!(dir = %dir.display(), "watching policies directory");
        Ok(Self {
            _debouncer: debouncer,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_wasm_files_name_modules() {
        assert_eq!(
            module_name(Path::new("/p/token-auth.wasm")).as_deref(),
            Some("token-auth")
        );
        assert_eq!(module_name(Path::new("/p/token-auth.wasm.tmp")), None);
        assert_eq!(module_name(Path::new("/p/.token-auth.wasm")), None);
        assert_eq!(module_name(Path::new("/p/notes.txt")), None);
    }
}
