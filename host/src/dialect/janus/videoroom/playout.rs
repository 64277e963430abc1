//! `min_delay`/`max_delay` of a `configure` (10 ms units): the playout delay a subscriber's
//! player is told to keep for its video (the playout-delay header extension), per m-line or
//! for all; a publisher's applies to its subscribers without their own. Rules as in Janus:
//! a negative value turns it off, raising `min` past `max` raises `max` (and the reverse),
//! and it takes effect once both are set. Rooms with `playoutdelay_ext` off ignore them.

use serde_json::Value;

use super::{Caller, Membership, PluginError, VideoRoom};
use crate::media::{PlayoutDelay, VideoTuning};

/// `(min, max)`, -1 for unset.
type Range = (i64, i64);

const UNSET: Range = (-1, -1);

/// The range after a request's `min_delay`/`max_delay` (absent: unchanged).
fn updated(current: Range, min: Option<i64>, max: Option<i64>) -> Range {
    let (mut low, mut high) = current;
    if let Some(min) = min {
        if min < 0 {
            return UNSET;
        }
        low = min;
        high = high.max(low);
    }
    if let Some(max) = max {
        if max < 0 {
            return UNSET;
        }
        high = max;
        if low > high {
            low = high;
        }
    }
    (low, high)
}

/// The delay a range asks for, once both ends are set (capped to what the extension carries).
fn delay_of((low, high): Range) -> Option<PlayoutDelay> {
    let cap = |v: i64| u16::try_from(v.min(0x0fff)).ok();
    Some(PlayoutDelay::new(cap(low)?, cap(high)?))
}

/// A request's (or stream entry's) `min_delay` and `max_delay`.
fn asked(entry: &Value) -> Result<(Option<i64>, Option<i64>), PluginError> {
    let field = |name: &str| match entry.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_i64()
            .map(Some)
            .ok_or_else(|| PluginError::invalid(name, "an integer")),
    };
    Ok((field("min_delay")?, field("max_delay")?))
}

/// Every `min_delay`/`max_delay` a `configure` asks for: top level (no mid: every video
/// m-line) and per `streams` entry.
fn delay_asks(body: &Value) -> Result<Vec<Ask>, PluginError> {
    let mut asks = Vec::new();
    let (min, max) = asked(body)?;
    if min.is_some() || max.is_some() {
        asks.push((None, min, max));
    }
    for entry in body["streams"].as_array().into_iter().flatten() {
        let (min, max) = asked(entry)?;
        if min.is_some() || max.is_some() {
            asks.push((entry["mid"].as_str().map(str::to_owned), min, max));
        }
    }
    Ok(asks)
}

/// A mid (or all), and the `min_delay`/`max_delay` asked for it.
type Ask = (Option<String>, Option<i64>, Option<i64>);

/// Checks a `configure`'s delays before anything of it is applied.
pub(super) fn check_delays(body: &Value) -> Result<(), PluginError> {
    delay_asks(body).map(drop)
}

impl VideoRoom {
    /// A subscriber's `configure` delays, for the video m-lines among `streams` they name.
    pub(super) async fn configure_subscriber_delays(
        &self,
        caller: &Caller,
        room: u64,
        session: &str,
        streams: &[Value],
        body: &Value,
    ) -> Result<(), PluginError> {
        let asks = delay_asks(body)?;
        if asks.is_empty() || !self.with_room(room, |r| Ok(r.config.playoutdelay_ext))? {
            return Ok(());
        }
        let mut delays = match self.membership(caller.handle.id) {
            Some(Membership::Subscriber { delays, .. }) => delays,
            _ => Vec::new(),
        };
        for (mid, min, max) in asks {
            let lines = streams.iter().filter(|s| {
                s["type"] == "video" && mid.as_ref().is_none_or(|m| s["mid"] == m.as_str())
            });
            for stream in lines {
                let line = stream["mid"].as_str().unwrap_or_default().to_owned();
                let range = match delays.iter_mut().find(|(m, _)| *m == line) {
                    Some((_, range)) => {
                        *range = updated(*range, min, max);
                        *range
                    }
                    None => {
                        let range = updated(UNSET, min, max);
                        delays.push((line, range));
                        range
                    }
                };
                let Some(feed) = stream["feed_id"].as_u64() else {
                    continue;
                };
                let source = Some(self.feed_name(room, feed).await);
                let delay = delay_of(range);
                self.gate
                    .tune_video(
                        &room.to_string(),
                        session,
                        VideoTuning::PlayoutDelay { source, delay },
                    )
                    .await
                    .map_err(PluginError::from_gate)?;
            }
        }
        self.update_subscriber(caller.handle.id, session, |membership| {
            if let Membership::Subscriber { delays: kept, .. } = membership {
                *kept = delays;
            }
        });
        Ok(())
    }

    /// A publisher's `configure` delays (top level, or the first `streams` entry that has
    /// them): what its subscribers without their own are told.
    pub(super) async fn configure_publisher_delay(
        &self,
        room: u64,
        id: u64,
        session: &str,
        body: &Value,
    ) -> Result<(), PluginError> {
        let Some((_, min, max)) = delay_asks(body)?.into_iter().next() else {
            return Ok(());
        };
        let ask = (min, max);
        if !self.with_room(room, |r| Ok(r.config.playoutdelay_ext))? {
            return Ok(());
        }
        let range = self.with_room(room, |r| {
            let publishing = r
                .participants
                .get_mut(&id)
                .and_then(|p| p.publishing.as_mut());
            Ok(publishing.map(|p| {
                p.playout_delay = updated(p.playout_delay, ask.0, ask.1);
                p.playout_delay
            }))
        })?;
        let Some(range) = range else {
            return Ok(());
        };
        let delay = delay_of(range);
        self.gate
            .tune_video(
                &room.to_string(),
                session,
                VideoTuning::PlayoutDelay {
                    source: None,
                    delay,
                },
            )
            .await
            .map_err(PluginError::from_gate)
    }
}

/// A publisher's range before any `configure` sets it.
pub(super) const fn unset() -> Range {
    UNSET
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_follow_janus_rules() {
        // Only max from unset: min stays unset, nothing takes effect.
        assert_eq!(updated(UNSET, None, Some(50)), (-1, 50));
        assert_eq!(delay_of((-1, 50)), None);
        // Only min: max rises to it.
        assert_eq!(updated(UNSET, Some(20), None), (20, 20));
        // A max below min lowers min.
        assert_eq!(updated((20, 40), None, Some(10)), (10, 10));
        // Negative turns it off.
        assert_eq!(updated((20, 40), Some(-1), None), UNSET);
        assert_eq!(delay_of((20, 40)), Some(PlayoutDelay { min: 20, max: 40 }));
    }
}
