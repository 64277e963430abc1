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
    /// CPU time of the whole process (every thread: the spares keeper and the epoch ticker
    /// included) per timed call, when measured. Work moved off the caller's path shows here.
    pub cpu_per_call: Option<Duration>,
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
            cpu_per_call: None,
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
    call: impl FnMut() -> Result<(), E>,
) -> Result<Vec<Duration>, E> {
    time_calls_with_cpu(iterations, call).map(|(samples, _)| samples)
}

/// [`time_calls`], plus the process's CPU time over the timed calls.
pub fn time_calls_with_cpu<E>(
    iterations: usize,
    mut call: impl FnMut() -> Result<(), E>,
) -> Result<(Vec<Duration>, Duration), E> {
    for _ in 0..warm_up_calls(iterations) {
        call()?;
    }
    let mut samples = Vec::with_capacity(iterations);
    let cpu_start = process_cpu_time();
    for _ in 0..iterations {
        let start = Instant::now();
        call()?;
        samples.push(start.elapsed());
    }
    Ok((samples, process_cpu_time().saturating_sub(cpu_start)))
}

/// CPU time consumed so far by every thread of this process.
fn process_cpu_time() -> Duration {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a valid timespec to write; the clock id is a constant the kernel knows.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut now) };
    if rc != 0 {
        return Duration::ZERO;
    }
    Duration::new(
        now.tv_sec.max(0) as u64,
        now.tv_nsec.clamp(0, 999_999_999) as u32,
    )
}

/// Summarises timed calls with their CPU time.
fn stats_with_cpu(
    variant: &str,
    (samples, cpu): (Vec<Duration>, Duration),
) -> Result<Stats, PolicyError> {
    let calls = samples.len().max(1) as u32;
    let mut stats = stats(variant, samples)?;
    stats.cpu_per_call = Some(cpu / calls);
    Ok(stats)
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
    let timed = time_calls_with_cpu(iterations, || fresh_call().map(drop))
        .map_err(|f| call_error("fresh", f))?;
    let fresh = stats_with_cpu("fresh", timed)?;

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
    let timed = time_calls_with_cpu(iterations, || reused_call().map(drop))
        .map_err(|f| call_error("reused", f))?;
    let reused = stats_with_cpu("reused", timed)?;

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
            cpu_per_call: None,
        };
        assert_eq!(Stats::from_samples(samples), Some(expected));
        assert_eq!(Stats::from_samples(Vec::new()), None);
    }
}
