//! `room-admission` (world `admit`): may this principal publish or subscribe in this room now?
//!
//! Config (`[policies.config.room-admission]`, every key optional):
//!
//! | key | meaning |
//! |---|---|
//! | `max_publishers` | publishers per room, 0 = no limit from this policy (409 when reached) |
//! | `max_subscribers` | subscribers per room, 0 = unlimited (403 when reached) |
//! | `room.<name>.max_publishers`, `room.<name>.max_subscribers` | per-room overrides |
//! | `room.<name>.pin` | the PIN clients must present (403 "wrong pin") |
//! | `room.<name>.allowed` | tokens allowed in the room, e.g. `["t1", "t2"]` (403 "not allowed") |
//!
//! The principal's own restrictions apply first: a non-empty room list without this room is
//! 403 "room not allowed"; publishing without `can-publish` or subscribing without
//! `can-subscribe` is 403.
//!
//! A room's own rules, passed by its dialect in `room-state.rules` (a Janus room's `pin`,
//! `allowed`, `publishers`), are decided here too: its PIN and allowed list replace the
//! configured ones, and the stricter publisher limit holds.

mod decide;
mod rules;

pub use decide::admit;
pub use rules::RoomRules;

use gatehouse_sdk::types::{Admission, Denial};

/// The exported policy.
pub struct RoomAdmission;

impl gatehouse_sdk::admit::Guest for RoomAdmission {
    fn admit(admission: Admission) -> Result<(), Denial> {
        let rules = RoomRules::load(&gatehouse_sdk::config::Host, &admission.room.name)
            .with_room_rules(&admission.room.rules);
        admit(&rules, &admission)
    }
}

gatehouse_sdk::export_admit!(RoomAdmission);

#[cfg(test)]
mod tests;
