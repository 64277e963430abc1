//! Who talks: publishers' audio levels averaged over the room's `audio_active_packets` and
//! compared with its `audio_level_average`, announced as `talking` / `stopped-talking` when
//! the room has `audiolevel_event` (and always kept for `listparticipants`).

use serde_json::json;

use super::VideoRoom;

impl VideoRoom {
    /// Counts a publisher's audio levels; at the end of each window of the room's
    /// `audio_active_packets`, decides whether it talks and tells the room of a change.
    pub fn audio_level(&self, level: &crate::media::AudioLevel) {
        let Ok(room) = level.room.parse::<u64>() else {
            return;
        };
        let changed = self.rooms.lock().ok().and_then(|mut rooms| {
            let r = rooms.get_mut(&room)?;
            let (window, threshold) = (r.config.audio_active_packets, r.config.audio_level_average);
            let notify = r.config.audiolevel_event;
            let p = r.participants.values_mut().find(|p| {
                p.publishing
                    .as_ref()
                    .is_some_and(|pub_| pub_.session == level.session)
            })?;
            let average = window_average(&mut p.level_window, level, window)?;
            let talking = average <= threshold;
            if p.talking == talking {
                return None;
            }
            p.talking = talking;
            notify.then_some((p.id, talking, average))
        });
        if let Some((id, talking, average)) = changed {
            let event = if talking {
                "talking"
            } else {
                "stopped-talking"
            };
            let data = json!({"videoroom": event, "room": room, "id": id,
                "audio-level-dBov-avg": average});
            self.notify_room(room, None, &data);
        }
    }
}

/// Adds an announcement's packets to a participant's window; the window's average level once
/// it holds `size` packets (and then it starts again).
fn window_average(
    window: &mut (u32, u32),
    level: &crate::media::AudioLevel,
    size: u32,
) -> Option<u32> {
    window.0 = window.0.saturating_add(level.packets);
    window.1 = window.1.saturating_add(level.level_sum);
    if window.0 < size.max(1) {
        return None;
    }
    let (packets, sum) = std::mem::take(window);
    Some(sum / packets.max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn announced(packets: u32, level: u32) -> crate::media::AudioLevel {
        crate::media::AudioLevel {
            room: "1".into(),
            session: "s".into(),
            packets,
            level_sum: packets * level,
        }
    }

    #[test]
    fn the_average_comes_once_the_rooms_audio_active_packets_are_counted() {
        let mut window = (0, 0);
        assert_eq!(window_average(&mut window, &announced(10, 20), 25), None);
        assert_eq!(window_average(&mut window, &announced(10, 40), 25), None);
        assert_eq!(
            window_average(&mut window, &announced(10, 60), 25),
            Some(40)
        );
        assert_eq!(window, (0, 0));
        // A window of one announcement's size decides on each.
        assert_eq!(
            window_average(&mut window, &announced(10, 90), 10),
            Some(90)
        );
    }
}
