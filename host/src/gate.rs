//! The one door: every dialect turns a request into a call here, never into media or policy
//! calls of its own. The gate decides (stream strategy, then the `authorize` and `admit`
//! policies) and then acts on the media core, so decide-then-act exists once for all dialects.

use std::net::IpAddr;

use crate::config::StrategyConfig;
use crate::media::{
    IceRestartAnswer, MediaError, MediaHandle, OfferRequest, PublisherLeave, RemoteCandidate, Role,
    RoomSnapshot, SessionAnswer, SessionIce,
};
use crate::policy::{Action, Admission, Denial, PolicyPlane, Principal, Request, RoomState};

/// Why the gate refused or failed a request; each dialect maps it to its own status and body.
#[derive(Debug, Clone, thiserror::Error)]
pub enum GateError {
    /// The stream does not exist and the strategy does not create it.
    #[error("stream `{0}` does not exist")]
    StreamNotFound(String),
    /// A policy said no; `status` and `reason` are what the client should see.
    #[error("{}", .0.reason)]
    Denied(Denial),
    #[error(transparent)]
    Media(#[from] MediaError),
}

/// The facts of a signaling request the policies decide on (dialect-neutral).
#[derive(Debug, Clone)]
pub struct RequestFacts {
    /// `whip`, `live777`, `rooms`, …
    pub dialect: &'static str,
    pub method: String,
    pub path: String,
    /// Header names in lowercase.
    pub headers: Vec<(String, String)>,
    pub client_ip: IpAddr,
}

impl RequestFacts {
    /// The policy plane's view of this request, asking to do `action` in `room`.
    fn policy_request(&self, action: Action, room: Option<String>) -> Request {
        Request {
            dialect: self.dialect.to_owned(),
            action,
            room,
            method: self.method.clone(),
            path: self.path.clone(),
            headers: self.headers.clone(),
            client_ip: self.client_ip.to_string(),
        }
    }

    /// The facts of an HTTP request that came through `dialect` from `client`.
    pub fn from_http(
        dialect: &'static str,
        client: std::net::SocketAddr,
        method: &axum::http::Method,
        uri: &axum::http::Uri,
        headers: &axum::http::HeaderMap,
    ) -> Self {
        Self {
            dialect,
            method: method.to_string(),
            path: uri.path().to_owned(),
            headers: headers
                .iter()
                .filter_map(|(n, v)| Some((n.as_str().to_owned(), v.to_str().ok()?.to_owned())))
                .collect(),
            client_ip: client.ip(),
        }
    }

    /// The token a client presented: `X-Auth-Token`, else `Authorization: Bearer`.
    fn token(&self) -> Option<String> {
        let header = |name: &str| {
            self.headers
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.trim())
        };
        if let Some(token) = header("x-auth-token").filter(|t| !t.is_empty()) {
            return Some(token.to_owned());
        }
        let auth = header("authorization")?;
        let (scheme, token) = auth.split_once(' ')?;
        scheme
            .eq_ignore_ascii_case("bearer")
            .then(|| token.trim().to_owned())
    }
}

/// A publish or play the policies allowed, waiting for its offer; only the gate makes one, so
/// no session opens without a decision.
#[derive(Debug)]
pub struct Admitted {
    room: String,
    role: Role,
    create_room: bool,
}

/// The gate: strategy and policy, then media.
#[derive(Clone)]
pub struct Gate {
    media: MediaHandle,
    strategy: StrategyConfig,
    policy: PolicyPlane,
}

impl Gate {
    pub fn new(media: MediaHandle, strategy: StrategyConfig, policy: PolicyPlane) -> Self {
        Self {
            media,
            strategy,
            policy,
        }
    }

    /// The policy plane (for operational reporting).
    pub fn policy(&self) -> &PolicyPlane {
        &self.policy
    }

    /// Opens a publisher session in `room` from a client's offer.
    pub async fn publish(
        &self,
        facts: &RequestFacts,
        room: &str,
        offer_sdp: String,
    ) -> Result<SessionAnswer, GateError> {
        self.decide(facts, Action::Publish, room).await?;
        self.open(
            room,
            Role::Publisher,
            offer_sdp,
            self.strategy.auto_create_whip,
        )
        .await
    }

    /// Opens a subscriber session in `room`; it receives media whenever a publisher sends.
    pub async fn subscribe(
        &self,
        facts: &RequestFacts,
        room: &str,
        offer_sdp: String,
    ) -> Result<SessionAnswer, GateError> {
        self.decide(facts, Action::Subscribe, room).await?;
        self.open(
            room,
            Role::Subscriber,
            offer_sdp,
            self.strategy.auto_create_whep,
        )
        .await
    }

    /// go-live's publish: the policies decide before the offer is read.
    pub async fn admit_publish(
        &self,
        facts: &RequestFacts,
        room: &str,
    ) -> Result<Admitted, GateError> {
        self.decide(facts, Action::Publish, room).await?;
        Ok(Admitted {
            room: room.to_owned(),
            role: Role::Publisher,
            create_room: self.strategy.auto_create_whip,
        })
    }

    /// go-live's play: admission first (its 403 wins), then `StreamNotFound` while nobody
    /// publishes; the offer is read afterwards.
    pub async fn admit_play(
        &self,
        facts: &RequestFacts,
        room: &str,
    ) -> Result<Admitted, GateError> {
        self.decide(facts, Action::Subscribe, room).await?;
        let live = self
            .media
            .room(room)
            .await?
            .is_some_and(|r| r.publishers > 0);
        if !live {
            return Err(GateError::StreamNotFound(room.to_owned()));
        }
        Ok(Admitted {
            room: room.to_owned(),
            role: Role::Subscriber,
            create_room: false,
        })
    }

    /// Opens the session an earlier admission allowed.
    pub async fn open_admitted(
        &self,
        admitted: Admitted,
        offer_sdp: String,
    ) -> Result<SessionAnswer, GateError> {
        self.open(
            &admitted.room,
            admitted.role,
            offer_sdp,
            admitted.create_room,
        )
        .await
    }

    /// Authorizes an operator request that addresses no room (a listing): authorize only.
    pub async fn authorize_admin(&self, facts: &RequestFacts) -> Result<Principal, GateError> {
        self.authorize_only(facts, Action::Admin).await
    }

    /// Whether the caller is a user at all (may subscribe somewhere): authorize only.
    pub async fn authorize_user(&self, facts: &RequestFacts) -> Result<Principal, GateError> {
        self.authorize_only(facts, Action::Subscribe).await
    }

    async fn authorize_only(
        &self,
        facts: &RequestFacts,
        action: Action,
    ) -> Result<Principal, GateError> {
        let request = facts.policy_request(action, None);
        let policy = self.policy.clone();
        tokio::task::spawn_blocking(move || policy.authorize(&request))
            .await
            .map_err(|e| GateError::Media(MediaError::Internal(format!("policy task: {e}"))))?
            .map_err(GateError::Denied)
    }

    /// Authorizes and admits `action` in `room`: the principal, or the denial to show.
    pub async fn decide(
        &self,
        facts: &RequestFacts,
        action: Action,
        room: &str,
    ) -> Result<Principal, GateError> {
        let request = facts.policy_request(action, Some(room.to_owned()));
        let snapshot = self.media.room(room).await?;
        let admission_room = RoomState {
            name: room.to_owned(),
            publishers: snapshot.as_ref().map_or(0, |r| r.publishers as u32),
            subscribers: snapshot.as_ref().map_or(0, |r| r.subscribers as u32),
        };
        let token = facts.token();
        let policy = self.policy.clone();
        // Policy calls are synchronous Wasm bounded by their deadline: off the async workers.
        let decision = tokio::task::spawn_blocking(move || {
            let principal = policy.authorize(&request)?;
            policy.admit(&Admission {
                principal: principal.clone(),
                room: admission_room,
                action,
                pin: None,
                token,
            })?;
            Ok::<_, Denial>(principal)
        })
        .await
        .map_err(|e| GateError::Media(MediaError::Internal(format!("policy task: {e}"))))?;
        decision.map_err(|denial| {
            tracing::info!(dialect = facts.dialect, room, ?action, status = denial.status,
                reason = %denial.reason, "request denied by policy");
            GateError::Denied(denial)
        })
    }

    async fn open(
        &self,
        room: &str,
        role: Role,
        offer_sdp: String,
        create_room: bool,
    ) -> Result<SessionAnswer, GateError> {
        let request = OfferRequest {
            room: room.to_owned(),
            role,
            offer_sdp,
            create_room,
        };
        self.media.open(request).await.map_err(|e| match e {
            MediaError::RoomNotFound(room) => GateError::StreamNotFound(room),
            other => GateError::Media(other),
        })
    }

    /// Adds trickled candidates to a session.
    pub async fn trickle(
        &self,
        room: &str,
        session: &str,
        candidates: Vec<RemoteCandidate>,
    ) -> Result<(), GateError> {
        Ok(self.media.trickle(room, session, candidates).await?)
    }

    /// Restarts a session's ICE with the client's new credentials.
    pub async fn ice_restart(
        &self,
        room: &str,
        session: &str,
        ufrag: String,
        pwd: String,
        candidates: Vec<RemoteCandidate>,
    ) -> Result<IceRestartAnswer, GateError> {
        Ok(self
            .media
            .ice_restart(room, session, ufrag, pwd, candidates)
            .await?)
    }

    /// A session's current ICE session (entity tag, client ufrag).
    pub async fn session_ice(&self, room: &str, session: &str) -> Result<SessionIce, GateError> {
        Ok(self.media.session_ice(room, session).await?)
    }

    /// Ends a session.
    pub async fn end_session(
        &self,
        room: &str,
        session: &str,
        on_publisher_leave: PublisherLeave,
    ) -> Result<Role, GateError> {
        Ok(self.media.close(room, session, on_publisher_leave).await?)
    }

    /// A snapshot of one room.
    pub async fn room(&self, name: &str) -> Result<Option<RoomSnapshot>, GateError> {
        Ok(self.media.room(name).await?)
    }

    /// Snapshots of all rooms.
    pub async fn rooms(&self) -> Result<Vec<RoomSnapshot>, GateError> {
        Ok(self.media.rooms().await?)
    }

    /// An operator creates an empty stream (room).
    pub async fn create_stream(&self, facts: &RequestFacts, room: &str) -> Result<(), GateError> {
        self.decide(facts, Action::Admin, room).await?;
        Ok(self.media.create_room(room).await?)
    }

    /// An operator deletes a stream: every session in it ends.
    pub async fn delete_stream(&self, facts: &RequestFacts, room: &str) -> Result<(), GateError> {
        self.decide(facts, Action::Admin, room).await?;
        Ok(self.media.delete_room(room).await?)
    }

    /// RTP traffic since start over every room (for `/metrics`).
    pub async fn traffic_totals(&self) -> Result<crate::media::Traffic, GateError> {
        Ok(self.media.totals().await?)
    }
}
