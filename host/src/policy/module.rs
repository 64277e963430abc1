//! One compiled policy module: which worlds it implements (a pre-instantiated, type-checked
//! `…Pre` per world) and how one call runs (a fresh store, an epoch deadline, a memory limit).

use std::collections::BTreeMap;
use std::sync::Arc;

use sha2::{Digest, Sha256};
use wasmtime::component::Component;
use wasmtime::{Store, Trap};

use super::PolicyError;
use super::bindings::{admit, authorize, quality, svrsig};
use super::runtime::{HostState, ModuleIdentity, Runtime};

/// Where a module's bytes came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModuleSource {
    /// Shipped inside the binary.
    Embedded,
    /// A file of the policies directory.
    File(std::path::PathBuf),
}

/// A compiled, self-checked module.
pub(crate) struct LoadedModule {
    pub identity: Arc<ModuleIdentity>,
    pub sha256: String,
    pub authorize: Option<authorize::AuthorizePre<HostState>>,
    pub admit: Option<admit::AdmitPre<HostState>>,
    pub svrsig: Option<svrsig::SvrsigPre<HostState>>,
    pub quality: Option<quality::QualityPre<HostState>>,
}

/// Why one call produced no decision.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallFault {
    #[error("deadline exceeded")]
    Timeout,
    #[error("trapped: {0}")]
    Trap(String),
    #[error("module does not implement the `{0}` world")]
    NotImplemented(&'static str),
}

/// Epoch ticks allowed for instantiation (guest start code included) before the per-call
/// deadline is armed.
const INSTANTIATION_TICKS: u64 = 1000;

/// Arms the per-call deadline of `store`, counted from now.
pub(crate) fn arm_deadline(store: &mut Store<HostState>, ticks: u64) {
    store.set_epoch_deadline(ticks);
}

/// The hex SHA-256 of a module's bytes.
pub(crate) fn digest(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl LoadedModule {
    /// Compiles `bytes`, type-checks it against every world, and instantiates it once with its
    /// configuration (the self-check). Any failure leaves nothing behind.
    pub fn load(
        runtime: &Runtime,
        name: &str,
        bytes: &[u8],
        config: BTreeMap<String, String>,
    ) -> Result<Self, PolicyError> {
        let invalid = |step: &str, e: wasmtime::Error| PolicyError::InvalidModule {
            module: name.to_owned(),
            step: step.to_owned(),
            reason: format!("{e:#}"),
        };
        let component =
            Component::new(&runtime.engine, bytes).map_err(|e| invalid("compile", e))?;
        let pre = runtime
            .linker
            .instantiate_pre(&component)
            .map_err(|e| invalid("link", e))?;
        let module = LoadedModule {
            identity: Arc::new(ModuleIdentity {
                name: name.to_owned(),
                config,
            }),
            sha256: digest(bytes),
            authorize: authorize::AuthorizePre::new(pre.clone()).ok(),
            admit: admit::AdmitPre::new(pre.clone()).ok(),
            svrsig: svrsig::SvrsigPre::new(pre.clone()).ok(),
            quality: quality::QualityPre::new(pre.clone()).ok(),
        };
        if module.worlds().is_empty() {
            return Err(PolicyError::InvalidModule {
                module: name.to_owned(),
                step: "worlds".into(),
                reason: "exports none of the worlds authorize, admit, svrsig, quality".into(),
            });
        }
        let mut store = module.store(runtime, 1000);
        pre.instantiate(&mut store)
            .map_err(|e| invalid("self-check instantiation", e))?;
        Ok(module)
    }

    /// The worlds this module implements.
    pub fn worlds(&self) -> Vec<&'static str> {
        let mut worlds = Vec::new();
        if self.authorize.is_some() {
            worlds.push("authorize");
        }
        if self.admit.is_some() {
            worlds.push("admit");
        }
        if self.svrsig.is_some() {
            worlds.push("svrsig");
        }
        if self.quality.is_some() {
            worlds.push("quality");
        }
        worlds
    }

    fn store(&self, runtime: &Runtime, deadline_ticks: u64) -> Store<HostState> {
        let mut store = Store::new(&runtime.engine, runtime.host_state(&self.identity));
        store.limiter(|state| &mut state.limits);
        store.set_epoch_deadline(deadline_ticks);
        store
    }

    /// Runs `call` on a fresh instance of `world` in a fresh store; a trap or a missed deadline
    /// discards both. `call` instantiates, then arms the deadline it is given with
    /// [`arm_deadline`] and calls: the deadline bounds the guest's decision, not the host's
    /// instantiation work (which a loaded machine can stretch past a 10 ms budget).
    pub fn call<P, R>(
        &self,
        runtime: &Runtime,
        deadline_ticks: u64,
        world: &'static str,
        pre: impl FnOnce(&Self) -> Option<&P>,
        call: impl FnOnce(&P, &mut Store<HostState>, u64) -> wasmtime::Result<R>,
    ) -> Result<R, CallFault> {
        let pre = pre(self).ok_or(CallFault::NotImplemented(world))?;
        let mut store = self.store(runtime, INSTANTIATION_TICKS);
        call(pre, &mut store, deadline_ticks).map_err(|e| match e.downcast_ref::<Trap>() {
            Some(Trap::Interrupt) => CallFault::Timeout,
            _ => CallFault::Trap(format!("{e:#}").chars().take(300).collect()),
        })
    }
}

/// An instance kept warm across calls (quality reports: ~3 µs a call instead of ~26 µs for a
/// fresh one). It is discarded on any fault, after `MAX_WARM_CALLS`, or when its module is
/// no longer the live version.
pub(crate) struct WarmInstance<I> {
    pub module: Arc<LoadedModule>,
    store: Store<HostState>,
    instance: I,
    calls: u32,
}

/// Calls after which a warm instance is replaced (bounds any state a guest accumulates).
pub(crate) const MAX_WARM_CALLS: u32 = 10_000;

impl<I> WarmInstance<I> {
    /// Instantiates `module` once for reuse.
    pub fn new<P>(
        module: Arc<LoadedModule>,
        runtime: &Runtime,
        world: &'static str,
        pre: impl FnOnce(&LoadedModule) -> Option<&P>,
        instantiate: impl FnOnce(&P, &mut Store<HostState>) -> wasmtime::Result<I>,
    ) -> Result<Self, CallFault> {
        let mut store = module.store(runtime, 1000);
        let pre = pre(&module).ok_or(CallFault::NotImplemented(world))?;
        let instance =
            instantiate(pre, &mut store).map_err(|e| CallFault::Trap(format!("{e:#}")))?;
        Ok(Self {
            module,
            store,
            instance,
            calls: 0,
        })
    }

    /// One call with a fresh deadline; `Err` means the instance must be dropped.
    pub fn call<R>(
        &mut self,
        deadline_ticks: u64,
        call: impl FnOnce(&I, &mut Store<HostState>) -> wasmtime::Result<R>,
    ) -> Result<R, CallFault> {
        self.store.set_epoch_deadline(deadline_ticks);
        self.calls += 1;
        call(&self.instance, &mut self.store).map_err(|e| match e.downcast_ref::<Trap>() {
            Some(Trap::Interrupt) => CallFault::Timeout,
            _ => CallFault::Trap(format!("{e:#}").chars().take(300).collect()),
        })
    }

    /// Whether it may serve another call of the live version `live`.
    pub fn reusable(&self, live: &Arc<LoadedModule>) -> bool {
        self.calls < MAX_WARM_CALLS && Arc::ptr_eq(&self.module, live)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_is_hex_sha256() {
        assert_eq!(
            digest(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
