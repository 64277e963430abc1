//! What the gate offers sessions the gateway offered (Janus's server-offer subscribers) and
//! running sessions' media controls: renegotiation, pause, feed switch, publisher mute, RTP
//! forwarders, keyframe requests, and the media core's announcements.

use super::{Gate, GateError, RequestFacts};
use crate::media::{DialOffer, DialRequest, MediaError, Role};
use crate::policy::Action;

impl Gate {
    /// Asks every publisher of `room` for a keyframe; how many were asked.
    pub async fn request_keyframes(&self, room: &str) -> Result<usize, GateError> {
        Ok(self.media.request_keyframes(room).await?)
    }

    /// Asks one publisher session of `room` for a keyframe.
    pub async fn request_publisher_keyframe(
        &self,
        room: &str,
        session: &str,
    ) -> Result<(), GateError> {
        Ok(self.media.request_publisher_keyframe(room, session).await?)
    }

    /// Records the tracks `room`'s publishers open from now on (into `[record] dir` or its
    /// sub-directory `Some(subdir)`), or stops with `None`.
    pub fn record_room(&self, room: &str, recording: Option<Option<std::path::PathBuf>>) {
        self.media.record_room(room, recording);
    }

    /// Records one publisher session's tracks as `recording` says, or stops (`None`).
    pub async fn record_publisher(
        &self,
        room: &str,
        session: &str,
        recording: Option<crate::media::OwnRecording>,
    ) -> Result<(), GateError> {
        Ok(self
            .media
            .record_publisher(room, session, recording)
            .await?)
    }

    /// Caps the video every publisher of `room` sends (REMB); how many were told.
    pub async fn cap_bitrate(
        &self,
        room: &str,
        caps: crate::media::BitrateCaps,
    ) -> Result<usize, GateError> {
        Ok(self.media.cap_bitrate(room, caps).await?)
    }

    /// Every session's link reports since the previous call (see `MediaHandle`).
    pub async fn take_link_reports(&self) -> Result<Vec<crate::media::LinkReport>, GateError> {
        Ok(self.media.take_link_reports().await?)
    }

    /// Publishers' audio levels from now on.
    pub fn audio_levels(&self) -> tokio::sync::broadcast::Receiver<crate::media::AudioLevel> {
        self.media.audio_levels()
    }

    /// Every media session that ends from now on.
    pub fn session_endings(&self) -> tokio::sync::broadcast::Receiver<crate::media::SessionEnded> {
        self.media.session_endings()
    }

    /// Offers a subscriber session receiving feeds `feeds` of `room` (the server-offer flow
    /// of Janus's VideoRoom) on one PeerConnection: our offer, to be completed with
    /// [`Gate::answer_offer`].
    pub async fn offer_subscriber(
        &self,
        facts: &RequestFacts,
        room: &str,
        feeds: &[String],
        only_kinds: Vec<(String, Vec<&'static str>)>,
        stream_per_feed: bool,
    ) -> Result<DialOffer, GateError> {
        self.decide(facts, Action::Subscribe, room).await?;
        let (feed, more_feeds) = match feeds {
            [first, rest @ ..] => (first.clone(), rest.to_vec()),
            [] => return Err(GateError::StreamNotFound(room.to_owned())),
        };
        self.media
            .dial(DialRequest {
                dialect: facts.dialect,
                room: room.to_owned(),
                feed: Some(feed),
                more_feeds,
                only_kinds,
                role: Role::Subscriber,
                link: None,
                token: None,
                stream_per_feed,
            })
            .await
            .map_err(|e| match e {
                MediaError::RoomNotFound(room) => GateError::StreamNotFound(room),
                other => GateError::Media(other),
            })
    }

    /// Adds feeds `add` of `room` to a subscriber we offered and removes `remove`: the new
    /// offer (answered through [`Gate::answer_offer`]). The subscribe right for added feeds is
    /// decided by the caller when the client asks ([`Gate::decide`]), which may be before the
    /// offer is made (Janus queues changes behind an unanswered offer).
    pub async fn renegotiate(
        &self,
        room: &str,
        session: &str,
        add: Vec<String>,
        remove: Vec<String>,
        restart_ice: bool,
    ) -> Result<crate::media::Renegotiated, GateError> {
        Ok(self
            .media
            .renegotiate(room, session, add, remove, restart_ice)
            .await?)
    }

    /// Applies a client's answer to a session we offered ([`Gate::offer_subscriber`]).
    pub async fn answer_offer(
        &self,
        room: &str,
        session: &str,
        answer_sdp: String,
    ) -> Result<(), GateError> {
        Ok(self
            .media
            .complete_dial(room, session, answer_sdp, None)
            .await?)
    }

    /// Stops (`paused`) or resumes forwarding to a subscriber, all of it or one kind.
    pub async fn pause_session(
        &self,
        room: &str,
        session: &str,
        scope: crate::media::PauseScope,
        paused: bool,
    ) -> Result<(), GateError> {
        Ok(self.media.pause(room, session, scope, paused).await?)
    }

    /// Stops (`muted`) or resumes forwarding a publisher's media (Janus `moderate`, or a
    /// publisher's `configure`).
    pub async fn mute_publisher(
        &self,
        room: &str,
        session: &str,
        scope: crate::media::PauseScope,
        muted: bool,
    ) -> Result<(), GateError> {
        Ok(self
            .media
            .mute_publisher(room, session, scope, muted)
            .await?)
    }

    /// Starts a plain RTP copy of a feed's `kind` to `destination` (an operator's request:
    /// the policies' admin right).
    #[allow(clippy::too_many_arguments)]
    pub async fn add_rtp_forwarder(
        &self,
        facts: &RequestFacts,
        room: &str,
        feed: &str,
        kind: &str,
        destination: std::net::SocketAddr,
        ssrc: Option<u32>,
        payload_type: Option<u8>,
    ) -> Result<crate::media::RtpForwarderInfo, GateError> {
        self.decide(facts, Action::Admin, room).await?;
        Ok(self
            .media
            .add_rtp_forwarder(room, feed, kind, destination, ssrc, payload_type)
            .await?)
    }

    /// Stops a forwarder (the admin right); `false` when it does not exist.
    pub async fn remove_rtp_forwarder(
        &self,
        facts: &RequestFacts,
        room: &str,
        feed: &str,
        id: u32,
    ) -> Result<bool, GateError> {
        self.decide(facts, Action::Admin, room).await?;
        Ok(self.media.remove_rtp_forwarder(room, feed, id).await?)
    }

    /// The forwarders of a room.
    pub async fn rtp_forwarders(
        &self,
        room: &str,
    ) -> Result<Vec<crate::media::RtpForwarderInfo>, GateError> {
        Ok(self.media.rtp_forwarders(room).await?)
    }

    /// Moves a subscriber's outputs receiving `from` (all when `None`) to feed `feed` of its
    /// room (Janus `switch`).
    pub async fn switch_feed(
        &self,
        room: &str,
        session: &str,
        from: Option<&str>,
        feed: &str,
    ) -> Result<(), GateError> {
        Ok(self.media.switch_feed(room, session, from, feed).await?)
    }
}
