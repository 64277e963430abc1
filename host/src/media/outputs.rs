//! A subscriber's outputs as negotiated: per sender, the codecs its forwarder maps to, and the
//! RTX stream and history its NACKs are answered from.

use rtc::peer_connection::RTCPeerConnection;
use rtc::rtp_transceiver::rtp_sender::RTCRtpSendParameters;

use super::feed::FeedKey;
use super::forward::{NegotiatedCodec, OutputForwarder};
use super::offer::MediaKind;
use super::peer::OutputTrack;
use super::sent_stream::{RtxStream, SentStream};
use super::sessions::AddedTrack;

/// Reads back what each subscriber sender negotiated and builds its forwarder; video outputs
/// keep `history` sent packets for NACKs.
pub(crate) fn negotiated_outputs(
    pc: &mut RTCPeerConnection,
    added: Vec<AddedTrack>,
    source: &FeedKey,
    history: u16,
) -> Vec<OutputTrack> {
    added
        .into_iter()
        .filter_map(|(kind, ssrc, sender_id, intent)| {
            let mut sender = pc.rtp_sender(sender_id)?;
            let parameters = sender.get_parameters();
            let codecs: Vec<NegotiatedCodec> = parameters
                .rtp_parameters
                .codecs
                .iter()
                .map(|c| NegotiatedCodec {
                    mime_lower: c.rtp_codec.mime_type.to_ascii_lowercase(),
                    payload_type: c.payload_type,
                })
                .collect();
            let video = kind == MediaKind::Video;
            let sent = SentStream::new(
                intent.clock_rate,
                if video { history } else { 0 },
                rtx_stream(parameters),
            );
            let forwarder = OutputForwarder::new(ssrc, intent.clock_rate, codecs, video);
            Some(OutputTrack {
                kind,
                layer: super::LayerChoice::Default,
                source: source.clone(),
                paused: false,
                sender_id,
                forwarder,
                sent,
                playout_delay: None,
            })
        })
        .collect()
}

/// A sender's RTX stream: its SSRC and each `video/rtx` payload type with its `apt`.
fn rtx_stream(parameters: &RTCRtpSendParameters) -> Option<RtxStream> {
    let ssrc = parameters
        .encodings
        .iter()
        .find_map(|e| e.rtp_coding_parameters.rtx.as_ref())?
        .ssrc;
    let payload_types: Vec<(u8, u8)> = parameters
        .rtp_parameters
        .codecs
        .iter()
        .filter(|c| c.rtp_codec.mime_type.eq_ignore_ascii_case("video/rtx"))
        .filter_map(|c| {
            let apt = c
                .rtp_codec
                .sdp_fmtp_line
                .split(';')
                .find_map(|p| p.trim().strip_prefix("apt="))?
                .parse()
                .ok()?;
            Some((apt, c.payload_type))
        })
        .collect();
    (!payload_types.is_empty()).then_some(RtxStream {
        ssrc,
        payload_types,
    })
}
