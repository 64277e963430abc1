//! The admission rules of one room: global limits with per-room overrides.

use gatehouse_sdk::config::Source;

/// What `[policies.config.room-admission]` says about one room.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RoomRules {
    /// Most publishers (0 = no limit from this policy).
    pub max_publishers: u64,
    /// Most subscribers (0 = unlimited).
    pub max_subscribers: u64,
    /// The PIN clients must present, if the room has one.
    pub pin: Option<String>,
    /// Tokens allowed in the room; empty = any token.
    pub allowed: Vec<String>,
}

impl RoomRules {
    /// The rules of `room`: `room.<room>.max_publishers`, `room.<room>.max_subscribers`,
    /// `room.<room>.pin` and `room.<room>.allowed`, the limits defaulting to the global
    /// `max_publishers` and `max_subscribers`.
    pub fn load(source: &impl Source, room: &str) -> Self {
        let key = |name: &str| format!("room.{room}.{name}");
        let limit = |name: &str| {
            source
                .u64(&key(name))
                .or_else(|| source.u64(name))
                .unwrap_or(0)
        };
        RoomRules {
            max_publishers: limit("max_publishers"),
            max_subscribers: limit("max_subscribers"),
            pin: source.string(&key("pin")),
            allowed: source.list(&key("allowed")),
        }
    }

    /// These rules with the room's own (a Janus room's `pin`, `allowed` and `publishers`, as
    /// its dialect passes them): its PIN and allowed list replace the configured ones, the
    /// stricter publisher limit holds.
    pub fn with_room_rules(mut self, own: &gatehouse_sdk::types::RoomRules) -> Self {
        if own.pin.is_some() {
            self.pin = own.pin.clone();
        }
        if let Some(allowed) = &own.allowed {
            self.allowed = allowed.clone();
        }
        if let Some(max) = own.max_publishers.map(u64::from) {
            self.max_publishers = match self.max_publishers {
                0 => max,
                configured => configured.min(max),
            };
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_room_settings_override_the_global_limits() {
        let cfg = [
            ("max_publishers", "1"),
            ("max_subscribers", "10"),
            ("room.big.max_subscribers", "0"),
            ("room.big.pin", "1234"),
            ("room.big.allowed", r#"["a", "b"]"#),
        ];
        let big = RoomRules::load(&cfg, "big");
        assert_eq!(
            big,
            RoomRules {
                max_publishers: 1,
                max_subscribers: 0,
                pin: Some("1234".into()),
                allowed: vec!["a".into(), "b".into()],
            }
        );
        let other = RoomRules::load(&cfg, "other");
        assert_eq!((other.max_subscribers, other.pin), (10, None));
    }

    #[test]
    fn nothing_configured_means_no_limits() {
        let none: [(&str, &str); 0] = [];
        assert_eq!(RoomRules::load(&none, "r"), RoomRules::default());
    }
}
