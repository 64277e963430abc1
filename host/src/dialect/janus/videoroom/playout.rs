//! `min_delay`/`max_delay` of a `configure` (10 ms units): the playout delay a subscriber's
//! player is told to keep for its video (the playout-delay header extension), per m-line or
//! for all; a publisher's applies to its subscribers without their own. Rules as in Janus:
//! a negative value turns it off, raising `min` past `max` raises `max` (and the reverse),
//! and it takes effect once both are set. Rooms with `playoutdelay_ext` off ignore them.

use serde_json::{Value, json};

use super::{PluginError, VideoRoom};
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

/// The delay a range asks for, once both ends are set.
fn delay_of((low, high): Range) -> Option<PlayoutDelay> {
    let low = u16::try_from(low).ok()?;
    let high = u16::try_from(high).ok()?;
    Some(PlayoutDelay::new(low, high))
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

/// A subscriber m-line's current range (Janus lists it as `playout-delay` in the summary).
fn range_of(stream: &Value) -> Range {
    let delay = &stream["playout-delay"];
    match (delay["min-delay"].as_i64(), delay["max-delay"].as_i64()) {
        (Some(low), Some(high)) => (low, high),
        _ => UNSET,
    }
}

impl VideoRoom {
    /// A subscriber's `configure` delays: top level for every video m-line, or per `mid` in
    /// `streams`. Returns the m-lines with their new `playout-delay`, if any changed.
    pub(super) async fn configure_subscriber_delays(
        &self,
        room: u64,
        session: &str,
        streams: &[Value],
        body: &Value,
    ) -> Result<Option<Vec<Value>>, PluginError> {
        let mut asks: Vec<(Option<String>, Option<i64>, Option<i64>)> = Vec::new();
        let (min, max) = asked(body)?;
        if min.is_some() || max.is_some() {
            asks.push((None, min, max));
        }
        for entry in body["streams"].as_array().into_iter().flatten() {
            let (min, max) = asked(entry)?;
            if min.is_some() || max.is_some() {
                let mid = entry["mid"].as_str().map(str::to_owned);
                asks.push((mid, min, max));
            }
        }
        if asks.is_empty() || !self.with_room(room, |r| Ok(r.config.playoutdelay_ext))? {
            return Ok(None);
        }
        let mut streams = streams.to_vec();
        for (mid, min, max) in asks {
            for stream in streams.iter_mut().filter(|s| {
                s["type"] == "video" && mid.as_ref().is_none_or(|m| s["mid"] == m.as_str())
            }) {
                let range = updated(range_of(stream), min, max);
                let delay = delay_of(range);
                match delay {
                    Some(d) => {
                        stream["playout-delay"] = json!({"min-delay": d.min, "max-delay": d.max})
                    }
                    None => {
                        if let Some(entry) = stream.as_object_mut() {
                            entry.remove("playout-delay");
                        }
                    }
                }
                let Some(feed) = stream["feed_id"].as_u64() else {
                    continue;
                };
                let source = Some(self.feed_name(room, feed).await);
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
        Ok(Some(streams))
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
        let mut ask = asked(body)?;
        for entry in body["streams"].as_array().into_iter().flatten() {
            if ask == (None, None) {
                ask = asked(entry)?;
            }
        }
        if ask == (None, None) || !self.with_room(room, |r| Ok(r.config.playoutdelay_ext))? {
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
