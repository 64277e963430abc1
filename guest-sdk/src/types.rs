//! The contract's types (`gatehouse:policy/types`), shared by every world, plus a few
//! constructors and helpers.

pub use crate::host_bindings::gatehouse::policy::types::{
    Action, Admission, Denial, Measurement, Principal, QualityOutcome, QualityReport, QualityStats,
    ReportBody, Request, RoomRules, RoomState, SessionFacts, StreamUrl,
};

impl Denial {
    /// A refusal with `status` (401, 403, 404, 409, 429, 503…) and a short `reason` shown to the
    /// client.
    pub fn new(status: u16, reason: impl Into<String>) -> Self {
        Denial {
            status,
            reason: reason.into(),
        }
    }

    /// `401 unauthorized`: no valid credentials.
    pub fn unauthorized() -> Self {
        Denial::new(401, "unauthorized")
    }

    /// `403 <reason>`: credentials fine, but not allowed.
    pub fn forbidden(reason: impl Into<String>) -> Self {
        Denial::new(403, reason)
    }
}

impl Principal {
    /// The open-access caller: subject `"anonymous"`, any room, may publish and subscribe, not
    /// an operator.
    pub fn anonymous() -> Self {
        Principal::new("anonymous")
    }

    /// A caller named `subject` (for logs and metrics) with the same rights as
    /// [`Principal::anonymous`]; adjust the fields from there.
    pub fn new(subject: impl Into<String>) -> Self {
        Principal {
            subject: subject.into(),
            rooms: Vec::new(),
            can_publish: true,
            can_subscribe: true,
            admin: false,
        }
    }

    /// Whether this principal may use `room` (its room list is empty or contains it).
    pub fn may_use_room(&self, room: &str) -> bool {
        self.rooms.is_empty() || self.rooms.iter().any(|r| r == room)
    }

    /// Whether this principal may do `action` at all (publish, subscribe, or admin routes).
    pub fn may(&self, action: Action) -> bool {
        match action {
            Action::Publish => self.can_publish,
            Action::Subscribe => self.can_subscribe,
            Action::Admin => self.admin,
        }
    }
}

impl Request {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        crate::headers::get(&self.headers, name)
    }
}

impl Measurement {
    /// The sample `name{labels}` = `value`.
    pub fn new(name: impl Into<String>, labels: &[(&str, &str)], value: f64) -> Self {
        Measurement {
            name: name.into(),
            labels: labels
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            value,
        }
    }
}

impl QualityOutcome {
    /// An accepted report with its samples and threshold flags.
    pub fn accepted(measurements: Vec<Measurement>, flags: Vec<String>) -> Self {
        QualityOutcome {
            accepted: true,
            reason: None,
            measurements,
            flags,
        }
    }

    /// A rejected (invalid) report: dropped and counted by the gateway.
    pub fn rejected(reason: impl Into<String>) -> Self {
        QualityOutcome {
            accepted: false,
            reason: Some(reason.into()),
            measurements: Vec::new(),
            flags: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anonymous_may_publish_and_subscribe_anywhere_but_not_administer() {
        let p = Principal::anonymous();
        assert_eq!(p.subject, "anonymous");
        assert!(p.may_use_room("any"));
        assert!(p.may(Action::Publish) && p.may(Action::Subscribe));
        assert!(!p.may(Action::Admin));
    }

    #[test]
    fn a_room_list_restricts_rooms() {
        let p = Principal {
            rooms: vec!["a".into()],
            ..Principal::new("x")
        };
        assert!(p.may_use_room("a"));
        assert!(!p.may_use_room("b"));
    }

    #[test]
    fn denial_shorthands_carry_status_and_reason() {
        assert_eq!(Denial::unauthorized(), Denial::new(401, "unauthorized"));
        assert_eq!(Denial::forbidden("wrong pin").status, 403);
    }
}
