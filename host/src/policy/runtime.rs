//! The Wasm runtime shared by every policy module: one wasmtime `Engine` (pooling allocator,
//! epoch interruption driven by a 1 ms ticker thread), the per-call store state, and the
//! `host` imports guests may call.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use wasmtime::StoreLimitsBuilder;
use wasmtime::component::{HasSelf, Linker, ResourceTable};
use wasmtime::{Engine, InstanceAllocationStrategy, PoolingAllocationConfig, StoreLimits};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::PolicyError;
use super::bindings::{authorize, host};
use super::metrics::PolicyMetrics;

/// Longest log line or config value a guest may pass; longer ones are cut.
const MAX_GUEST_TEXT: usize = 4096;

/// The engine, the linker every module is instantiated with, and the ticker that drives
/// epoch deadlines.
pub(crate) struct Runtime {
    pub engine: Engine,
    pub linker: Linker<HostState>,
    pub memory_bytes: usize,
    pub metrics: Arc<PolicyMetrics>,
    ticker_stop: Arc<AtomicBool>,
}

/// Linear memory (per slot) reset in place rather than unmapped; a Rust guest's 1 MiB shadow
/// stack plus its heap fit.
const KEEP_RESIDENT_BYTES: usize = 4 << 20;
/// Table bytes (per slot) reset in place.
const KEEP_RESIDENT_TABLE_BYTES: usize = 64 << 10;

/// One epoch tick; deadlines are whole ticks.
pub(crate) const EPOCH_TICK: Duration = Duration::from_millis(1);

impl Runtime {
    pub fn new(memory_mib: u64, metrics: Arc<PolicyMetrics>) -> Result<Self, PolicyError> {
        let memory_bytes = usize::try_from(memory_mib.saturating_mul(1024 * 1024))
            .map_err(|_| PolicyError::Runtime("memory limit too large".into()))?;
        let mut pool = PoolingAllocationConfig::default();
        // Concurrent calls are bounded by the HTTP workers; leave headroom for reloads.
        pool.total_component_instances(256);
        pool.total_core_instances(512);
        pool.total_memories(512);
        pool.total_tables(512);
        pool.max_memory_size(memory_bytes);
        // Reset a used slot by rewriting only the pages its instance dirtied (PAGEMAP_SCAN,
        // Linux ≥ 6.7) instead of unmapping them: no page faults on the next instance and no
        // TLB shootdowns; a fresh instance per call costs ~20 µs instead of ~34 µs. Older
        // kernels fall back to wasmtime's default reset.
        pool.pagemap_scan(wasmtime::Enabled::Auto);
        pool.linear_memory_keep_resident(KEEP_RESIDENT_BYTES);
        pool.table_keep_resident(KEEP_RESIDENT_TABLE_BYTES);
        let mut config = wasmtime::Config::new();
        config.epoch_interruption(true);
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        // Compiled modules are cached on disk (keyed by module hash, engine settings and
        // wasmtime version): restarts and reloads of a known module skip Cranelift. Best effort.
        match wasmtime::Cache::new(wasmtime::CacheConfig::new()) {
            Ok(cache) => {
                config.cache(Some(cache));
            }
            Err(e) => tracing::warn!(error = %e, "policy compilation cache unavailable"),
        }
        let engine = Engine::new(&config).map_err(|e| PolicyError::Runtime(e.to_string()))?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker)
            .map_err(|e| PolicyError::Runtime(e.to_string()))?;
        authorize::gatehouse::policy::host::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s)
            .map_err(|e| PolicyError::Runtime(e.to_string()))?;
        let ticker_stop = Arc::new(AtomicBool::new(false));
        let ticking = engine.clone();
        let stop = ticker_stop.clone();
        std::thread::Builder::new()
            .name("gatehouse-epoch".into())
            .spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    ticking.increment_epoch();
                }
            })
            .map_err(|e| PolicyError::Runtime(e.to_string()))?;
        Ok(Self {
            engine,
            linker,
            memory_bytes,
            metrics,
            ticker_stop,
        })
    }

    /// Fresh state for one store: no WASI capabilities, the module's config, the memory limit.
    pub fn host_state(&self, module: &Arc<ModuleIdentity>) -> HostState {
        HostState {
            wasi: WasiCtx::builder().build(),
            table: ResourceTable::new(),
            limits: StoreLimitsBuilder::new()
                .memory_size(self.memory_bytes)
                .instances(16)
                .trap_on_grow_failure(true)
                .build(),
            module: module.clone(),
            metrics: self.metrics.clone(),
        }
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.ticker_stop.store(true, Ordering::Relaxed);
    }
}

/// Who a store belongs to: the module's name and its configuration table (flattened).
#[derive(Debug)]
pub(crate) struct ModuleIdentity {
    pub name: String,
    pub config: BTreeMap<String, String>,
}

/// The data of one store.
pub(crate) struct HostState {
    wasi: WasiCtx,
    table: ResourceTable,
    pub limits: StoreLimits,
    module: Arc<ModuleIdentity>,
    metrics: Arc<PolicyMetrics>,
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

fn cap(text: &str) -> &str {
    match text.char_indices().nth(MAX_GUEST_TEXT) {
        Some((at, _)) => &text[..at],
        None => text,
    }
}

impl host::Host for HostState {
    fn log(&mut self, level: host::Level, message: String) {
        let module = self.module.name.as_str();
        let message = cap(&message);
        match level {
            host::Level::Debug => tracing::debug!(policy = module, "{message}"),
            host::Level::Info => tracing::info!(policy = module, "{message}"),
            host::Level::Warn => tracing::warn!(policy = module, "{message}"),
            host::Level::Error => tracing::error!(policy = module, "{message}"),
        }
    }

    fn now_ms(&mut self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64)
    }

    fn config(&mut self, key: String) -> Option<String> {
        self.module.config.get(&key).cloned()
    }

    fn count(&mut self, name: String, labels: Vec<(String, String)>, value: f64) {
        self.metrics
            .guest_count(&self.module.name, cap(&name), &labels, value);
    }

    fn hmac(&mut self, hash: host::Hash, key: Vec<u8>, message: Vec<u8>) -> Vec<u8> {
        hmac(hash, &key, &message)
    }
}

/// Longest message the `hmac` import signs; longer ones get an empty list.
const MAX_HMAC_MESSAGE: usize = 1 << 20;

/// The `hmac` import: natively, so `sha2` uses the CPU's SHA instructions.
fn hmac(hash: host::Hash, key: &[u8], message: &[u8]) -> Vec<u8> {
    use hmac::{Hmac, Mac};
    fn run<M: Mac + hmac::digest::KeyInit>(key: &[u8], message: &[u8]) -> Vec<u8> {
        match <M as Mac>::new_from_slice(key) {
            Ok(mut mac) => {
                mac.update(message);
                mac.finalize().into_bytes().to_vec()
            }
            // HMAC takes keys of any length; nothing to sign with otherwise.
            Err(_) => Vec::new(),
        }
    }
    if message.len() > MAX_HMAC_MESSAGE {
        return Vec::new();
    }
    match hash {
        host::Hash::Sha256 => run::<Hmac<sha2::Sha256>>(key, message),
        host::Hash::Sha384 => run::<Hmac<sha2::Sha384>>(key, message),
        host::Hash::Sha512 => run::<Hmac<sha2::Sha512>>(key, message),
    }
}

/// Flattens a module's TOML config table into `dotted.key → text` (strings raw, other values
/// in TOML syntax), the form the `config` import serves.
pub(crate) fn flatten_config(table: &toml::Table) -> BTreeMap<String, String> {
    fn walk(prefix: &str, table: &toml::Table, out: &mut BTreeMap<String, String>) {
        for (key, value) in table {
            let path = if prefix.is_empty() {
                key.clone()
            } else {
                format!("{prefix}.{key}")
            };
            match value {
                toml::Value::Table(inner) => walk(&path, inner, out),
                toml::Value::String(s) => {
                    out.insert(path, s.clone());
                }
                other => {
                    out.insert(path, other.to_string());
                }
            }
        }
    }
    let mut out = BTreeMap::new();
    walk("", table, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_config_tables_flatten_to_dotted_keys() {
        let table: toml::Table = toml::from_str(
            "auth_token = \"t\"\nmax = 3\nlist = [\"a\", \"b\"]\n[room.demo]\npin = \"1234\"\n",
        )
        .unwrap();
        let flat = flatten_config(&table);
        assert_eq!(flat["auth_token"], "t");
        assert_eq!(flat["max"], "3");
        assert_eq!(flat["list"], "[\"a\", \"b\"]");
        assert_eq!(flat["room.demo.pin"], "1234");
    }

    #[test]
    fn hmac_import_matches_rfc_4231_case_2_and_refuses_huge_messages() {
        let mac = hmac(host::Hash::Sha256, b"Jefe", b"what do ya want for nothing?");
        let hex: String = mac.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert_eq!(hmac(host::Hash::Sha512, b"k", b"m").len(), 64);
        assert!(hmac(host::Hash::Sha256, b"k", &vec![0; MAX_HMAC_MESSAGE + 1]).is_empty());
    }

    #[test]
    fn guest_text_is_capped() {
        let long = "x".repeat(MAX_GUEST_TEXT + 10);
        assert_eq!(cap(&long).len(), MAX_GUEST_TEXT);
        assert_eq!(cap("short"), "short");
    }
}
