//! What one `authorize` call on a policy module costs, measured on the production call paths
//! (issue 3; the method of wasm-host.md §5). Used by the `policy-bench` binary; not a test.
//!
//! Two variants are timed, each call on its own with [`Instant`] after a warm-up:
//!
//! - **fresh**: [`LoadedModule::call`], a fresh store and instance per call, exactly what
//!   [`PolicyPlane::authorize`](super::PolicyPlane::authorize) runs (minus the registry lookup,
//!   the decision counter and the reply sanitising around it);
//! - **reused**: one [`WarmInstance`] serving every call, the path of quality reports (replaced
//!   after `MAX_WARM_CALLS` calls, as production does).
//!
//! Both use one [`Runtime`] built with the default `[policies]` limits (pooling allocator, 1 ms
//! epoch ticker, 32 MiB memory, 10 ms deadline).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::bindings::authorize::Authorize;
use super::module::{CallFault, LoadedModule, WarmInstance};
use super::runtime::{EPOCH_TICK, Runtime};
use super::{Denial, PolicyError, PolicyMetrics, Principal, Request};
use crate::config::PolicyConfig;

/// Latency of one variant over its timed calls.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stats {
    /// Timed calls (warm-up excluded).
    pub calls: usize,
    pub p50: Duration,
    pub p99: Duration,
    pub mean: Duration,
}

impl Stats {
    /// Summarises per-call durations (nearest-rank percentiles). `None` when empty.
    pub fn from_samples(mut samples: Vec<Duration>) -> Option<Stats> {
        if samples.is_empty() {
            return None;
        }
        samples.sort_unstable();
        let rank = |p: f64| samples[((p * samples.len() as f64).ceil() as usize).max(1) - 1];
        let total: Duration = samples.iter().sum();
        Some(Stats {
            calls: samples.len(),
            p50: rank(0.50),
            p99: rank(0.99),
            mean: total / samples.len() as u32,
        })
    }

    /// Calls per second on one core, from the mean.
    pub fn calls_per_sec(&self) -> f64 {
        1.0 / self.mean.as_secs_f64().max(f64::MIN_POSITIVE)
    }
}

/// The costs of one `authorize` call, and the decision the module returned.
#[derive(Debug, Clone)]
pub struct CallCosts {
    pub fresh: Stats,
    pub reused: Stats,
    /// The decision of the last call (both variants must agree), so a caller can check the
    /// bench measured the path it meant to (e.g. an allow, not an early deny).
    pub decision: Result<Principal, Denial>,
}

/// Untimed calls before timing: `iterations / 10`, at least 100.
pub fn warm_up_calls(iterations: usize) -> usize {
    (iterations / 10).max(100)
}

/// Runs `call` [`warm_up_calls`] times untimed, then `iterations` times timed one by one.
/// Stops at the first error.
pub fn time_calls<E>(
    iterations: usize,
    mut call: impl FnMut() -> Result<(), E>,
) -> Result<Vec<Duration>, E> {
    for _ in 0..warm_up_calls(iterations) {
        call()?;
    }
    let mut samples = Vec::with_capacity(iterations);
    for _ in 0..iterations {
        let start = Instant::now();
        call()?;
        samples.push(start.elapsed());
    }
    Ok(samples)
}

fn call_error(variant: &str, fault: CallFault) -> PolicyError {
    PolicyError::Runtime(format!("{variant} authorize call: {fault}"))
}

fn stats(variant: &str, samples: Vec<Duration>) -> Result<Stats, PolicyError> {
    Stats::from_samples(samples)
        .ok_or_else(|| PolicyError::Runtime(format!("{variant}: no calls timed")))
}

/// Loads `module_bytes` (an `authorize` module) with `config` and times `iterations` calls of
/// `request` on a fresh instance each, then on one reused instance.
pub fn authorize_costs(
    module_bytes: &[u8],
    config: BTreeMap<String, String>,
    request: &Request,
    iterations: usize,
) -> Result<CallCosts, PolicyError> {
    let limits = PolicyConfig::default();
    let deadline_ticks = limits
        .deadline_ms
        .div_ceil(EPOCH_TICK.as_millis().max(1) as u64)
        .max(1);
    let runtime = Runtime::new(limits.memory_mib, Arc::new(PolicyMetrics::default()))?;
    let module = Arc::new(LoadedModule::load(&runtime, "bench", module_bytes, config)?);

    // (1) Fresh store + instance per call: `PolicyPlane::authorize`'s call.
    let fresh_call = || {
        module.call(
            &runtime,
            deadline_ticks,
            "authorize",
            |m| m.authorize.as_ref(),
            |pre, store, ticks| {
                let instance = pre.instantiate(&mut *store)?;
                super::module::arm_deadline(store, ticks);
                instance.call_authorize(store, request)
            },
        )
    };
    let fresh_decision = fresh_call().map_err(|f| call_error("fresh", f))?;
    let samples =
        time_calls(iterations, || fresh_call().map(drop)).map_err(|f| call_error("fresh", f))?;
    let fresh = stats("fresh", samples)?;

    // (2) One warm instance, replaced when production would replace it.
    let new_warm = || {
        WarmInstance::new(
            module.clone(),
            &runtime,
            "authorize",
            |m| m.authorize.as_ref(),
            |pre, store| pre.instantiate(store),
        )
    };
    let mut warm: WarmInstance<Authorize> = new_warm().map_err(|f| call_error("reused", f))?;
    let mut reused_call = || {
        if !warm.reusable(&module) {
            warm = new_warm()?;
        }
        warm.call(deadline_ticks, |a, store| a.call_authorize(store, request))
    };
    let reused_decision = reused_call().map_err(|f| call_error("reused", f))?;
    let samples =
        time_calls(iterations, || reused_call().map(drop)).map_err(|f| call_error("reused", f))?;
    let reused = stats("reused", samples)?;

    // The WIT records have no `PartialEq`: compare their debug forms.
    if format!("{fresh_decision:?}") != format!("{reused_decision:?}") {
        return Err(PolicyError::Runtime(format!(
            "fresh and reused instances disagree: {fresh_decision:?} vs {reused_decision:?}"
        )));
    }
    Ok(CallCosts {
        fresh,
        reused,
        decision: fresh_decision,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let samples = (1..=100).map(Duration::from_micros).collect();
        let expected = Stats {
            calls: 100,
            p50: Duration::from_micros(50),
            p99: Duration::from_micros(99),
            mean: Duration::from_nanos(50_500),
        };
        assert_eq!(Stats::from_samples(samples), Some(expected));
        assert_eq!(Stats::from_samples(Vec::new()), None);
    }
}
