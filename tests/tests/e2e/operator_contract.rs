//! What operators and their tools rely on, across dialects: go-live's records API over real
//! recordings (specs/dialects.md §5.1, §5.4), IVF files that carry the real frame size and
//! timing (VP8 from aiortc, VP9 and AV1 from Chromium), the rooms API's CORS, room-name,
//! admission-order, rate-limit, answer and bootstrap rules (§5), Live777's token on reads and
//! session changes and its listing (§2.1, §2.5), a cascade pulling from a token-protected
//! origin (§2.3), and runner365's failure strings and `Location` (§3.2).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail, ensure};
use gatehouse_e2e::{
    ClientResult, GatewayProcess, Play, Publish, absolute, bounded, http, ice_credentials,
    media_lock, offers, sdpfrag, spawn_browser_pages_with, start_gateway, wait_for_media,
    wait_room,
};
use gatehouse_sdk::jwt::{Algorithm, Claims, sign};
use reqwest::Method;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};

async fn run(name: &str, limit: Duration, body: impl std::future::Future<Output = Result<()>>) {
    if let Err(e) = bounded(name, limit, body).await {
        panic!("{name}: {e:#}");
    }
}

fn table(text: &str) -> toml::Table {
    toml::from_str(text).unwrap_or_default()
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// (status, headers, body) of a request.
async fn call(request: reqwest::RequestBuilder) -> Result<(u16, HeaderMap, String)> {
    let response = request.send().await?;
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    Ok((status, headers, response.text().await?))
}

/// Every value of header `name`, joined with ", " ("" when absent).
fn hdr(headers: &HeaderMap, name: &str) -> String {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect::<Vec<_>>()
        .join(", ")
}

fn extension(path: &Path) -> &str {
    path.extension().and_then(|e| e.to_str()).unwrap_or("")
}

// ---------------------------------------------------------------------------------------------
// recordings

fn record_dir(name: &str) -> Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("gatehouse-ops-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// The recordings of `room` (files named `{room}_…`), sorted.
fn recordings(dir: &Path, room: &str) -> Result<Vec<PathBuf>> {
    let prefix = format!("{room}_");
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&prefix))
        })
        .collect();
    files.sort();
    Ok(files)
}

/// What ffprobe reads from a file (width and height 0 for audio).
#[derive(Debug, Clone, Default)]
struct Probe {
    codec: String,
    width: u64,
    height: u64,
    /// Seconds; 0 when ffprobe gives none.
    duration: f64,
}

async fn probe(file: &Path) -> Result<Probe> {
    let mut command = tokio::process::Command::new("ffprobe");
    command
        .args(["-v", "error", "-show_entries"])
        .arg("stream=codec_name,width,height:format=duration")
        .args(["-of", "json"])
        .arg(file)
        .kill_on_drop(true);
    let output = tokio::time::timeout(Duration::from_secs(15), command.output())
        .await
        .context("ffprobe did not finish within 15 s")?
        .context("running ffprobe (tests/setup.sh installs ffmpeg)")?;
    if !output.status.success() {
        bail!(
            "ffprobe {}: {}",
            file.display(),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let json: Value = serde_json::from_slice(&output.stdout)?;
    let stream = &json["streams"][0];
    Ok(Probe {
        codec: stream["codec_name"].as_str().unwrap_or_default().to_owned(),
        width: stream["width"].as_u64().unwrap_or(0),
        height: stream["height"].as_u64().unwrap_or(0),
        duration: json["format"]["duration"]
            .as_str()
            .and_then(|d| d.parse().ok())
            .unwrap_or(0.0),
    })
}

/// Waits until `room` has, for each `(extension, codec)` of `wanted`, a file ffprobe reads as
/// that codec and longer than `min_secs`, and the room's files stopped growing (the recorder
/// finalizes after the publisher left). Returns every file of the room with its probe.
async fn finished_recordings(
    dir: &Path,
    room: &str,
    wanted: &[(&str, &str)],
    min_secs: f64,
) -> Result<Vec<(PathBuf, Probe)>> {
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut last_error = None;
    loop {
        let mut found = Vec::new();
        for file in recordings(dir, room)? {
            match probe(&file).await {
                Ok(p) => found.push((file, p)),
                Err(e) => last_error = Some(format!("{e:#}")),
            }
        }
        let complete = wanted.iter().all(|(ext, codec)| {
            found
                .iter()
                .any(|(f, p)| extension(f) == *ext && p.codec == *codec && p.duration > min_secs)
        });
        if complete && sizes_settled(&found).await? {
            return Ok(found);
        }
        if Instant::now() >= deadline {
            bail!(
                "{room}: no finished {wanted:?} recordings longer than {min_secs} s in {}; \
                 ffprobe saw {found:?} (last ffprobe error: {last_error:?})",
                dir.display()
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The files' sizes are the same 300 ms apart.
async fn sizes_settled(files: &[(PathBuf, Probe)]) -> Result<bool> {
    let sizes = || -> std::io::Result<Vec<u64>> {
        files
            .iter()
            .map(|(f, _)| std::fs::metadata(f).map(|m| m.len()))
            .collect()
    };
    let before = sizes()?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    Ok(before == sizes()?)
}

/// An aiortc publisher on `room` (standard WHIP) for `seconds`, then DELETE.
async fn publish_and_leave(
    base: &str,
    room: &str,
    seconds: f64,
    size: (u32, u32),
) -> Result<ClientResult> {
    Publish {
        seconds,
        size,
        ..Default::default()
    }
    .spawn(&format!("{base}/v1/whip/{room}"))?
    .finish()
    .await?
    .expect_ok()
}

/// `{room}_{trackId}_{unixSeconds}.{ivf|ogg}` (go-live's `^{room}_[^_]+_\d{10}\.(ivf|ogg)$`)
/// → (trackId, unixSeconds, extension).
fn record_name_parts<'a>(name: &'a str, room: &str) -> Option<(&'a str, u64, &'a str)> {
    let rest = name.strip_prefix(room)?.strip_prefix('_')?;
    let (stem, ext) = rest.rsplit_once('.')?;
    if ext != "ivf" && ext != "ogg" {
        return None;
    }
    let (track, seconds) = stem.rsplit_once('_')?;
    let digits = seconds.len() == 10 && seconds.bytes().all(|b| b.is_ascii_digit());
    if track.is_empty() || track.contains('_') || !digits {
        return None;
    }
    Some((track, seconds.parse().ok()?, ext))
}

/// Days from 1970-01-01 to a civil date (proleptic Gregorian).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year.rem_euclid(400);
    let day_of_year = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// Unix seconds of an RFC 3339 date-time (`2024-03-10T12:34:56Z`, an optional fraction, `Z`
/// or `±hh:mm`); `None` when `text` is not one.
fn rfc3339_secs(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let number = |from: usize, to: usize| -> Option<i64> {
        let part = text.get(from..to)?;
        if !part.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        part.parse().ok()
    };
    let (year, month, day) = (number(0, 4)?, number(5, 7)?, number(8, 10)?);
    let (hour, minute, second) = (number(11, 13)?, number(14, 16)?, number(17, 19)?);
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let mut rest = text.get(19..)?;
    if let Some(fraction) = rest.strip_prefix('.') {
        let digits = fraction.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        rest = &fraction[digits..];
    }
    let offset = match rest {
        "Z" | "z" => 0,
        _ => {
            let r = rest.as_bytes();
            if r.len() != 6 || !matches!(r[0], b'+' | b'-') || r[3] != b':' {
                return None;
            }
            let hours: i64 = rest.get(1..3)?.parse().ok()?;
            let minutes: i64 = rest.get(4..6)?.parse().ok()?;
            let sign = if r[0] == b'+' { 1 } else { -1 };
            sign * (hours * 3600 + minutes * 60)
        }
    };
    Some(days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second - offset)
}

/// An IVF file's header and frame timestamps.
#[derive(Debug)]
struct Ivf {
    fourcc: String,
    width: u16,
    height: u16,
    /// Timebase denominator and numerator: a timestamp is `pts * scale / rate` seconds.
    rate: u32,
    scale: u32,
    /// The header's length field (ffmpeg reads it as the duration in timebase units).
    length: u32,
    pts: Vec<u64>,
}

impl Ivf {
    fn parse(bytes: &[u8]) -> Result<Self> {
        ensure!(
            bytes.len() >= 32 && bytes.starts_with(b"DKIF"),
            "not an IVF file ({} bytes)",
            bytes.len()
        );
        let u16_at = |i: usize| u16::from_le_bytes([bytes[i], bytes[i + 1]]);
        let u32_at =
            |i: usize| u32::from_le_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]);
        let mut pts = Vec::new();
        let mut at = usize::from(u16_at(6)).max(32);
        while at + 12 <= bytes.len() {
            let size = u32_at(at) as usize;
            if at + 12 + size > bytes.len() {
                break;
            }
            let mut stamp = [0u8; 8];
            stamp.copy_from_slice(&bytes[at + 4..at + 12]);
            pts.push(u64::from_le_bytes(stamp));
            at += 12 + size;
        }
        Ok(Self {
            fourcc: String::from_utf8_lossy(&bytes[8..12]).into_owned(),
            width: u16_at(12),
            height: u16_at(14),
            rate: u32_at(16),
            scale: u32_at(20),
            length: u32_at(24),
            pts,
        })
    }

    /// Seconds from the first frame's timestamp to the last one's.
    fn span_secs(&self) -> f64 {
        match (self.pts.first(), self.pts.last()) {
            (Some(first), Some(last)) if self.rate > 0 => {
                last.saturating_sub(*first) as f64 * f64::from(self.scale) / f64::from(self.rate)
            }
            _ => 0.0,
        }
    }
}

/// Two publishers record in two rooms, ≥ 1.1 s apart; `GET /api/records` is admin-only (even
/// its preflight), lists every file with go-live's name, size, modTime and url, newest first
/// then by name, and each url downloads exactly the file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_api_lists_real_recordings_to_the_admin_newest_first_and_serves_each_file() {
    let _guard = media_lock().await;
    run("records_api", Duration::from_secs(90), async {
        const FIRST: &str = "recfirst";
        const SECOND: &str = "recsecond";
        let started = unix_now();
        let dir = record_dir("records")?;
        let gw = start_gateway(|c| {
            c.record.enabled = true;
            c.record.dir = dir.clone();
            c.policies
                .config
                .insert("token-auth".into(), table("admin_token = \"ops\""));
        })
        .await?;
        let base = gw.base_url();
        let client = http();

        // Finished files (a positive duration: IVF timing is the next test's subject).
        publish_and_leave(&base, FIRST, 2.0, (640, 480)).await?;
        finished_recordings(&dir, FIRST, &[("ivf", "vp8"), ("ogg", "opus")], 0.0).await?;
        // A later second on the clock, so the second room's files sort first.
        tokio::time::sleep(Duration::from_millis(1100)).await;
        publish_and_leave(&base, SECOND, 2.0, (640, 480)).await?;
        finished_recordings(&dir, SECOND, &[("ivf", "vp8"), ("ogg", "opus")], 0.0).await?;

        let records = format!("{base}/api/records");
        let (s, _, body) = call(client.get(&records)).await?;
        ensure!(
            s == 401 && body == "unauthorized\n",
            "records without a token: {s} {body:?}"
        );
        let preflight = client
            .request(Method::OPTIONS, &records)
            .header("origin", "https://app.example")
            .header("access-control-request-method", "GET");
        let (s, _, body) = call(preflight).await?;
        ensure!(
            s == 401,
            "a preflight of /api/records must be 401 (go-live's admin check runs first): {s} {body:?}"
        );
        let (s, h, body) = call(client.get(&records).bearer_auth("ops")).await?;
        ensure!(
            s == 200 && hdr(&h, "content-type").starts_with("application/json"),
            "records as admin: {s} {h:?} {body:?}"
        );
        let list: Vec<Value> =
            serde_json::from_str(&body).with_context(|| format!("records list: {body}"))?;
        println!("records: {body}");

        let mut on_disk: Vec<String> = std::fs::read_dir(&dir)?
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| n.ends_with(".ivf") || n.ends_with(".ogg"))
            .collect();
        on_disk.sort();
        let mut listed: Vec<String> = list
            .iter()
            .filter_map(|e| e["name"].as_str().map(str::to_owned))
            .collect();
        listed.sort();
        ensure!(
            on_disk.len() == 4 && listed == on_disk,
            "listed {listed:?}, on disk {on_disk:?}"
        );

        let mut keys: Vec<(i64, String)> = Vec::new();
        let mut tracks: Vec<(&str, String, String)> = Vec::new();
        for entry in &list {
            let name = entry["name"]
                .as_str()
                .with_context(|| format!("entry without a name: {entry}"))?;
            let room = [SECOND, FIRST]
                .into_iter()
                .find(|r| name.starts_with(&format!("{r}_")))
                .with_context(|| format!("{name} is a recording of neither room"))?;
            let (track, seconds, ext) = record_name_parts(name, room).with_context(|| {
                format!("{name} is not {room}_<trackId>_<unixSeconds>.(ivf|ogg)")
            })?;
            ensure!(
                (started.saturating_sub(1)..=unix_now() + 1).contains(&seconds),
                "{name}: {seconds} is not a time during this test (from {started})"
            );
            let path = dir.join(name);
            let meta = std::fs::metadata(&path)?;
            let size = entry["size"].as_u64().unwrap_or(0);
            ensure!(
                size > 0 && size == meta.len(),
                "{name}: listed size {} but {} bytes on disk",
                entry["size"],
                meta.len()
            );
            let mod_time = entry["modTime"].as_str().unwrap_or_default();
            let listed_secs = rfc3339_secs(mod_time)
                .with_context(|| format!("{name}: modTime {mod_time:?} is not RFC 3339"))?;
            let disk_secs = i64::try_from(meta.modified()?.duration_since(UNIX_EPOCH)?.as_secs())?;
            ensure!(
                (listed_secs - disk_secs).abs() <= 1,
                "{name}: modTime {mod_time} vs the file's {disk_secs}"
            );
            let url = entry["url"].as_str().unwrap_or_default();
            ensure!(
                url == format!("/records/{name}"),
                "{name}: url {url:?}, expected /records/{name}"
            );
            let download = client.get(absolute(&base, url)).send().await?;
            ensure!(
                download.status() == 200,
                "GET {url} -> {}",
                download.status()
            );
            let bytes = download.bytes().await?;
            let magic: &[u8] = if ext == "ivf" { b"DKIF" } else { b"OggS" };
            ensure!(
                bytes.len() as u64 == size && bytes.starts_with(magic),
                "GET {url}: {} bytes starting {:?}, expected {size} starting {:?}",
                bytes.len(),
                &bytes[..bytes.len().min(4)],
                magic
            );
            ensure!(
                &bytes[..] == std::fs::read(&path)?.as_slice(),
                "GET {url} differs from the file"
            );
            keys.push((listed_secs, name.to_owned()));
            tracks.push((room, ext.to_owned(), track.to_owned()));
        }

        for pair in keys.windows(2) {
            let ((ta, na), (tb, nb)) = (&pair[0], &pair[1]);
            ensure!(
                ta > tb || (ta == tb && na < nb),
                "not sorted by modTime desc then name asc: {keys:?}"
            );
        }
        ensure!(
            keys.len() == 4
                && keys[..2]
                    .iter()
                    .all(|(_, n)| n.starts_with(&format!("{SECOND}_"))),
            "the later room's recordings must come first: {keys:?}"
        );
        for room in [FIRST, SECOND] {
            let of_room: Vec<&(&str, String, String)> =
                tracks.iter().filter(|t| t.0 == room).collect();
            let mut exts: Vec<&str> = of_room.iter().map(|t| t.1.as_str()).collect();
            exts.sort();
            ensure!(
                exts == ["ivf", "ogg"] && of_room[0].2 != of_room[1].2,
                "{room}: one .ivf and one .ogg, each named after its own track: {of_room:?}"
            );
        }

        let (s, _, body) = call(client.get(format!("{base}/api/bootstrap"))).await?;
        let boot: Value = serde_json::from_str(&body)?;
        ensure!(
            s == 200
                && boot["recordEnabled"] == true
                && boot["features"] == json!({"rooms": true, "records": true}),
            "bootstrap of a recording gateway: {body}"
        );
        gw.shutdown().await;
        let _ = std::fs::remove_dir_all(&dir);
        Ok(())
    })
    .await;
}

/// A 640x480 and a 320x240 publisher: each `.ivf` header says its real frame size, and the
/// frame timestamps and ffprobe's duration match how long it published (±35 %).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recorded_ivf_headers_carry_the_publishers_frame_size_and_real_timing() {
    let _guard = media_lock().await;
    run("record_ivf_headers", Duration::from_secs(90), async {
        const SECONDS: f64 = 4.0;
        let dir = record_dir("ivf")?;
        let gw = start_gateway(|c| {
            c.record.enabled = true;
            c.record.dir = dir.clone();
        })
        .await?;
        let base = gw.base_url();
        let (low, high) = (SECONDS * 0.65, SECONDS * 1.35);
        for (room, size) in [("vga", (640u32, 480u32)), ("qvga", (320, 240))] {
            publish_and_leave(&base, room, SECONDS, size).await?;
            let files = finished_recordings(&dir, room, &[("ivf", "vp8")], 0.0).await?;
            let (path, probed) = files
                .iter()
                .find(|(f, _)| extension(f) == "ivf")
                .with_context(|| format!("{room}: no .ivf"))?;
            let ivf = Ivf::parse(&std::fs::read(path)?)?;
            println!(
                "{room}: header {}x{} fourcc {} timebase {}/{} length {}, {} frames spanning \
                 {:.2} s; ffprobe {probed:?}",
                ivf.width,
                ivf.height,
                ivf.fourcc,
                ivf.scale,
                ivf.rate,
                ivf.length,
                ivf.pts.len(),
                ivf.span_secs()
            );
            ensure!(
                (u32::from(ivf.width), u32::from(ivf.height)) == size,
                "{room}: IVF header says {}x{}, the publisher sent {}x{}",
                ivf.width,
                ivf.height,
                size.0,
                size.1
            );
            ensure!(
                (probed.width, probed.height) == (u64::from(size.0), u64::from(size.1)),
                "{room}: ffprobe reads {}x{}, the publisher sent {}x{}",
                probed.width,
                probed.height,
                size.0,
                size.1
            );
            ensure!(
                ivf.rate > 0 && ivf.scale > 0 && ivf.pts.len() > 10,
                "{room}: timebase {}/{} with {} frames",
                ivf.scale,
                ivf.rate,
                ivf.pts.len()
            );
            ensure!(
                ivf.pts.windows(2).all(|w| w[0] <= w[1]),
                "{room}: frame timestamps go backwards: {:?}",
                ivf.pts
            );
            ensure!(
                (low..=high).contains(&ivf.span_secs()),
                "{room}: frames span {:.2} s of timestamps, the publisher sent for {SECONDS} s",
                ivf.span_secs()
            );
            ensure!(
                (low..=high).contains(&probed.duration),
                "{room}: ffprobe duration {:.2} s, the publisher sent for {SECONDS} s",
                probed.duration
            );
        }
        gw.shutdown().await;
        let _ = std::fs::remove_dir_all(&dir);
        Ok(())
    })
    .await;
}

/// Chromium's publish page sends VP9, then AV1 (`--video`); each becomes an `.ivf` that
/// ffprobe reads as that codec with a positive duration.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_vp9_and_av1_publishers_are_recorded_to_ivf_files_ffprobe_reads() {
    let _guard = media_lock().await;
    run("record_vp9_av1", Duration::from_secs(170), async {
        let dir = record_dir("chromium")?;
        let gw = start_gateway(|c| {
            c.record.enabled = true;
            c.record.dir = dir.clone();
        })
        .await?;
        let base = gw.base_url();
        for codec in ["vp9", "av1"] {
            let stream = format!("rec-{codec}");
            let pages = spawn_browser_pages_with(&base, &stream, 3.0, &["--video", codec])?
                .finish()
                .await?;
            ensure!(
                !pages.timed_out,
                "{codec}: driver timed out: {}",
                pages.describe()
            );
            // publish.html falls back to the default codec when Chromium cannot send the one
            // asked for: the player's decoded codec tells which one went out.
            let sent = pages.str("video_codec").unwrap_or("").to_ascii_lowercase();
            ensure!(
                sent == codec,
                "headless Chromium did not publish {codec} (the player decoded {sent:?}): is \
                 {codec} encoding unavailable in this Chromium? {}",
                pages.describe()
            );
            // The browser is gone; ending the stream finalizes its files now rather than at
            // the consent timeout.
            let ended = http()
                .delete(format!("{base}/api/streams/{stream}"))
                .send()
                .await?
                .status()
                .as_u16();
            ensure!(
                ended == 204 || ended == 404,
                "DELETE stream {stream}: {ended}"
            );
            let files = finished_recordings(&dir, &stream, &[("ivf", codec)], 0.0).await?;
            println!(
                "chromium {codec}: {} frames decoded by the player; recordings {files:?}",
                pages.u64("frames_decoded")
            );
        }
        gw.shutdown().await;
        let _ = std::fs::remove_dir_all(&dir);
        Ok(())
    })
    .await;
}

// ---------------------------------------------------------------------------------------------
// rooms API

const APP_ORIGIN: &str = "https://app.example";
const TURN_URL: &str = "turn:turn.example:3478";

/// `ALLOWED_ORIGIN="*"` (the default) answers `*` without `Vary: Origin`; a configured origin
/// is echoed on an actual request, with `Vary: Origin` and credentials.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rooms_cors_is_a_wildcard_by_default_and_echoes_the_configured_origin_with_credentials() {
    run("rooms_cors", Duration::from_secs(60), async {
        let client = http();
        let open = start_gateway(|_| {}).await?;
        for origin in [None, Some("https://anywhere.example")] {
            let mut request = client.get(format!("{}/api/rooms", open.base_url()));
            if let Some(origin) = origin {
                request = request.header("origin", origin);
            }
            let (s, h, _) = call(request).await?;
            ensure!(
                s == 200 && hdr(&h, "access-control-allow-origin") == "*",
                "GET /api/rooms with origin {origin:?}: {s} {h:?}"
            );
            ensure!(
                !hdr(&h, "vary").to_ascii_lowercase().contains("origin"),
                "a wildcard answer varies by Origin: {h:?}"
            );
        }
        open.shutdown().await;

        let pinned = start_gateway(|c| {
            c.rooms
                .apply_env(|v| (v == "ALLOWED_ORIGIN").then(|| APP_ORIGIN.to_owned()))
                .unwrap_or_default();
        })
        .await?;
        let request = client
            .get(format!("{}/api/rooms", pinned.base_url()))
            .header("origin", APP_ORIGIN);
        let (s, h, _) = call(request).await?;
        ensure!(
            s == 200
                && hdr(&h, "access-control-allow-origin") == APP_ORIGIN
                && hdr(&h, "vary").contains("Origin")
                && hdr(&h, "access-control-allow-credentials") == "true",
            "GET /api/rooms from the configured origin: {s} {h:?}"
        );
        pinned.shutdown().await;
        Ok(())
    })
    .await;
}

/// A room name outside `^[A-Za-z0-9_-]{1,64}$` is 400 `invalid room` sent before go-live's
/// CORS headers (preflight included), whatever the origin setting.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rooms_invalid_room_names_are_400_text_without_cors_headers() {
    run("rooms_invalid_room", Duration::from_secs(60), async {
        let client = http();
        let offer = offers().await?.whip[0].clone();
        let long = "x".repeat(65);
        for allowed in ["*", APP_ORIGIN] {
            let gw = start_gateway(|c| c.rooms.allowed_origin = allowed.into()).await?;
            let base = gw.base_url();
            let cases = [
                (Method::POST, format!("{base}/api/whip/publish/bad!name")),
                (Method::POST, format!("{base}/api/whep/play/{long}")),
                (Method::OPTIONS, format!("{base}/api/whip/publish/bad!name")),
                (Method::OPTIONS, format!("{base}/api/whep/play/{long}")),
            ];
            for (method, url) in cases {
                let mut request = client
                    .request(method.clone(), url.as_str())
                    .header("origin", APP_ORIGIN);
                request = if method == Method::OPTIONS {
                    request.header("access-control-request-method", "POST")
                } else {
                    request.body(offer.clone())
                };
                let (s, h, body) = call(request).await?;
                ensure!(
                    s == 400 && body == "invalid room\n",
                    "{method} {url} (ALLOWED_ORIGIN {allowed}): {s} {body:?}"
                );
                ensure!(
                    hdr(&h, "access-control-allow-origin").is_empty()
                        && hdr(&h, "access-control-allow-credentials").is_empty(),
                    "{method} {url} (ALLOWED_ORIGIN {allowed}): CORS headers on an invalid room: {h:?}"
                );
            }
            // 64 characters is a valid name: its other errors do carry CORS headers.
            let request = client
                .post(format!("{base}/api/whip/publish/{}", "x".repeat(64)))
                .header("origin", APP_ORIGIN);
            let (s, h, body) = call(request).await?;
            ensure!(
                s == 400
                    && body == "invalid request body\n"
                    && !hdr(&h, "access-control-allow-origin").is_empty(),
                "64-character room, empty body (ALLOWED_ORIGIN {allowed}): {s} {body:?} {h:?}"
            );
            gw.shutdown().await;
        }
        Ok(())
    })
    .await;
}

/// A room a Live777 WHEP subscriber created (no publisher) at `MAX_SUBS_PER_ROOM=1`: a rooms
/// play gets 403 `subscriber limit reached`, checked before the 404 of a room without
/// publisher; a room under its cap gets the 404.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rooms_play_over_the_subscriber_cap_is_403_before_the_404_of_a_room_without_publisher() {
    run("rooms_cap_before_404", Duration::from_secs(60), async {
        let gw = start_gateway(|c| {
            c.policies
                .apply_env(|v| (v == "MAX_SUBS_PER_ROOM").then(|| "1".to_owned()))
                .unwrap_or_default();
        })
        .await?;
        let base = gw.base_url();
        let client = http();
        let o = offers().await?;
        let waiting = client
            .post(format!("{base}/whep/lonely"))
            .header("Content-Type", "application/sdp")
            .body(o.whep[0].clone());
        let (s, _, body) = call(waiting).await?;
        ensure!(
            s == 201,
            "Live777 WHEP on a new stream (auto_create_whep): {s} {body:?}"
        );
        let (settled, snapshot) = wait_room(&gw, "lonely", Duration::from_secs(3), |r| {
            r.is_some_and(|r| r.publishers == 0 && r.subscribers == 1)
        })
        .await;
        ensure!(settled, "room lonely: {snapshot:?}");

        let play = client
            .post(format!("{base}/api/whep/play/lonely"))
            .body(o.whep[1].clone());
        let (s, h, body) = call(play).await?;
        let reply: Value = serde_json::from_str(&body).unwrap_or_default();
        ensure!(
            s == 403
                && hdr(&h, "content-type").starts_with("application/json")
                && reply == json!({"error": "subscriber limit reached"}),
            "play over the cap in a room without publisher: {s} {body:?}"
        );
        let play = client
            .post(format!("{base}/api/whep/play/nobody"))
            .body(o.whep[2].clone());
        let (s, _, body) = call(play).await?;
        let reply: Value = serde_json::from_str(&body).unwrap_or_default();
        ensure!(
            s == 404 && reply == json!({"error": "no active publisher in room"}),
            "play in an unknown room under the cap: {s} {body:?}"
        );
        gw.shutdown().await;
        Ok(())
    })
    .await;
}

/// Publish, play, bootstrap and records each answer 429 `too many requests` past the burst
/// (one gateway each: the bucket is per client IP, shared by the routes); healthz, metrics and
/// the admin close are never limited.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rooms_rate_limit_covers_publish_play_bootstrap_records_not_healthz_metrics_close() {
    run("rooms_rate_limit", Duration::from_secs(90), async {
        let client = http();
        let routes = [
            ("publish", Method::POST, "/api/whip/publish/rl"),
            ("play", Method::POST, "/api/whep/play/rl"),
            ("bootstrap", Method::GET, "/api/bootstrap"),
            ("records", Method::GET, "/api/records"),
        ];
        let mut last: Option<gatehouse::Gateway> = None;
        for (what, method, path) in routes {
            let gw = start_gateway(|c| {
                c.rooms.rate_limit_rps = 0.05;
                c.rooms.rate_limit_burst = 2;
                c.policies
                    .config
                    .insert("token-auth".into(), table("admin_token = \"ops\""));
            })
            .await?;
            let url = format!("{}{path}", gw.base_url());
            let request = || {
                client
                    .request(method.clone(), url.as_str())
                    .header("x-auth-token", "ops")
            };
            for n in 1..=2 {
                let (s, _, body) = call(request()).await?;
                ensure!(
                    s != 429,
                    "{what}: request {n} of a burst of 2 was limited: {body:?}"
                );
            }
            let (s, _, body) = call(request()).await?;
            ensure!(
                s == 429 && body == "too many requests\n",
                "{what}: third request: {s} {body:?}"
            );
            if let Some(previous) = last.replace(gw) {
                previous.shutdown().await;
            }
        }
        let gw = last.context("no gateway")?;
        let base = gw.base_url();
        for _ in 0..4 {
            let (s, _, _) = call(client.get(format!("{base}/healthz"))).await?;
            ensure!(s == 200, "/healthz of a limited client: {s}");
            let (s, _, _) = call(client.get(format!("{base}/metrics"))).await?;
            ensure!(s == 200, "/metrics of a limited client: {s}");
            let close = client
                .post(format!("{base}/api/admin/rooms/rl/close"))
                .header("x-auth-token", "ops");
            let (s, _, body) = call(close).await?;
            ensure!(
                s == 404 && body == "not found\n",
                "admin close of a limited client: {s} {body:?}"
            );
        }
        let (s, _, _) = call(client.get(format!("{base}/api/bootstrap"))).await?;
        ensure!(s == 429, "the client's bucket should still be empty: {s}");
        gw.shutdown().await;
        Ok(())
    })
    .await;
}

/// The 201 of a rooms publish and of a rooms play is the SDP answer as `application/sdp`,
/// without a session resource.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rooms_publish_and_play_answer_201_with_application_sdp() {
    run("rooms_answer_type", Duration::from_secs(60), async {
        let gw = start_gateway(|_| {}).await?;
        let base = gw.base_url();
        let client = http();
        let o = offers().await?;
        for (what, path, offer) in [
            ("publish", "/api/whip/publish/ctype", &o.whip[1]),
            ("play", "/api/whep/play/ctype", &o.whep[2]),
        ] {
            let (s, h, body) =
                call(client.post(format!("{base}{path}")).body(offer.clone())).await?;
            ensure!(
                s == 201
                    && hdr(&h, "content-type").starts_with("application/sdp")
                    && body.starts_with("v=0")
                    && hdr(&h, "location").is_empty(),
                "{what}: {s} {h:?} {}",
                body.chars().take(120).collect::<String>()
            );
        }
        gw.shutdown().await;
        Ok(())
    })
    .await;
}

fn turn_server() -> gatehouse::config::IceServerConfig {
    gatehouse::config::IceServerConfig {
        urls: vec![TURN_URL.into()],
        username: Some("turn-user".into()),
        credential: Some("turn-secret".into()),
    }
}

/// `/api/bootstrap{query}` as a caller presenting `header` sees it, and whether it holds the
/// TURN username and credential.
async fn bootstrap_as(
    base: &str,
    query: &str,
    header: Option<(&str, &str)>,
) -> Result<(Value, bool)> {
    let mut request = http().get(format!("{base}/api/bootstrap{query}"));
    if let Some((name, value)) = header {
        request = request.header(name, value);
    }
    let (s, _, body) = call(request).await?;
    ensure!(s == 200, "bootstrap{query} with {header:?}: {s} {body:?}");
    let boot: Value = serde_json::from_str(&body)?;
    let server = &boot["iceServers"][0];
    ensure!(
        server["urls"][0] == TURN_URL,
        "bootstrap lost the TURN URL: {body}"
    );
    let username = server.get("username").is_some();
    let credential = server.get("credential").is_some();
    ensure!(
        username == credential,
        "TURN username and credential go together: {body}"
    );
    if credential {
        ensure!(
            server["username"] == "turn-user" && server["credential"] == "turn-secret",
            "TURN secrets: {body}"
        );
    }
    Ok((boot, credential))
}

fn jwt(secret: &str, claims: Value) -> String {
    let claims: Claims = claims.as_object().cloned().unwrap_or_default();
    sign(Algorithm::Hs256, &claims, secret.as_bytes())
}

/// A bootstrap case: what the caller is, the query, the header it presents, and whether it
/// must get the TURN credentials.
type BootstrapCase = (
    &'static str,
    &'static str,
    Option<(&'static str, String)>,
    bool,
);

async fn expect_bootstrap(base: &str, setup: &str, cases: Vec<BootstrapCase>) -> Result<()> {
    for (what, query, header, expected) in cases {
        let presented = header.as_ref().map(|(n, v)| (*n, v.as_str()));
        let (boot, secrets) = bootstrap_as(base, query, presented).await?;
        ensure!(
            secrets == expected,
            "{setup}, {what} (bootstrap{query}): TURN credentials given = {secrets}, \
             expected {expected}: {boot}"
        );
    }
    Ok(())
}

/// With auth on, TURN credentials go only to callers presenting a token valid for some
/// configured credential (a room token, the auth or admin token, a valid JWT); anonymous and
/// wrong-token callers get the URLs alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rooms_bootstrap_gives_turn_credentials_only_to_callers_with_a_valid_token() {
    run("rooms_bootstrap", Duration::from_secs(60), async {
        let bearer = |t: &str| Some(("authorization", format!("Bearer {t}")));
        let x_auth = |t: &str| Some(("x-auth-token", t.to_owned()));
        let now = unix_now() as i64;
        let demo = "?room=demo";

        // Only room tokens: auth is on although no AUTH_TOKEN is set.
        let rooms_only = start_gateway(|c| {
            c.webrtc.ice_servers = vec![turn_server()];
            c.policies
                .apply_env(|v| (v == "ROOM_TOKENS").then(|| "demo:tok".to_owned()))
                .unwrap_or_default();
        })
        .await?;
        let (boot, _) = bootstrap_as(&rooms_only.base_url(), "", None).await?;
        ensure!(
            boot["authEnabled"] == true
                && boot["recordEnabled"] == false
                && boot["features"] == json!({"rooms": true, "records": true}),
            "bootstrap: {boot}"
        );
        let agreed: Vec<BootstrapCase> = vec![
            ("anonymous", "", None, false),
            ("a wrong token", "", bearer("nope"), false),
            ("anonymous", demo, None, false),
            ("a wrong token", demo, bearer("nope"), false),
            ("the room token as Bearer", demo, bearer("tok"), true),
            ("the room token as X-Auth-Token", demo, x_auth("tok"), true),
        ];
        expect_bootstrap(&rooms_only.base_url(), "room tokens only", agreed).await?;

        let every_kind = start_gateway(|c| {
            c.webrtc.ice_servers = vec![turn_server()];
            c.policies.config.insert(
                "token-auth".into(),
                table(
                    "room_tokens = \"demo:tok\"\nauth_token = \"all\"\n\
                     admin_token = \"ops\"\njwt_secret = \"k3y\"",
                ),
            );
        })
        .await?;
        let agreed: Vec<BootstrapCase> = vec![
            ("anonymous", "", None, false),
            ("a wrong token", "", bearer("nope"), false),
            ("the auth token as Bearer", "", bearer("all"), true),
            ("the auth token as X-Auth-Token", "", x_auth("all"), true),
            ("the admin token", "", x_auth("ops"), true),
            (
                "a valid JWT for any room",
                "",
                bearer(jwt("k3y", json!({"exp": now + 600})).as_str()),
                true,
            ),
            (
                "a valid JWT for room demo",
                demo,
                bearer(jwt("k3y", json!({"room": "demo", "exp": now + 600})).as_str()),
                true,
            ),
            ("the room token", demo, x_auth("tok"), true),
            (
                "a JWT signed with another key",
                "",
                bearer(jwt("other", json!({"exp": now + 600})).as_str()),
                false,
            ),
            (
                "an expired JWT",
                "",
                bearer(jwt("k3y", json!({"exp": now - 3600})).as_str()),
                false,
            ),
        ];
        expect_bootstrap(&every_kind.base_url(), "every credential kind", agreed).await?;

        // A room token proves nothing without its room: the policies cannot tell it from a
        // guess for a gateway whose other rooms are open.
        let alone: Vec<BootstrapCase> =
            vec![("a room token without ?room=", "", bearer("tok"), false)];
        expect_bootstrap(&rooms_only.base_url(), "room tokens only", alone).await?;
        rooms_only.shutdown().await;
        every_kind.shutdown().await;
        Ok(())
    })
    .await;
}

// ---------------------------------------------------------------------------------------------
// Live777

/// Live777's `[auth] tokens = ["ops"]`: a static token has every right, so in token-auth terms
/// it is both the auth token (publish, play, a session's PATCH and DELETE) and the admin token
/// (listings, strategy, SSE, stream administration).
const LIVE777_TOKEN: &str = "auth_token = \"ops\"\nadmin_token = \"ops\"";

/// Whether `room` still has session `id`.
async fn has_session(gw: &gatehouse::Gateway, room: &str, id: &str) -> bool {
    gw.room(room)
        .await
        .is_some_and(|r| r.sessions.iter().any(|s| s.id == id))
}

/// Once a token is configured, Live777's reads (streams, one stream, SSE, strategy) are 401
/// with an empty body without it and 200 with it; `/api/info` and `/metrics` stay open; a
/// session's PATCH and DELETE need it too, and the session survives the refused ones.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live777_reads_and_session_changes_need_the_token_once_one_is_configured() {
    run("live777_token", Duration::from_secs(60), async {
        let gw = start_gateway(|c| {
            c.policies
                .config
                .insert("token-auth".into(), table(LIVE777_TOKEN));
        })
        .await?;
        let base = gw.base_url();
        let client = http();
        let (s, _, body) = call(
            client
                .post(format!("{base}/api/streams/a"))
                .bearer_auth("ops"),
        )
        .await?;
        ensure!(s == 204, "create stream a as admin: {s} {body:?}");

        for path in ["/api/streams/", "/api/streams/a", "/api/strategy/"] {
            let (s, _, body) = call(client.get(format!("{base}{path}"))).await?;
            ensure!(
                s == 401 && body.is_empty(),
                "GET {path} without the token: {s} {body:?}"
            );
            let (s, _, body) =
                call(client.get(format!("{base}{path}")).bearer_auth("guess")).await?;
            ensure!(
                s == 401 && body.is_empty(),
                "GET {path} with a wrong token: {s} {body:?}"
            );
            let (s, _, body) = call(client.get(format!("{base}{path}")).bearer_auth("ops")).await?;
            ensure!(s == 200, "GET {path} with the token: {s} {body:?}");
        }
        // The SSE stream never ends: read a body only once it is known to be the 401.
        let sse = client.get(format!("{base}/api/sse/streams")).send().await?;
        let status = sse.status().as_u16();
        ensure!(
            status == 401,
            "GET /api/sse/streams without the token: {status}"
        );
        let body = sse.text().await?;
        ensure!(
            body.is_empty(),
            "401 of the SSE stream has a body: {body:?}"
        );
        let sse = client
            .get(format!("{base}/api/sse/streams"))
            .bearer_auth("ops")
            .send()
            .await?;
        ensure!(
            sse.status() == 200
                && hdr(sse.headers(), "content-type").starts_with("text/event-stream"),
            "GET /api/sse/streams with the token: {} {:?}",
            sse.status(),
            sse.headers()
        );
        drop(sse);
        for path in ["/api/info", "/metrics"] {
            let (s, _, _) = call(client.get(format!("{base}{path}"))).await?;
            ensure!(s == 200, "GET {path} needs no token: {s}");
        }

        let offer = offers().await?.whip[0].clone();
        let publish = client
            .post(format!("{base}/whip/s1"))
            .header("Content-Type", "application/sdp")
            .bearer_auth("ops")
            .body(offer.clone());
        let (s, h, body) = call(publish).await?;
        ensure!(s == 201, "WHIP with the token: {s} {body:?}");
        let location = hdr(&h, "location");
        let id = location
            .strip_prefix("/session/s1/")
            .filter(|id| !id.is_empty())
            .with_context(|| format!("Location {location:?}"))?
            .to_owned();
        let session_url = absolute(&base, &location);
        let (ufrag, pwd) = ice_credentials(&offer);
        let frag = sdpfrag(
            &offer,
            &ufrag.unwrap_or_default(),
            &pwd.unwrap_or_default(),
            true,
        );
        let patch = |token: Option<&str>| {
            let request = client
                .patch(session_url.as_str())
                .header("Content-Type", "application/trickle-ice-sdpfrag")
                .body(frag.clone());
            match token {
                Some(token) => request.bearer_auth(token),
                None => request,
            }
        };

        let (s, _, body) = call(patch(None)).await?;
        ensure!(s == 401, "PATCH without the token: {s} {body:?}");
        ensure!(
            has_session(&gw, "s1", &id).await,
            "the session ended on a refused PATCH"
        );
        let (s, _, body) = call(client.delete(session_url.as_str())).await?;
        ensure!(s == 401, "DELETE without the token: {s} {body:?}");
        ensure!(
            has_session(&gw, "s1", &id).await,
            "the session ended on a refused DELETE"
        );
        let (s, _, body) = call(patch(Some("ops"))).await?;
        ensure!(s == 204, "PATCH with the token: {s} {body:?}");
        let (s, _, body) = call(client.delete(session_url.as_str()).bearer_auth("ops")).await?;
        ensure!(s == 204, "DELETE with the token: {s} {body:?}");
        let (gone, snapshot) = wait_room(&gw, "s1", Duration::from_secs(3), |r| {
            r.is_none_or(|r| r.sessions.iter().all(|s| s.id != id))
        })
        .await;
        ensure!(gone, "the session survived its DELETE: {snapshot:?}");
        gw.shutdown().await;
        Ok(())
    })
    .await;
}

/// `GET /api/streams/` needs its trailing slash (404 without), and `?streams=a&streams=b`
/// lists only those streams.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live777_stream_listing_needs_its_trailing_slash_and_filters_by_repeated_streams() {
    run("live777_listing", Duration::from_secs(60), async {
        let gw = start_gateway(|c| {
            c.policies
                .config
                .insert("token-auth".into(), table(LIVE777_TOKEN));
        })
        .await?;
        let base = gw.base_url();
        let client = http();
        for id in ["a", "b", "c"] {
            let (s, _, body) = call(
                client
                    .post(format!("{base}/api/streams/{id}"))
                    .bearer_auth("ops"),
            )
            .await?;
            ensure!(s == 204, "create stream {id}: {s} {body:?}");
        }
        let ids = |body: &str| -> Result<Vec<String>> {
            let list: Value = serde_json::from_str(body)?;
            let mut ids: Vec<String> = list
                .as_array()
                .with_context(|| format!("not a list: {body}"))?
                .iter()
                .filter_map(|s| s["id"].as_str().map(str::to_owned))
                .collect();
            ids.sort();
            Ok(ids)
        };
        let (s, _, body) = call(
            client
                .get(format!("{base}/api/streams/"))
                .bearer_auth("ops"),
        )
        .await?;
        ensure!(
            s == 200 && ids(&body)? == ["a", "b", "c"],
            "all streams: {s} {body}"
        );
        let filtered = client
            .get(format!("{base}/api/streams/?streams=a&streams=b"))
            .bearer_auth("ops");
        let (s, _, body) = call(filtered).await?;
        ensure!(
            s == 200 && ids(&body)? == ["a", "b"],
            "?streams=a&streams=b: {s} {body}"
        );
        let (s, _, body) =
            call(client.get(format!("{base}/api/streams")).bearer_auth("ops")).await?;
        ensure!(s == 404, "GET /api/streams without the slash: {s} {body:?}");
        gw.shutdown().await;
        Ok(())
    })
    .await;
}

// ---------------------------------------------------------------------------------------------
// cascade

/// `(status, body)` of `POST /api/cascade/{stream}`.
async fn cascade(base: &str, stream: &str, body: Value) -> Result<(u16, String)> {
    let request = http()
        .post(format!("{base}/api/cascade/{stream}"))
        .header("Content-Type", "application/json")
        .body(body.to_string());
    let (status, _, text) = call(request).await?;
    Ok((status, text))
}

/// Polls `GET /api/streams/{stream}` of an open gateway until its publisher is connected.
async fn wait_connected_publisher(base: &str, stream: &str, limit: Duration) -> Result<()> {
    let deadline = Instant::now() + limit;
    loop {
        let (s, _, body) = call(http().get(format!("{base}/api/streams/{stream}"))).await?;
        let state = serde_json::from_str::<Value>(&body).ok().and_then(|json| {
            json.pointer("/publish/sessions/0/state")
                .and_then(Value::as_str)
                .map(str::to_owned)
        });
        if s == 200 && state.as_deref() == Some("connected") {
            return Ok(());
        }
        if Instant::now() >= deadline {
            bail!("{stream} at {base} has no connected publisher after {limit:?}: {s} {body}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// An origin with an auth token (go-live's `AUTH_TOKEN`): an edge's pull without the token (or
/// with a wrong one) fails and leaves nothing on either side; with it, media reaches a player
/// at the edge and the edge's stream shows the link. The aiortc publisher cannot present a
/// token, so it publishes to an open feeder process that pushes to the origin with the token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cascade_pull_from_an_origin_with_an_auth_token_needs_the_token_and_then_carries_media() {
    let _guard = media_lock().await;
    run("cascade_token", Duration::from_secs(120), async {
        const TOKEN: &str = "origin-t0ken";
        let feeder = GatewayProcess::start(env!("CARGO_BIN_EXE_gateway_node")).await?;
        // In process: gateway_node applies only go-live's RECORD_* variables, not AUTH_TOKEN.
        let origin = start_gateway(|c| {
            c.policies
                .apply_env(|v| (v == "AUTH_TOKEN").then(|| TOKEN.to_owned()))
                .unwrap_or_default();
        })
        .await?;
        let edge = start_gateway(|_| {}).await?;
        let (feeder_url, origin_url, edge_url) = (
            feeder.base_url().to_owned(),
            origin.base_url(),
            edge.base_url(),
        );

        let publisher = Publish {
            seconds: 15.0,
            ..Default::default()
        }
        .spawn(&format!("{feeder_url}/whip/cam"))?;
        wait_connected_publisher(&feeder_url, "cam", Duration::from_secs(15)).await?;
        let push = json!({ "targetUrl": format!("{origin_url}/whip/cam"), "token": TOKEN });
        let (status, body) = cascade(&feeder_url, "cam", push).await?;
        ensure!(
            status == 200,
            "feeder push to the origin with the token: {status} {body:?}"
        );
        wait_for_media(&origin, "cam", Duration::from_secs(10)).await?;

        let source_url = format!("{origin_url}/whep/cam");
        for (what, body) in [
            ("no token", json!({ "sourceUrl": source_url })),
            (
                "a wrong token",
                json!({ "sourceUrl": source_url, "token": "guess" }),
            ),
        ] {
            let (status, text) = cascade(&edge_url, "cam", body).await?;
            ensure!(
                !(200..300).contains(&status),
                "pull with {what} succeeded: {status} {text:?}"
            );
            let (clean, left) =
                wait_room(&edge, "cam", Duration::from_secs(3), |r| r.is_none()).await;
            ensure!(
                clean,
                "pull with {what} left a stream at the edge: {left:?}"
            );
            let subscribers = origin.room("cam").await.map_or(0, |r| r.subscribers);
            ensure!(
                subscribers == 0,
                "pull with {what} left {subscribers} subscriber(s) at the origin"
            );
        }

        let pull = json!({ "sourceUrl": source_url, "token": TOKEN });
        let (status, body) = cascade(&edge_url, "cam", pull).await?;
        ensure!(
            status == 200 && body.is_empty(),
            "pull with the token: {status} {body:?}"
        );
        let player = Play {
            min_video_frames: 10,
            ..Play::for_seconds(2.5)
        }
        .spawn(&format!("{edge_url}/whep/cam"))?
        .finish()
        .await?
        .expect_ok()?;
        println!(
            "cascade with a token: edge player decoded {} frames",
            player.u64("video_frames")
        );
        ensure!(player.u64("video_frames") >= 10, "{}", player.describe());

        let (s, _, body) = call(http().get(format!("{edge_url}/api/streams/cam"))).await?;
        ensure!(s == 200, "edge stream: {s} {body:?}");
        let at_edge: Value = serde_json::from_str(&body)?;
        let link = at_edge
            .pointer("/publish/sessions/0/cascade")
            .cloned()
            .unwrap_or(Value::Null);
        let session_url = link["sessionUrl"].as_str().unwrap_or_default();
        ensure!(
            link["sourceUrl"] == source_url.as_str()
                && !session_url.is_empty()
                && session_url.starts_with(&format!("{origin_url}/session/cam/")),
            "edge publish session's cascade: {at_edge}"
        );
        // Live777's reforward gauge counts the edge's one cascade session.
        let (_, _, metrics) = call(http().get(format!("{edge_url}/metrics"))).await?;
        ensure!(
            metrics.lines().any(|l| l == "live777_reforward 1"),
            "live777_reforward at the edge: {:?}",
            metrics
                .lines()
                .filter(|l| l.contains("reforward"))
                .collect::<Vec<_>>()
        );

        publisher.finish().await?.expect_ok()?;
        edge.shutdown().await;
        origin.shutdown().await;
        feeder.stop().await
    })
    .await;
}

// ---------------------------------------------------------------------------------------------
// runner365

/// The id after `prefix` in a reply's `Location`, or an error naming `what`.
fn expect_location(headers: &HeaderMap, prefix: &str, what: &str) -> Result<String> {
    let location = hdr(headers, "location");
    let id = location.strip_prefix(prefix).unwrap_or_default();
    ensure!(
        !id.is_empty() && !id.contains('/'),
        "{what}: Location {location:?}, expected {prefix}<id>"
    );
    Ok(id.to_owned())
}

/// runner365 answers 200 whatever happens: a subscribe to a room that does not exist is
/// `get room error by roomid …`, to a uid not publishing `live subscriber uid doesn't exist`;
/// every publish/subscribe reply, success or failure, carries `Location: /publisher/<id>` or
/// `/subscriber/<id>`; a path with the wrong segment count is `wrong http path`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runner365_failures_use_the_originals_strings_and_always_carry_a_location() {
    run("runner365_strings", Duration::from_secs(60), async {
        let gw = start_gateway(|_| {}).await?;
        let base = gw.base_url();
        let client = http();
        let o = offers().await?;
        let post = |path: &str, body: &str| {
            client
                .post(format!("{base}{path}"))
                .header("Content-Type", "text/plain;charset=utf-8")
                .body(body.to_owned())
        };

        for path in ["/subscribe/2001/u1/alice", "/whip/subscribe/2001/alice"] {
            let (s, h, body) = call(post(path, o.whep[0].as_str())).await?;
            ensure!(
                s == 200
                    && body == "get room error by roomid 2001"
                    && hdr(&h, "content-type") == "text/plain;charset=utf-8",
                "{path} (no room): {s} {body:?} {h:?}"
            );
            expect_location(&h, "/subscriber/", path)?;
        }

        let (s, h, answer) = call(post("/publish/2001/alice", o.whip[0].as_str())).await?;
        ensure!(
            s == 200 && answer.starts_with("v=0"),
            "publish alice: {s} {answer:?}"
        );
        expect_location(&h, "/publisher/", "publish alice")?;

        for path in ["/subscribe/2001/u1/zed", "/whip/subscribe/2001/zed"] {
            let (s, h, body) = call(post(path, o.whep[0].as_str())).await?;
            ensure!(
                s == 200 && body == "live subscriber uid doesn't exist",
                "{path} (zed is not publishing): {s} {body:?}"
            );
            expect_location(&h, "/subscriber/", path)?;
        }
        for (what, path, offer) in [
            (
                "alice again",
                "/whip/publish/2001/alice",
                o.whip[0].as_str(),
            ),
            ("a malformed offer", "/publish/2001/bob", "not sdp"),
        ] {
            let (s, h, body) = call(post(path, offer)).await?;
            ensure!(
                s == 200 && !body.is_empty() && !body.starts_with("v=0"),
                "publish of {what}: {s} {body:?}"
            );
            expect_location(&h, "/publisher/", &format!("publish of {what}"))?;
        }
        let (s, h, answer) = call(post("/subscribe/2001/u2/alice", o.whep[1].as_str())).await?;
        ensure!(
            s == 200 && answer.starts_with("v=0"),
            "subscribe to alice: {s} {answer:?}"
        );
        expect_location(&h, "/subscriber/", "subscribe to alice")?;

        for path in [
            "/publish/2001",
            "/whip/publish/2001/a/b",
            "/subscribe/2001/u1",
            "/whip/subscribe/2001",
        ] {
            let (s, _, body) = call(post(path, o.whep[0].as_str())).await?;
            ensure!(
                s == 200 && body == "wrong http path",
                "{path}: {s} {body:?}"
            );
        }
        gw.shutdown().await;
        Ok(())
    })
    .await;
}
