//! The Wasm policy plane: who may do what is decided by policy modules (WebAssembly
//! components implementing the worlds of `guest-sdk/wit/policy.wit`), hot-reloaded from a
//! directory and contained when they misbehave (DESIGN.md §4).
//!
//! Each call gets a fresh instance in a fresh store with an epoch deadline and a memory limit.
//! `authorize`, `admit` and `svrsig` fail closed (503 "policy unavailable"); `quality` fails
//! open (the report is dropped and counted).

pub mod bench;
mod bindings;
pub mod check;
mod metrics;
mod module;
mod registry;
mod room_rules;
pub(crate) use room_rules::same as same_secret;
mod runtime;
mod watch;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

pub use bindings::types::{
    Action, Admission, Denial, Measurement, Principal, QualityOutcome, QualityReport, QualityStats,
    ReportBody, Request, RoomRules, RoomState, SessionFacts, StreamUrl,
};
pub use metrics::PolicyMetrics;
pub use module::ModuleSource;

use crate::config::PolicyConfig;
use module::{CallFault, LoadedModule, WarmInstance, arm_deadline};
use registry::{Installed, Registry};
use runtime::{EPOCH_TICK, Runtime, flatten_config};

/// The modules shipped in the binary (built by `host/build.rs` from `policies/`).
mod embedded {
    include!(concat!(env!("OUT_DIR"), "/embedded_policies.rs"));
}

/// The bytes of the shipped module `name` (as embedded in the binary), if there is one.
pub fn shipped_module(name: &str) -> Option<&'static [u8]> {
    embedded::EMBEDDED
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, bytes)| *bytes)
}

/// Why the policy plane or a module could not be set up.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum PolicyError {
    #[error("policy runtime: {0}")]
    Runtime(String),
    #[error("policy module `{module}` failed at {step}: {reason}")]
    InvalidModule {
        module: String,
        step: String,
        reason: String,
    },
    #[error("cannot read policy file {path}: {reason}")]
    Read { path: String, reason: String },
}

/// Longest denial reason or principal subject passed on; guests can return anything.
const MAX_REPLY_TEXT: usize = 256;
/// Most rooms a principal may list.
const MAX_PRINCIPAL_ROOMS: usize = 64;

/// The hook kinds, with the module serving each.
#[derive(Debug, Clone)]
struct Hooks {
    authorize: String,
    admit: String,
    svrsig: String,
    quality: String,
}

/// Most warm quality instances kept (one per concurrent caller is enough).
const MAX_WARM_QUALITY: usize = 8;

struct Inner {
    runtime: Runtime,
    warm_quality: Mutex<Vec<WarmInstance<bindings::quality::Quality>>>,
    registry: Registry,
    hooks: Hooks,
    deadline_ticks: u64,
    breaker_faults: u32,
    configs: BTreeMap<String, BTreeMap<String, String>>,
    watcher: Mutex<Option<watch::DirWatcher>>,
}

/// A handle to the policy plane (cheap to clone).
#[derive(Clone)]
pub struct PolicyPlane {
    inner: Arc<Inner>,
}

/// The denial every fail-closed hook returns when its module cannot decide.
fn unavailable() -> Denial {
    Denial {
        status: 503,
        reason: "policy unavailable".into(),
    }
}

fn cap(text: &mut String) {
    cap_to(text, MAX_REPLY_TEXT);
}

/// A guest's denial made safe to show: bounded text, an error status.
fn sanitize_denial(mut denial: Denial) -> Denial {
    cap(&mut denial.reason);
    if !(400..=599).contains(&denial.status) {
        denial.status = 403;
    }
    denial
}

fn sanitize_principal(mut principal: Principal) -> Principal {
    cap(&mut principal.subject);
    principal.rooms.truncate(MAX_PRINCIPAL_ROOMS);
    principal.rooms.iter_mut().for_each(cap);
    principal
}

/// The principal of an unauthenticated request when no `authorize` module is configured.
pub fn anonymous() -> Principal {
    Principal {
        subject: "anonymous".into(),
        rooms: Vec::new(),
        can_publish: true,
        can_subscribe: true,
        admin: false,
    }
}

impl PolicyPlane {
    /// Loads the shipped modules, then the policies directory (whose files replace shipped
    /// modules of the same name), and starts watching that directory.
    pub fn start(config: &PolicyConfig) -> Result<PolicyPlane, PolicyError> {
        let metrics = Arc::new(PolicyMetrics::default());
        let runtime = Runtime::new(config.memory_mib, metrics)?;
        let configs = config
            .config
            .iter()
            .map(|(name, table)| (name.clone(), flatten_config(table)))
            .collect();
        let tick_ms = EPOCH_TICK.as_millis().max(1) as u64;
        let inner = Arc::new(Inner {
            runtime,
            registry: Registry::default(),
            warm_quality: Mutex::new(Vec::new()),
            hooks: Hooks {
                authorize: config.authorize.clone(),
                admit: config.admit.clone(),
                svrsig: config.svrsig.clone(),
                quality: config.quality.clone(),
            },
            deadline_ticks: config.deadline_ms.div_ceil(tick_ms).max(1),
            breaker_faults: config.breaker_faults.max(1),
            configs,
            watcher: Mutex::new(None),
        });
        let plane = PolicyPlane { inner };
        for (name, bytes) in embedded::EMBEDDED {
            plane.install(name, bytes, ModuleSource::Embedded)?;
        }
        if let Some(dir) = &config.dir {
            plane.load_dir(dir);
            let watcher = watch::DirWatcher::start(dir, Arc::downgrade(&plane.inner))?;
            if let Ok(mut slot) = plane.inner.watcher.lock() {
                *slot = Some(watcher);
            }
        }
        plane.report_hooks(config.access_is_open());
        Ok(plane)
    }

    fn report_hooks(&self, access_is_open: bool) {
        let hooks = &self.inner.hooks;
        // The shipped token-auth with no tokens lets everyone in: say so loudly.
        if access_is_open {
            tracing::warn!(
                "access is OPEN: anyone may publish and play (set AUTH_TOKEN, ROOM_TOKENS or \
                 JWT_SECRET, or [policies.config.token-auth], to require tokens)"
            );
        }
        for (hook, module) in [
            ("authorize", &hooks.authorize),
            ("admit", &hooks.admit),
            ("svrsig", &hooks.svrsig),
            ("quality", &hooks.quality),
        ] {
            match (module.is_empty(), self.inner.registry.slot(module)) {
                (true, _) => tracing::warn!(hook, "no policy module: hook is open"),
                (false, None) => {
                    tracing::error!(hook, module = %module, "policy module not found: hook fails closed")
                }
                (false, Some(slot)) => {
                    let live = slot.current();
                    if !live.worlds().contains(&hook) {
                        tracing::error!(hook, module = %module, worlds = ?live.worlds(),
                            "policy module does not implement this hook: it fails closed");
                    } else {
                        tracing::info!(hook, module = %module, sha256 = %&live.sha256[..12],
                            "policy hook ready");
                    }
                }
            }
        }
    }

    fn install(&self, name: &str, bytes: &[u8], source: ModuleSource) -> Result<(), PolicyError> {
        self.inner.install(name, bytes, source).map(|_| ())
    }

    /// Installs every `*.wasm` of `dir`; a bad file is reported and skipped.
    fn load_dir(&self, dir: &Path) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            tracing::warn!(dir = %dir.display(), "policies directory not readable");
            return;
        };
        for path in entries.flatten().map(|e| e.path()) {
            if watch::module_name(&path).is_some() {
                self.inner.reload_file(&path);
            }
        }
    }

    /// Names and SHA-256 digests of the live modules.
    pub fn versions(&self) -> BTreeMap<String, String> {
        self.inner.registry.versions()
    }

    /// The policy counters.
    pub fn metrics(&self) -> &PolicyMetrics {
        &self.inner.runtime.metrics
    }

    /// Who is this request? Fails closed.
    pub fn authorize(&self, request: &Request) -> Result<Principal, Denial> {
        let module = &self.inner.hooks.authorize;
        if module.is_empty() {
            return Ok(anonymous());
        }
        let result = self.inner.decide("authorize", module, |m, rt, ticks| {
            m.call(
                rt,
                ticks,
                "authorize",
                |m| m.authorize.as_ref(),
                |pre, store, ticks| {
                    let instance = pre.instantiate(&mut *store)?;
                    arm_deadline(store, ticks);
                    instance.call_authorize(store, request)
                },
            )
        });
        result.map(sanitize_principal).map_err(sanitize_denial)
    }

    /// May this principal do this in this room now? Fails closed.
    pub fn admit(&self, admission: &Admission) -> Result<(), Denial> {
        let module = &self.inner.hooks.admit;
        if module.is_empty() {
            // No admission policy: the room's own rules still hold.
            return room_rules::enforce(admission);
        }
        self.inner
            .decide("admit", module, |m, rt, ticks| {
                m.call(
                    rt,
                    ticks,
                    "admit",
                    |m| m.admit.as_ref(),
                    |pre, store, ticks| {
                        let instance = pre.instantiate(&mut *store)?;
                        arm_deadline(store, ticks);
                        instance.call_admit(store, admission)
                    },
                )
            })
            .map_err(sanitize_denial)
    }
}

impl PolicyPlane {
    /// One call of the `svrsig` module on a fresh instance. Fails closed.
    fn svrsig<R>(
        &self,
        call: impl FnOnce(
            &bindings::svrsig::Svrsig,
            &mut wasmtime::Store<runtime::HostState>,
        ) -> wasmtime::Result<Result<R, Denial>>,
    ) -> Result<R, Denial> {
        let module = &self.inner.hooks.svrsig;
        self.inner
            .decide("svrsig", module, |m, rt, ticks| {
                m.call(
                    rt,
                    ticks,
                    "svrsig",
                    |m| m.svrsig.as_ref(),
                    |pre, store, ticks| {
                        let instance = pre.instantiate(&mut *store)?;
                        arm_deadline(store, ticks);
                        call(&instance, store)
                    },
                )
            })
            .map_err(sanitize_denial)
    }

    /// Signs a LEB session (`svrsig`). Fails closed.
    pub fn sign(&self, facts: &SessionFacts) -> Result<String, Denial> {
        self.svrsig(|s, store| s.call_sign(store, facts))
            .map(|mut sig| {
                cap_to(&mut sig, MAX_SVRSIG);
                sig
            })
    }

    /// The facts a presented `svrsig` binds, if genuine and current. Fails closed.
    pub fn verify(&self, svrsig: &str) -> Result<SessionFacts, Denial> {
        self.svrsig(|s, store| s.call_verify(store, svrsig))
    }

    /// Checks a play URL's `txSecret`/`txTime`. Fails closed.
    pub fn check_url(&self, url: &StreamUrl) -> Result<(), Denial> {
        self.svrsig(|s, store| s.call_check_url(store, url))
    }

    /// Hands a LEB report to the quality module on a warm instance. Fails open: `None` when
    /// no module could judge it (the report is dropped and counted).
    pub fn report(&self, report: &QualityReport) -> Option<QualityOutcome> {
        let inner = &self.inner;
        let name = inner.hooks.quality.as_str();
        let metrics = &inner.runtime.metrics;
        let dropped = |why: &str| {
            metrics.add(
                "gatehouse_policy_reports_dropped_total",
                &[("module", name), ("why", why)],
                1.0,
            );
            None
        };
        if name.is_empty() {
            return dropped("no-module");
        }
        let Some(slot) = inner.registry.slot(name) else {
            return dropped("missing");
        };
        let live = slot.current();
        let warm = inner.warm_quality.lock().ok().and_then(|mut pool| {
            pool.retain(|w| w.reusable(&live));
            pool.pop()
        });
        let mut warm = match warm {
            Some(warm) => warm,
            None => match WarmInstance::new(
                live.clone(),
                &inner.runtime,
                "quality",
                |m| m.quality.as_ref(),
                |pre, store| pre.instantiate(store),
            ) {
                Ok(warm) => warm,
                Err(fault) => {
                    inner
                        .registry
                        .record(name, &live, true, inner.breaker_faults);
                    return dropped(fault_label(&fault));
                }
            },
        };
        match warm.call(inner.deadline_ticks, |q, store| {
            q.call_report(store, report)
        }) {
            Ok(outcome) => {
                inner
                    .registry
                    .record(name, &warm.module, false, inner.breaker_faults);
                metrics.add(
                    "gatehouse_policy_decisions_total",
                    &[
                        ("hook", "quality"),
                        ("module", name),
                        (
                            "result",
                            if outcome.accepted {
                                "accepted"
                            } else {
                                "rejected"
                            },
                        ),
                    ],
                    1.0,
                );
                if let Ok(mut pool) = inner.warm_quality.lock()
                    && pool.len() < MAX_WARM_QUALITY
                {
                    pool.push(warm);
                }
                Some(outcome)
            }
            Err(fault) => {
                // The instance may be poisoned: it is dropped here.
                inner
                    .registry
                    .record(name, &warm.module, true, inner.breaker_faults);
                tracing::warn!(module = name, %fault, "quality report dropped (fail open)");
                dropped(fault_label(&fault))
            }
        }
    }
}

/// Longest `svrsig` passed to a client.
const MAX_SVRSIG: usize = 1024;

fn cap_to(text: &mut String, max: usize) {
    if let Some((at, _)) = text.char_indices().nth(max) {
        text.truncate(at);
    }
}

fn fault_label(fault: &CallFault) -> &'static str {
    match fault {
        CallFault::Timeout => "timeout",
        CallFault::Trap(_) => "trap",
        CallFault::NotImplemented(_) => "wrong-world",
    }
}

impl Inner {
    fn install(
        &self,
        name: &str,
        bytes: &[u8],
        source: ModuleSource,
    ) -> Result<Installed, PolicyError> {
        let config = self.configs.get(name).cloned().unwrap_or_default();
        let result = self.registry.install(&self.runtime, name, bytes, config);
        let metrics = &self.runtime.metrics;
        match &result {
            Ok(Installed::Swapped { sha256 }) => {
                metrics.add(
                    "gatehouse_policy_loads_total",
                    &[("module", name), ("result", "ok")],
                    1.0,
                );
                tracing::info!(module = name, ?source, sha256 = %&sha256[..12], "policy module loaded");
            }
            Ok(Installed::Unchanged) => {}
            Err(e) => {
                metrics.add(
                    "gatehouse_policy_loads_total",
                    &[("module", name), ("result", "error")],
                    1.0,
                );
                tracing::error!(module = name, ?source, error = %e,
                    "policy module rejected; the previous version (if any) stays live");
            }
        }
        result
    }

    /// Reads and installs one module file (named after its stem).
    fn reload_file(&self, path: &Path) {
        let Some(name) = watch::module_name(path) else {
            return;
        };
        match std::fs::read(path) {
            Ok(bytes) => {
                let _ = self.install(&name, &bytes, ModuleSource::File(PathBuf::from(path)));
            }
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "policy file not readable")
            }
        }
    }

    /// Runs one decision on the live module of `name`, counting it and feeding the breaker.
    /// A missing module or a fault fails closed.
    fn decide<T>(
        &self,
        hook: &'static str,
        name: &str,
        call: impl FnOnce(&LoadedModule, &Runtime, u64) -> Result<Result<T, Denial>, CallFault>,
    ) -> Result<T, Denial> {
        let metrics = &self.runtime.metrics;
        let Some(slot) = self.registry.slot(name) else {
            metrics.add(
                "gatehouse_policy_decisions_total",
                &[("hook", hook), ("module", name), ("result", "missing")],
                1.0,
            );
            return Err(unavailable());
        };
        let module = slot.current();
        let outcome = call(&module, &self.runtime, self.deadline_ticks);
        let faulted = outcome.is_err();
        self.registry
            .record(name, &module, faulted, self.breaker_faults);
        let result = match &outcome {
            Ok(Ok(_)) => "allow",
            Ok(Err(_)) => "deny",
            Err(fault) => fault_label(fault),
        };
        metrics.add(
            "gatehouse_policy_decisions_total",
            &[("hook", hook), ("module", name), ("result", result)],
            1.0,
        );
        tracing::debug!(hook, module = name, result, "policy decision");
        match outcome {
            Ok(decision) => decision,
            Err(fault) => {
                tracing::warn!(hook, module = name, %fault, "policy call failed: denied (fail closed)");
                Err(unavailable())
            }
        }
    }
}
