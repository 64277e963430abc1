//! The admission decision.

use crate::rules::RoomRules;
use gatehouse_sdk::crypto::constant_time_eq;
use gatehouse_sdk::types::{Action, Admission, Denial};

/// Whether `admission` may proceed under `rules`.
///
/// In order: the principal's room list (403 "room not allowed") and rights (403 "publish not
/// allowed" / "subscribe not allowed" / "admin not allowed"), the room PIN (403 "wrong pin"),
/// the allowed-token list (403 "not allowed"), then the limits: a publisher when
/// `publishers >= max_publishers` gets 409 "publisher limit reached", a subscriber when
/// `subscribers >= max_subscribers` gets 403 "subscriber limit reached".
pub fn admit(rules: &RoomRules, admission: &Admission) -> Result<(), Denial> {
    let principal = &admission.principal;
    let room = &admission.room;
    if !principal.may_use_room(&room.name) {
        return Err(Denial::forbidden("room not allowed"));
    }
    if !principal.may(admission.action) {
        return Err(Denial::forbidden(match admission.action {
            Action::Publish => "publish not allowed",
            Action::Subscribe => "subscribe not allowed",
            Action::Admin => "admin not allowed",
        }));
    }
    if let Some(pin) = &rules.pin {
        let presented = admission.pin.as_deref().unwrap_or("");
        if !constant_time_eq(presented.as_bytes(), pin.as_bytes()) {
            return Err(Denial::forbidden("wrong pin"));
        }
    }
    if !rules.allowed.is_empty() {
        let token = admission.token.as_deref().unwrap_or("");
        // Compare against every entry so the time does not reveal which one matched.
        let listed = rules.allowed.iter().fold(false, |found, t| {
            found | constant_time_eq(token.as_bytes(), t.as_bytes())
        });
        if token.is_empty() || !listed {
            return Err(Denial::forbidden("not allowed"));
        }
    }
    let at_limit = |count: u32, max: u64| max > 0 && u64::from(count) >= max;
    match admission.action {
        Action::Publish if at_limit(room.publishers, rules.max_publishers) => {
            Err(Denial::new(409, "publisher limit reached"))
        }
        Action::Subscribe if at_limit(room.subscribers, rules.max_subscribers) => {
            Err(Denial::forbidden("subscriber limit reached"))
        }
        _ => Ok(()),
    }
}
