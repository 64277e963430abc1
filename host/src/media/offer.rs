//! Reading a client's SDP offer before it reaches a PeerConnection: is it SDP at all, can this
//! role serve it, and which codecs does it offer per kind (in the client's preference order).

use std::io::Cursor;

use rtc::sdp::SessionDescription;

use super::{MediaError, Role};

/// Audio or video; other m-lines (data channels) are not media for the SFU.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum MediaKind {
    Audio,
    Video,
}

impl MediaKind {
    pub fn as_str(self) -> &'static str {
        match self {
            MediaKind::Audio => "audio",
            MediaKind::Video => "video",
        }
    }
}

/// One codec line of an offered m-section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OfferedCodec {
    pub payload_type: u8,
    /// `kind/name`, e.g. `video/VP8`.
    pub mime_type: String,
    pub clock_rate: u32,
    pub channels: u16,
    pub fmtp: String,
}

/// One usable audio/video m-section of an offer.
#[derive(Debug, Clone)]
pub(crate) struct OfferedMedia {
    pub kind: MediaKind,
    pub codecs: Vec<OfferedCodec>,
}

/// What the engine needs to know about an offer.
#[derive(Debug, Clone)]
pub(crate) struct OfferSummary {
    pub media: Vec<OfferedMedia>,
}

#[cfg(test)]
impl OfferSummary {
    /// The offered section of `kind`, if any.
    pub fn media(&self, kind: MediaKind) -> Option<&OfferedMedia> {
        self.media.iter().find(|m| m.kind == kind)
    }
}

/// Codecs the gateway forwards, in its own order of preference.
const FORWARDABLE: [&str; 9] = [
    "video/VP8",
    "video/H264",
    "video/VP9",
    "video/AV1",
    "video/H265",
    "audio/opus",
    "audio/G722",
    "audio/PCMU",
    "audio/PCMA",
];

/// Whether the gateway can forward a codec (case-insensitive MIME type).
pub(crate) fn is_forwardable(mime_type: &str) -> bool {
    FORWARDABLE
        .iter()
        .any(|m| m.eq_ignore_ascii_case(mime_type))
}

/// Parses and checks an offer for `role`.
///
/// Malformed SDP is [`MediaError::MalformedOffer`]; SDP that this role cannot serve (wrong
/// direction, no audio or video, two tracks of one kind, no forwardable codec) is
/// [`MediaError::UnusableOffer`].
pub(crate) fn inspect(sdp: &str, role: Role) -> Result<OfferSummary, MediaError> {
    inspect_sections(sdp, role, false)
}

/// A publisher's new offer on a live session: as [`inspect`], except that sections no longer
/// sent (`inactive`, `recvonly`: a track removed or paused) are allowed, even all of them.
pub(crate) fn inspect_reoffer(sdp: &str) -> Result<OfferSummary, MediaError> {
    inspect_sections(sdp, Role::Publisher, true)
}

fn inspect_sections(sdp: &str, role: Role, idle_ok: bool) -> Result<OfferSummary, MediaError> {
    let parsed = SessionDescription::unmarshal(&mut Cursor::new(sdp.as_bytes()))
        .map_err(|e| MediaError::MalformedOffer(e.to_string()))?;
    let session_direction = direction_of(parsed.attributes.iter().map(|a| a.key.as_str()));
    let mut media = Vec::new();
    for section in &parsed.media_descriptions {
        let kind = match section.media_name.media.as_str() {
            "audio" => MediaKind::Audio,
            "video" => MediaKind::Video,
            _ => continue,
        };
        if section.media_name.port.value == 0 {
            continue; // a rejected or stopped m-section
        }
        let direction = direction_of(section.attributes.iter().map(|a| a.key.as_str()))
            .or(session_direction)
            .unwrap_or("sendrecv");
        let acceptable = match role {
            Role::Publisher => matches!(direction, "sendonly" | "sendrecv"),
            Role::Subscriber => matches!(direction, "recvonly" | "sendrecv"),
        };
        if !acceptable && idle_ok && matches!(direction, "inactive" | "recvonly") {
            continue;
        }
        if !acceptable {
            let wanted = match role {
                Role::Publisher => "sendonly or sendrecv",
                Role::Subscriber => "recvonly or sendrecv",
            };
            return Err(MediaError::UnusableOffer(format!(
                "{} section is {direction}; this endpoint needs {wanted}",
                kind.as_str()
            )));
        }
        if media.iter().any(|m: &OfferedMedia| m.kind == kind) {
            return Err(MediaError::UnusableOffer(format!(
                "more than one {} section; one track per kind is supported",
                kind.as_str()
            )));
        }
        let codecs = offered_codecs(section, kind);
        if !codecs.iter().any(|c| is_forwardable(&c.mime_type)) {
            return Err(MediaError::UnusableOffer(format!(
                "no supported {} codec offered",
                kind.as_str()
            )));
        }
        media.push(OfferedMedia { kind, codecs });
    }
    if media.is_empty() && !idle_ok {
        return Err(MediaError::UnusableOffer(
            "the offer has no audio or video section".into(),
        ));
    }
    Ok(OfferSummary { media })
}

fn direction_of<'a>(keys: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    keys.into_iter()
        .find(|k| matches!(*k, "sendonly" | "recvonly" | "sendrecv" | "inactive"))
}

fn offered_codecs(
    section: &rtc::sdp::description::media::MediaDescription,
    kind: MediaKind,
) -> Vec<OfferedCodec> {
    let table = section.codecs();
    section
        .media_name
        .formats
        .iter()
        .filter_map(|f| f.parse::<u8>().ok())
        .filter_map(|pt| table.get(&pt))
        .map(|codec| OfferedCodec {
            payload_type: codec.payload_type,
            mime_type: format!("{}/{}", kind.as_str(), codec.name),
            clock_rate: codec.clock_rate,
            channels: codec.encoding_parameters.parse().unwrap_or(0),
            fmtp: codec.fmtp.clone(),
        })
        .collect()
}

/// The offer `sdp` with new ICE credentials and no candidates: what an RFC 9725 ICE-restart
/// PATCH means, expressed as an offer the PeerConnection can apply.
pub(crate) fn with_new_ice_credentials(sdp: &str, ufrag: &str, pwd: &str) -> String {
    let mut out = String::with_capacity(sdp.len());
    for line in sdp.lines() {
        let line = line.trim_end_matches('\r');
        if line.starts_with("a=ice-ufrag:") {
            out.push_str("a=ice-ufrag:");
            out.push_str(ufrag);
        } else if line.starts_with("a=ice-pwd:") {
            out.push_str("a=ice-pwd:");
            out.push_str(pwd);
        } else if line.starts_with("a=candidate:") || line == "a=end-of-candidates" {
            continue;
        } else {
            out.push_str(line);
        }
        out.push_str("\r\n");
    }
    out
}

/// Whether an SDP line is a candidate for RTP component 2 (RTCP), which rtc lists although
/// every session muxes RTCP.
pub(crate) fn is_rtcp_candidate(line: &str) -> bool {
    line.strip_prefix("a=")
        .unwrap_or(line)
        .strip_prefix("candidate:")
        .and_then(|rest| rest.split_whitespace().nth(1))
        == Some("2")
}

/// The answer as sent to clients: RTCP-component candidates dropped and each m-section's
/// candidates closed with `a=end-of-candidates` (the server never trickles, RFC 9725 §4.3.1).
pub(crate) fn tidy_answer(sdp: &str) -> String {
    let lines: Vec<&str> = sdp
        .lines()
        .map(|l| l.trim_end_matches('\r'))
        .filter(|l| !l.is_empty() && !is_rtcp_candidate(l) && *l != "a=end-of-candidates")
        .collect();
    let mut out = String::with_capacity(sdp.len() + 64);
    for (i, line) in lines.iter().enumerate() {
        out.push_str(line);
        out.push_str("\r\n");
        let next_is_candidate = lines
            .get(i + 1)
            .is_some_and(|n| n.starts_with("a=candidate:"));
        if line.starts_with("a=candidate:") && !next_is_candidate {
            out.push_str("a=end-of-candidates\r\n");
        }
    }
    out
}

/// The value of the first `a=<key>:` line of an SDP text.
pub(crate) fn first_attribute<'a>(sdp: &'a str, key: &str) -> Option<&'a str> {
    sdp.lines().find_map(|line| {
        line.trim_end_matches('\r')
            .strip_prefix("a=")?
            .strip_prefix(key)?
            .strip_prefix(':')
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offer(direction: &str, video_formats: &str) -> String {
        format!(
            "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0 1\r\n\
             m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na={direction}\r\n\
             a=ice-ufrag:abcd\r\na=ice-pwd:0123456789012345678901\r\n\
             a=rtpmap:111 opus/48000/2\r\na=fmtp:111 minptime=10;useinbandfec=1\r\n\
             m=video 9 UDP/TLS/RTP/SAVPF {video_formats}\r\nc=IN IP4 0.0.0.0\r\na=mid:1\r\na={direction}\r\n\
             a=rtpmap:96 VP8/90000\r\na=rtpmap:102 H264/90000\r\n\
             a=fmtp:102 packetization-mode=1;profile-level-id=42e01f\r\n\
             a=candidate:1 1 udp 2122260223 127.0.0.1 5000 typ host\r\n"
        )
    }

    #[test]
    fn publisher_offer_lists_codecs_in_client_order() {
        let summary = inspect(&offer("sendonly", "102 96"), Role::Publisher).unwrap();
        let video = summary.media(MediaKind::Video).unwrap();
        let names: Vec<_> = video.codecs.iter().map(|c| c.mime_type.as_str()).collect();
        assert_eq!(names, ["video/H264", "video/VP8"]);
        assert_eq!(
            summary.media(MediaKind::Audio).unwrap().codecs[0].channels,
            2
        );
    }

    #[test]
    fn recvonly_offer_is_unusable_for_a_publisher() {
        let err = inspect(&offer("recvonly", "96"), Role::Publisher).unwrap_err();
        assert!(matches!(err, MediaError::UnusableOffer(_)), "{err:?}");
    }

    #[test]
    fn sendonly_offer_is_unusable_for_a_subscriber() {
        let err = inspect(&offer("sendonly", "96"), Role::Subscriber).unwrap_err();
        assert!(matches!(err, MediaError::UnusableOffer(_)), "{err:?}");
    }

    #[test]
    fn garbage_is_a_malformed_offer() {
        let err = inspect("hello", Role::Publisher).unwrap_err();
        assert!(matches!(err, MediaError::MalformedOffer(_)), "{err:?}");
    }

    #[test]
    fn offer_without_media_is_unusable() {
        let sdp = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n";
        let err = inspect(sdp, Role::Subscriber).unwrap_err();
        assert!(matches!(err, MediaError::UnusableOffer(_)), "{err:?}");
    }

    #[test]
    fn answer_loses_rtcp_candidates_and_closes_each_candidate_block() {
        let answer = "v=0\r\nm=video 9 X 96\r\na=mid:0\r\n\
                      a=candidate:1 1 udp 5 127.0.0.1 7 typ host\r\n\
                      a=candidate:1 2 udp 5 127.0.0.1 7 typ host\r\n\
                      m=audio 9 X 111\r\na=mid:1\r\n\
                      a=candidate:1 1 udp 5 127.0.0.1 7 typ host\r\n";
        let tidy = tidy_answer(answer);
        assert!(!tidy.contains(" 2 udp "), "{tidy}");
        assert_eq!(tidy.matches("a=end-of-candidates\r\n").count(), 2, "{tidy}");
        assert!(
            tidy.ends_with("typ host\r\na=end-of-candidates\r\n"),
            "{tidy}"
        );
    }

    #[test]
    fn ice_restart_offer_swaps_credentials_and_drops_candidates() {
        let restarted = with_new_ice_credentials(&offer("sendonly", "96"), "newu", "newpwd");
        assert_eq!(first_attribute(&restarted, "ice-ufrag"), Some("newu"));
        assert_eq!(first_attribute(&restarted, "ice-pwd"), Some("newpwd"));
        assert!(!restarted.contains("a=candidate"));
        assert!(inspect(&restarted, Role::Publisher).is_ok());
    }
}
