//! End-to-end encrypted feeds (janus.js insertable streams, `e2ee` in the jsep). The gateway
//! forwards their media like any other; as Janus does, it holds publishers of a room with
//! `require_e2ee` to it and keeps a subscription from mixing encrypted and plain feeds,
//! which one receiver could not decrypt together.

use super::{Caller, PluginError, VideoRoom, code};

impl VideoRoom {
    /// A publisher's offer in `room`: refused unless its media is encrypted where the room
    /// requires it.
    pub(super) fn check_publisher_e2ee(
        &self,
        room: u64,
        caller: &Caller,
    ) -> Result<(), PluginError> {
        let required = self.with_room(room, |r| Ok(r.config.require_e2ee))?;
        if required && !caller.handle.e2ee() {
            return Err(PluginError::new(
                code::UNAUTHORIZED,
                "Room requires end-to-end encrypted media",
            ));
        }
        Ok(())
    }

    /// Whether publisher `id` of `room` sends encrypted media (other dialects' feeds never do).
    pub(super) fn feed_e2ee(&self, room: u64, id: u64) -> bool {
        self.with_room(room, |r| {
            Ok(r.participants
                .get(&id)
                .and_then(|p| p.publishing.as_ref())
                .is_some_and(|p| p.e2ee))
        })
        .unwrap_or(false)
    }

    /// Whether a new subscription to `feeds` of `room` is encrypted: where the room requires
    /// it, or where its first feed is.
    pub(super) fn subscription_e2ee(&self, room: u64, feeds: &[u64]) -> Result<bool, PluginError> {
        let mut e2ee = self.with_room(room, |r| Ok(r.config.require_e2ee))?;
        for (i, feed) in feeds.iter().enumerate() {
            match (e2ee, self.feed_e2ee(room, *feed)) {
                (true, false) => {
                    return Err(mixed(format!(
                        "Can't have not end-to-end encrypted feed in this subscription ({feed})"
                    )));
                }
                (false, true) if i == 0 => e2ee = true,
                (false, true) => {
                    return Err(mixed(format!(
                        "Can't have end-to-end encrypted feed in this subscription ({feed})"
                    )));
                }
                _ => {}
            }
        }
        Ok(e2ee)
    }

    /// Feed `id` joining the caller's subscription (`subscribe`, `update`, `switch`).
    pub(super) fn check_same_e2ee(
        &self,
        room: u64,
        id: u64,
        caller: &Caller,
    ) -> Result<(), PluginError> {
        if self.feed_e2ee(room, id) != caller.handle.e2ee() {
            return Err(mixed(
                "Can't mix normal and end-to-end encrypted subscriptions".to_owned(),
            ));
        }
        Ok(())
    }
}

fn mixed(reason: String) -> PluginError {
    PluginError::new(code::INVALID_FEED, reason)
}
