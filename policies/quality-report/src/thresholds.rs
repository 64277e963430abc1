//! The flag thresholds of `[policies.config.quality-report]`.

use gatehouse_sdk::config::Source;

/// When a report earns an operator flag.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Thresholds {
    /// `max_loss_percent` (default 5): audio or video loss above it flags `loss>5%`.
    pub max_loss_percent: f64,
    /// `min_fps` (default 15): decoded video fps below it flags `fps<15`.
    pub min_fps: f64,
    /// `max_first_frame_ms` (default 1000): a slower first frame flags `first-frame>1000ms`.
    pub max_first_frame_ms: u64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            max_loss_percent: 5.0,
            min_fps: 15.0,
            max_first_frame_ms: 1000,
        }
    }
}

impl Thresholds {
    /// Reads the thresholds, each defaulting as documented.
    pub fn load(source: &impl Source) -> Self {
        let d = Thresholds::default();
        Thresholds {
            max_loss_percent: source.f64("max_loss_percent").unwrap_or(d.max_loss_percent),
            min_fps: source.f64("min_fps").unwrap_or(d.min_fps),
            max_first_frame_ms: source
                .u64("max_first_frame_ms")
                .unwrap_or(d.max_first_frame_ms),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_default_to_5_percent_15_fps_and_a_second() {
        let none: [(&str, &str); 0] = [];
        assert_eq!(Thresholds::load(&none), Thresholds::default());
        let t = Thresholds::load(&[("max_loss_percent", "2.5"), ("min_fps", "24")]);
        assert_eq!(
            (t.max_loss_percent, t.min_fps, t.max_first_frame_ms),
            (2.5, 24.0, 1000)
        );
    }
}
