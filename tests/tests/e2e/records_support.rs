//! Reading what the recorder wrote, for `records_contract`: ffprobe's view of a file, go-live's
//! recording file names, RFC 3339 times (the records API's `modTime`) and IVF headers and frame
//! timestamps.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use serde_json::Value;

/// What ffprobe reads from a file (width and height 0 for audio).
#[derive(Debug, Clone, Default)]
pub(crate) struct Probe {
    pub(crate) codec: String,
    pub(crate) width: u64,
    pub(crate) height: u64,
    /// Seconds; 0 when ffprobe gives none.
    pub(crate) duration: f64,
}

pub(crate) async fn probe(file: &Path) -> Result<Probe> {
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

/// `{room}_{trackId}_{unixSeconds}.{ivf|ogg}` (go-live's `^{room}_[^_]+_\d{10}\.(ivf|ogg)$`)
/// → (trackId, unixSeconds, extension).
pub(crate) fn record_name_parts<'a>(name: &'a str, room: &str) -> Option<(&'a str, u64, &'a str)> {
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
pub(crate) fn rfc3339_secs(text: &str) -> Option<i64> {
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
pub(crate) struct Ivf {
    pub(crate) fourcc: String,
    pub(crate) width: u16,
    pub(crate) height: u16,
    /// Timebase denominator and numerator: a timestamp is `pts * scale / rate` seconds.
    pub(crate) rate: u32,
    pub(crate) scale: u32,
    /// The header's length field (ffmpeg reads it as the duration in timebase units).
    pub(crate) length: u32,
    pub(crate) pts: Vec<u64>,
}

impl Ivf {
    pub(crate) fn parse(bytes: &[u8]) -> Result<Self> {
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
    pub(crate) fn span_secs(&self) -> f64 {
        match (self.pts.first(), self.pts.last()) {
            (Some(first), Some(last)) if self.rate > 0 => {
                last.saturating_sub(*first) as f64 * f64::from(self.scale) / f64::from(self.rate)
            }
            _ => 0.0,
        }
    }
}
