//! A room's own rules (a Janus room's PIN, allowed tokens and publisher limit), enforced by
//! the host when no `admit` module is configured: switching admission policies off must not
//! open rooms that their dialect protects. The shipped `room-admission` module decides the same
//! way (403 "wrong pin", 403 "not allowed", 409 "publisher limit reached").

use super::{Action, Admission, Denial};

/// Whether `admission` satisfies its room's own rules.
pub(super) fn enforce(admission: &Admission) -> Result<(), Denial> {
    let rules = &admission.room.rules;
    let denied = |status: u16, reason: &str| {
        Err(Denial {
            status,
            reason: reason.to_owned(),
        })
    };
    if let Some(pin) = &rules.pin
        && !same(admission.pin.as_deref().unwrap_or(""), pin)
    {
        return denied(403, "wrong pin");
    }
    if let Some(allowed) = &rules.allowed {
        let token = admission.token.as_deref().unwrap_or("");
        if token.is_empty()
            || !allowed
                .iter()
                .fold(false, |found, t| found | same(token, t))
        {
            return denied(403, "not allowed");
        }
    }
    if admission.action == Action::Publish
        && rules
            .max_publishers
            .is_some_and(|max| admission.room.publishers >= max)
    {
        return denied(409, "publisher limit reached");
    }
    Ok(())
}

/// Constant-time equality: the time does not tell how much of a secret matched.
pub(crate) fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |diff, (x, y)| diff | (x ^ y))
            == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{Principal, RoomRules, RoomState};

    fn admission(action: Action, rules: RoomRules) -> Admission {
        Admission {
            principal: Principal {
                subject: "anonymous".into(),
                rooms: Vec::new(),
                can_publish: true,
                can_subscribe: true,
                admin: false,
            },
            room: RoomState {
                name: "1234".into(),
                publishers: 1,
                subscribers: 0,
                rules,
            },
            action,
            pin: None,
            token: None,
        }
    }

    fn none() -> RoomRules {
        RoomRules {
            pin: None,
            allowed: None,
            max_publishers: None,
        }
    }

    #[test]
    fn a_room_without_rules_admits_everyone() {
        assert!(enforce(&admission(Action::Publish, none())).is_ok());
    }

    #[test]
    fn the_rooms_pin_allowed_list_and_publisher_limit_are_enforced() {
        let mut a = admission(
            Action::Publish,
            RoomRules {
                pin: Some("42".into()),
                allowed: Some(vec!["t".into()]),
                max_publishers: Some(1),
            },
        );
        assert_eq!(enforce(&a).map_err(|d| d.reason), Err("wrong pin".into()));
        a.pin = Some("42".into());
        assert_eq!(enforce(&a).map_err(|d| d.reason), Err("not allowed".into()));
        a.token = Some("t".into());
        assert_eq!(enforce(&a).map_err(|d| d.status), Err(409));
        a.action = Action::Subscribe;
        assert!(enforce(&a).is_ok());
    }
}
