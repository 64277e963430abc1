//! What operators and their tools rely on in recordings: go-live's records API over real
//! recordings (specs/dialects.md §5.1, §5.4) and IVF files that carry the real frame size and
//! timing (VP8 from aiortc, VP9 and AV1 from Chromium).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, UNIX_EPOCH};

use anyhow::{Context, Result, bail, ensure};
use gatehouse_e2e::{
    ClientResult, Publish, absolute, http, media_lock, spawn_browser_pages_with, start_gateway,
};
use reqwest::Method;
use serde_json::{Value, json};

use crate::contract_support::{call, hdr, run, table, unix_now};
use crate::records_support::{Ivf, Probe, probe, record_name_parts, rfc3339_secs};

fn extension(path: &Path) -> &str {
    path.extension().and_then(|e| e.to_str()).unwrap_or("")
}

pub(crate) fn record_dir(name: &str) -> Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("gatehouse-ops-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// The recordings of `room` (files named `{room}_…`), sorted.
pub(crate) fn recordings(dir: &Path, room: &str) -> Result<Vec<PathBuf>> {
    files_named(dir, &format!("{room}_"))
}

/// The files of `dir` whose names start with `prefix`, sorted.
pub(crate) fn files_named(dir: &Path, prefix: &str) -> Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(prefix))
        })
        .collect();
    files.sort();
    Ok(files)
}

/// Waits until `room` has, for each `(extension, codec)` of `wanted`, a file ffprobe reads as
/// that codec and longer than `min_secs`, and the room's files stopped growing (the recorder
/// finalizes after the publisher left). Returns every file of the room with its probe.
pub(crate) async fn finished_recordings(
    dir: &Path,
    room: &str,
    wanted: &[(&str, &str)],
    min_secs: f64,
) -> Result<Vec<(PathBuf, Probe)>> {
    finished_files(dir, &format!("{room}_"), wanted, min_secs).await
}

/// As [`finished_recordings`], for the files whose names start with `prefix`.
pub(crate) async fn finished_files(
    dir: &Path,
    prefix: &str,
    wanted: &[(&str, &str)],
    min_secs: f64,
) -> Result<Vec<(PathBuf, Probe)>> {
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut last_error = None;
    loop {
        let mut found = Vec::new();
        for file in files_named(dir, prefix)? {
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
                "{prefix}*: no finished {wanted:?} recordings longer than {min_secs} s in {}; \
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
