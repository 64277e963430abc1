//! Tencent LEB through the gate: a pull checks the play URL (`txSecret`), subscribes like any
//! player and gets a `svrsig` signed by the svrsig policy; every later call proves its session
//! with that `svrsig`, verified (fail closed) before anything changes.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{Gate, GateError, RequestFacts};
use crate::media::{MediaError, PublisherLeave, SessionAnswer};
use crate::ops::quality::IngestError;
use crate::policy::{Denial, QualityReport, ReportBody, SessionFacts, StreamUrl};

/// How long a verified `svrsig` is trusted without asking the policy again: reports arrive
/// every 2 s per player, and a burst must not cost one Wasm call each.
const VERIFIED_FOR: Duration = Duration::from_secs(10);
/// Cache entries beyond which the cache is cleared (bounded memory under forged floods).
const MAX_VERIFIED: usize = 100_000;

/// Recently verified `svrsig` values.
#[derive(Clone, Default)]
pub(super) struct VerifiedSvrsigs(Arc<Mutex<HashMap<String, (SessionFacts, Instant)>>>);

impl VerifiedSvrsigs {
    fn get(&self, svrsig: &str) -> Option<SessionFacts> {
        let cache = self.0.lock().ok()?;
        let (facts, at) = cache.get(svrsig)?;
        (at.elapsed() < VERIFIED_FOR).then(|| facts.clone())
    }

    fn put(&self, svrsig: &str, facts: &SessionFacts) {
        if let Ok(mut cache) = self.0.lock() {
            if cache.len() >= MAX_VERIFIED {
                cache.clear();
            }
            cache.insert(svrsig.to_owned(), (facts.clone(), Instant::now()));
        }
    }

    fn forget(&self, svrsig: &str) {
        if let Ok(mut cache) = self.0.lock() {
            cache.remove(svrsig);
        }
    }
}

/// The sessions opened by a LEB pull that have not ended yet: a `svrsig` is a signature, valid
/// until it expires, so only this set tells a live session's reports from a replay after
/// `stopstream` (or after the player vanished and ICE consent reaped it).
#[derive(Clone, Default)]
pub(super) struct LiveLebSessions {
    ids: Arc<Mutex<HashSet<String>>>,
    watching: Arc<AtomicBool>,
}

impl LiveLebSessions {
    fn insert(&self, session: &str) {
        if let Ok(mut ids) = self.ids.lock() {
            if ids.len() >= MAX_VERIFIED {
                // Bounded memory if endings were ever missed (a lagging listener).
                ids.clear();
            }
            ids.insert(session.to_owned());
        }
    }

    fn remove(&self, session: &str) {
        if let Ok(mut ids) = self.ids.lock() {
            ids.remove(session);
        }
    }

    fn contains(&self, session: &str) -> bool {
        self.ids.lock().is_ok_and(|ids| ids.contains(session))
    }

    /// Starts (once) the task that forgets sessions the media core ends on its own.
    fn watch(&self, mut endings: tokio::sync::broadcast::Receiver<crate::media::SessionEnded>) {
        if self.watching.swap(true, Ordering::AcqRel) {
            return;
        }
        let live = self.clone();
        tokio::spawn(async move {
            use tokio::sync::broadcast::error::RecvError;
            loop {
                match endings.recv().await {
                    Ok(ended) => live.remove(&ended.session),
                    Err(RecvError::Lagged(missed)) => {
                        tracing::warn!(missed, "LEB session endings missed")
                    }
                    Err(RecvError::Closed) => break,
                }
            }
        });
    }
}

/// Why a pull was refused.
#[derive(Debug, Clone, thiserror::Error)]
pub enum PullError {
    /// The svrsig policy refused the play URL's `txSecret`/`txTime`.
    #[error("{}", .0.reason)]
    PlayUrl(Denial),
    #[error(transparent)]
    Gate(#[from] GateError),
}

/// Why a report was not taken.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ReportError {
    #[error(transparent)]
    Gate(#[from] GateError),
    #[error(transparent)]
    Ingest(#[from] IngestError),
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, Denial> + Send + 'static,
) -> Result<T, GateError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| GateError::Media(MediaError::Internal(format!("policy task: {e}"))))?
        .map_err(GateError::Denied)
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl Gate {
    /// A LEB pull of `room` (already derived from `url`): txSecret, then subscribe, then the
    /// session's `svrsig`. A refused signature ends the new session (fail closed).
    pub async fn leb_pull(
        &self,
        facts: &RequestFacts,
        url: StreamUrl,
        room: &str,
        offer_sdp: String,
    ) -> Result<(SessionAnswer, String), PullError> {
        self.live_leb.watch(self.session_endings());
        let answer = self.play_url(facts, url, room, offer_sdp).await?;
        let session = SessionFacts {
            session_id: answer.session_id.clone(),
            stream: room.to_owned(),
            issued_at_ms: now_ms(),
        };
        let policy = self.policy.clone();
        match blocking(move || policy.sign(&session)).await {
            Ok(svrsig) if !svrsig.is_empty() => {
                self.live_leb.insert(&answer.session_id);
                Ok((answer, svrsig))
            }
            result => {
                let _ = self
                    .end_session(room, &answer.session_id, PublisherLeave::IdleSubscribers)
                    .await;
                Err(PullError::Gate(match result {
                    Err(e) => e,
                    Ok(_) => GateError::Denied(Denial {
                        status: 503,
                        reason: "the svrsig policy returned an empty signature".into(),
                    }),
                }))
            }
        }
    }

    /// Subscribes to `room` with a play URL whose `txSecret`/`txTime` the svrsig policy
    /// accepts: LEB's pull and SRS's play, so neither is a way around the other's anti-leech.
    pub async fn play_url(
        &self,
        facts: &RequestFacts,
        url: StreamUrl,
        room: &str,
        offer_sdp: String,
    ) -> Result<SessionAnswer, PullError> {
        let policy = self.policy.clone();
        match blocking(move || policy.check_url(&url)).await {
            Err(GateError::Denied(d)) if d.status != 503 => return Err(PullError::PlayUrl(d)),
            result => result?,
        }
        Ok(self.subscribe(facts, room, offer_sdp).await?)
    }

    /// The live session a `svrsig` was issued for: see [`Gate::leb_signed_session`]; a session
    /// that has ended (stopped, reaped) is `SessionNotFound`, so a leaked `svrsig` cannot feed
    /// reports or layer switches after its player left.
    pub async fn leb_session(
        &self,
        svrsig: &str,
        stream: Option<&str>,
    ) -> Result<SessionFacts, GateError> {
        let facts = self.leb_signed_session(svrsig, stream).await?;
        if self.live_leb.contains(&facts.session_id) {
            Ok(facts)
        } else {
            Err(GateError::Media(MediaError::SessionNotFound(
                facts.session_id,
            )))
        }
    }

    /// The session a `svrsig` was issued for, if the svrsig policy vouches for it and, when the
    /// caller names a stream, it was issued for that stream.
    pub async fn leb_signed_session(
        &self,
        svrsig: &str,
        stream: Option<&str>,
    ) -> Result<SessionFacts, GateError> {
        let facts = match self.verified.get(svrsig) {
            Some(facts) => facts,
            None => {
                let policy = self.policy.clone();
                let presented = svrsig.to_owned();
                let facts = blocking(move || policy.verify(&presented)).await?;
                self.verified.put(svrsig, &facts);
                facts
            }
        };
        match stream {
            Some(stream) if stream != facts.stream => Err(GateError::Denied(Denial {
                status: 403,
                reason: format!("svrsig was issued for another stream than `{stream}`"),
            })),
            _ => Ok(facts),
        }
    }

    /// `stopstream`: ends the session the `svrsig` names (already gone is fine).
    pub async fn leb_stop(
        &self,
        svrsig: &str,
        stream: Option<&str>,
    ) -> Result<SessionFacts, GateError> {
        let session = self.leb_signed_session(svrsig, stream).await?;
        self.verified.forget(svrsig);
        self.live_leb.remove(&session.session_id);
        match self
            .end_session(
                &session.stream,
                &session.session_id,
                PublisherLeave::IdleSubscribers,
            )
            .await
        {
            Ok(_) | Err(GateError::Media(MediaError::SessionNotFound(_))) => Ok(session),
            Err(e) => Err(e),
        }
    }

    /// A report of the session the `svrsig` names, queued for the quality policy.
    pub async fn leb_report(
        &self,
        facts: &RequestFacts,
        svrsig: &str,
        stream: Option<&str>,
        body: ReportBody,
    ) -> Result<(), ReportError> {
        let session = self.leb_session(svrsig, stream).await?;
        let report = QualityReport {
            stream: session.stream,
            session_id: session.session_id,
            client_ip: facts.client_ip.to_string(),
            body,
        };
        Ok(self.quality.submit(report)?)
    }
}
