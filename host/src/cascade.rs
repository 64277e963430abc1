//! The client side of a cascade: our offer POSTed to another server's WHIP or WHEP endpoint
//! (Live777 `POST /api/cascade`), and the remote session DELETEd when ours ends.

use std::time::Duration;

use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, LOCATION};

use crate::media::{CascadeEnded, MediaHandle};

/// How long a remote may take to answer (Live777 itself waits up to 3 s for ICE gathering).
const REMOTE_TIMEOUT: Duration = Duration::from_secs(10);

/// Why the remote end of a cascade refused or failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RemoteError {
    #[error("`{0}` is not an http(s) URL")]
    BadUrl(String),
    #[error("remote {url} unreachable: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("remote {url} answered {status}: {body}")]
    Refused {
        url: String,
        status: u16,
        body: String,
    },
}

/// The remote's answer and its session resource.
#[derive(Debug, Clone)]
pub struct RemoteAnswer {
    pub answer_sdp: String,
    /// Absolute URL of the remote session (resolved against the endpoint URL).
    pub session_url: Option<String>,
}

/// A WHIP/WHEP client shared by every cascade.
#[derive(Clone)]
pub struct RemoteClient {
    http: reqwest::Client,
}

impl RemoteClient {
    pub fn new() -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .timeout(REMOTE_TIMEOUT)
            .no_proxy()
            .build()?;
        Ok(Self { http })
    }

    /// An endpoint URL a cascade can use (http or https).
    pub fn check_url(url: &str) -> Result<reqwest::Url, RemoteError> {
        reqwest::Url::parse(url)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https"))
            .ok_or_else(|| RemoteError::BadUrl(url.to_owned()))
    }

    /// POSTs `offer_sdp` to a WHIP/WHEP endpoint; a 201 with an SDP body is the answer.
    pub async fn offer(
        &self,
        url: &str,
        token: Option<&str>,
        offer_sdp: String,
    ) -> Result<RemoteAnswer, RemoteError> {
        let endpoint = Self::check_url(url)?;
        let mut request = self
            .http
            .post(endpoint.clone())
            .header(CONTENT_TYPE, "application/sdp")
            .body(offer_sdp);
        if let Some(token) = token {
            request = request.header(AUTHORIZATION, format!("Bearer {token}"));
        }
        let unreachable = |e: reqwest::Error| RemoteError::Unreachable {
            url: url.to_owned(),
            reason: e.to_string(),
        };
        let response = request.send().await.map_err(unreachable)?;
        let status = response.status();
        let session_url = response
            .headers()
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|l| endpoint.join(l).ok())
            .map(String::from);
        let body = response.text().await.map_err(unreachable)?;
        if status != reqwest::StatusCode::CREATED || !body.starts_with("v=") {
            return Err(RemoteError::Refused {
                url: url.to_owned(),
                status: status.as_u16(),
                body: body.chars().take(200).collect(),
            });
        }
        Ok(RemoteAnswer {
            answer_sdp: body,
            session_url,
        })
    }

    /// DELETEs a remote session; failures are logged (the remote reaps it by consent anyway).
    pub async fn delete(&self, ended: &CascadeEnded) {
        let mut request = self.http.delete(&ended.session_url);
        if let Some(token) = &ended.token {
            request = request.header(AUTHORIZATION, format!("Bearer {token}"));
        }
        match request.send().await {
            Ok(r) => tracing::info!(url = %ended.session_url, status = r.status().as_u16(),
                "cascade remote session deleted"),
            Err(e) => tracing::warn!(url = %ended.session_url, error = %e,
                "cascade remote session not deleted"),
        }
    }

    /// Deletes the remote side of every cascade session the media core ends, until it stops.
    pub fn spawn_remote_cleanup(&self, media: &MediaHandle) {
        let Some(mut endings) = media.take_cascade_endings() else {
            return;
        };
        let client = self.clone();
        tokio::spawn(async move {
            while let Some(ended) = endings.recv().await {
                client.delete(&ended).await;
            }
        });
    }
}
