//! WHIP/WHEP HTTP exchanges, run concurrently on a small tokio runtime beside the generator's
//! poll loop; answers come back on a channel and wake the loop.

use std::sync::Arc;
use std::sync::mpsc;
use std::time::Instant;

use anyhow::Context as _;

/// An HTTP exchange the poll loop asks for.
pub enum Request {
    /// POST an SDP offer; `tag` identifies the endpoint in the reply.
    Offer {
        tag: usize,
        url: String,
        sdp: String,
    },
    /// DELETE a session resource.
    Delete { url: String },
}

/// The outcome of an offer.
pub struct Reply {
    pub tag: usize,
    pub result: anyhow::Result<Answer>,
    pub at: Instant,
}

pub struct Answer {
    pub sdp: String,
    /// Absolute URL of the session resource.
    pub session_url: String,
}

/// Handle to the signaling worker.
pub struct Signaling {
    requests: tokio::sync::mpsc::UnboundedSender<Request>,
    pub replies: mpsc::Receiver<Reply>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Signaling {
    /// Starts the worker; `wake` is called after every reply.
    pub fn start(wake: Arc<mio::Waker>) -> anyhow::Result<Self> {
        let (requests, mut rx) = tokio::sync::mpsc::unbounded_channel::<Request>();
        let (reply_tx, replies) = mpsc::channel();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("signaling runtime")?;
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(64)
            .build()
            .context("HTTP client")?;
        let thread = std::thread::Builder::new()
            .name("bench-signaling".into())
            .spawn(move || {
                runtime.block_on(async move {
                    let mut tasks = tokio::task::JoinSet::new();
                    while let Some(request) = rx.recv().await {
                        let client = client.clone();
                        let reply_tx = reply_tx.clone();
                        let wake = wake.clone();
                        tasks.spawn(async move {
                            match request {
                                Request::Offer { tag, url, sdp } => {
                                    let result = post_offer(&client, &url, sdp).await;
                                    let _ = reply_tx.send(Reply {
                                        tag,
                                        result,
                                        at: Instant::now(),
                                    });
                                    let _ = wake.wake();
                                }
                                Request::Delete { url } => {
                                    let _ = client.delete(url).send().await;
                                }
                            }
                        });
                        while tasks.try_join_next().is_some() {}
                    }
                    while tasks.join_next().await.is_some() {}
                });
            })
            .context("signaling thread")?;
        Ok(Self {
            requests,
            replies,
            thread: Some(thread),
        })
    }

    pub fn send(&self, request: Request) {
        let _ = self.requests.send(request);
    }

    /// Finishes outstanding requests (the DELETEs of a clean stop) and joins the worker.
    pub fn finish(mut self) {
        drop(self.requests);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The gateway refused the session for overload (503): not a failure to connect.
#[derive(Debug)]
pub struct Refused(pub String);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "refused: {}", self.0)
    }
}

impl std::error::Error for Refused {}

async fn post_offer(client: &reqwest::Client, url: &str, sdp: String) -> anyhow::Result<Answer> {
    let response = client
        .post(url)
        .header("content-type", "application/sdp")
        .body(sdp)
        .send()
        .await
        .with_context(|| format!("POST {url}"))?;
    let status = response.status();
    let location = response
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = response.text().await.context("answer body")?;
    if status.as_u16() == 503 {
        return Err(Refused(body.trim().to_owned()).into());
    }
    if status.as_u16() != 201 {
        anyhow::bail!("POST {url}: {status}: {body}");
    }
    let location = location.context("201 without Location")?;
    let session_url = reqwest::Url::parse(url)
        .and_then(|base| base.join(&location))
        .context("Location")?
        .to_string();
    Ok(Answer {
        sdp: body,
        session_url,
    })
}
