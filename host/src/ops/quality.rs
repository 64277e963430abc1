//! LEB quality-report ingestion: reports queue for a worker thread that hands each to the
//! `quality` policy (warm instances), turns its measurements into per-stream metrics and
//! appends accepted reports to a rotating JSON-lines log. Signaling only enqueues, so a burst
//! of reports never blocks it; a full queue refuses the report rather than losing it silently.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::sync::mpsc::{SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex};

use serde_json::json;

use crate::config::LebConfig;
use crate::policy::{PolicyPlane, QualityReport, ReportBody};

/// Buckets of the first-frame histogram, in milliseconds.
const FIRST_FRAME_BUCKETS_MS: [f64; 10] = [
    100.0, 200.0, 300.0, 500.0, 750.0, 1000.0, 1500.0, 2000.0, 3000.0, 5000.0,
];

/// Why a report was not taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum IngestError {
    #[error("too many quality reports queued; report refused")]
    QueueFull,
    #[error("quality ingestion has stopped")]
    Stopped,
}

/// A report waiting for the worker, with when it arrived.
struct Job {
    report: QualityReport,
    received_ms: u64,
}

/// What the worker's queue carries.
enum Work {
    Report(Job),
    /// Everything queued before is ingested and on disk: tell the sender.
    Drain(std::sync::mpsc::Sender<()>),
}

/// Per-stream figures the reports produced (what `/metrics` shows).
#[derive(Debug, Default, Clone)]
pub struct QualityFigures {
    /// `(metric name, sorted labels incl. stream)` → last value.
    pub gauges: BTreeMap<(String, Vec<(String, String)>), f64>,
    /// The same for measurements named `…_total`: the sum of every value reported.
    pub counters: BTreeMap<(String, Vec<(String, String)>), f64>,
    /// stream → (bucket counts, sum, count) of first-frame times.
    pub first_frame: BTreeMap<String, FirstFrameHistogram>,
    /// `(stream, type, result)` → reports.
    pub reports: BTreeMap<(String, &'static str, &'static str), u64>,
    /// `(stream, flag)` → times the policy raised it.
    pub flags: BTreeMap<(String, String), u64>,
}

/// A metric name the policy chose, reduced to Prometheus' alphabet.
fn metric_name(name: &str) -> String {
    let mut out: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if out.is_empty() || out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    out
}

/// A label set in exposition form; values escaped, names sanitized.
fn labels(pairs: &[(&str, &str)]) -> String {
    let body: Vec<String> = pairs
        .iter()
        .map(|(k, v)| {
            let value = v
                .replace('\\', "\\\\")
                .replace('"', "\\\"")
                .replace('\n', "\\n");
            format!("{}=\"{value}\"", metric_name(k))
        })
        .collect();
    format!("{{{}}}", body.join(","))
}

impl QualityFigures {
    /// The figures as Prometheus exposition text: the policy's samples as per-stream gauges,
    /// the first-frame histogram, report and flag counters.
    pub fn exposition(&self) -> String {
        let mut text = String::new();
        for (kind, samples) in [("gauge", &self.gauges), ("counter", &self.counters)] {
            let mut current = String::new();
            for ((name, pairs), value) in samples {
                let name = metric_name(name);
                if name != current {
                    text.push_str(&format!("# TYPE {name} {kind}\n"));
                    current = name.clone();
                }
                let pairs: Vec<(&str, &str)> = pairs
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str()))
                    .collect();
                text.push_str(&format!("{name}{} {value}\n", labels(&pairs)));
            }
        }
        if !self.first_frame.is_empty() {
            text.push_str("# TYPE leb_first_frame_ms histogram\n");
        }
        for (stream, h) in &self.first_frame {
            for (count, bound) in h.buckets.iter().zip(FIRST_FRAME_BUCKETS_MS) {
                let le = bound.to_string();
                let set = labels(&[("stream", stream), ("le", &le)]);
                text.push_str(&format!("leb_first_frame_ms_bucket{set} {count}\n"));
            }
            let inf = labels(&[("stream", stream), ("le", "+Inf")]);
            text.push_str(&format!("leb_first_frame_ms_bucket{inf} {}\n", h.count));
            let set = labels(&[("stream", stream)]);
            text.push_str(&format!("leb_first_frame_ms_sum{set} {}\n", h.sum_ms));
            text.push_str(&format!("leb_first_frame_ms_count{set} {}\n", h.count));
        }
        text.push_str("# TYPE leb_reports_total counter\n");
        for ((stream, kind, result), count) in &self.reports {
            let set = labels(&[("stream", stream), ("type", kind), ("result", result)]);
            text.push_str(&format!("leb_reports_total{set} {count}\n"));
        }
        if !self.flags.is_empty() {
            text.push_str("# TYPE leb_quality_flags_total counter\n");
        }
        for ((stream, flag), count) in &self.flags {
            let set = labels(&[("stream", stream), ("flag", flag)]);
            text.push_str(&format!("leb_quality_flags_total{set} {count}\n"));
        }
        text
    }
}

/// A cumulative histogram of first-frame times of one stream.
#[derive(Debug, Default, Clone)]
pub struct FirstFrameHistogram {
    pub buckets: [u64; FIRST_FRAME_BUCKETS_MS.len()],
    pub sum_ms: f64,
    pub count: u64,
}

impl FirstFrameHistogram {
    pub fn bounds() -> &'static [f64] {
        &FIRST_FRAME_BUCKETS_MS
    }

    fn observe(&mut self, ms: f64) {
        for (bucket, bound) in self.buckets.iter_mut().zip(FIRST_FRAME_BUCKETS_MS) {
            if ms <= bound {
                *bucket += 1;
            }
        }
        self.sum_ms += ms;
        self.count += 1;
    }
}

/// The ingestion front: cheap to clone, shared by the signaling handlers.
#[derive(Clone)]
pub struct QualityIngest {
    queue: SyncSender<Work>,
    figures: Arc<Mutex<QualityFigures>>,
}

fn report_type(body: &ReportBody) -> &'static str {
    match body {
        ReportBody::Quality(_) => "quality",
        ReportBody::IceState(_) => "ice-state",
        ReportBody::FirstFrame(_) => "first-frame",
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl QualityIngest {
    /// Starts the worker thread; it stops once every `QualityIngest` clone is dropped and the
    /// queue is drained (so accepted reports reach the log).
    pub fn start(policy: PolicyPlane, config: &LebConfig) -> std::io::Result<Self> {
        let (queue, jobs) = sync_channel::<Work>(config.report_queue.max(1));
        let figures = Arc::new(Mutex::new(QualityFigures::default()));
        let mut log = match &config.report_log {
            Some(path) => Some(ReportLog::open(
                path.clone(),
                config.report_log_max_bytes,
                config.report_log_keep,
            )?),
            None => None,
        };
        let worker_figures = figures.clone();
        std::thread::Builder::new()
            .name("gatehouse-quality".into())
            .spawn(move || {
                while let Ok(work) = jobs.recv() {
                    let mut drained = Vec::new();
                    let mut next = Some(work);
                    while let Some(work) = next {
                        match work {
                            Work::Report(job) => {
                                ingest(&policy, &worker_figures, log.as_mut(), job)
                            }
                            Work::Drain(done) => drained.push(done),
                        }
                        next = jobs.try_recv().ok();
                    }
                    // Idle: what was taken is on disk.
                    if let Some(log) = log.as_mut() {
                        log.flush();
                    }
                    for done in drained {
                        let _ = done.send(());
                    }
                }
            })?;
        Ok(Self { queue, figures })
    }

    /// Queues a report; `Err` when it cannot be taken (the client is told, nothing is lost
    /// silently).
    pub fn submit(&self, report: QualityReport) -> Result<(), IngestError> {
        let job = Job {
            report,
            received_ms: now_ms(),
        };
        self.queue.try_send(Work::Report(job)).map_err(|e| match e {
            TrySendError::Full(Work::Report(job)) => {
                self.count(&job.report, "refused");
                IngestError::QueueFull
            }
            TrySendError::Full(Work::Drain(_)) => IngestError::QueueFull,
            TrySendError::Disconnected(_) => IngestError::Stopped,
        })
    }

    /// Waits (at most `limit`) until every report taken so far is ingested and on disk: at
    /// shutdown, so the report log keeps what players were told was taken.
    pub fn drain(&self, limit: std::time::Duration) -> bool {
        let (done, drained) = std::sync::mpsc::channel();
        let deadline = std::time::Instant::now() + limit;
        let mut work = Work::Drain(done);
        loop {
            match self.queue.try_send(work) {
                Ok(()) => break,
                Err(TrySendError::Full(back)) if std::time::Instant::now() < deadline => {
                    work = back;
                    std::thread::sleep(std::time::Duration::from_millis(5));
                }
                Err(_) => return false,
            }
        }
        drained
            .recv_timeout(deadline.saturating_duration_since(std::time::Instant::now()))
            .is_ok()
    }

    fn count(&self, report: &QualityReport, result: &'static str) {
        if let Ok(mut figures) = self.figures.lock() {
            let key = (report.stream.clone(), report_type(&report.body), result);
            *figures.reports.entry(key).or_default() += 1;
        }
    }

    /// A copy of the figures so far.
    pub fn figures(&self) -> QualityFigures {
        self.figures.lock().map(|f| f.clone()).unwrap_or_default()
    }
}

/// The worker's step: policy, figures, log.
fn ingest(
    policy: &PolicyPlane,
    figures: &Mutex<QualityFigures>,
    log: Option<&mut ReportLog>,
    job: Job,
) {
    let report = &job.report;
    let outcome = policy.report(report);
    let result = match &outcome {
        None => "dropped",
        Some(o) if o.accepted => "accepted",
        Some(_) => "rejected",
    };
    if let Ok(mut figures) = figures.lock() {
        let key = (report.stream.clone(), report_type(&report.body), result);
        *figures.reports.entry(key).or_default() += 1;
        if let Some(outcome) = outcome.as_ref().filter(|o| o.accepted) {
            for m in &outcome.measurements {
                if m.name == "leb_first_frame_ms" {
                    figures
                        .first_frame
                        .entry(report.stream.clone())
                        .or_default()
                        .observe(m.value);
                    continue;
                }
                let mut labels: Vec<(String, String)> = m.labels.clone();
                labels.push(("stream".into(), report.stream.clone()));
                labels.sort();
                if m.name.ends_with("_total") {
                    *figures
                        .counters
                        .entry((m.name.clone(), labels))
                        .or_default() += m.value;
                } else {
                    figures.gauges.insert((m.name.clone(), labels), m.value);
                }
            }
            for flag in &outcome.flags {
                *figures
                    .flags
                    .entry((report.stream.clone(), flag.clone()))
                    .or_default() += 1;
            }
        }
    }
    // Every report that reached the worker is kept, whatever the policy made of it: a
    // rejected or unassessed (policy failed) report is still what a player said.
    if let Some(log) = log {
        let flags = outcome.as_ref().map_or(&[][..], |o| &o.flags[..]);
        log.append(&job, result, flags);
    }
}

/// The JSON-lines file reports are appended to. When full it becomes `<file>.1`, the older ones
/// shift up (`.1` → `.2` …) and the oldest beyond `keep` is deleted.
struct ReportLog {
    path: PathBuf,
    max_bytes: u64,
    keep: usize,
    written: u64,
    file: BufWriter<File>,
}

impl ReportLog {
    fn open(path: PathBuf, max_bytes: u64, keep: usize) -> std::io::Result<Self> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let file = OpenOptions::new().create(true).append(true).open(&path)?;
        let written = file.metadata()?.len();
        Ok(Self {
            path,
            max_bytes,
            keep: keep.max(1),
            written,
            file: BufWriter::new(file),
        })
    }

    fn append(&mut self, job: &Job, result: &str, flags: &[String]) {
        let report = &job.report;
        let body = match &report.body {
            ReportBody::Quality(q) => json!({
                "type": "quality", "beginMs": q.begin_ms, "endMs": q.end_ms,
                "audioCodec": q.audio_codec, "audioPktRecv": q.audio_packets_received,
                "audioPktLost": q.audio_packets_lost, "audioByteRecv": q.audio_bytes_received,
                "videoCodec": q.video_codec, "videoPktRecv": q.video_packets_received,
                "videoPktLost": q.video_packets_lost, "videoByteRecv": q.video_bytes_received,
                "videoWidth": q.video_width, "videoHeight": q.video_height,
                "videoFrameDec": q.video_decode_fps, "videoFrameRecv": q.video_receive_fps,
            }),
            ReportBody::IceState((connection, gathering)) => json!({
                "type": "ice-state", "iceConnectionState": connection,
                "iceGatheringState": gathering,
            }),
            ReportBody::FirstFrame(ms) => json!({ "type": "first-frame", "firstFrameMs": ms }),
        };
        let line = json!({
            "receivedMs": job.received_ms, "stream": report.stream,
            "session": report.session_id, "clientIp": report.client_ip,
            "report": body, "result": result, "flags": flags,
        })
        .to_string();
        if self.written + line.len() as u64 + 1 > self.max_bytes && self.written > 0 {
            self.rotate();
        }
        match writeln!(self.file, "{line}") {
            Ok(()) => self.written += line.len() as u64 + 1,
            Err(e) => {
                tracing::warn!(path = %self.path.display(), error = %e, "report log write failed")
            }
        }
    }

    /// `<file>.n`.
    fn rotated(&self, n: usize) -> PathBuf {
        let mut name = self.path.clone().into_os_string();
        name.push(format!(".{n}"));
        PathBuf::from(name)
    }

    fn rotate(&mut self) {
        self.flush();
        for n in (1..self.keep).rev() {
            let from = self.rotated(n);
            if from.exists()
                && let Err(e) = std::fs::rename(&from, self.rotated(n + 1))
            {
                tracing::warn!(path = %from.display(), error = %e, "report log shift failed");
            }
        }
        let rotated = self.rotated(1);
        let reopened = std::fs::rename(&self.path, &rotated).and_then(|()| {
            OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.path)
        });
        match reopened {
            Ok(file) => {
                self.file = BufWriter::new(file);
                self.written = 0;
            }
            Err(e) => {
                tracing::warn!(path = %self.path.display(), error = %e, "report log rotation failed")
            }
        }
    }

    fn flush(&mut self) {
        if let Err(e) = self.file.flush() {
            tracing::warn!(path = %self.path.display(), error = %e, "report log flush failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_render_as_exposition_with_escaped_labels() {
        let mut figures = QualityFigures::default();
        figures.gauges.insert(
            (
                "leb_loss_percent".into(),
                vec![
                    ("kind".into(), "video".into()),
                    ("stream".into(), "c\"m".into()),
                ],
            ),
            2.5,
        );
        figures
            .first_frame
            .entry("cam".into())
            .or_default()
            .observe(120.0);
        figures
            .reports
            .insert(("cam".into(), "quality", "accepted"), 3);
        let text = figures.exposition();
        for line in [
            "leb_loss_percent{kind=\"video\",stream=\"c\\\"m\"} 2.5",
            "leb_first_frame_ms_bucket{stream=\"cam\",le=\"200\"} 1",
            "leb_first_frame_ms_count{stream=\"cam\"} 1",
            "leb_reports_total{stream=\"cam\",type=\"quality\",result=\"accepted\"} 3",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing `{line}` in\n{text}"
            );
        }
    }

    fn ice_report() -> QualityReport {
        QualityReport {
            stream: "cam".into(),
            session_id: "s".into(),
            client_ip: "127.0.0.1".into(),
            body: ReportBody::IceState(("connected".into(), "complete".into())),
        }
    }

    #[test]
    fn a_full_queue_refuses_the_report_and_counts_it() {
        let (queue, _held) = sync_channel(1);
        let ingest = QualityIngest {
            queue,
            figures: Default::default(),
        };
        assert_eq!(ingest.submit(ice_report()), Ok(()));
        assert_eq!(ingest.submit(ice_report()), Err(IngestError::QueueFull));
        let refused = ingest.figures().reports;
        assert_eq!(
            refused.get(&("cam".to_owned(), "ice-state", "refused")),
            Some(&1)
        );
    }

    #[test]
    fn report_log_rotates_shifting_older_files_and_keeps_only_keep_of_them() {
        let dir = std::env::temp_dir().join(format!("gatehouse-reportlog-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let path = dir.join("reports.jsonl");
        // Every line is longer than 100 bytes: one line per file.
        let mut log = ReportLog::open(path.clone(), 100, 2).unwrap();
        let job = |ms| Job {
            report: QualityReport {
                stream: "cam".into(),
                session_id: "s".into(),
                client_ip: "127.0.0.1".into(),
                body: ReportBody::FirstFrame(ms),
            },
            received_ms: 1,
        };
        for ms in [10, 20, 30, 40, 50] {
            log.append(&job(ms), "accepted", &[]);
        }
        log.flush();
        let read = |name: &str| std::fs::read_to_string(dir.join(name)).unwrap_or_default();
        assert!(read("reports.jsonl").contains("\"firstFrameMs\":50"));
        assert!(read("reports.jsonl.1").contains("\"firstFrameMs\":40"));
        assert!(read("reports.jsonl.2").contains("\"firstFrameMs\":30"));
        assert!(!dir.join("reports.jsonl.3").exists());
        assert!(read("reports.jsonl").contains("\"result\":\"accepted\""));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn first_frame_histogram_is_cumulative() {
        let mut h = FirstFrameHistogram::default();
        h.observe(150.0);
        h.observe(2500.0);
        assert_eq!(h.buckets[0], 0); // ≤ 100
        assert_eq!(h.buckets[1], 1); // ≤ 200
        assert_eq!(h.buckets[8], 2); // ≤ 3000
        assert_eq!(h.count, 2);
        assert_eq!(h.sum_ms, 2650.0);
    }
}
