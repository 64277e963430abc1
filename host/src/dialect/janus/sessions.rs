//! Janus sessions and handles: ids, the events waiting for a client (pushed on its WebSocket,
//! or queued for its long poll), and the 60 s session timeout.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::sync::{Notify, mpsc};

use super::protocol::random_id;

/// Events kept for a long-poll client that stopped polling; older ones are dropped.
const MAX_QUEUED_EVENTS: usize = 1000;

/// The WebSocket a session was created on: its events are pushed there.
pub type EventSink = mpsc::UnboundedSender<Value>;

/// One Janus session.
pub struct Session {
    pub id: u64,
    handles: Mutex<HashMap<u64, Arc<Handle>>>,
    queue: Mutex<VecDeque<Value>>,
    arrived: Notify,
    last_seen: Mutex<Instant>,
    /// The WebSocket its events go to; `None`: the long poll. `claim` moves it.
    sink: Mutex<Option<EventSink>>,
}

/// One plugin handle (attached to the VideoRoom).
pub struct Handle {
    pub id: u64,
    /// Its PeerConnection's media is end-to-end encrypted: set by a client's jsep with
    /// `e2ee` (and by the plugin for subscribers), kept until the PeerConnection goes, as in
    /// Janus; every jsep sent to the handle says so.
    e2ee: std::sync::atomic::AtomicBool,
}

impl Handle {
    pub fn e2ee(&self) -> bool {
        self.e2ee.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub fn set_e2ee(&self, on: bool) {
        self.e2ee.store(on, std::sync::atomic::Ordering::Relaxed);
    }
}

impl Session {
    /// Delivers an event: on the session's socket, else to its long poll.
    pub fn push(&self, event: Value) {
        if let Ok(sink) = self.sink.lock()
            && let Some(sink) = sink.as_ref()
        {
            let _ = sink.send(event);
            return;
        }
        if let Ok(mut queue) = self.queue.lock() {
            if queue.len() >= MAX_QUEUED_EVENTS {
                queue.pop_front();
            }
            queue.push_back(event);
        }
        self.arrived.notify_one();
    }

    /// `claim`: from now on the session's events go to `sink` (a WebSocket), or to the long
    /// poll; the transport it leaves no longer owns it.
    pub fn rebind(&self, sink: Option<EventSink>) {
        if let Ok(mut bound) = self.sink.lock() {
            *bound = sink;
        }
    }

    /// Whether the session's events go to `sink` (the socket owns it: closing it destroys it).
    pub fn bound_to(&self, sink: &EventSink) -> bool {
        self.sink
            .lock()
            .is_ok_and(|bound| bound.as_ref().is_some_and(|b| b.same_channel(sink)))
    }

    /// Marks the session as alive (any request or poll).
    pub fn touch(&self) {
        if let Ok(mut seen) = self.last_seen.lock() {
            *seen = Instant::now();
        }
    }

    fn idle_for(&self, now: Instant) -> Duration {
        self.last_seen
            .lock()
            .map_or(Duration::ZERO, |seen| now.saturating_duration_since(*seen))
    }

    /// Up to `max` queued events, waiting at most `hold` for the first one.
    pub async fn poll(&self, max: usize, hold: Duration) -> Vec<Value> {
        let deadline = tokio::time::Instant::now() + hold;
        loop {
            let notified = self.arrived.notified();
            let events: Vec<Value> = match self.queue.lock() {
                Ok(mut queue) => {
                    let n = queue.len().min(max.max(1));
                    queue.drain(..n).collect()
                }
                Err(_) => Vec::new(),
            };
            if !events.is_empty() {
                return events;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return Vec::new();
            }
        }
    }

    pub fn attach(&self) -> Arc<Handle> {
        let handle = Arc::new(Handle {
            id: random_id(),
            e2ee: Default::default(),
        });
        if let Ok(mut handles) = self.handles.lock() {
            handles.insert(handle.id, handle.clone());
        }
        handle
    }

    pub fn handle(&self, id: u64) -> Option<Arc<Handle>> {
        self.handles.lock().ok()?.get(&id).cloned()
    }

    pub fn detach(&self, id: u64) -> Option<Arc<Handle>> {
        self.handles.lock().ok()?.remove(&id)
    }

    /// Every handle, removed from the session (it is being destroyed).
    pub fn take_handles(&self) -> Vec<Arc<Handle>> {
        self.handles
            .lock()
            .map(|mut h| h.drain().map(|(_, handle)| handle).collect())
            .unwrap_or_default()
    }
}

/// Every live session.
pub struct Sessions {
    sessions: Mutex<HashMap<u64, Arc<Session>>>,
    timeout: Duration,
}

impl Sessions {
    /// Sessions destroyed after `timeout` without a request or poll.
    pub fn new(timeout: Duration) -> Self {
        Self {
            sessions: Mutex::new(HashMap::new()),
            timeout,
        }
    }

    /// A new session (with the id the client asked for, when free).
    pub fn create(&self, wanted: Option<u64>, sink: Option<EventSink>) -> Option<Arc<Session>> {
        let mut sessions = self.sessions.lock().ok()?;
        let id = match wanted {
            Some(id) if sessions.contains_key(&id) => return None,
            Some(id) => id,
            None => loop {
                let id = random_id();
                if !sessions.contains_key(&id) {
                    break id;
                }
            },
        };
        let session = Arc::new(Session {
            id,
            handles: Mutex::new(HashMap::new()),
            queue: Mutex::new(VecDeque::new()),
            arrived: Notify::new(),
            last_seen: Mutex::new(Instant::now()),
            sink: Mutex::new(sink),
        });
        sessions.insert(id, session.clone());
        Some(session)
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    pub fn get(&self, id: u64) -> Option<Arc<Session>> {
        self.sessions.lock().ok()?.get(&id).cloned()
    }

    pub fn remove(&self, id: u64) -> Option<Arc<Session>> {
        self.sessions.lock().ok()?.remove(&id)
    }

    /// Removes and returns the sessions idle past the timeout; each is told `timeout`.
    pub fn reap_idle(&self, now: Instant) -> Vec<Arc<Session>> {
        let Ok(mut sessions) = self.sessions.lock() else {
            return Vec::new();
        };
        let idle: Vec<u64> = sessions
            .values()
            .filter(|s| s.idle_for(now) >= self.timeout)
            .map(|s| s.id)
            .collect();
        let reaped: Vec<Arc<Session>> = idle.iter().filter_map(|id| sessions.remove(id)).collect();
        for session in &reaped {
            session.push(json!({"janus": "timeout", "session_id": session.id}));
        }
        reaped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SESSION_TIMEOUT: Duration = Duration::from_secs(60);

    #[tokio::test]
    async fn long_poll_returns_queued_events_up_to_max_and_waits_for_new_ones() {
        let sessions = Sessions::new(SESSION_TIMEOUT);
        let session = sessions.create(None, None).unwrap();
        session.push(json!({"n": 1}));
        session.push(json!({"n": 2}));
        assert_eq!(session.poll(1, Duration::from_secs(1)).await.len(), 1);
        assert_eq!(session.poll(10, Duration::from_secs(1)).await.len(), 1);
        let waiting = session.clone();
        let poll = tokio::spawn(async move { waiting.poll(10, Duration::from_secs(5)).await });
        tokio::time::sleep(Duration::from_millis(20)).await;
        session.push(json!({"n": 3}));
        assert_eq!(poll.await.unwrap(), vec![json!({"n": 3})]);
        assert!(session.poll(1, Duration::from_millis(10)).await.is_empty());
    }

    #[test]
    fn a_taken_session_id_is_refused_and_idle_sessions_are_reaped() {
        let sessions = Sessions::new(SESSION_TIMEOUT);
        let session = sessions.create(Some(42), None).unwrap();
        assert!(sessions.create(Some(42), None).is_none());
        assert!(sessions.reap_idle(Instant::now()).is_empty());
        let later = Instant::now() + SESSION_TIMEOUT + Duration::from_secs(1);
        let reaped = sessions.reap_idle(later);
        assert_eq!(reaped.len(), 1);
        assert!(sessions.get(42).is_none());
        let queued = session.queue.lock().unwrap().pop_front().unwrap();
        assert_eq!(queued["janus"], "timeout");
    }
}
