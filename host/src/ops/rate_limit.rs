//! Per-client-IP token buckets (go-live's `RATE_LIMIT_RPS` / `RATE_LIMIT_BURST`), on
//! `governor`. The client is the socket's peer address (`X-Forwarded-For` is not trusted).

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

/// How often buckets that have refilled completely (idle clients) are dropped.
const SWEEP_INTERVAL: Duration = Duration::from_secs(60);

pub struct ClientRateLimit {
    limiter: DefaultKeyedRateLimiter<IpAddr>,
    last_sweep: Mutex<Instant>,
}

impl ClientRateLimit {
    /// `rps` requests per second with bursts of `burst` (≤ 0 → 1, as go-live); `None` when
    /// `rps` is 0 (off) or not a positive number.
    pub fn new(rps: f64, burst: i64) -> Option<Self> {
        if !(rps.is_finite() && rps > 0.0) {
            return None;
        }
        let burst = NonZeroU32::new(u32::try_from(burst.max(1)).unwrap_or(u32::MAX))?;
        let quota = Quota::with_period(Duration::from_secs_f64(1.0 / rps))?.allow_burst(burst);
        Some(Self {
            limiter: RateLimiter::keyed(quota),
            last_sweep: Mutex::new(Instant::now()),
        })
    }

    /// Whether `client` may make one more request now.
    pub fn allow(&self, client: IpAddr) -> bool {
        if let Ok(mut last) = self.last_sweep.lock()
            && last.elapsed() >= SWEEP_INTERVAL
        {
            *last = Instant::now();
            self.limiter.retain_recent();
        }
        self.limiter.check_key(&client).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_gets_its_burst_then_is_refused_while_others_are_not() {
        let limit = ClientRateLimit::new(0.5, 3).unwrap();
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        assert!((0..3).all(|_| limit.allow(a)));
        assert!(!limit.allow(a));
        assert!(limit.allow(b));
    }

    #[test]
    fn zero_rps_is_off_and_a_non_positive_burst_means_one() {
        assert!(ClientRateLimit::new(0.0, 10).is_none());
        let limit = ClientRateLimit::new(0.1, 0).unwrap();
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        assert!(limit.allow(a));
        assert!(!limit.allow(a));
    }
}
