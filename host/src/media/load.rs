//! How busy the media thread is, and the admission rule built on it: past saturation a new
//! subscriber would not get media anyway (the fan-out falls behind and every subscriber's
//! latency grows without bound), so new subscriber offers are refused while the thread's
//! busy fraction over the last window is above `[webrtc] max_loop_load`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The span over which busy time is averaged.
pub(crate) const LOAD_WINDOW: Duration = Duration::from_secs(1);

/// What the media thread publishes about its load, readable from any thread.
#[derive(Debug, Default)]
pub struct LoadGauge {
    /// Busy fraction of the last complete window, in thousandths.
    permille: AtomicU32,
    refused_subscribers: AtomicU64,
}

impl LoadGauge {
    /// The media thread's busy fraction over the last complete window (0.0–1.0).
    pub fn load(&self) -> f64 {
        f64::from(self.permille.load(Ordering::Relaxed)) / 1000.0
    }

    /// Subscriber offers refused because the media thread was saturated.
    pub fn refused_subscribers(&self) -> u64 {
        self.refused_subscribers.load(Ordering::Relaxed)
    }

    pub(crate) fn count_refusal(&self) {
        self.refused_subscribers.fetch_add(1, Ordering::Relaxed);
    }
}

/// Busy time of the media thread, in windows of [`LOAD_WINDOW`].
#[derive(Debug)]
pub(crate) struct LoadMeter {
    window_start: Instant,
    busy: Duration,
    busy_since: Option<Instant>,
    /// The last complete window's busy fraction.
    last: f64,
    gauge: Arc<LoadGauge>,
}

impl LoadMeter {
    pub fn new(now: Instant, gauge: Arc<LoadGauge>) -> Self {
        Self {
            window_start: now,
            busy: Duration::ZERO,
            busy_since: None,
            last: 0.0,
            gauge,
        }
    }

    /// The thread starts working (its poll returned).
    pub fn work_starts(&mut self, now: Instant) {
        self.busy_since = Some(now);
    }

    /// The thread is about to wait again; closes the window once it is complete.
    pub fn work_ends(&mut self, now: Instant) {
        if let Some(since) = self.busy_since.take() {
            self.busy += now.saturating_duration_since(since);
        }
        let elapsed = now.saturating_duration_since(self.window_start);
        if elapsed >= LOAD_WINDOW {
            self.last = (self.busy.as_secs_f64() / elapsed.as_secs_f64()).clamp(0.0, 1.0);
            self.gauge
                .permille
                .store((self.last * 1000.0).round() as u32, Ordering::Relaxed);
            self.window_start = now;
            self.busy = Duration::ZERO;
        }
    }

    pub fn gauge(&self) -> &LoadGauge {
        &self.gauge
    }

    /// The busy fraction that decides admission: the last complete window's, or the current
    /// one's when it is already higher (a thread stuck in one long step never closes a window).
    pub fn load(&self, now: Instant) -> f64 {
        let busy_now = self
            .busy_since
            .map_or(Duration::ZERO, |since| now.saturating_duration_since(since));
        let elapsed = now.saturating_duration_since(self.window_start);
        let current = if elapsed >= LOAD_WINDOW / 4 {
            ((self.busy + busy_now).as_secs_f64() / elapsed.as_secs_f64()).clamp(0.0, 1.0)
        } else {
            0.0
        };
        self.last.max(current)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meter() -> (LoadMeter, Instant, Arc<LoadGauge>) {
        let gauge = Arc::new(LoadGauge::default());
        let start = Instant::now();
        (LoadMeter::new(start, gauge.clone()), start, gauge)
    }

    #[test]
    fn a_window_busy_a_quarter_of_the_time_reads_a_quarter() {
        let (mut meter, start, gauge) = meter();
        for i in 0..10 {
            let at = start + Duration::from_millis(100 * i);
            meter.work_starts(at);
            meter.work_ends(at + Duration::from_millis(25));
        }
        let end = start + LOAD_WINDOW;
        meter.work_starts(end);
        meter.work_ends(end);
        assert!((gauge.load() - 0.25).abs() < 0.01, "{}", gauge.load());
        assert!((meter.load(end) - 0.25).abs() < 0.01);
    }

    #[test]
    fn a_long_busy_step_counts_before_its_window_closes() {
        let (mut meter, start, gauge) = meter();
        meter.work_starts(start);
        let later = start + Duration::from_millis(600);
        assert!(meter.load(later) > 0.99);
        assert_eq!(gauge.load(), 0.0, "no window has closed yet");
    }

    #[test]
    fn an_idle_thread_reads_zero() {
        let (mut meter, start, gauge) = meter();
        let end = start + LOAD_WINDOW * 2;
        meter.work_starts(end);
        meter.work_ends(end);
        assert_eq!(gauge.load(), 0.0);
        assert_eq!(meter.load(end), 0.0);
    }
}
