//! Shared pieces of the WHIP/WHEP HTTP contract tests.

use std::time::Duration;

use anyhow::{Result, ensure};

use crate::{absolute, header, http, post_sdp};

pub const LIMIT: Duration = Duration::from_secs(60);

pub async fn run(name: &str, body: impl std::future::Future<Output = Result<()>>) {
    if let Err(e) = crate::bounded(name, LIMIT, body).await {
        panic!("{name}: {e:#}");
    }
}

pub const SDPFRAG: &str = "application/trickle-ice-sdpfrag";

/// Create a session with a real offer; returns (absolute session URL, ETag).
pub async fn session(base: &str, endpoint: &str, offer: &str) -> Result<(String, String, String)> {
    let r = post_sdp(&format!("{base}{endpoint}"), offer).await?;
    let status = r.status().as_u16();
    let loc = header(&r, "location");
    let etag = header(&r, "etag");
    let body = r.text().await?;
    ensure!(status == 201, "POST {endpoint} -> {status}: {body}");
    ensure!(!loc.is_empty(), "POST {endpoint}: 201 without Location");
    Ok((absolute(base, &loc), etag, body))
}

pub async fn patch(
    url: &str,
    content_type: &str,
    if_match: Option<&str>,
    body: String,
) -> Result<reqwest::Response> {
    let mut req = http()
        .patch(url)
        .header("Content-Type", content_type)
        .body(body);
    if let Some(m) = if_match {
        req = req.header("If-Match", m);
    }
    Ok(req.send().await?)
}
