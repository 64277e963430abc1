//! `gatehouse policy check FILE`: compile a module, report which worlds it implements and
//! whether it instantiates with its configuration — before it is deployed.

use std::path::Path;
use std::sync::Arc;

use super::module::LoadedModule;
use super::runtime::{Runtime, flatten_config};
use super::{PolicyError, PolicyMetrics};
use crate::config::PolicyConfig;

/// What `policy check` found out about a module.
#[derive(Debug, Clone)]
pub struct CheckReport {
    /// The module name the file would serve (its stem).
    pub module: String,
    pub sha256: String,
    pub bytes: usize,
    /// Worlds implemented: `authorize`, `admit`, `svrsig`, `quality`.
    pub worlds: Vec<&'static str>,
    /// Hooks of `config` this module is set to serve.
    pub serves: Vec<&'static str>,
}

/// Compiles and self-checks `path` with the module config of `config`.
pub fn check_file(path: &Path, config: &PolicyConfig) -> Result<CheckReport, PolicyError> {
    let module = path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("module")
        .to_owned();
    let bytes = std::fs::read(path).map_err(|e| PolicyError::Read {
        path: path.display().to_string(),
        reason: e.to_string(),
    })?;
    let runtime = Runtime::new(config.memory_mib, Arc::new(PolicyMetrics::default()))?;
    let table = config.config.get(&module).cloned().unwrap_or_default();
    let loaded = LoadedModule::load(&runtime, &module, &bytes, flatten_config(&table))?;
    let serves = [
        ("authorize", &config.authorize),
        ("admit", &config.admit),
        ("svrsig", &config.svrsig),
        ("quality", &config.quality),
    ]
    .into_iter()
    .filter(|(_, name)| **name == module)
    .map(|(hook, _)| hook)
    .collect();
    Ok(CheckReport {
        module,
        sha256: loaded.sha256.clone(),
        bytes: bytes.len(),
        worlds: loaded.worlds(),
        serves,
    })
}
