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

/// A publisher's `streams` entries.
pub fn publisher_streams(sections: &[MediaSection]) -> Vec<Value> {
    sections
        .iter()
        .filter(|s| !s.disabled)
        .map(|s| {
            let mut entry = json!({"type": s.kind, "mindex": s.mindex, "mid": s.mid});
            if let Some(codec) = &s.codec {
                entry["codec"] = json!(codec);
            }
            entry
        })
        .collect()
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
}
