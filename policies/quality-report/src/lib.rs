//! `quality-report` (world `quality`): LEB quality, ICE-state and first-frame reports to
//! metric samples and operator flags.
//!
//! Config (`[policies.config.quality-report]`, every key optional):
//!
//! | key | default | flag |
//! |---|---|---|
//! | `max_loss_percent` | 5 | `loss>5%` when audio or video loss exceeds it |
//! | `min_fps` | 15 | `fps<15` when decoded video fps is below it |
//! | `max_first_frame_ms` | 1000 | `first-frame>1000ms` when the first frame is slower |
//!
//! Reports with an empty stream, an interval ending before it begins, packet counters that
//! overflow, or an empty ICE state are rejected (the gateway drops and counts them).

mod assess;
mod thresholds;

pub use assess::assess;
pub use thresholds::Thresholds;

use gatehouse_sdk::types::{QualityOutcome, QualityReport};

/// The exported policy.
pub struct QualityReports;

impl gatehouse_sdk::quality::Guest for QualityReports {
    fn report(report: QualityReport) -> QualityOutcome {
        assess(&Thresholds::load(&gatehouse_sdk::config::Host), &report)
    }
}

gatehouse_sdk::export_quality!(QualityReports);

#[cfg(test)]
mod tests;
