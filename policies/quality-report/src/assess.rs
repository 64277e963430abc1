//! From a report to samples and flags.

use crate::thresholds::Thresholds;
use gatehouse_sdk::types::{Measurement, QualityOutcome, QualityReport, QualityStats, ReportBody};

/// Checks `report` and turns it into samples and threshold flags; invalid reports are rejected
/// with a reason.
///
/// Samples: `leb_loss_percent{kind=audio|video}`, `leb_bitrate_kbps{kind=audio|video}`,
/// `leb_video_fps{kind=decode|receive}` (each kind only when the report carries that media),
/// `leb_first_frame_ms`, and `leb_ice_states_total{kind=connection|gathering, state}` += 1 (a counter: one stream has many
/// players, so a last-state gauge would say little).
pub fn assess(thresholds: &Thresholds, report: &QualityReport) -> QualityOutcome {
    if report.stream.trim().is_empty() {
        return QualityOutcome::rejected("empty stream");
    }
    match &report.body {
        ReportBody::Quality(stats) => quality(thresholds, stats),
        ReportBody::IceState((connection, gathering)) => ice(connection, gathering),
        ReportBody::FirstFrame(ms) => {
            let mut flags = Vec::new();
            if *ms > thresholds.max_first_frame_ms {
                flags.push(format!("first-frame>{}ms", thresholds.max_first_frame_ms));
            }
            let sample = Measurement::new("leb_first_frame_ms", &[], *ms as f64);
            QualityOutcome::accepted(vec![sample], flags)
        }
    }
}

/// One media kind's counters.
struct Media<'a> {
    kind: &'a str,
    codec: &'a str,
    received: u64,
    lost: u64,
    bytes: u64,
}

impl Media<'_> {
    fn present(&self) -> bool {
        !self.codec.is_empty() || self.received > 0 || self.lost > 0 || self.bytes > 0
    }
}

fn quality(thresholds: &Thresholds, stats: &QualityStats) -> QualityOutcome {
    if stats.end_ms < stats.begin_ms {
        return QualityOutcome::rejected("end before begin");
    }
    let audio = Media {
        kind: "audio",
        codec: &stats.audio_codec,
        received: stats.audio_packets_received,
        lost: stats.audio_packets_lost,
        bytes: stats.audio_bytes_received,
    };
    let video = Media {
        kind: "video",
        codec: &stats.video_codec,
        received: stats.video_packets_received,
        lost: stats.video_packets_lost,
        bytes: stats.video_bytes_received,
    };
    let interval_ms = stats.end_ms - stats.begin_ms;
    let mut samples = Vec::new();
    let mut loss_flag = false;
    for media in [&audio, &video].into_iter().filter(|m| m.present()) {
        let Some(total) = media.received.checked_add(media.lost) else {
            return QualityOutcome::rejected("packet counters overflow");
        };
        if total > 0 {
            let loss = media.lost as f64 / total as f64 * 100.0;
            loss_flag |= loss > thresholds.max_loss_percent;
            samples.push(Measurement::new(
                "leb_loss_percent",
                &[("kind", media.kind)],
                loss,
            ));
        }
        if interval_ms > 0 {
            // bits per millisecond = kilobits per second.
            let kbps = media.bytes as f64 * 8.0 / interval_ms as f64;
            samples.push(Measurement::new(
                "leb_bitrate_kbps",
                &[("kind", media.kind)],
                kbps,
            ));
        }
    }
    let mut flags = Vec::new();
    if loss_flag {
        flags.push(format!("loss>{}%", thresholds.max_loss_percent));
    }
    if video.present() {
        let decode = f64::from(stats.video_decode_fps);
        samples.push(Measurement::new(
            "leb_video_fps",
            &[("kind", "decode")],
            decode,
        ));
        let receive = f64::from(stats.video_receive_fps);
        samples.push(Measurement::new(
            "leb_video_fps",
            &[("kind", "receive")],
            receive,
        ));
        if decode < thresholds.min_fps {
            flags.push(format!("fps<{}", thresholds.min_fps));
        }
    }
    QualityOutcome::accepted(samples, flags)
}

fn ice(connection: &str, gathering: &str) -> QualityOutcome {
    if connection.trim().is_empty() && gathering.trim().is_empty() {
        return QualityOutcome::rejected("empty ICE state");
    }
    let mut samples = Vec::new();
    for (kind, state) in [("connection", connection), ("gathering", gathering)] {
        let state = state.trim().to_ascii_lowercase();
        if !state.is_empty() {
            samples.push(Measurement::new(
                "leb_ice_states_total",
                &[("kind", kind), ("state", &state)],
                1.0,
            ));
        }
    }
    let mut flags = Vec::new();
    if connection.trim().eq_ignore_ascii_case("failed") {
        flags.push("ice-failed".to_owned());
    }
    QualityOutcome::accepted(samples, flags)
}
