//! The generator's WebRTC endpoints: full-ICE rtc PeerConnections on their own loopback
//! sockets, offering what a browser offers (VP8 + Opus, SRTP AES-CM/HMAC-SHA1-80 only).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::anyhow;
use rtc::dtls::extension::extension_use_srtp::SrtpProtectionProfile;
use rtc::interceptor::{Registry, Slot};
use rtc::media_stream::MediaStreamTrack;
use rtc::peer_connection::RTCPeerConnection;
use rtc::peer_connection::RTCPeerConnectionBuilder;
use rtc::peer_connection::certificate::{CertificateParams, RTCCertificate};
use rtc::peer_connection::configuration::RTCConfigurationBuilder;
use rtc::peer_connection::configuration::media_engine::{
    MIME_TYPE_OPUS, MIME_TYPE_VP8, MediaEngine,
};
use rtc::peer_connection::configuration::setting_engine::SettingEngineBuilder;
use rtc::peer_connection::sdp::RTCSessionDescription;
use rtc::rtp_transceiver::rtp_sender::{
    RTCPFeedback, RTCRtpCodec, RTCRtpCodecParameters, RTCRtpCodingParameters,
    RTCRtpEncodingParameters, RtpCodecKind,
};
use rtc::rtp_transceiver::{RTCRtpSenderId, RTCRtpTransceiverDirection, RTCRtpTransceiverInit};

pub const VP8_PT: u8 = 96;
pub const OPUS_PT: u8 = 111;

/// SRTP profile the generator offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SrtpChoice {
    /// What browsers negotiate.
    AesCmHmacSha1_80,
    AeadAes128Gcm,
}

impl SrtpChoice {
    fn profile(self) -> SrtpProtectionProfile {
        match self {
            Self::AesCmHmacSha1_80 => SrtpProtectionProfile::Srtp_Aes128_Cm_Hmac_Sha1_80,
            Self::AeadAes128Gcm => SrtpProtectionProfile::Srtp_Aead_Aes_128_Gcm,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::AesCmHmacSha1_80 => "AES_CM_128_HMAC_SHA1_80",
            Self::AeadAes128Gcm => "AEAD_AES_128_GCM",
        }
    }

    pub fn srtp_profile(self) -> rtc::srtp::protection_profile::ProtectionProfile {
        match self {
            Self::AesCmHmacSha1_80 => {
                rtc::srtp::protection_profile::ProtectionProfile::Aes128CmHmacSha1_80
            }
            Self::AeadAes128Gcm => rtc::srtp::protection_profile::ProtectionProfile::AeadAes128Gcm,
        }
    }
}

/// Shared construction state: one certificate for every generator PeerConnection.
pub struct ClientFactory {
    certificate: RTCCertificate,
    srtp: SrtpChoice,
}

fn err(context: &'static str) -> impl FnOnce(rtc::shared::error::Error) -> anyhow::Error {
    move |e| anyhow!("{context}: {e}")
}

fn codecs() -> (RTCRtpCodecParameters, RTCRtpCodecParameters) {
    let fb = |typ: &str, parameter: &str| RTCPFeedback {
        typ: typ.into(),
        parameter: parameter.into(),
    };
    let vp8 = RTCRtpCodecParameters {
        rtp_codec: RTCRtpCodec {
            mime_type: MIME_TYPE_VP8.to_owned(),
            clock_rate: 90_000,
            channels: 0,
            sdp_fmtp_line: String::new(),
            rtcp_feedback: vec![fb("nack", ""), fb("nack", "pli"), fb("ccm", "fir")],
        },
        payload_type: VP8_PT,
    };
    let opus = RTCRtpCodecParameters {
        rtp_codec: RTCRtpCodec {
            mime_type: MIME_TYPE_OPUS.to_owned(),
            clock_rate: 48_000,
            channels: 2,
            sdp_fmtp_line: "minptime=10;useinbandfec=1".into(),
            rtcp_feedback: vec![],
        },
        payload_type: OPUS_PT,
    };
    (vp8, opus)
}

impl ClientFactory {
    pub fn new(srtp: SrtpChoice) -> anyhow::Result<Self> {
        let provider =
            rtc::crypto::default_provider().map_err(|e| anyhow!("crypto provider: {e}"))?;
        let params = CertificateParams::new(vec!["gatehouse-bench".to_owned()])
            .map_err(|e| anyhow!("certificate params: {e}"))?;
        let certificate = RTCCertificate::generate(
            provider.crypto(),
            rtc::crypto::SignatureScheme::EcdsaP256Sha256,
            params,
        )
        .map_err(err("certificate"))?;
        Ok(Self { certificate, srtp })
    }

    fn build(&self, local: SocketAddr, registry: Registry) -> anyhow::Result<RTCPeerConnection> {
        let (vp8, opus) = codecs();
        let mut media_engine = MediaEngine::default();
        media_engine
            .register_codec(vp8, RtpCodecKind::Video)
            .map_err(err("codec"))?;
        media_engine
            .register_codec(opus, RtpCodecKind::Audio)
            .map_err(err("codec"))?;
        // rtc's agent sends its first check one interval after the answer (Chrome sends it at
        // once): 10 ms keeps the client's own pacing out of the time to first frame.
        let setting_engine = SettingEngineBuilder::new()
            .with_srtp_protection_profiles(vec![self.srtp.profile()])
            .with_ice_connection_attempts(Some(Duration::from_millis(10)), Some(25))
            .build();
        let configuration = RTCConfigurationBuilder::new()
            .with_certificates(vec![self.certificate.clone()])
            .build();
        let mut pc = RTCPeerConnectionBuilder::new()
            .with_configuration(configuration)
            .with_media_engine(media_engine)
            .with_setting_engine(setting_engine)
            .with_interceptor_registry(registry)
            .build(Instant::now())
            .map_err(err("peer connection"))?;
        gatehouse::media::add_host_candidate(&mut pc, local).map_err(err("host candidate"))?;
        Ok(pc)
    }

    /// A WHIP publisher: VP8 and Opus tracks with fixed SSRCs; PLI/FIR reach `poll_read`.
    pub fn publisher(&self, local: SocketAddr) -> anyhow::Result<PublisherPc> {
        let registry = Registry::new().with(
            Slot::from(gatehouse::media::KEYFRAME_REQUESTS_SLOT),
            gatehouse::media::KeyframeRequestsToApp::default(),
        );
        let mut pc = self.build(local, registry)?;
        let (vp8, opus) = codecs();
        let video_ssrc = rand::random::<u32>();
        let audio_ssrc = rand::random::<u32>();
        let track = |kind, id: &str, ssrc, codec: &RTCRtpCodecParameters| {
            MediaStreamTrack::new(
                "bench".into(),
                id.into(),
                id.into(),
                kind,
                vec![RTCRtpEncodingParameters {
                    rtp_coding_parameters: RTCRtpCodingParameters {
                        ssrc: Some(ssrc),
                        ..Default::default()
                    },
                    codec: codec.rtp_codec.clone(),
                    ..Default::default()
                }],
            )
        };
        let video = pc
            .add_track(track(RtpCodecKind::Video, "video", video_ssrc, &vp8))
            .map_err(err("video track"))?;
        let audio = pc
            .add_track(track(RtpCodecKind::Audio, "audio", audio_ssrc, &opus))
            .map_err(err("audio track"))?;
        let offer = local_offer(&mut pc)?;
        Ok(PublisherPc {
            pc,
            offer,
            video,
            audio,
            video_ssrc,
            audio_ssrc,
        })
    }

    /// A WHEP subscriber: recvonly video and audio, no interceptors (it decrypts only a
    /// sample, so it must not NACK or report on what it never decrypted).
    pub fn subscriber(&self, local: SocketAddr) -> anyhow::Result<(RTCPeerConnection, String)> {
        let mut pc = self.build(local, Registry::new())?;
        for kind in [RtpCodecKind::Video, RtpCodecKind::Audio] {
            pc.add_transceiver_from_kind(
                kind,
                Some(RTCRtpTransceiverInit {
                    direction: RTCRtpTransceiverDirection::Recvonly,
                    streams: vec![],
                    send_encodings: vec![],
                }),
            )
            .map_err(err("transceiver"))?;
        }
        let offer = local_offer(&mut pc)?;
        Ok((pc, offer))
    }
}

fn local_offer(pc: &mut RTCPeerConnection) -> anyhow::Result<String> {
    let offer = pc.create_offer(None).map_err(err("offer"))?;
    let sdp = offer.sdp.clone();
    pc.set_local_description(Instant::now(), offer)
        .map_err(err("local description"))?;
    Ok(sdp)
}

/// Applies the gateway's SDP answer.
pub fn apply_answer(pc: &mut RTCPeerConnection, answer: String) -> anyhow::Result<()> {
    let answer = RTCSessionDescription::answer(answer).map_err(err("answer"))?;
    pc.set_remote_description(Instant::now(), answer)
        .map_err(err("remote description"))
}

/// The publisher's PeerConnection and what it sends with.
pub struct PublisherPc {
    pub pc: RTCPeerConnection,
    pub offer: String,
    pub video: RTCRtpSenderId,
    pub audio: RTCRtpSenderId,
    pub video_ssrc: u32,
    pub audio_ssrc: u32,
}
