//! VP8 temporal layers (RFC 7741 §4.2): a subscriber can ask for fewer frames per second
//! (Janus `configure {temporal}`), served by dropping the frames of the layers above it.
//!
//! The choice changes only at frame starts, so no frame is cut. Going down works at once
//! (lower layers never reference higher ones); going up waits for a keyframe or a layer-sync
//! frame (`Y` bit) of the new layer, which references only the base layer.

/// The temporal fields of a VP8 payload descriptor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Vp8Temporal {
    /// `TID`: 0 is the base layer.
    pub layer: u8,
    /// `Y`: the frame depends only on base-layer frames.
    pub layer_sync: bool,
    /// `S` set and partition 0: the first packet of a frame.
    pub frame_start: bool,
}

/// The temporal fields of a VP8 payload, when its descriptor carries them (`T` bit).
pub(crate) fn vp8_temporal(payload: &[u8]) -> Option<Vp8Temporal> {
    let first = *payload.first()?;
    let frame_start = first & 0x10 != 0 && first & 0x07 == 0;
    if first & 0x80 == 0 {
        return None; // no extension: no temporal layers
    }
    let extension = *payload.get(1)?;
    let (has_picture_id, has_tl0, has_tid) = (
        extension & 0x80 != 0,
        extension & 0x40 != 0,
        extension & 0x20 != 0,
    );
    if !has_tid {
        return None;
    }
    let mut at = 2;
    if has_picture_id {
        at += if *payload.get(at)? & 0x80 != 0 { 2 } else { 1 };
    }
    if has_tl0 {
        at += 1;
    }
    let tid_byte = *payload.get(at)?;
    Some(Vp8Temporal {
        layer: tid_byte >> 6,
        layer_sync: tid_byte & 0x20 != 0,
        frame_start,
    })
}

/// Every layer (VP8's TID has two bits).
const ALL: u8 = u8::MAX;

/// Which temporal layers one output forwards.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TemporalFilter {
    /// The highest layer asked for.
    target: u8,
    /// The highest layer forwarded now.
    current: u8,
}

impl Default for TemporalFilter {
    fn default() -> Self {
        Self {
            target: ALL,
            current: ALL,
        }
    }
}

impl TemporalFilter {
    /// Asks for layers up to `target` (`None`: all), from a suitable frame on.
    pub fn set_target(&mut self, target: Option<u8>) {
        self.target = target.unwrap_or(ALL);
    }

    /// Whether a packet with these fields is forwarded (packets without them always are).
    pub fn admit(&mut self, temporal: Option<Vp8Temporal>, keyframe_start: bool) -> bool {
        let Some(t) = temporal else {
            return true;
        };
        if keyframe_start {
            self.current = self.target;
        } else if t.frame_start {
            if self.target < self.current {
                self.current = self.target;
            } else if t.layer_sync && t.layer > self.current && t.layer <= self.target {
                self.current = t.layer;
            }
        }
        t.layer <= self.current
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A VP8 descriptor with a 15-bit picture id, TL0PICIDX and the TID byte.
    fn vp8(start: bool, layer: u8, sync: bool) -> Vec<u8> {
        let first = 0x80 | if start { 0x10 } else { 0 };
        let tid = (layer << 6) | if sync { 0x20 } else { 0 };
        vec![first, 0xE0, 0x80, 0x01, 0x07, tid, 0x00]
    }

    fn t(payload: &[u8]) -> Option<Vp8Temporal> {
        vp8_temporal(payload)
    }

    #[test]
    fn descriptor_fields_are_read_with_short_long_and_absent_picture_ids() {
        let long = t(&vp8(true, 2, true)).unwrap();
        assert_eq!(
            (long.layer, long.layer_sync, long.frame_start),
            (2, true, true)
        );
        // 7-bit picture id, no TL0PICIDX: I and T bits only.
        let short = t(&[0x90, 0xA0, 0x05, 0x40]).unwrap();
        assert_eq!((short.layer, short.layer_sync), (1, false));
        // T and K clear, or no extension at all: no temporal information.
        assert_eq!(t(&[0x90, 0x80, 0x05]), None);
        assert_eq!(t(&[0x10, 0x00]), None);
        assert_eq!(t(&[0x90, 0xE0, 0x80]), None, "truncated");
    }

    #[test]
    fn lowering_drops_upper_layers_from_the_next_frame_start() {
        let mut f = TemporalFilter::default();
        assert!(f.admit(t(&vp8(true, 2, false)), false));
        f.set_target(Some(0));
        assert!(
            f.admit(t(&vp8(false, 2, false)), false),
            "mid-frame: not cut"
        );
        assert!(!f.admit(t(&vp8(true, 1, false)), false));
        assert!(f.admit(t(&vp8(true, 0, false)), false));
        assert!(!f.admit(t(&vp8(true, 2, true)), false));
    }

    #[test]
    fn raising_waits_for_a_layer_sync_frame_or_a_keyframe() {
        let mut f = TemporalFilter::default();
        f.set_target(Some(0));
        assert!(f.admit(t(&vp8(true, 0, false)), false));
        f.set_target(None);
        assert!(
            !f.admit(t(&vp8(true, 2, false)), false),
            "references a dropped frame"
        );
        assert!(
            f.admit(t(&vp8(true, 1, true)), false),
            "layer sync of layer 1"
        );
        assert!(
            !f.admit(t(&vp8(true, 2, false)), false),
            "layer 2 not synced yet"
        );
        assert!(f.admit(t(&vp8(true, 2, true)), false));
        assert!(f.admit(t(&vp8(true, 2, false)), false));
        f.set_target(Some(0));
        assert!(f.admit(t(&vp8(true, 0, false)), false));
        f.set_target(Some(2));
        assert!(
            f.admit(t(&vp8(true, 0, false)), true),
            "a keyframe syncs every layer"
        );
        assert!(f.admit(t(&vp8(true, 2, false)), false));
    }

    #[test]
    fn packets_without_temporal_fields_always_pass() {
        let mut f = TemporalFilter::default();
        f.set_target(Some(0));
        assert!(f.admit(None, false));
    }
}
