//! The one door: every dialect turns a request into a call here, never into media calls of its
//! own. The gate applies the stream strategy (and, with the policy plane, authorization and
//! admission) and then acts on the media core.

use crate::config::StrategyConfig;
use crate::media::{
    IceRestartAnswer, MediaError, MediaHandle, OfferRequest, PublisherLeave, RemoteCandidate, Role,
    RoomSnapshot, SessionAnswer, SessionIce,
};

/// Why the gate refused or failed a request; each dialect maps it to its own status and body.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum GateError {
    /// The stream does not exist and the strategy does not create it.
    #[error("stream `{0}` does not exist")]
    StreamNotFound(String),
    #[error(transparent)]
    Media(#[from] MediaError),
}

/// The gate: strategy, then media.
#[derive(Clone)]
pub struct Gate {
    media: MediaHandle,
    strategy: StrategyConfig,
}

impl Gate {
    pub fn new(media: MediaHandle, strategy: StrategyConfig) -> Self {
        Self { media, strategy }
    }

    /// Opens a publisher session in `room` from a client's offer.
    pub async fn publish(&self, room: &str, offer_sdp: String) -> Result<SessionAnswer, GateError> {
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
        room: &str,
        offer_sdp: String,
    ) -> Result<SessionAnswer, GateError> {
        self.open(
            room,
            Role::Subscriber,
            offer_sdp,
            self.strategy.auto_create_whep,
        )
        .await
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
}
