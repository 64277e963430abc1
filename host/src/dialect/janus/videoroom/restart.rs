//! ICE restarts over Janus: a publisher's `configure` with an offer bearing new ICE
//! credentials, and a subscriber's `configure {restart: true}` (we offer new credentials; the
//! client answers with `start`). Other renegotiations of a publisher are refused honestly.

use serde_json::{Value, json};

use super::super::protocol::{JsepKind, jsep};
use super::{Caller, PluginError, VideoRoom, code};
use crate::media::first_attribute;

type EventReply = (Value, Option<Value>);

impl VideoRoom {
    /// Whether participant `id` of `room` publishes (a new offer is then a renegotiation).
    pub(super) fn is_publishing(&self, room: u64, id: u64) -> bool {
        self.with_room(room, |r| {
            Ok(r.participants
                .get(&id)
                .is_some_and(|p| p.publishing.is_some()))
        })
        .unwrap_or(false)
    }

    /// A publishing participant's new offer: an ICE restart (new `ice-ufrag`) is answered with
    /// the session's answer under new credentials; anything else is not renegotiated here.
    pub(super) async fn reoffer_publisher(
        &self,
        room: u64,
        id: u64,
        offer: &str,
    ) -> Result<EventReply, PluginError> {
        let (session, previous_ufrag, opus) = self.with_room(room, |r| {
            let publishing = r
                .participants
                .get(&id)
                .and_then(|p| p.publishing.as_ref())
                .ok_or_else(|| PluginError::new(code::JOIN_FIRST, "Join the room first"))?;
            Ok((
                publishing.session.clone(),
                publishing.remote_ufrag.clone(),
                (r.config.opus_fec, r.config.opus_dtx),
            ))
        })?;
        let (Some(ufrag), Some(pwd)) = (
            first_attribute(offer, "ice-ufrag"),
            first_attribute(offer, "ice-pwd"),
        ) else {
            return Err(PluginError::new(
                code::INVALID_SDP,
                "the offer has no ice-ufrag/ice-pwd",
            ));
        };
        if previous_ufrag.as_deref() == Some(ufrag) {
            return Err(PluginError::new(
                code::UNKNOWN_ERROR,
                "renegotiating a publisher without an ICE restart is not supported by this gateway",
            ));
        }
        let room_name = room.to_string();
        self.gate
            .ice_restart(
                &room_name,
                &session,
                ufrag.to_owned(),
                pwd.to_owned(),
                Vec::new(),
            )
            .await
            .map_err(PluginError::from_gate)?;
        let answer = self
            .gate
            .room(&room_name)
            .await
            .ok()
            .flatten()
            .and_then(|r| r.sessions.into_iter().find(|s| s.id == session))
            .and_then(|s| s.answer_sdp)
            .ok_or_else(|| PluginError::new(code::UNKNOWN_ERROR, "the session ended"))?;
        let _ = self.with_room(room, |r| {
            if let Some(p) = r
                .participants
                .get_mut(&id)
                .and_then(|p| p.publishing.as_mut())
            {
                p.remote_ufrag = Some(ufrag.to_owned());
            }
            Ok(())
        });
        tracing::info!(room, id, "janus publisher restarted ICE");
        // The same Opus asks as the first answer (the stored one is rtc's own).
        let answer = super::super::streams::opus_params(&answer, opus.0, opus.1);
        Ok((
            json!({"videoroom": "event", "room": room, "configured": "ok"}),
            Some(jsep(JsepKind::Answer, &answer)),
        ))
    }

    /// A subscriber's `configure {restart: true}`: a new offer with new ICE credentials.
    pub(super) async fn restart_subscriber_ice(
        &self,
        caller: &Caller,
        room: u64,
        session: &str,
    ) -> Result<Option<Value>, PluginError> {
        let renegotiated = self
            .gate
            .renegotiate(
                &caller.facts,
                &room.to_string(),
                session,
                Vec::new(),
                Vec::new(),
                true,
            )
            .await
            .map_err(PluginError::from_gate)?;
        tracing::info!(room, session, "janus subscriber restarting ICE");
        Ok(Some(jsep(JsepKind::Offer, &renegotiated.offer_sdp)))
    }
}
