//! The Janus core requests, shared by both transports: create, attach, message, trickle,
//! keepalive, detach, hangup, destroy, info, ping. A transport hands in one request (with the
//! session and handle its path named, over HTTP) and gets the reply to send back.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::protocol::{self, CoreError, CoreRequest, code};
use super::sessions::{EventSink, Session, Sessions};
use super::videoroom::{Caller, Outcome, Pending, Rooms, VideoRoom};
use crate::gate::{Gate, RequestFacts};
use crate::media::RemoteCandidate;

/// How often idle sessions are looked for (at most).
const REAP_INTERVAL: Duration = Duration::from_secs(5);

/// Work that pushes `event` to `session`, run once the reply has been sent.
fn push_later(session: &Arc<Session>, event: Value) -> Pending {
    let session = session.clone();
    Box::pin(async move { session.push(event) })
}

/// Where a request came from.
pub struct Origin {
    /// Over HTTP, the ids of the path (`None` at `/janus`).
    pub path_session: Option<u64>,
    pub path_handle: Option<u64>,
    /// Over WebSocket, the socket (sessions created on it push their events there).
    pub sink: Option<EventSink>,
    pub facts: RequestFacts,
}

/// The Janus API's state.
pub struct JanusCore {
    gate: Gate,
    pub sessions: Arc<Sessions>,
    videoroom: Arc<VideoRoom>,
    /// `[janus] slowlink_threshold`.
    slowlink_threshold: u32,
}

impl JanusCore {
    pub fn new(
        gate: Gate,
        rooms: Rooms,
        session_timeout: Duration,
        slowlink_threshold: u32,
    ) -> Arc<Self> {
        let sessions = Arc::new(Sessions::new(session_timeout));
        let core = Arc::new(Self {
            videoroom: VideoRoom::new(gate.clone(), sessions.clone(), rooms),
            gate,
            sessions,
            slowlink_threshold,
        });
        follow(
            &core,
            core.gate.session_endings(),
            |core, ended| async move {
                core.videoroom.media_session_ended(&ended).await;
            },
        );
        follow(&core, core.gate.audio_levels(), |core, level| async move {
            core.videoroom.audio_level(&level);
        });
        let weak_fir = Arc::downgrade(&core);
        tokio::spawn(async move {
            // Rooms' `fir_freq` and `bitrate`, `slowlink` and `media` events: whole seconds
            // since start, checked once a second.
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            let mut elapsed = 0u64;
            loop {
                tick.tick().await;
                elapsed += 1;
                let Some(core) = weak_fir.upgrade() else {
                    return;
                };
                core.videoroom.request_periodic_keyframes(elapsed).await;
                core.videoroom.cap_bitrates(elapsed).await;
                core.videoroom.report_links(core.slowlink_threshold).await;
                core.videoroom.announce_foreign_publishers().await;
            }
        });
        let weak = Arc::downgrade(&core);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(REAP_INTERVAL.min(session_timeout / 4));
            loop {
                tick.tick().await;
                let Some(core) = weak.upgrade() else {
                    return;
                };
                for session in core.sessions.reap_idle(Instant::now()) {
                    tracing::info!(session = session.id, "janus session timed out");
                    core.end_session(&session).await;
                }
            }
        });
        core
    }

    /// The session timeout, as `server_info` shows it.
    pub fn timeout_secs(&self) -> u64 {
        self.sessions.timeout().as_secs()
    }

    /// Answers one request. For an async plugin request the reply is its `ack` and the
    /// returned work delivers the event: the transport runs it once the ack is on its way.
    pub async fn handle(&self, text: &str, origin: &Origin) -> (Value, Option<Pending>) {
        let request = match CoreRequest::parse(text) {
            Ok(request) => request,
            Err((transaction, e)) => {
                return (
                    protocol::error(origin.path_session, transaction.as_deref(), &e),
                    None,
                );
            }
        };
        let session_id = origin.path_session.or(request.session_id);
        match self.dispatch(&request, origin).await {
            Ok(reply) => reply,
            Err(e) => (
                protocol::error(session_id, Some(&request.transaction), &e),
                None,
            ),
        }
    }

    async fn dispatch(
        &self,
        r: &CoreRequest,
        origin: &Origin,
    ) -> Result<(Value, Option<Pending>), CoreError> {
        if let (Some(path), Some(body)) = (origin.path_session, r.session_id)
            && path != body
        {
            return Err(CoreError::new(
                code::INVALID_REQUEST_PATH,
                "Conflicting session ID (payload and path)",
            ));
        }
        let session_id = origin.path_session.or(r.session_id);
        let handle_id = origin.path_handle.or(r.handle_id);
        let t = r.transaction.as_str();
        match (r.janus.as_str(), session_id, handle_id) {
            ("info", None, None) => Ok((protocol::server_info(Some(t), self.timeout_secs()), None)),
            ("ping", None, None) => Ok((json!({"janus": "pong", "transaction": t}), None)),
            ("create", None, None) => {
                let wanted = match r.body.get("id") {
                    None | Some(Value::Null) => None,
                    Some(v) => Some(
                        v.as_u64()
                            .ok_or_else(|| CoreError::wrong_type("id", "a positive integer"))?,
                    ),
                };
                let session = self
                    .sessions
                    .create(wanted, origin.sink.clone())
                    .ok_or_else(|| {
                        CoreError::new(code::SESSION_CONFLICT, "Session ID already in use")
                    })?;
                tracing::debug!(session = session.id, "janus session created");
                Ok((
                    protocol::success(None, t, Some(json!({"id": session.id}))),
                    None,
                ))
            }
            (verb, None, _) if verb != "create" => Err(CoreError::new(
                code::INVALID_REQUEST_PATH,
                format!("Unhandled request '{verb}' at this path"),
            )),
            (_, Some(s), handle) => {
                let session = self.sessions.get(s).ok_or_else(|| {
                    CoreError::new(code::SESSION_NOT_FOUND, format!("No such session {s}"))
                })?;
                session.touch();
                match handle {
                    None => Ok((self.session_request(r, &session, origin).await?, None)),
                    Some(h) => self.handle_request(r, &session, h, origin).await,
                }
            }
            (verb, ..) => Err(CoreError::new(
                code::INVALID_REQUEST_PATH,
                format!("Unhandled request '{verb}' at this path"),
            )),
        }
    }

    async fn session_request(
        &self,
        r: &CoreRequest,
        session: &Arc<Session>,
        origin: &Origin,
    ) -> Result<Value, CoreError> {
        let t = r.transaction.as_str();
        match r.janus.as_str() {
            "keepalive" => Ok(protocol::ack(session.id, t)),
            "attach" => {
                let plugin = r
                    .str("plugin")
                    .ok_or_else(|| CoreError::missing("plugin"))?;
                if plugin != protocol::VIDEOROOM {
                    return Err(CoreError::new(
                        code::PLUGIN_NOT_FOUND,
                        format!("No such plugin '{plugin}'"),
                    ));
                }
                let handle = session.attach();
                Ok(protocol::success(
                    Some(session.id),
                    t,
                    Some(json!({"id": handle.id})),
                ))
            }
            "destroy" => {
                self.sessions.remove(session.id);
                self.end_session(session).await;
                Ok(protocol::success(Some(session.id), t, None))
            }
            "claim" => {
                session.rebind(origin.sink.clone());
                Ok(protocol::success(Some(session.id), t, None))
            }
            verb => Err(CoreError::new(
                code::INVALID_REQUEST_PATH,
                format!("Unhandled request '{verb}' at this path"),
            )),
        }
    }

    async fn handle_request(
        &self,
        r: &CoreRequest,
        session: &Arc<Session>,
        h: u64,
        origin: &Origin,
    ) -> Result<(Value, Option<Pending>), CoreError> {
        let t = r.transaction.as_str();
        let handle = session.handle(h).ok_or_else(|| {
            CoreError::new(
                code::HANDLE_NOT_FOUND,
                format!("No such handle {h} in session {}", session.id),
            )
        })?;
        match r.janus.as_str() {
            "message" => {
                let body = r
                    .body
                    .get("body")
                    .ok_or_else(|| CoreError::missing("body"))?;
                if !body.is_object() {
                    return Err(CoreError::wrong_type("body", "an object"));
                }
                let jsep = r.jsep()?;
                if jsep
                    .as_ref()
                    .is_some_and(|j| j.kind == protocol::JsepKind::Answer)
                    && !self.videoroom.awaits_answer(h)
                {
                    return Err(CoreError::new(
                        code::UNEXPECTED_ANSWER,
                        "Unexpected ANSWER (did we offer?)",
                    ));
                }
                if let Some(j) = &jsep
                    && !j.sdp.trim_start().starts_with("v=")
                {
                    return Err(CoreError::new(
                        code::JSEP_INVALID_SDP,
                        "JSEP error: invalid SDP",
                    ));
                }
                if jsep.as_ref().is_some_and(|j| j.e2ee) {
                    handle.set_e2ee(true);
                }
                let caller = Caller {
                    session: session.clone(),
                    handle: handle.clone(),
                    transaction: t.to_owned(),
                    facts: self.facts_with_token(&origin.facts, r, body),
                };
                match self.videoroom.message(caller, Some(body), jsep).await {
                    Outcome::Sync(data) => Ok((
                        protocol::plugin_message("success", session.id, h, Some(t), data, None),
                        None,
                    )),
                    Outcome::Async(work) => Ok((protocol::ack(session.id, t), Some(work))),
                }
            }
            "trickle" => {
                let candidates = trickle_candidates(&r.body)?;
                self.videoroom.trickle(h, candidates).await;
                Ok((protocol::ack(session.id, t), None))
            }
            // The events follow the `success` (over WebSocket, on the same socket).
            "detach" => {
                self.videoroom.handle_gone(session, h).await;
                session.detach(h);
                let detached = json!({"janus": "detached", "session_id": session.id, "sender": h});
                Ok((
                    protocol::success(Some(session.id), t, None),
                    Some(push_later(session, detached)),
                ))
            }
            "hangup" => {
                let hung_up = self.videoroom.hang_up(h).await;
                let event = hung_up.then(|| {
                    let hangup = json!({"janus": "hangup", "session_id": session.id,
                        "sender": h, "reason": "Janus API"});
                    push_later(session, hangup)
                });
                Ok((protocol::success(Some(session.id), t, None), event))
            }
            verb => Err(CoreError::new(
                code::INVALID_REQUEST_PATH,
                format!("Unhandled request '{verb}' at this path"),
            )),
        }
    }

    /// A Janus `token` (core or VideoRoom) is presented to the policies as a bearer token,
    /// unless the transport already carried one; a VideoRoom `pin` goes to admission.
    fn facts_with_token(
        &self,
        facts: &RequestFacts,
        r: &CoreRequest,
        body: &Value,
    ) -> RequestFacts {
        let mut facts = facts.clone();
        facts.pin = body.get("pin").and_then(Value::as_str).map(str::to_owned);
        let token = body.get("token").and_then(Value::as_str).or(r.str("token"));
        if let Some(token) = token
            && !facts
                .headers
                .iter()
                .any(|(n, _)| n == "authorization" || n == "x-auth-token")
        {
            facts
                .headers
                .push(("authorization".into(), format!("Bearer {token}")));
        }
        facts
    }

    /// Ends every handle of a session that is gone (destroy, timeout, socket closed).
    pub async fn end_session(&self, session: &Session) {
        for handle in session.take_handles() {
            self.videoroom.handle_gone(session, handle.id).await;
        }
    }
}

/// Runs `on` for every message of `news` (media-core announcements) while the core lives.
/// A lagging listener skips what it missed: the announcements are advisory.
fn follow<T, F, Fut>(core: &Arc<JanusCore>, mut news: tokio::sync::broadcast::Receiver<T>, on: F)
where
    T: Clone + Send + 'static,
    F: Fn(Arc<JanusCore>, T) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let core = Arc::downgrade(core);
    tokio::spawn(async move {
        loop {
            let item = match news.recv().await {
                Ok(item) => item,
                Err(tokio::sync::broadcast::error::RecvError::Lagged(missed)) => {
                    tracing::warn!(missed, "janus missed media-core announcements");
                    continue;
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            };
            let Some(core) = core.upgrade() else {
                return;
            };
            on(core, item).await;
        }
    });
}

/// The candidates of a `trickle` (`candidate` or `candidates`, not both); `completed` ones are
/// skipped.
fn trickle_candidates(body: &Value) -> Result<Vec<RemoteCandidate>, CoreError> {
    let list = match (body.get("candidate"), body.get("candidates")) {
        (Some(_), Some(_)) => {
            return Err(CoreError::new(
                code::INVALID_JSON,
                "Can't have both candidate and candidates",
            ));
        }
        (Some(one), None) => vec![one.clone()],
        (None, Some(Value::Array(many))) => many.clone(),
        (None, Some(_)) => return Err(CoreError::wrong_type("candidates", "an array")),
        (None, None) => return Err(CoreError::missing("candidate")),
    };
    let mut candidates = Vec::new();
    for c in list {
        if c.get("completed").and_then(Value::as_bool) == Some(true) {
            continue;
        }
        let Some(candidate) = c.get("candidate").and_then(Value::as_str) else {
            return Err(CoreError::missing("candidate"));
        };
        candidates.push(RemoteCandidate {
            candidate: candidate.trim_start_matches("a=").to_owned(),
            mid: c.get("sdpMid").and_then(Value::as_str).map(str::to_owned),
            mline_index: c
                .get("sdpMLineIndex")
                .and_then(Value::as_u64)
                .and_then(|i| u16::try_from(i).ok())
                .unwrap_or(0),
        });
    }
    Ok(candidates)
}
