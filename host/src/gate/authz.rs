//! The policy decisions of the gate: authorize (who is this?) and admit (may they, in this
//! room, now?), and the narrower questions the dialects ask (an operator, a session's owner,
//! a player of a room, an authenticated caller).

use super::{Gate, GateError, RequestFacts};
use crate::media::MediaError;
use crate::policy::{Action, Admission, Denial, Principal, RoomRules, RoomState};

/// The principal's own room list (empty: any room) allows `room`.
fn may_use_room(principal: &Principal, room: &str) -> bool {
    principal.rooms.is_empty() || principal.rooms.iter().any(|r| r == room)
}

impl Gate {
    /// Authorizes an operator request that addresses no room (a listing): authorize only.
    pub async fn authorize_admin(&self, facts: &RequestFacts) -> Result<Principal, GateError> {
        self.authorize_only(facts, Action::Admin, None).await
    }

    /// May the caller patch or end a session of `room`? Whoever the policies let use the room
    /// (the kind of token that opened the session), or an operator. A refusal is the room's.
    pub async fn authorize_session_control(
        &self,
        facts: &RequestFacts,
        room: &str,
    ) -> Result<(), GateError> {
        let user = self
            .authorize_only(facts, Action::Subscribe, Some(room))
            .await;
        if let Ok(principal) = &user
            && (principal.admin || may_use_room(principal, room))
        {
            return Ok(());
        }
        match self.authorize_only(facts, Action::Admin, None).await {
            Ok(principal) if principal.admin => Ok(()),
            other => Err(match user {
                Err(denial) => denial,
                Ok(_) => other.err().unwrap_or(GateError::Denied(Denial {
                    status: 403,
                    reason: format!("not allowed in room `{room}`"),
                })),
            }),
        }
    }

    /// Whether the caller's credentials count: the policies accept the request as a user, and
    /// would refuse it without its `Authorization`/`X-Auth-Token`. (An open gateway, or a
    /// token only some rooms check, proves nothing without a room.)
    pub async fn authenticated_user(&self, facts: &RequestFacts) -> bool {
        if facts.token().is_none() {
            return false;
        }
        let mut bare = facts.clone();
        bare.headers
            .retain(|(name, _)| name != "authorization" && name != "x-auth-token");
        self.authorize_only(facts, Action::Subscribe, None)
            .await
            .is_ok()
            && self
                .authorize_only(&bare, Action::Subscribe, None)
                .await
                .is_err()
    }

    /// Whether the policies let the caller play `room` (authorize only, no admission: the
    /// room's counts do not matter here).
    pub async fn authorize_player(
        &self,
        facts: &RequestFacts,
        room: &str,
    ) -> Result<(), GateError> {
        let principal = self
            .authorize_only(facts, Action::Subscribe, Some(room))
            .await?;
        if principal.can_subscribe && may_use_room(&principal, room) {
            Ok(())
        } else {
            Err(GateError::Denied(Denial {
                status: 403,
                reason: format!("not allowed to play room `{room}`"),
            }))
        }
    }

    pub(super) async fn authorize_only(
        &self,
        facts: &RequestFacts,
        action: Action,
        room: Option<&str>,
    ) -> Result<Principal, GateError> {
        let request = facts.policy_request(action, room.map(str::to_owned));
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
        let rules = &facts.room_rules;
        let admission_room = RoomState {
            name: room.to_owned(),
            publishers: snapshot.as_ref().map_or(0, |r| r.publishers as u32),
            subscribers: snapshot.as_ref().map_or(0, |r| r.subscribers as u32),
            rules: RoomRules {
                pin: rules.pin.clone(),
                allowed: rules.allowed.clone(),
                max_publishers: rules.max_publishers,
            },
        };
        let token = facts.token();
        let pin = facts.pin.clone();
        let policy = self.policy.clone();
        // Policy calls are synchronous Wasm bounded by their deadline: off the async workers.
        let decision = tokio::task::spawn_blocking(move || {
            let principal = policy.authorize(&request)?;
            policy.admit(&Admission {
                principal: principal.clone(),
                room: admission_room,
                action,
                pin,
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
}
