//! Keyframe detection on RTP payloads.
//!
//! A forwarder that switches a subscriber to another source (new publisher, other simulcast
//! layer) must wait for the first packet of an intra frame, otherwise the decoder gets a delta
//! frame it cannot decode. Only payload descriptors and NAL/OBU headers are read: that is all
//! a packet-rate check can afford, and it never allocates. Malformed or short payloads answer
//! `false` rather than erroring, because the caller's only sane reaction is "keep waiting".

/// A video codec whose RTP payloads [`is_keyframe_start`] understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VideoCodec {
    /// VP8, RFC 7741.
    Vp8,
    /// VP9, RFC 9628 (draft-ietf-payload-vp9).
    Vp9,
    /// H.264, RFC 6184 (packetization-mode 0 or 1).
    H264,
    /// H.265, RFC 7798, without DONL fields (sprop-max-don-diff = 0, as WebRTC uses).
    H265,
    /// AV1, the AOM "RTP Payload Format for AV1".
    Av1,
}

impl VideoCodec {
    /// Maps an RTP codec MIME type such as `video/VP8` (case-insensitive) to a codec.
    pub fn from_mime(mime: &str) -> Option<VideoCodec> {
        const NAMES: [(&str, VideoCodec); 5] = [
            ("VP8", VideoCodec::Vp8),
            ("VP9", VideoCodec::Vp9),
            ("H264", VideoCodec::H264),
            ("H265", VideoCodec::H265),
            ("AV1", VideoCodec::Av1),
        ];
        let (kind, name) = mime.split_once('/')?;
        if !kind.eq_ignore_ascii_case("video") {
            return None;
        }
        NAMES
            .iter()
            .find(|(known, _)| known.eq_ignore_ascii_case(name))
            .map(|&(_, codec)| codec)
    }
}

/// Returns true when `payload` (the RTP payload, header stripped) is the first packet of a
/// keyframe for `codec`; false for anything else, including malformed or truncated input.
pub fn is_keyframe_start(codec: VideoCodec, payload: &[u8]) -> bool {
    match codec {
        VideoCodec::Vp8 => vp8_keyframe_start(payload).unwrap_or(false),
        VideoCodec::Vp9 => vp9_keyframe_start(payload).unwrap_or(false),
        VideoCodec::H264 => h264_keyframe_start(payload),
        VideoCodec::H265 => h265_keyframe_start(payload),
        VideoCodec::Av1 => av1_keyframe_start(payload),
    }
}

/// RFC 7741 §4.2: walks the payload descriptor to the VP8 payload header.
fn vp8_keyframe_start(p: &[u8]) -> Option<bool> {
    let first = *p.first()?;
    let extended = first & 0x80 != 0;
    let start_of_partition = first & 0x10 != 0;
    let partition_index = first & 0x07;
    if !start_of_partition || partition_index != 0 {
        return Some(false);
    }
    let mut at = 1;
    if extended {
        let ext = *p.get(at)?;
        at += 1;
        if ext & 0x80 != 0 {
            // I: PictureID, 15 bits when its M bit is set.
            at += if *p.get(at)? & 0x80 != 0 { 2 } else { 1 };
        }
        if ext & 0x40 != 0 {
            at += 1; // L: TL0PICIDX
        }
        if ext & 0x30 != 0 {
            at += 1; // T or K: one shared TID|Y|KEYIDX byte
        }
    }
    // The first payload header byte: P (inverse key frame flag) is bit 0.
    Some(*p.get(at)? & 0x01 == 0)
}

/// The VP9 descriptor fields the keyframe decision needs.
struct Vp9Descriptor {
    begins_frame: bool,
    inter_predicted: bool,
    spatial_id: u8,
}

/// RFC 9628 §4.2: parses the whole descriptor, so a packet whose descriptor runs past its
/// end (or has no VP9 data after it) is rejected as malformed.
fn vp9_descriptor(p: &[u8]) -> Option<Vp9Descriptor> {
    let flags = *p.first()?;
    let has_picture_id = flags & 0x80 != 0;
    let inter_predicted = flags & 0x40 != 0;
    let has_layers = flags & 0x20 != 0;
    let flexible = flags & 0x10 != 0;
    let begins_frame = flags & 0x08 != 0;
    let has_ss = flags & 0x02 != 0;
    let mut at = 1;
    if has_picture_id {
        at += if *p.get(at)? & 0x80 != 0 { 2 } else { 1 };
    }
    let mut spatial_id = 0;
    if has_layers {
        let layer = *p.get(at)?;
        at += 1;
        spatial_id = (layer >> 1) & 0x07;
        if !flexible {
            at += 1; // TL0PICIDX
        }
    }
    if flexible && inter_predicted {
        // Up to three P_DIFF bytes; N (bit 0) says another follows.
        let mut count = 0;
        loop {
            let diff = *p.get(at)?;
            at += 1;
            count += 1;
            if diff & 0x01 == 0 {
                break;
            }
            if count == 3 {
                return None;
            }
        }
    }
    if has_ss {
        let ss = *p.get(at)?;
        at += 1;
        let spatial_layers = usize::from(ss >> 5) + 1;
        if ss & 0x10 != 0 {
            at += 4 * spatial_layers; // Y: 16-bit width and height per layer
        }
        if ss & 0x08 != 0 {
            // G: N_G pictures, each |T|U|R|-|-| followed by R P_DIFF bytes.
            let pictures = *p.get(at)?;
            at += 1;
            for _ in 0..pictures {
                let picture = *p.get(at)?;
                at += 1 + usize::from((picture >> 2) & 0x03);
            }
        }
    }
    if at >= p.len() {
        return None;
    }
    Some(Vp9Descriptor {
        begins_frame,
        inter_predicted,
        spatial_id,
    })
}

fn vp9_keyframe_start(p: &[u8]) -> Option<bool> {
    let d = vp9_descriptor(p)?;
    Some(d.begins_frame && !d.inter_predicted && d.spatial_id == 0)
}

/// Walks the `size(16) | NAL` units of an H.264 STAP-A or H.265 AP and reports whether any
/// complete unit satisfies `is_key`; a unit overrunning the packet ends the walk.
fn any_aggregated_unit(mut units: &[u8], is_key: impl Fn(&[u8]) -> bool) -> bool {
    while let [hi, lo, rest @ ..] = units {
        let size = usize::from(u16::from_be_bytes([*hi, *lo]));
        if size == 0 || size > rest.len() {
            return false;
        }
        let (nal, tail) = rest.split_at(size);
        if is_key(nal) {
            return true;
        }
        units = tail;
    }
    false
}

/// IDR slice (5) or SPS (7): a decoder can start here.
fn h264_is_key_type(nal_type: u8) -> bool {
    matches!(nal_type, 5 | 7)
}

/// RFC 6184 §5.
fn h264_keyframe_start(p: &[u8]) -> bool {
    let Some(&header) = p.first() else {
        return false;
    };
    if header & 0x80 != 0 {
        return false; // forbidden_zero_bit: the NAL is corrupt
    }
    match header & 0x1F {
        nal_type @ 1..=23 => h264_is_key_type(nal_type),
        24 => any_aggregated_unit(&p[1..], |nal| {
            nal.first().is_some_and(|h| h264_is_key_type(h & 0x1F))
        }),
        // FU-A: S bit plus the original NAL type in the FU header.
        28 => p
            .get(1)
            .is_some_and(|fu| fu & 0x80 != 0 && h264_is_key_type(fu & 0x1F)),
        _ => false,
    }
}

/// IRAP pictures (16..=21) or parameter sets VPS/SPS/PPS (32..=34).
fn h265_is_key_type(nal_type: u8) -> bool {
    matches!(nal_type, 16..=21 | 32..=34)
}

/// The 6-bit type from the first byte of an H.265 NAL unit header.
fn h265_type(first: u8) -> u8 {
    (first >> 1) & 0x3F
}

/// RFC 7798 §4.4, assuming no DONL fields.
fn h265_keyframe_start(p: &[u8]) -> bool {
    let [first, _, rest @ ..] = p else {
        return false;
    };
    if first & 0x80 != 0 {
        return false; // forbidden_zero_bit
    }
    match h265_type(*first) {
        nal_type @ 0..=47 => h265_is_key_type(nal_type),
        48 => any_aggregated_unit(rest, |nal| {
            nal.len() >= 2 && h265_is_key_type(h265_type(nal[0]))
        }),
        // FU: S bit plus the original type in the low 6 bits of the FU header.
        49 => rest
            .first()
            .is_some_and(|fu| fu & 0x80 != 0 && h265_is_key_type(fu & 0x3F)),
        _ => false,
    }
}

/// AV1 RTP §4.4: N=1 marks the first packet of a coded video sequence. Z=1 would claim the
/// packet continues an OBU from an earlier packet, which cannot start a sequence.
fn av1_keyframe_start(p: &[u8]) -> bool {
    match p {
        [aggregation, _, ..] => aggregation & 0x08 != 0 && aggregation & 0x80 == 0,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [VideoCodec; 5] = [
        VideoCodec::Vp8,
        VideoCodec::Vp9,
        VideoCodec::H264,
        VideoCodec::H265,
        VideoCodec::Av1,
    ];

    fn key(codec: VideoCodec, p: &[u8]) -> bool {
        is_keyframe_start(codec, p)
    }

    #[test]
    fn mime_types_map_case_insensitively_and_audio_is_rejected() {
        assert_eq!(VideoCodec::from_mime("video/VP8"), Some(VideoCodec::Vp8));
        assert_eq!(VideoCodec::from_mime("VIDEO/vp9"), Some(VideoCodec::Vp9));
        assert_eq!(VideoCodec::from_mime("video/h264"), Some(VideoCodec::H264));
        assert_eq!(VideoCodec::from_mime("Video/H265"), Some(VideoCodec::H265));
        assert_eq!(VideoCodec::from_mime("video/av1"), Some(VideoCodec::Av1));
        assert_eq!(VideoCodec::from_mime("audio/opus"), None);
        assert_eq!(VideoCodec::from_mime("audio/VP8"), None);
        assert_eq!(VideoCodec::from_mime("VP8"), None);
        assert_eq!(VideoCodec::from_mime("video/VP8X"), None);
    }

    #[test]
    fn vp8_keyframe_is_detected_in_first_packet_of_frame() {
        // X|S, then I|L|T|K, 15-bit PictureID (M set), TL0PICIDX, TID/KEYIDX, header P=0.
        let p = [0x90, 0xF0, 0x80 | 0x12, 0x34, 0x05, 0x20, 0x10, 0x02, 0x00];
        assert!(key(VideoCodec::Vp8, &p));
        // Minimal descriptor without extensions.
        assert!(key(VideoCodec::Vp8, &[0x10, 0x50, 0x01, 0x00]));
    }

    #[test]
    fn vp8_delta_frame_continuation_and_truncation_are_not_keyframes() {
        // Payload header P bit set: interframe.
        assert!(!key(VideoCodec::Vp8, &[0x90, 0x80, 0x05, 0x01]));
        // S=0: continuation of the partition.
        assert!(!key(VideoCodec::Vp8, &[0x80, 0x80, 0x05, 0x00]));
        // S=1 but partition 1 is not the frame start.
        assert!(!key(VideoCodec::Vp8, &[0x11, 0x00]));
        // Descriptor announces a 15-bit PictureID, then ends before the payload header.
        assert!(!key(VideoCodec::Vp8, &[0x90, 0x80, 0x81, 0x02]));
        assert!(!key(VideoCodec::Vp8, &[]));
    }

    #[test]
    fn vp9_keyframe_is_detected_on_base_spatial_layer_with_scalability_structure() {
        // I|L|B|E|V non-flexible, 7-bit PictureID, layer byte SID=0, TL0PICIDX,
        // SS: N_S=1 (2 layers), Y and G set, two sizes, N_G=1 picture with R=1.
        let p = [
            0xAE, 0x05, 0x00, 0x09, 0x38, 0x01, 0x40, 0x00, 0xB4, 0x02, 0x80, 0x01, 0x68, 0x01,
            0x04, 0x01, 0x82,
        ];
        assert!(key(VideoCodec::Vp9, &p));
        // B only, no optional fields.
        assert!(key(VideoCodec::Vp9, &[0x08, 0x82]));
    }

    #[test]
    fn vp9_upper_spatial_layer_delta_continuation_and_truncation_are_not_keyframes() {
        // Same shape as a keyframe start but SID=1.
        assert!(!key(VideoCodec::Vp9, &[0xA8, 0x05, 0x02, 0x09, 0x82]));
        // Flexible mode with P=1 and two P_DIFF bytes (N chains them).
        assert!(!key(VideoCodec::Vp9, &[0xF8, 0x05, 0x00, 0x03, 0x04, 0x82]));
        // B=0: middle of a frame.
        assert!(!key(VideoCodec::Vp9, &[0x84, 0x05, 0x82]));
        // SS says 2 layers with sizes but the packet ends inside them.
        assert!(!key(VideoCodec::Vp9, &[0x0A, 0x30, 0x01, 0x40]));
        // Descriptor only, no VP9 data after it.
        assert!(!key(VideoCodec::Vp9, &[0x08]));
    }

    #[test]
    fn h264_idr_sps_stap_a_and_fu_a_start_are_keyframes() {
        assert!(key(VideoCodec::H264, &[0x65, 0x88, 0x84])); // IDR
        assert!(key(VideoCodec::H264, &[0x67, 0x42, 0xC0, 0x1F])); // SPS
        // STAP-A: SPS (3 bytes) then PPS (2 bytes).
        let stap = [0x78, 0x00, 0x03, 0x67, 0x42, 0xC0, 0x00, 0x02, 0x68, 0xCE];
        assert!(key(VideoCodec::H264, &stap));
        // FU-A start of an IDR slice.
        assert!(key(VideoCodec::H264, &[0x7C, 0x85, 0x88, 0x84]));
    }

    #[test]
    fn h264_delta_fu_continuation_and_truncated_stap_are_not_keyframes() {
        assert!(!key(VideoCodec::H264, &[0x41, 0x9A, 0x02])); // non-IDR slice
        assert!(!key(VideoCodec::H264, &[0x7C, 0x05, 0x11])); // FU-A middle of IDR
        assert!(!key(VideoCodec::H264, &[0x7C, 0x81, 0x11])); // FU-A start of non-IDR
        // STAP-A announcing 3 bytes but carrying 2.
        assert!(!key(VideoCodec::H264, &[0x78, 0x00, 0x03, 0x67, 0x42]));
        assert!(!key(VideoCodec::H264, &[0x7C])); // FU-A without its header
        assert!(!key(VideoCodec::H264, &[0xE5, 0x00])); // forbidden bit set
    }

    #[test]
    fn h265_irap_parameter_sets_ap_and_fu_start_are_keyframes() {
        assert!(key(VideoCodec::H265, &[0x26, 0x01, 0xAF])); // IDR_W_RADL (19)
        assert!(key(VideoCodec::H265, &[0x2A, 0x01, 0xAF])); // CRA (21)
        assert!(key(VideoCodec::H265, &[0x40, 0x01, 0x0C])); // VPS (32)
        // AP carrying VPS (3 bytes) then SPS (3 bytes).
        let ap = [
            0x60, 0x01, 0x00, 0x03, 0x40, 0x01, 0x0C, 0x00, 0x03, 0x42, 0x01, 0x01,
        ];
        assert!(key(VideoCodec::H265, &ap));
        // FU start of IDR_W_RADL.
        assert!(key(VideoCodec::H265, &[0x62, 0x01, 0x93, 0xAF]));
    }

    #[test]
    fn h265_trail_fu_continuation_and_truncated_ap_are_not_keyframes() {
        assert!(!key(VideoCodec::H265, &[0x02, 0x01, 0xD0])); // TRAIL_R (1)
        assert!(!key(VideoCodec::H265, &[0x62, 0x01, 0x13, 0xAF])); // FU middle of IDR
        assert!(!key(VideoCodec::H265, &[0x62, 0x01, 0x81, 0xAF])); // FU start of TRAIL_R
        assert!(!key(
            VideoCodec::H265,
            &[0x60, 0x01, 0x00, 0x05, 0x40, 0x01]
        ));
        assert!(!key(VideoCodec::H265, &[0x26])); // half a NAL header
    }

    #[test]
    fn av1_first_packet_of_coded_video_sequence_is_a_keyframe() {
        assert!(key(VideoCodec::Av1, &[0x18, 0x0A, 0x0B]));
        assert!(!key(VideoCodec::Av1, &[0x10, 0x32, 0x00])); // N=0: not a new sequence
        assert!(!key(VideoCodec::Av1, &[0x88, 0x32, 0x00])); // Z=1: continuation
        assert!(!key(VideoCodec::Av1, &[0x18])); // header only
    }

    /// Deterministic byte source so the fuzz-style tests are reproducible.
    struct Lcg(u64);

    impl Lcg {
        fn byte(&mut self) -> u8 {
            self.0 = self
                .0
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (self.0 >> 56) as u8
        }
    }

    #[test]
    fn every_prefix_and_random_payload_is_answered_without_panic() {
        let samples: [(VideoCodec, &[u8]); 5] = [
            (
                VideoCodec::Vp8,
                &[0x90, 0xF0, 0x92, 0x34, 0x05, 0x20, 0x10, 0x02],
            ),
            (
                VideoCodec::Vp9,
                &[0xAE, 0x05, 0x00, 0x09, 0x38, 0x01, 0x40, 0x00, 0x04],
            ),
            (
                VideoCodec::H264,
                &[0x78, 0x00, 0x03, 0x67, 0x42, 0xC0, 0x00, 0x01, 0x68],
            ),
            (
                VideoCodec::H265,
                &[0x60, 0x01, 0x00, 0x03, 0x40, 0x01, 0x0C],
            ),
            (VideoCodec::Av1, &[0x18, 0x0A, 0x0B]),
        ];
        for (codec, sample) in samples {
            for end in 0..=sample.len() {
                let _ = key(codec, &sample[..end]);
            }
        }
        let mut rng = Lcg(0x5EED);
        let mut buf = [0u8; 64];
        for round in 0..2_000 {
            let len = round % buf.len();
            for b in &mut buf[..len] {
                *b = rng.byte();
            }
            for codec in ALL {
                let _ = key(codec, &buf[..len]);
            }
        }
    }
}
