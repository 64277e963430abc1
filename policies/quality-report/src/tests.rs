use super::*;
use gatehouse_sdk::types::{Measurement, QualityStats, ReportBody};

fn report(body: ReportBody) -> QualityReport {
    QualityReport {
        stream: "live/cam".into(),
        session_id: "s-1".into(),
        client_ip: "192.0.2.1".into(),
        body,
    }
}

fn stats() -> QualityStats {
    QualityStats {
        begin_ms: 10_000,
        end_ms: 12_000,
        audio_codec: "opus".into(),
        audio_packets_received: 100,
        audio_packets_lost: 0,
        audio_bytes_received: 8_000,
        video_codec: "H264".into(),
        video_packets_received: 950,
        video_packets_lost: 50,
        video_bytes_received: 250_000,
        video_width: 1280,
        video_height: 720,
        video_decode_fps: 25,
        video_receive_fps: 30,
    }
}

fn assess_default(body: ReportBody) -> QualityOutcome {
    assess(&Thresholds::default(), &report(body))
}

fn sample(outcome: &QualityOutcome, name: &str, kind: &str) -> Option<f64> {
    outcome
        .measurements
        .iter()
        .find(|m| m.name == name && m.labels.iter().any(|(k, v)| k == "kind" && v == kind))
        .map(|m| m.value)
}

#[test]
fn quality_stats_become_loss_bitrate_and_fps_samples() {
    let out = assess_default(ReportBody::Quality(stats()));
    assert!(out.accepted);
    assert_eq!(sample(&out, "leb_loss_percent", "audio"), Some(0.0));
    assert_eq!(sample(&out, "leb_loss_percent", "video"), Some(5.0));
    // 8 000 bytes in 2 s = 32 kbit/s; 250 000 bytes in 2 s = 1 000 kbit/s.
    assert_eq!(sample(&out, "leb_bitrate_kbps", "audio"), Some(32.0));
    assert_eq!(sample(&out, "leb_bitrate_kbps", "video"), Some(1000.0));
    assert_eq!(sample(&out, "leb_video_fps", "decode"), Some(25.0));
    assert_eq!(sample(&out, "leb_video_fps", "receive"), Some(30.0));
    assert!(out.flags.is_empty(), "{:?}", out.flags);
}

#[test]
fn loss_and_low_fps_over_thresholds_are_flagged() {
    let mut s = stats();
    s.video_packets_lost = 60;
    s.video_decode_fps = 10;
    let out = assess_default(ReportBody::Quality(s));
    assert_eq!(out.flags, vec!["loss>5%".to_owned(), "fps<15".to_owned()]);
    let strict = Thresholds {
        max_loss_percent: 2.5,
        ..Thresholds::default()
    };
    let out = assess(&strict, &report(ReportBody::Quality(stats())));
    assert_eq!(out.flags, vec!["loss>2.5%".to_owned()]);
}

#[test]
fn media_absent_from_a_report_gets_no_samples() {
    let mut s = stats();
    s.video_codec.clear();
    (
        s.video_packets_received,
        s.video_packets_lost,
        s.video_bytes_received,
    ) = (0, 0, 0);
    s.video_decode_fps = 0;
    let out = assess_default(ReportBody::Quality(s));
    assert_eq!(sample(&out, "leb_loss_percent", "video"), None);
    assert_eq!(sample(&out, "leb_video_fps", "decode"), None);
    assert!(
        out.flags.is_empty(),
        "no fps flag without video: {:?}",
        out.flags
    );
}

#[test]
fn an_empty_interval_gives_no_bitrate() {
    let mut s = stats();
    s.end_ms = s.begin_ms;
    let out = assess_default(ReportBody::Quality(s));
    assert!(out.accepted);
    assert_eq!(sample(&out, "leb_bitrate_kbps", "video"), None);
}

#[test]
fn invalid_reports_are_rejected_with_a_reason() {
    let mut backwards = stats();
    backwards.end_ms = backwards.begin_ms - 1;
    let mut overflow = stats();
    overflow.audio_packets_received = u64::MAX;
    overflow.audio_packets_lost = 1;
    let mut no_stream = report(ReportBody::FirstFrame(10));
    no_stream.stream = " ".into();
    let cases = [
        (
            assess_default(ReportBody::Quality(backwards)),
            "end before begin",
        ),
        (
            assess_default(ReportBody::Quality(overflow)),
            "packet counters overflow",
        ),
        (assess(&Thresholds::default(), &no_stream), "empty stream"),
        (
            assess_default(ReportBody::IceState((String::new(), String::new()))),
            "empty ICE state",
        ),
    ];
    for (out, reason) in cases {
        assert!(!out.accepted, "{reason}");
        assert_eq!(out.reason.as_deref(), Some(reason));
        assert!(out.measurements.is_empty());
    }
}

#[test]
fn first_frame_time_is_a_sample_flagged_when_slow() {
    let fast = assess_default(ReportBody::FirstFrame(400));
    assert_eq!(
        fast.measurements,
        vec![Measurement::new("leb_first_frame_ms", &[], 400.0)]
    );
    assert!(fast.flags.is_empty());
    let slow = assess_default(ReportBody::FirstFrame(1500));
    assert_eq!(slow.flags, vec!["first-frame>1000ms".to_owned()]);
}

#[test]
fn ice_states_are_counted_per_state_and_failure_is_flagged() {
    let out = assess_default(ReportBody::IceState(("Failed".into(), "complete".into())));
    assert!(out.accepted);
    assert_eq!(
        out.measurements,
        vec![
            Measurement::new(
                "leb_ice_states_total",
                &[("kind", "connection"), ("state", "failed")],
                1.0
            ),
            Measurement::new(
                "leb_ice_states_total",
                &[("kind", "gathering"), ("state", "complete")],
                1.0
            ),
        ]
    );
    assert_eq!(out.flags, vec!["ice-failed".to_owned()]);
}
