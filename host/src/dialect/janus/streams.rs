//! The `streams` lists of VideoRoom replies, read from an SDP's m-lines: type, mindex, mid and
//! the codec of the first payload type.

use serde_json::{Value, json};

/// One m-line of an SDP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaSection {
    /// `audio`, `video` or `data`.
    pub kind: String,
    pub mindex: usize,
    pub mid: String,
    /// Lowercase encoding name of the first payload type (`vp8`, `opus`…), when known.
    pub codec: Option<String>,
    /// Port 0: a rejected or removed m-line.
    pub disabled: bool,
    /// The first `a=ssrc` of the section (what the sender of this m-line writes).
    pub ssrc: Option<u32>,
    /// Its direction attribute (`sendrecv`, `sendonly`, `recvonly`, `inactive`), if any.
    pub direction: Option<String>,
}

/// The m-lines of `sdp`, in order.
pub fn media_sections(sdp: &str) -> Vec<MediaSection> {
    let mut sections: Vec<(MediaSection, Option<String>)> = Vec::new();
    for line in sdp.lines().map(|l| l.trim_end_matches('\r')) {
        if let Some(m) = line.strip_prefix("m=") {
            let fields: Vec<&str> = m.split_whitespace().collect();
            let kind = match fields.first() {
                Some(&"application") => "data".to_owned(),
                Some(kind) => (*kind).to_owned(),
                None => continue,
            };
            let mindex = sections.len();
            sections.push((
                MediaSection {
                    kind,
                    mindex,
                    mid: mindex.to_string(),
                    codec: None,
                    disabled: fields.get(1) == Some(&"0"),
                    ssrc: None,
                    direction: None,
                },
                fields.get(3).map(|pt| (*pt).to_owned()),
            ));
            continue;
        }
        let Some((section, first_pt)) = sections.last_mut() else {
            continue;
        };
        if let Some(mid) = line.strip_prefix("a=mid:") {
            section.mid = mid.trim().to_owned();
        } else if let Some(direction) = ["sendrecv", "sendonly", "recvonly", "inactive"]
            .into_iter()
            .find(|d| line.strip_prefix("a=") == Some(*d))
        {
            section.direction = Some(direction.to_owned());
        } else if let Some(ssrc) = line.strip_prefix("a=ssrc:")
            && section.ssrc.is_none()
        {
            section.ssrc = ssrc.split_whitespace().next().and_then(|s| s.parse().ok());
        } else if let Some(map) = line.strip_prefix("a=rtpmap:")
            && section.codec.is_none()
            && let Some((pt, encoding)) = map.split_once(' ')
            && first_pt.as_deref() == Some(pt)
        {
            let name = encoding.split('/').next().unwrap_or_default();
            section.codec = Some(name.to_ascii_lowercase());
        }
    }
    sections.into_iter().map(|(s, _)| s).collect()
}

/// The codec of the first section of `kind`.
pub fn codec_of<'a>(sections: &'a [MediaSection], kind: &str) -> Option<&'a str> {
    sections
        .iter()
        .find(|s| s.kind == kind && !s.disabled)
        .and_then(|s| s.codec.as_deref())
}

/// A publisher's `streams` entries, from the answer to its offer (ours, or a cascade's
/// upstream server's). An `inactive` m-line (nothing sent on it) stays listed as `disabled`,
/// as in Janus; rejected ones are left out.
pub fn publisher_streams(sections: &[MediaSection]) -> Vec<Value> {
    sections
        .iter()
        .filter(|s| !s.disabled)
        .map(|s| {
            if s.direction.as_deref() == Some("inactive") {
                return json!({"type": s.kind, "mindex": s.mindex, "mid": s.mid, "disabled": true});
            }
            let mut entry = json!({"type": s.kind, "mindex": s.mindex, "mid": s.mid});
            if let Some(codec) = &s.codec {
                entry["codec"] = json!(codec);
            }
            entry
        })
        .collect()
}

/// An answer with its Opus fmtp saying what the room wants of publishers' Opus encoders:
/// in-band FEC (`useinbandfec=1`, the room's `opus_fec`) and DTX (`usedtx=1`, `opus_dtx`).
/// Other fmtp parameters are kept; an Opus payload type without an fmtp line gets one.
pub fn opus_params(answer: &str, fec: bool, dtx: bool) -> String {
    // `a=fmtp:PT params` (or a bare `a=fmtp:PT`) as (PT, params).
    let fmtp_of = |line: &str| -> Option<(String, String)> {
        let rest = line.strip_prefix("a=fmtp:")?;
        let (pt, params) = rest.split_once(' ').unwrap_or((rest, ""));
        Some((pt.to_owned(), params.to_owned()))
    };
    let lines: Vec<&str> = answer.split_inclusive('\n').collect();
    let bare = |line: &str| line.trim_end_matches(['\r', '\n']).to_owned();
    let opus_pts: Vec<String> = lines
        .iter()
        .filter_map(|l| {
            let l = bare(l);
            let (pt, enc) = l.strip_prefix("a=rtpmap:")?.split_once(' ')?;
            enc.to_ascii_lowercase()
                .starts_with("opus/")
                .then(|| pt.to_owned())
        })
        .collect();
    let with_fmtp: Vec<String> = lines
        .iter()
        .filter_map(|l| fmtp_of(&bare(l)).map(|(pt, _)| pt))
        .collect();
    let wanted = |params: &str| -> String {
        let mut kept: Vec<&str> = params
            .split(';')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .filter(|p| !p.starts_with("useinbandfec=") && !p.starts_with("usedtx="))
            .collect();
        if fec {
            kept.push("useinbandfec=1");
        }
        if dtx {
            kept.push("usedtx=1");
        }
        kept.join(";")
    };
    let mut out = String::with_capacity(answer.len() + 32);
    for line in lines {
        let text = bare(line);
        // Each line keeps its own ending (CRLF, LF, or none for an unterminated last line).
        let eol = &line[text.len()..];
        match fmtp_of(&text).filter(|(pt, _)| opus_pts.contains(pt)) {
            Some((pt, params)) => {
                let params = wanted(&params);
                if !params.is_empty() {
                    out.push_str(&format!("a=fmtp:{pt} {params}{eol}"));
                }
            }
            None => out.push_str(line),
        }
        let rtpmap_pt = text
            .strip_prefix("a=rtpmap:")
            .and_then(|r| r.split_once(' '))
            .map(|(pt, _)| pt.to_owned());
        if let Some(pt) = rtpmap_pt
            && opus_pts.contains(&pt)
            && !with_fmtp.contains(&pt)
            && (fec || dtx)
        {
            let ending = if eol.is_empty() { "\r\n" } else { eol };
            if eol.is_empty() {
                out.push_str(ending);
            }
            out.push_str(&format!("a=fmtp:{pt} {}", wanted("")));
            out.push_str(if eol.is_empty() { "" } else { ending });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const SDP: &str = "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111 0\r\na=mid:a0\r\n\
        a=rtpmap:0 PCMU/8000\r\na=rtpmap:111 opus/48000/2\r\nm=video 9 UDP/TLS/RTP/SAVPF 96 97\r\n\
        a=mid:v1\r\na=rtpmap:96 VP8/90000\r\na=rtpmap:97 rtx/90000\r\na=ssrc:1234 cname:x\r\n\
        m=video 0 UDP/TLS/RTP/SAVPF 96\r\n\
        a=mid:2\r\n";

    #[test]
    fn sections_carry_mid_and_the_first_payload_types_codec() {
        let s = media_sections(SDP);
        assert_eq!(s.len(), 3);
        assert_eq!((s[0].kind.as_str(), s[0].mid.as_str()), ("audio", "a0"));
        assert_eq!(s[0].codec.as_deref(), Some("opus"));
        assert_eq!(s[1].codec.as_deref(), Some("vp8"));
        assert!(s[2].disabled);
        assert_eq!((s[0].ssrc, s[1].ssrc), (None, Some(1234)));
        assert_eq!(codec_of(&s, "video"), Some("vp8"));
        assert_eq!(publisher_streams(&s).len(), 2);
    }

    #[test]
    fn an_m_line_the_publisher_no_longer_sends_on_is_listed_disabled() {
        let answer = SDP.replace("a=mid:v1\r\n", "a=mid:v1\r\na=inactive\r\n");
        let sections = media_sections(&answer);
        assert_eq!(sections[1].direction.as_deref(), Some("inactive"));
        let streams = publisher_streams(&sections);
        assert_eq!(
            streams[1],
            json!({"type": "video", "mindex": 1, "mid": "v1", "disabled": true})
        );
        assert_eq!(streams[0]["codec"], "opus");
        // An upstream server's answer to a cascade pull sends on its m-lines: all live.
        let upstream = SDP.replace("a=mid:v1\r\n", "a=mid:v1\r\na=sendonly\r\n");
        assert_eq!(
            publisher_streams(&media_sections(&upstream))[1]["codec"],
            "vp8"
        );
    }
}

/// What a room asks of its publishers' offers beyond its codec names.
#[derive(Debug, Clone, Default)]
pub struct OfferRules {
    /// Header extensions left out (`audiolevel_ext`, `transport_wide_cc_ext` off).
    pub extensions_off: Vec<&'static str>,
    /// `h264_profile`: the only H.264 `profile-level-id` kept.
    pub h264_profile: Option<String>,
    /// `vp9_profile`: the only VP9 `profile-id` kept (none in the fmtp means 0).
    pub vp9_profile: Option<String>,
}

impl OfferRules {
    /// The offer cut to the room's codecs (`audio`/`video` lists) and to these rules; `Err`
    /// names the kind of a section left without a codec.
    pub fn apply(&self, offer: &str, audio: &str, video: &str) -> Result<String, String> {
        let cut = restrict_codecs(offer, audio, video, self)?;
        Ok(without_extensions(&cut, &self.extensions_off))
    }

    /// Whether a payload of `codec` (lowercase name) with `fmtp` has the room's profile.
    fn allows(&self, codec: &str, fmtp: Option<&str>) -> bool {
        let param = |name: &str| {
            fmtp?.split(';').find_map(|kv| {
                let (k, v) = kv.trim().split_once('=')?;
                k.eq_ignore_ascii_case(name).then_some(v.trim())
            })
        };
        match (codec, &self.h264_profile, &self.vp9_profile) {
            ("h264", Some(want), _) => {
                param("profile-level-id").is_some_and(|got| got.eq_ignore_ascii_case(want))
            }
            ("vp9", _, Some(want)) => param("profile-id").unwrap_or("0") == want.as_str(),
            _ => true,
        }
    }
}

/// Keeps only the codecs a room allows (`audiocodec`/`videocodec`, comma-separated names like
/// `opus` or `vp8,h264`, with the profiles of `rules`) in a publisher's offer, with their
/// retransmission formats: the media core then cannot answer with another codec. `Err` names
/// the kind of a section that offers none of them.
fn restrict_codecs(
    offer: &str,
    audio: &str,
    video: &str,
    rules: &OfferRules,
) -> Result<String, String> {
    let allowed = |kind: &str| -> Vec<String> {
        let list = match kind {
            "audio" => audio,
            "video" => video,
            _ => return Vec::new(),
        };
        list.split(',')
            .map(|c| c.trim().to_ascii_lowercase())
            .filter(|c| !c.is_empty())
            .collect()
    };
    let lines: Vec<&str> = offer.lines().map(|l| l.trim_end_matches('\r')).collect();
    let mut out: Vec<String> = Vec::with_capacity(lines.len());
    let mut i = 0;
    while i < lines.len() {
        let Some(m) = lines[i].strip_prefix("m=") else {
            out.push(lines[i].to_owned());
            i += 1;
            continue;
        };
        let end = (i + 1..lines.len())
            .find(|&j| lines[j].starts_with("m="))
            .unwrap_or(lines.len());
        let section = &lines[i + 1..end];
        let fields: Vec<&str> = m.split_whitespace().collect();
        let names = allowed(fields.first().copied().unwrap_or_default());
        // A stopped section (port 0) keeps whatever it lists: it carries nothing.
        if names.is_empty() || fields.len() < 4 || fields[1] == "0" {
            out.extend(lines[i..end].iter().map(|l| (*l).to_owned()));
            i = end;
            continue;
        }
        let codec_of = |pt: &str| {
            section.iter().find_map(|l| {
                let (p, enc) = l.strip_prefix("a=rtpmap:")?.split_once(' ')?;
                (p == pt).then(|| {
                    enc.split('/')
                        .next()
                        .unwrap_or_default()
                        .to_ascii_lowercase()
                })
            })
        };
        let apt_of = |pt: &str| {
            section.iter().find_map(|l| {
                let (p, params) = l.strip_prefix("a=fmtp:")?.split_once(' ')?;
                (p == pt).then(|| params.strip_prefix("apt=").map(str::to_owned))?
            })
        };
        let fmtp_of = |pt: &str| {
            section.iter().find_map(|l| {
                let (p, params) = l.strip_prefix("a=fmtp:")?.split_once(' ')?;
                (p == pt).then_some(params)
            })
        };
        let primary: Vec<&str> = fields[3..]
            .iter()
            .copied()
            .filter(|pt| {
                codec_of(pt).is_some_and(|c| names.contains(&c) && rules.allows(&c, fmtp_of(pt)))
            })
            .collect();
        let kept: Vec<&str> = fields[3..]
            .iter()
            .copied()
            .filter(|pt| {
                primary.contains(pt)
                    || (codec_of(pt).as_deref() == Some("rtx")
                        && apt_of(pt).is_some_and(|apt| primary.contains(&apt.as_str())))
            })
            .collect();
        if kept.is_empty() {
            return Err(fields[0].to_owned());
        }
        out.push(format!(
            "m={} {} {} {}",
            fields[0],
            fields[1],
            fields[2],
            kept.join(" ")
        ));
        let dropped = |l: &str| {
            ["a=rtpmap:", "a=fmtp:", "a=rtcp-fb:"].iter().any(|prefix| {
                l.strip_prefix(prefix)
                    .and_then(|rest| rest.split([' ', ':']).next())
                    .is_some_and(|pt| pt != "*" && !kept.contains(&pt))
            })
        };
        out.extend(
            section
                .iter()
                .filter(|l| !dropped(l))
                .map(|l| (*l).to_owned()),
        );
        i = end;
    }
    let mut sdp = out.join("\r\n");
    sdp.push_str("\r\n");
    Ok(sdp)
}

pub use crate::media::AUDIO_LEVEL_URI;
/// The transport-wide sequence number extension (a room's `transport_wide_cc_ext`).
pub const TRANSPORT_CC_URI: &str =
    "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01";

/// A publisher's offer without the header extensions `uris`, so the answer cannot negotiate
/// them; without transport-wide CC its `transport-cc` feedback goes too.
pub fn without_extensions(offer: &str, uris: &[&str]) -> String {
    let drops_twcc = uris.contains(&TRANSPORT_CC_URI);
    offer
        .split_inclusive('\n')
        .filter(|line| {
            let bare = line.trim_end_matches(['\r', '\n']);
            if let Some(rest) = bare.strip_prefix("a=extmap:") {
                let uri = rest.split_whitespace().nth(1).unwrap_or_default();
                return !uris.contains(&uri);
            }
            !(drops_twcc
                && bare.starts_with("a=rtcp-fb:")
                && bare.split_whitespace().nth(1) == Some("transport-cc"))
        })
        .collect()
}

#[cfg(test)]
mod restrict_tests {
    use super::*;

    #[test]
    fn extensions_a_room_turns_off_leave_the_offer_with_their_feedback() {
        let offer = format!(
            "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=extmap:1 {AUDIO_LEVEL_URI}\r\n\
             a=extmap:3 {TRANSPORT_CC_URI}\r\na=rtcp-fb:111 transport-cc\r\n\
             a=rtcp-fb:111 nack\r\na=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid\r\n"
        );
        let level_off = without_extensions(&offer, &[AUDIO_LEVEL_URI]);
        assert!(!level_off.contains("ssrc-audio-level"));
        assert!(level_off.contains("transport-cc") && level_off.contains("sdes:mid"));
        let twcc_off = without_extensions(&offer, &[TRANSPORT_CC_URI]);
        assert!(!twcc_off.contains("transport-cc") && !twcc_off.contains("transport-wide"));
        assert!(twcc_off.contains("a=rtcp-fb:111 nack\r\n") && twcc_off.contains("audio-level"));
        assert_eq!(without_extensions(&offer, &[]), offer);
    }

    const OFFER: &str = "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111 0\r\na=rtpmap:111 opus/48000/2\r\n\
        a=rtpmap:0 PCMU/8000\r\nm=video 9 UDP/TLS/RTP/SAVPF 96 97 98 99\r\na=rtpmap:96 VP8/90000\r\n\
        a=rtcp-fb:96 nack\r\na=rtpmap:97 rtx/90000\r\na=fmtp:97 apt=96\r\na=rtpmap:98 H264/90000\r\n\
        a=fmtp:98 profile-level-id=42e01f\r\na=rtcp-fb:98 nack\r\na=rtpmap:99 rtx/90000\r\na=fmtp:99 apt=98\r\n";

    #[test]
    fn only_the_rooms_codecs_and_their_rtx_stay() {
        let sdp = restrict_codecs(OFFER, "opus", "h264", &OfferRules::default()).unwrap();
        let s = media_sections(&sdp);
        assert_eq!(s[0].codec.as_deref(), Some("opus"));
        assert_eq!(s[1].codec.as_deref(), Some("h264"));
        assert!(
            sdp.contains("m=video 9 UDP/TLS/RTP/SAVPF 98 99\r\n"),
            "{sdp}"
        );
        assert!(!sdp.contains("VP8") && !sdp.contains("a=rtcp-fb:96") && !sdp.contains("apt=96"));
        assert!(sdp.contains("a=fmtp:99 apt=98"));
    }

    #[test]
    fn a_rooms_h264_and_vp9_profiles_keep_only_those_payloads() {
        let offer = "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 98 100 102 104\r\n\
            a=rtpmap:98 VP9/90000\r\na=fmtp:98 profile-id=0\r\n\
            a=rtpmap:100 VP9/90000\r\na=fmtp:100 profile-id=2\r\n\
            a=rtpmap:102 H264/90000\r\na=fmtp:102 level-asymmetry-allowed=1;profile-level-id=42001f\r\n\
            a=rtpmap:104 H264/90000\r\na=fmtp:104 profile-level-id=42E01F;packetization-mode=1\r\n";
        let rules = OfferRules {
            h264_profile: Some("42e01f".into()),
            vp9_profile: Some("2".into()),
            ..OfferRules::default()
        };
        let sdp = rules.apply(offer, "opus", "vp9,h264").unwrap();
        assert!(
            sdp.contains("m=video 9 UDP/TLS/RTP/SAVPF 100 104\r\n"),
            "{sdp}"
        );
        assert!(!sdp.contains("a=rtpmap:98 ") && !sdp.contains("a=rtpmap:102 "));
        // A room whose profile no payload has leaves the section without a codec.
        let none = OfferRules {
            h264_profile: Some("640032".into()),
            ..OfferRules::default()
        };
        assert_eq!(none.apply(offer, "opus", "h264"), Err("video".into()));
    }

    #[test]
    fn a_stopped_section_passes_whatever_it_lists() {
        let offer = "v=0\r\nm=video 0 UDP/TLS/RTP/SAVPF 45\r\na=rtpmap:45 AV1/90000\r\n\
            m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=rtpmap:111 opus/48000/2\r\n";
        let sdp = restrict_codecs(offer, "opus", "vp8", &OfferRules::default()).unwrap();
        assert!(sdp.contains("m=video 0 UDP/TLS/RTP/SAVPF 45\r\n"), "{sdp}");
    }

    #[test]
    fn a_section_without_an_allowed_codec_is_refused() {
        assert_eq!(
            restrict_codecs(OFFER, "opus", "av1", &OfferRules::default()),
            Err("video".to_owned())
        );
    }

    #[test]
    fn opus_fmtp_carries_the_rooms_fec_and_dtx_and_keeps_other_parameters() {
        let answer = "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=rtpmap:111 opus/48000/2\r\n\
                      a=fmtp:111 minptime=10;useinbandfec=1\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n\
                      a=rtpmap:96 VP8/90000\r\na=fmtp:96 max-fs=12288\r\n";
        let both = opus_params(answer, true, true);
        assert!(both.contains("a=fmtp:111 minptime=10;useinbandfec=1;usedtx=1\r\n"));
        assert!(both.contains("a=fmtp:96 max-fs=12288\r\n"));
        let neither = opus_params(answer, false, false);
        assert!(neither.contains("a=fmtp:111 minptime=10\r\n"), "{neither}");
        assert!(!neither.contains("usedtx") && !neither.contains("useinbandfec"));
    }

    #[test]
    fn an_opus_line_without_fmtp_gets_one_only_when_something_is_asked() {
        let answer = "m=audio 9 UDP/TLS/RTP/SAVPF 109\r\na=rtpmap:109 OPUS/48000/2\r\na=mid:0\r\n";
        assert_eq!(
            opus_params(answer, false, true),
            "m=audio 9 UDP/TLS/RTP/SAVPF 109\r\na=rtpmap:109 OPUS/48000/2\r\na=fmtp:109 usedtx=1\r\na=mid:0\r\n"
        );
        assert_eq!(opus_params(answer, false, false), answer);
    }

    #[test]
    fn opus_fmtp_rewrite_keeps_lf_endings_bare_fmtp_and_an_unterminated_last_line() {
        let lf = "m=audio 9 RTP/SAVPF 111\na=rtpmap:111 opus/48000/2\na=fmtp:111\na=mid:0\n";
        assert_eq!(
            opus_params(lf, true, false),
            "m=audio 9 RTP/SAVPF 111\na=rtpmap:111 opus/48000/2\na=fmtp:111 useinbandfec=1\na=mid:0\n"
        );
        let last = "m=audio 9 RTP/SAVPF 111\r\na=rtpmap:111 opus/48000/2";
        assert_eq!(
            opus_params(last, false, true),
            "m=audio 9 RTP/SAVPF 111\r\na=rtpmap:111 opus/48000/2\r\na=fmtp:111 usedtx=1"
        );
    }
}
