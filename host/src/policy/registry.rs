//! The live modules by name. Installing a module compiles and self-checks it first; only then
//! is it swapped in atomically (in-flight calls finish on the version they loaded). Repeated
//! faults of the live version trip a breaker back to the last-known-good one.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use arc_swap::ArcSwap;

use super::PolicyError;
use super::module::{LoadedModule, digest};
use super::runtime::Runtime;

/// One module name's live version and its fallback.
pub(crate) struct ModuleSlot {
    current: ArcSwap<LoadedModule>,
    /// The version that served before `current`; restored by the breaker.
    last_good: Mutex<Option<Arc<LoadedModule>>>,
    consecutive_faults: AtomicU32,
}

impl ModuleSlot {
    /// The live version (an owned `Arc`: safe to hold across a call).
    pub fn current(&self) -> Arc<LoadedModule> {
        self.current.load_full()
    }
}

/// Every loaded module.
#[derive(Default)]
pub(crate) struct Registry {
    slots: RwLock<HashMap<String, Arc<ModuleSlot>>>,
}

/// What an install attempt did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Installed {
    /// A new version is live.
    Swapped { sha256: String },
    /// The bytes are those of the live version: nothing to do.
    Unchanged,
}

impl Registry {
    pub fn slot(&self, name: &str) -> Option<Arc<ModuleSlot>> {
        self.slots.read().ok()?.get(name).cloned()
    }

    /// Names and digests of the live modules.
    pub fn versions(&self) -> BTreeMap<String, String> {
        self.slots
            .read()
            .map(|slots| {
                slots
                    .iter()
                    .map(|(name, slot)| (name.clone(), slot.current().sha256.clone()))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Compiles, self-checks and swaps in `bytes` as module `name`. On any error the live
    /// version (if any) stays.
    pub fn install(
        &self,
        runtime: &Runtime,
        name: &str,
        bytes: &[u8],
        config: BTreeMap<String, String>,
    ) -> Result<Installed, PolicyError> {
        let slot = self.slot(name);
        if let Some(slot) = &slot
            && slot.current().sha256 == digest(bytes)
        {
            return Ok(Installed::Unchanged);
        }
        let module = Arc::new(LoadedModule::load(runtime, name, bytes, config)?);
        let sha256 = module.sha256.clone();
        match slot {
            Some(slot) => {
                let previous = slot.current.swap(module);
                if let Ok(mut last_good) = slot.last_good.lock() {
                    *last_good = Some(previous);
                }
                slot.consecutive_faults.store(0, Ordering::Relaxed);
            }
            None => {
                let slot = Arc::new(ModuleSlot {
                    current: ArcSwap::new(module),
                    last_good: Mutex::new(None),
                    consecutive_faults: AtomicU32::new(0),
                });
                if let Ok(mut slots) = self.slots.write() {
                    slots.insert(name.to_owned(), slot);
                }
            }
        }
        Ok(Installed::Swapped { sha256 })
    }

    /// Records the outcome of a call on `used` (the version the call loaded). After `limit`
    /// consecutive faults of the live version, the last-known-good version is restored; returns
    /// its digest when that happens.
    pub fn record(
        &self,
        name: &str,
        used: &Arc<LoadedModule>,
        faulted: bool,
        limit: u32,
    ) -> Option<String> {
        let slot = self.slot(name)?;
        if !Arc::ptr_eq(&slot.current(), used) {
            return None; // the call ran on a version already replaced
        }
        if !faulted {
            slot.consecutive_faults.store(0, Ordering::Relaxed);
            return None;
        }
        let faults = slot.consecutive_faults.fetch_add(1, Ordering::Relaxed) + 1;
        if faults < limit {
            return None;
        }
        let fallback = slot.last_good.lock().ok()?.take()?;
        let digest = fallback.sha256.clone();
        let broken = slot.current.swap(fallback);
        slot.consecutive_faults.store(0, Ordering::Relaxed);
        tracing::error!(module = name, broken = %broken.sha256, restored = %digest,
            faults, "policy breaker tripped: restored the last-known-good version");
        Some(digest)
    }
}
