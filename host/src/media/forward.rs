//! The per-subscriber step of RTP fan-out, free of any PeerConnection so it can be tested on
//! synthetic packets: payload-type mapping, keyframe gating and the sequence/timestamp rewrite.

use std::time::Instant;

use rtc::rtp;

use super::keyframe::{VideoCodec, is_keyframe_start};
use super::rewrite::{StreamRewriter, seq_newer};
use super::temporal::{TemporalFilter, Vp8Temporal, vp8_temporal};

/// One codec negotiated on a subscriber's sender: `(lowercase MIME type, payload type)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NegotiatedCodec {
    pub mime_lower: String,
    pub payload_type: u8,
}

/// What the fan-out knows about the packet's source track (parsed once per publisher packet).
#[derive(Debug, Clone, Copy)]
pub(crate) struct SourcePacketInfo<'a> {
    pub mime_lower: &'a str,
    /// `Some` for video: the codec whose keyframes gate a joining subscriber.
    pub video_codec: Option<VideoCodec>,
    pub is_keyframe_start: bool,
    /// VP8's temporal layer fields, when the publisher sends temporal layers.
    pub temporal: Option<Vp8Temporal>,
}

impl<'a> SourcePacketInfo<'a> {
    /// Classifies a publisher packet once, before it is fanned out.
    pub fn classify(mime_lower: &'a str, video_codec: Option<VideoCodec>, payload: &[u8]) -> Self {
        Self {
            mime_lower,
            video_codec,
            is_keyframe_start: video_codec.is_some_and(|c| is_keyframe_start(c, payload)),
            temporal: match video_codec {
                Some(VideoCodec::Vp8) => vp8_temporal(payload),
                _ => None,
            },
        }
    }
}

/// Why a packet was not forwarded to one subscriber (counted, never an error).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Skip {
    /// The subscriber did not negotiate the publisher's codec.
    CodecNotNegotiated,
    /// Video waits for the next keyframe so the decoder starts clean.
    AwaitingKeyframe,
    /// A late packet from a source the subscriber has already switched away from.
    StaleSource,
    /// A frame of a temporal layer above the subscriber's choice.
    TemporalLayer,
}

/// What happened to the packets offered to one output (for logs and metrics).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct ForwardCounters {
    pub forwarded: u64,
    pub codec_not_negotiated: u64,
    pub awaiting_keyframe: u64,
    pub stale_source: u64,
    pub temporal_layer: u64,
}

/// Forwarding state of one subscriber output track.
#[derive(Debug)]
pub(crate) struct OutputForwarder {
    pub counters: ForwardCounters,
    codecs: Vec<NegotiatedCodec>,
    rewriter: StreamRewriter,
    /// Source payload type → output payload type, for the last source PT seen.
    pt_cache: Option<(u8, u8)>,
    awaiting_keyframe: bool,
    last_source_ssrc: Option<u32>,
    /// Newest `(ssrc, seq)` offered while awaiting a keyframe, forwarded or not.
    newest_offered: Option<(u32, u16)>,
    video: bool,
    temporal: TemporalFilter,
}

impl OutputForwarder {
    /// A forwarder writing SSRC `out_ssrc`; video starts gated on a keyframe.
    pub fn new(out_ssrc: u32, clock_rate: u32, codecs: Vec<NegotiatedCodec>, video: bool) -> Self {
        Self {
            counters: ForwardCounters::default(),
            codecs,
            rewriter: StreamRewriter::new(out_ssrc, clock_rate),
            pt_cache: None,
            awaiting_keyframe: video,
            last_source_ssrc: None,
            newest_offered: None,
            video,
            temporal: TemporalFilter::default(),
        }
    }

    /// Forwards temporal layers up to `layer` only (`None`: all), from a suitable frame on.
    pub fn set_max_temporal_layer(&mut self, layer: Option<u8>) {
        self.temporal.set_target(layer);
    }

    /// Holds video until the next keyframe (after a path change that may have lost packets).
    /// The SSRC this output writes.
    pub fn out_ssrc(&self) -> u32 {
        self.rewriter.out_ssrc()
    }

    pub fn restart_on_keyframe(&mut self) {
        if self.video {
            self.awaiting_keyframe = true;
        }
    }

    fn output_payload_type(&mut self, source_pt: u8, mime_lower: &str) -> Option<u8> {
        if let Some((src, out)) = self.pt_cache
            && src == source_pt
        {
            return Some(out);
        }
        let out = self
            .codecs
            .iter()
            .find(|c| c.mime_lower == mime_lower)?
            .payload_type;
        self.pt_cache = Some((source_pt, out));
        Some(out)
    }

    /// Rewrites `header` in place for this subscriber, or says why the packet is skipped.
    ///
    /// `header` must be a copy owned by this subscriber; its extensions are cleared because the
    /// subscriber leg negotiated its own (and rtc rejects un-negotiated extension ids).
    pub fn prepare(
        &mut self,
        header: &mut rtp::header::Header,
        source: &SourcePacketInfo<'_>,
        now: Instant,
    ) -> Result<(), Skip> {
        let result = self.rewrite_header(header, source, now);
        let counter = match result {
            Ok(()) => &mut self.counters.forwarded,
            Err(Skip::CodecNotNegotiated) => &mut self.counters.codec_not_negotiated,
            Err(Skip::AwaitingKeyframe) => &mut self.counters.awaiting_keyframe,
            Err(Skip::StaleSource) => &mut self.counters.stale_source,
            Err(Skip::TemporalLayer) => &mut self.counters.temporal_layer,
        };
        *counter += 1;
        result
    }

    fn rewrite_header(
        &mut self,
        header: &mut rtp::header::Header,
        source: &SourcePacketInfo<'_>,
        now: Instant,
    ) -> Result<(), Skip> {
        let out_pt = self
            .output_payload_type(header.payload_type, source.mime_lower)
            .ok_or(Skip::CodecNotNegotiated)?;
        if self
            .rewriter
            .is_stale(header.ssrc, header.sequence_number, now)
        {
            return Err(Skip::StaleSource);
        }
        if source.video_codec.is_some() {
            if self.last_source_ssrc.is_some_and(|s| s != header.ssrc) {
                // A new source (publisher replaced or layer switched): restart on its keyframe.
                self.awaiting_keyframe = true;
            }
            if self.awaiting_keyframe {
                // A keyframe start that arrives after later packets (repaired late by RTX)
                // cannot open the gate: the rest of its frame was already skipped.
                let late = self.newest_offered.is_some_and(|(ssrc, newest)| {
                    ssrc == header.ssrc && seq_newer(newest, header.sequence_number)
                });
                if !late {
                    self.newest_offered = Some((header.ssrc, header.sequence_number));
                }
                if !source.is_keyframe_start || late {
                    return Err(Skip::AwaitingKeyframe);
                }
                self.awaiting_keyframe = false;
                self.newest_offered = None;
                // The skipped packets were never sent: no gap for the receiver to NACK.
                self.rewriter.resume_contiguously();
            }
            if !self
                .temporal
                .admit(source.temporal, source.is_keyframe_start)
            {
                self.rewriter.resume_contiguously();
                return Err(Skip::TemporalLayer);
            }
        }
        let (seq, ts) = self
            .rewriter
            .rewrite(header.ssrc, header.sequence_number, header.timestamp, now)
            .ok_or(Skip::StaleSource)?;
        self.last_source_ssrc = Some(header.ssrc);
        header.ssrc = self.rewriter.out_ssrc();
        header.payload_type = out_pt;
        header.sequence_number = seq;
        header.timestamp = ts;
        header.extension = false;
        header.extensions.clear();
        header.extensions_padding = 0;
        header.extension_profile = 0;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const VP8_KEYFRAME: [u8; 4] = [0x10, 0x00, 0x9d, 0x01];
    const VP8_DELTA: [u8; 4] = [0x10, 0x01, 0x00, 0x00];

    fn vp8_forwarder() -> OutputForwarder {
        let codecs = vec![NegotiatedCodec {
            mime_lower: "video/vp8".into(),
            payload_type: 120,
        }];
        OutputForwarder::new(0xAAAA, 90_000, codecs, true)
    }

    fn header(ssrc: u32, seq: u16, ts: u32) -> rtp::header::Header {
        rtp::header::Header {
            version: 2,
            payload_type: 96,
            ssrc,
            sequence_number: seq,
            timestamp: ts,
            extension: true,
            extensions: vec![rtp::header::Extension {
                id: 3,
                payload: bytes::Bytes::from_static(&[1, 2]),
            }],
            extension_profile: 0xBEDE,
            ..Default::default()
        }
    }

    fn vp8(payload: &[u8]) -> SourcePacketInfo<'_> {
        SourcePacketInfo::classify("video/vp8", Some(VideoCodec::Vp8), payload)
    }

    #[test]
    fn dropped_temporal_layer_frames_leave_no_sequence_gap() {
        // VP8 with picture id, TL0PICIDX and TID: a keyframe, then frames of layers 2 and 0.
        let key: [u8; 8] = [0x90, 0xE0, 0x80, 0x01, 0x00, 0x20, 0x00, 0x00];
        let layer2: [u8; 8] = [0x90, 0xE0, 0x80, 0x02, 0x00, 0x80, 0x01, 0x00];
        let layer0: [u8; 8] = [0x90, 0xE0, 0x80, 0x03, 0x01, 0x00, 0x01, 0x00];
        let mut fwd = vp8_forwarder();
        fwd.set_max_temporal_layer(Some(0));
        let now = Instant::now();
        let mut sent = Vec::new();
        for (seq, payload) in [(10, &key), (11, &layer2), (12, &layer2), (13, &layer0)] {
            let mut h = header(1, seq, 1000 + u32::from(seq));
            match fwd.prepare(&mut h, &vp8(payload), now) {
                Ok(()) => sent.push(h.sequence_number),
                Err(skip) => assert_eq!(skip, Skip::TemporalLayer),
            }
        }
        assert_eq!(sent.len(), 2);
        assert_eq!(sent[1], sent[0].wrapping_add(1));
        assert_eq!(fwd.counters.temporal_layer, 2);
    }

    #[test]
    fn video_is_held_until_the_first_keyframe() {
        let mut fwd = vp8_forwarder();
        let now = Instant::now();
        let mut h = header(1, 10, 1000);
        assert_eq!(
            fwd.prepare(&mut h, &vp8(&VP8_DELTA), now),
            Err(Skip::AwaitingKeyframe)
        );
        let mut h = header(1, 11, 4000);
        assert_eq!(fwd.prepare(&mut h, &vp8(&VP8_KEYFRAME), now), Ok(()));
        let mut h = header(1, 12, 4000);
        assert_eq!(fwd.prepare(&mut h, &vp8(&VP8_DELTA), now), Ok(()));
        assert_eq!(fwd.counters.forwarded, 2);
        assert_eq!(fwd.counters.awaiting_keyframe, 1);
    }

    #[test]
    fn forwarded_header_carries_subscriber_ssrc_pt_and_no_extensions() {
        let mut fwd = vp8_forwarder();
        let mut h = header(1, 10, 1000);
        fwd.prepare(&mut h, &vp8(&VP8_KEYFRAME), Instant::now())
            .unwrap();
        assert_eq!(h.ssrc, 0xAAAA);
        assert_eq!(h.payload_type, 120);
        assert!(h.extensions.is_empty() && !h.extension);
    }

    #[test]
    fn codec_the_subscriber_did_not_negotiate_is_skipped() {
        let mut fwd = vp8_forwarder();
        let info = SourcePacketInfo::classify("video/h264", Some(VideoCodec::H264), &[0x65]);
        let mut h = header(1, 10, 1000);
        assert_eq!(
            fwd.prepare(&mut h, &info, Instant::now()),
            Err(Skip::CodecNotNegotiated)
        );
    }

    #[test]
    fn source_switch_waits_for_keyframe_and_keeps_sequence_continuous() {
        let mut fwd = vp8_forwarder();
        let t0 = Instant::now();
        let mut h = header(1, 100, 1000);
        fwd.prepare(&mut h, &vp8(&VP8_KEYFRAME), t0).unwrap();
        let first_out = h.sequence_number;
        let mut h = header(2, 5000, 77);
        let t1 = t0 + Duration::from_millis(33);
        assert_eq!(
            fwd.prepare(&mut h, &vp8(&VP8_DELTA), t1),
            Err(Skip::AwaitingKeyframe)
        );
        let mut h = header(2, 5001, 77);
        fwd.prepare(&mut h, &vp8(&VP8_KEYFRAME), t1).unwrap();
        assert_eq!(h.sequence_number, first_out.wrapping_add(1));
        assert_eq!(h.ssrc, 0xAAAA);
    }

    #[test]
    fn packets_skipped_while_awaiting_a_keyframe_leave_no_sequence_gap() {
        let mut fwd = vp8_forwarder();
        let now = Instant::now();
        let mut h = header(1, 10, 1000);
        fwd.prepare(&mut h, &vp8(&VP8_KEYFRAME), now).unwrap();
        let last = h.sequence_number;
        fwd.restart_on_keyframe();
        for seq in 11..15 {
            let mut h = header(1, seq, 2000);
            assert_eq!(
                fwd.prepare(&mut h, &vp8(&VP8_DELTA), now),
                Err(Skip::AwaitingKeyframe)
            );
        }
        let mut h = header(1, 15, 5000);
        fwd.prepare(&mut h, &vp8(&VP8_KEYFRAME), now).unwrap();
        assert_eq!(h.sequence_number, last.wrapping_add(1));
    }

    #[test]
    fn keyframe_start_repaired_after_later_packets_does_not_open_the_gate() {
        let mut fwd = vp8_forwarder();
        let now = Instant::now();
        // 10 (the keyframe start) was lost upstream; 11 and 12 arrive first.
        for seq in [11, 12] {
            let mut h = header(1, seq, 1000);
            assert_eq!(
                fwd.prepare(&mut h, &vp8(&VP8_DELTA), now),
                Err(Skip::AwaitingKeyframe)
            );
        }
        let mut h = header(1, 10, 1000);
        assert_eq!(
            fwd.prepare(&mut h, &vp8(&VP8_KEYFRAME), now),
            Err(Skip::AwaitingKeyframe)
        );
        // The next keyframe, in order, opens it.
        let mut h = header(1, 20, 4000);
        assert_eq!(fwd.prepare(&mut h, &vp8(&VP8_KEYFRAME), now), Ok(()));
    }

    #[test]
    fn audio_is_not_gated() {
        let codecs = vec![NegotiatedCodec {
            mime_lower: "audio/opus".into(),
            payload_type: 111,
        }];
        let mut fwd = OutputForwarder::new(7, 48_000, codecs, false);
        let info = SourcePacketInfo::classify("audio/opus", None, &[0xfc]);
        let mut h = header(1, 1, 960);
        assert_eq!(fwd.prepare(&mut h, &info, Instant::now()), Ok(()));
        assert_eq!(h.payload_type, 111);
    }
}
