//! The one door: every dialect turns a request into a call here, never into media or policy
//! calls of its own. The gate decides (stream strategy, then the `authorize` and `admit`
//! policies) and then acts on the media core, so decide-then-act exists once for all dialects.

mod authz;
mod leb;
mod media_control;

use std::net::IpAddr;

pub use leb::{PullError, ReportError};

use crate::cascade::{RemoteClient, RemoteError};
use crate::config::StrategyConfig;
use crate::media::{
    CascadeLink, DialRequest, IceRestartAnswer, MediaError, MediaHandle, OfferRequest,
    PublisherLeave, RemoteCandidate, Role, RoomSnapshot, SessionAnswer, SessionIce,
};
use crate::ops::quality::QualityIngest;
use crate::policy::{Action, Denial, PolicyPlane, Request};

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
    /// The other server of a cascade refused or failed.
    #[error(transparent)]
    Remote(#[from] RemoteError),
}

/// Which way a cascade moves a stream's media.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CascadeDirection {
    /// From a remote WHEP endpoint into the local stream.
    Pull { source_url: String },
    /// From the local stream to a remote WHIP endpoint.
    Push { target_url: String },
}

/// Headers as the policies get them: a `name: value` line each (WIT `request.headers`).
fn header_block(headers: &[(String, String)]) -> String {
    let mut block = String::with_capacity(headers.iter().map(|(n, v)| n.len() + v.len() + 3).sum());
    for (name, value) in headers {
        block.push_str(name);
        block.push_str(": ");
        // A value cannot hold a line break (HTTP forbids it); never let one forge a header.
        block.extend(
            value
                .chars()
                .map(|c| if c == '\n' || c == '\r' { ' ' } else { c }),
        );
        block.push('\n');
    }
    block
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
    /// A room PIN the client presented (Janus `pin`), for admission.
    pub pin: Option<String>,
    /// The rules of the addressed room as its dialect keeps them (a Janus room's PIN,
    /// allowed tokens and publisher limit), handed to admission.
    pub room_rules: RoomRequirements,
}

/// A room's own requirements (see [`RequestFacts::room_rules`]); empty for most dialects.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoomRequirements {
    pub pin: Option<String>,
    pub allowed: Option<Vec<String>>,
    pub max_publishers: Option<u32>,
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
            headers: header_block(&self.headers),
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
            pin: None,
            room_rules: RoomRequirements::default(),
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
    dialect: &'static str,
    room: String,
    /// `None`: the room's main feed (see [`OfferRequest::feed`]).
    feed: Option<String>,
    label: Option<String>,
    role: Role,
    create_room: bool,
}

impl Admitted {
    fn new(facts: &RequestFacts, room: &str, role: Role, create_room: bool) -> Self {
        Self {
            dialect: facts.dialect,
            room: room.to_owned(),
            feed: None,
            label: None,
            role,
            create_room,
        }
    }
}

/// The gate: strategy and policy, then media.
#[derive(Clone)]
pub struct Gate {
    media: MediaHandle,
    strategy: StrategyConfig,
    policy: PolicyPlane,
    remote: RemoteClient,
    quality: QualityIngest,
    verified: leb::VerifiedSvrsigs,
    live_leb: leb::LiveLebSessions,
}

impl Gate {
    pub fn new(
        media: MediaHandle,
        strategy: StrategyConfig,
        policy: PolicyPlane,
        remote: RemoteClient,
        quality: QualityIngest,
    ) -> Self {
        Self {
            media,
            strategy,
            policy,
            remote,
            quality,
            verified: Default::default(),
            live_leb: Default::default(),
        }
    }

    /// The media thread's load and the subscribers refused because of it.
    pub fn media_load(&self) -> &crate::media::LoadGauge {
        self.media.load()
    }

    /// The LEB quality-report ingestion (for its drain at shutdown).
    pub fn quality_ingest(&self) -> QualityIngest {
        self.quality.clone()
    }

    /// The LEB quality figures so far (for `/metrics`).
    pub fn quality_figures(&self) -> crate::ops::quality::QualityFigures {
        self.quality.figures()
    }

    /// The stream strategy in force (Live777's `/api/strategy/`).
    pub fn strategy(&self) -> &StrategyConfig {
        &self.strategy
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
        let admitted = Admitted::new(facts, room, Role::Publisher, self.strategy.auto_create_whip);
        self.open_admitted(admitted, offer_sdp).await
    }

    /// Opens a subscriber session in `room`; it receives media whenever a publisher sends.
    pub async fn subscribe(
        &self,
        facts: &RequestFacts,
        room: &str,
        offer_sdp: String,
    ) -> Result<SessionAnswer, GateError> {
        self.decide(facts, Action::Subscribe, room).await?;
        let admitted = Admitted::new(
            facts,
            room,
            Role::Subscriber,
            self.strategy.auto_create_whep,
        );
        self.open_admitted(admitted, offer_sdp).await
    }

    /// Opens a publisher session for feed `feed` of `room` (runner365's uid), creating both
    /// as needed; another publisher of the same feed is `PublisherExists`.
    pub async fn publish_feed(
        &self,
        facts: &RequestFacts,
        room: &str,
        feed: &str,
        offer_sdp: String,
    ) -> Result<SessionAnswer, GateError> {
        self.decide(facts, Action::Publish, room).await?;
        let admitted = Admitted {
            feed: Some(feed.to_owned()),
            ..Admitted::new(facts, room, Role::Publisher, true)
        };
        self.open_admitted(admitted, offer_sdp).await
    }

    /// Opens a subscriber session (named `label`, if given) receiving feed `feed` of an
    /// existing room.
    pub async fn subscribe_feed(
        &self,
        facts: &RequestFacts,
        room: &str,
        feed: &str,
        label: Option<&str>,
        offer_sdp: String,
    ) -> Result<SessionAnswer, GateError> {
        self.decide(facts, Action::Subscribe, room).await?;
        let admitted = Admitted {
            feed: Some(feed.to_owned()),
            label: label.map(str::to_owned),
            ..Admitted::new(facts, room, Role::Subscriber, false)
        };
        self.open_admitted(admitted, offer_sdp).await
    }

    /// Ends the sessions of `room` that `matches` selects (a dialect addressing sessions by
    /// its own names); the caller must be authorized to `action` in the room. Returns how many
    /// ended.
    pub async fn end_sessions_where(
        &self,
        facts: &RequestFacts,
        action: Action,
        room: &str,
        matches: impl Fn(&crate::media::SessionSnapshot) -> bool,
    ) -> Result<usize, GateError> {
        self.authorize_only(facts, action, Some(room)).await?;
        let Some(snapshot) = self.media.room(room).await? else {
            return Err(GateError::StreamNotFound(room.to_owned()));
        };
        let mut ended = 0;
        for session in snapshot.sessions.iter().filter(|s| matches(s)) {
            match self
                .media
                .close(room, &session.id, PublisherLeave::IdleSubscribers)
                .await
            {
                Ok(_) => ended += 1,
                // Ended meanwhile (ICE timeout, a concurrent close): nothing left to do.
                Err(MediaError::SessionNotFound(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(ended)
    }

    /// go-live's publish: the policies decide before the offer is read.
    pub async fn admit_publish(
        &self,
        facts: &RequestFacts,
        room: &str,
    ) -> Result<Admitted, GateError> {
        self.decide(facts, Action::Publish, room).await?;
        Ok(Admitted::new(
            facts,
            room,
            Role::Publisher,
            self.strategy.auto_create_whip,
        ))
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
        Ok(Admitted::new(facts, room, Role::Subscriber, false))
    }

    /// Opens the session an earlier admission allowed.
    pub async fn open_admitted(
        &self,
        admitted: Admitted,
        offer_sdp: String,
    ) -> Result<SessionAnswer, GateError> {
        let request = OfferRequest {
            dialect: admitted.dialect,
            room: admitted.room,
            feed: admitted.feed,
            label: admitted.label,
            role: admitted.role,
            offer_sdp,
            create_room: admitted.create_room,
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

    /// A publisher's new offer on its live session (tracks added or removed, or an ICE
    /// restart); returns the answer.
    pub async fn reoffer_publisher(
        &self,
        room: &str,
        session: &str,
        offer_sdp: String,
    ) -> Result<String, GateError> {
        Ok(self
            .media
            .reoffer_publisher(room, session, offer_sdp)
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

    /// The simulcast layers (rids) a subscriber's publisher sends.
    pub async fn session_layers(
        &self,
        room: &str,
        session: &str,
    ) -> Result<Vec<String>, GateError> {
        Ok(self.media.layers(room, session).await?)
    }

    /// Changes how a session's video is forwarded (temporal layer, playout delay).
    pub async fn tune_video(
        &self,
        room: &str,
        session: &str,
        tuning: crate::media::VideoTuning,
    ) -> Result<(), GateError> {
        Ok(self.media.tune_video(room, session, tuning).await?)
    }

    /// Chooses the simulcast layer a subscriber receives (its session URL is the capability).
    pub async fn select_layer(
        &self,
        room: &str,
        session: &str,
        choice: crate::media::LayerChoice,
    ) -> Result<(), GateError> {
        Ok(self.media.select_layer(room, session, choice).await?)
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

    /// An operator links a stream to another server (Live777's cascade): our offer goes to the
    /// remote endpoint and its answer completes a local publisher (pull) or subscriber (push).
    /// A refused or failed remote leaves nothing behind on either side.
    pub async fn cascade(
        &self,
        facts: &RequestFacts,
        room: &str,
        direction: CascadeDirection,
        token: Option<String>,
    ) -> Result<String, GateError> {
        self.decide(facts, Action::Admin, room).await?;
        let (role, url, link) = match direction {
            CascadeDirection::Pull { source_url } => (
                Role::Publisher,
                source_url.clone(),
                CascadeLink {
                    source_url: Some(source_url),
                    ..Default::default()
                },
            ),
            CascadeDirection::Push { target_url } => (
                Role::Subscriber,
                target_url.clone(),
                CascadeLink {
                    target_url: Some(target_url),
                    ..Default::default()
                },
            ),
        };
        RemoteClient::check_url(&url)?;
        let dialled = self
            .media
            .dial(DialRequest {
                more_feeds: Vec::new(),
                only_kinds: Vec::new(),
                dialect: "cascade",
                room: room.to_owned(),
                feed: None,
                role,
                link: Some(link),
                token: token.clone(),
                stream_per_feed: false,
            })
            .await
            .map_err(|e| match e {
                MediaError::RoomNotFound(room) => GateError::StreamNotFound(room),
                other => GateError::Media(other),
            })?;
        let session = dialled.session_id;
        let close_local = || {
            self.media
                .close(room, &session, PublisherLeave::IdleSubscribers)
        };
        let answer = match self
            .remote
            .offer(&url, token.as_deref(), dialled.offer_sdp)
            .await
        {
            Ok(answer) => answer,
            Err(e) => {
                let _ = close_local().await;
                return Err(e.into());
            }
        };
        let session_url = answer.session_url.clone();
        if let Err(e) = self
            .media
            .complete_dial(room, &session, answer.answer_sdp, session_url.clone())
            .await
        {
            let _ = close_local().await;
            if let Some(session_url) = session_url {
                let ended = crate::media::CascadeEnded { session_url, token };
                self.remote.delete(&ended).await;
            }
            return Err(e.into());
        }
        tracing::info!(room, session = %session, remote = %url, ?role, "cascade established");
        Ok(session)
    }

    /// RTP traffic since start over every room (for `/metrics`).
    pub async fn traffic_totals(&self) -> Result<crate::media::Traffic, GateError> {
        Ok(self.media.totals().await?)
    }
}
