//! RFC 8840 `application/trickle-ice-sdpfrag` bodies, as carried by WHIP/WHEP PATCH requests
//! (RFC 9725 §4.3) for trickled candidates and ICE restarts.
//!
//! Only what the gateway acts on is extracted: credentials (a changed ufrag means ICE
//! restart), candidates with the media section they belong to, and end-of-candidates.
//! Parsing is lenient about attributes it does not know, strict about line shape.

/// The HTTP media type of trickle-ICE fragment bodies.
pub const CONTENT_TYPE: &str = "application/trickle-ice-sdpfrag";

/// Error text quotes at most this many characters of the offending line, so a hostile body
/// cannot blow up logs.
const SNIPPET_CHARS: usize = 80;

/// The mandatory candidate fields: foundation, component, transport, priority, address,
/// port, `typ`, type (RFC 8839 §5.1).
const CANDIDATE_MIN_FIELDS: usize = 8;

/// A parsed trickle-ICE SDP fragment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SdpFrag {
    /// The first `a=ice-ufrag` value seen, session- or media-level.
    pub ice_ufrag: Option<String>,
    /// The first `a=ice-pwd` value seen, session- or media-level.
    pub ice_pwd: Option<String>,
    /// Every `a=candidate` line, in body order.
    pub candidates: Vec<FragCandidate>,
    /// True when the body contains `a=end-of-candidates`.
    pub end_of_candidates: bool,
}

/// One trickled candidate and the media section it belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FragCandidate {
    /// The `a=mid` of the candidate's media section, if the section has one.
    pub mid: Option<String>,
    /// Zero-based index of the candidate's `m=` section (0 when there is none).
    pub mline_index: u16,
    /// The attribute after `a=`, e.g. `candidate:1 1 udp 2122260223 192.0.2.1 51000 typ host`.
    pub candidate: String,
}

impl FragCandidate {
    /// The candidate's connection address (fifth field): an IP literal or an mDNS name.
    pub fn address(&self) -> Option<&str> {
        self.candidate.split_ascii_whitespace().nth(4)
    }

    /// True when the address is an mDNS name (ends in `.local`, any case), which a server
    /// cannot resolve and should skip.
    pub fn is_mdns(&self) -> bool {
        const SUFFIX: &[u8] = b".local";
        self.address().is_some_and(|addr| {
            let addr = addr.as_bytes();
            addr.len() > SUFFIX.len()
                && addr[addr.len() - SUFFIX.len()..].eq_ignore_ascii_case(SUFFIX)
        })
    }
}

/// Why a trickle-ICE fragment body was rejected; line numbers count from 1.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SdpFragError {
    /// The body holds no line this parser recognises (ICE attribute, `m=`, `a=mid`).
    #[error("sdpfrag body contains no recognisable SDP line")]
    NothingRecognised,
    /// A line is not of the SDP form `x=value`.
    #[error("sdpfrag line {line}: not an SDP `x=value` line: {text:?}")]
    MalformedLine {
        /// 1-based line number.
        line: usize,
        /// The start of the offending line.
        text: String,
    },
    /// An `a=candidate` line has fewer than the 8 mandatory fields.
    #[error("sdpfrag line {line}: candidate has fewer than 8 fields: {text:?}")]
    ShortCandidate {
        /// 1-based line number.
        line: usize,
        /// The start of the offending line.
        text: String,
    },
    /// An `a=ice-ufrag` or `a=ice-pwd` line has no value.
    #[error("sdpfrag line {line}: empty ICE credential: {text:?}")]
    EmptyCredential {
        /// 1-based line number.
        line: usize,
        /// The start of the offending line.
        text: String,
    },
}

/// The first [`SNIPPET_CHARS`] characters of `line`, for error messages.
fn snippet(line: &str) -> String {
    line.chars().take(SNIPPET_CHARS).collect()
}

/// The media section candidates are currently attributed to.
#[derive(Default)]
struct Section {
    index: u16,
    mid: Option<String>,
    /// Position in the candidate list where this section's candidates start, so an `a=mid`
    /// after the candidates still reaches them.
    first_candidate: usize,
}

/// Parses a trickle-ICE fragment body (CRLF or LF line endings).
pub fn parse(body: &str) -> Result<SdpFrag, SdpFragError> {
    let mut frag = SdpFrag::default();
    let mut recognised = false;
    let mut m_lines: u16 = 0;
    let mut section = Section::default();
    for (n, raw) in body.split('\n').enumerate() {
        let number = n + 1;
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        if line.trim().is_empty() {
            continue;
        }
        let (kind, value) = match line.as_bytes() {
            [kind, b'=', ..] if kind.is_ascii_alphabetic() => (*kind, &line[2..]),
            _ => {
                return Err(SdpFragError::MalformedLine {
                    line: number,
                    text: snippet(line),
                });
            }
        };
        if kind == b'm' {
            section = Section {
                index: m_lines,
                mid: None,
                first_candidate: frag.candidates.len(),
            };
            m_lines = m_lines.saturating_add(1);
            recognised = true;
            continue;
        }
        if kind != b'a' {
            continue; // v=, o=, c=, ...: legal SDP that carries nothing for trickle ICE
        }
        let (name, arg) = value.split_once(':').unwrap_or((value, ""));
        let arg = arg.trim();
        let credential = match name {
            "ice-ufrag" => Some(&mut frag.ice_ufrag),
            "ice-pwd" => Some(&mut frag.ice_pwd),
            _ => None,
        };
        if let Some(slot) = credential {
            if arg.is_empty() {
                return Err(SdpFragError::EmptyCredential {
                    line: number,
                    text: snippet(line),
                });
            }
            slot.get_or_insert_with(|| arg.to_owned());
            recognised = true;
            continue;
        }
        match name {
            "ice-options" | "group" | "ice-lite" => recognised = true,
            "end-of-candidates" => {
                frag.end_of_candidates = true;
                recognised = true;
            }
            "mid" if section.mid.is_none() && !arg.is_empty() => {
                for earlier in &mut frag.candidates[section.first_candidate..] {
                    earlier.mid = Some(arg.to_owned());
                }
                section.mid = Some(arg.to_owned());
                recognised = true;
            }
            "mid" => recognised = true,
            "candidate" => {
                if value.split_ascii_whitespace().count() < CANDIDATE_MIN_FIELDS {
                    return Err(SdpFragError::ShortCandidate {
                        line: number,
                        text: snippet(line),
                    });
                }
                frag.candidates.push(FragCandidate {
                    mid: section.mid.clone(),
                    mline_index: section.index,
                    candidate: value.trim_end().to_owned(),
                });
                recognised = true;
            }
            _ => {} // unknown attributes are allowed and ignored
        }
    }
    if recognised {
        Ok(frag)
    } else {
        Err(SdpFragError::NothingRecognised)
    }
}

/// Builds the fragment body of a 200 answer to an ICE-restart PATCH: the gateway's new
/// credentials and candidates (each given as the text after `a=`), CRLF-terminated.
pub fn answer_fragment(ufrag: &str, pwd: &str, candidates: &[String], mid: &str) -> String {
    let lines: [(&str, &str); 5] = [
        ("a=ice-lite", ""),
        ("a=ice-ufrag:", ufrag),
        ("a=ice-pwd:", pwd),
        ("m=audio 9 UDP/TLS/RTP/SAVPF 0", ""),
        ("a=mid:", mid),
    ];
    let size = 128 + ufrag.len() + pwd.len() + mid.len();
    let size = size + candidates.iter().map(|c| c.len() + 4).sum::<usize>();
    let mut out = String::with_capacity(size);
    for (head, tail) in lines {
        out.push_str(head);
        out.push_str(tail);
        out.push_str("\r\n");
    }
    for candidate in candidates {
        out.push_str("a=");
        // Tolerate callers that pass whole attribute lines.
        out.push_str(candidate.strip_prefix("a=").unwrap_or(candidate));
        out.push_str("\r\n");
    }
    out.push_str("a=end-of-candidates\r\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The trickle PATCH body of RFC 9725 §4.3.1 (LF endings, as the RFC prints it).
    const RFC_TRICKLE: &str = "a=group:BUNDLE 0 1
m=audio 9 UDP/TLS/RTP/SAVPF 111
a=mid:0
a=ice-ufrag:EsAw
a=ice-pwd:P2uYro0UCOQ4zxjKXaWCBui1
a=candidate:1387637174 1 udp 2122260223 192.0.2.1 61764 typ host generation 0 ufrag EsAw network-id 1
a=candidate:3471623853 1 udp 2122194687 198.51.100.2 61765 typ host generation 0 ufrag EsAw network-id 2
a=candidate:473322822 1 tcp 1518280447 192.0.2.1 9 typ host tcptype active generation 0 ufrag EsAw network-id 1
a=candidate:2154773085 1 tcp 1518214911 198.51.100.2 9 typ host tcptype active generation 0 ufrag EsAw network-id 2
a=end-of-candidates
";

    #[test]
    fn rfc9725_trickle_example_body_yields_credentials_candidates_and_end() {
        let frag = parse(RFC_TRICKLE).unwrap();
        assert_eq!(frag.ice_ufrag.as_deref(), Some("EsAw"));
        assert_eq!(frag.ice_pwd.as_deref(), Some("P2uYro0UCOQ4zxjKXaWCBui1"));
        assert!(frag.end_of_candidates);
        assert_eq!(frag.candidates.len(), 4);
        let first = &frag.candidates[0];
        assert_eq!(first.mid.as_deref(), Some("0"));
        assert_eq!(first.mline_index, 0);
        assert!(first.candidate.starts_with("candidate:1387637174 1 udp"));
        assert!(first.candidate.ends_with("network-id 1"));
        assert_eq!(first.address(), Some("192.0.2.1"));
        assert_eq!(frag.candidates[3].address(), Some("198.51.100.2"));
        // CRLF endings parse to the same fragment.
        assert_eq!(parse(&RFC_TRICKLE.replace('\n', "\r\n")).unwrap(), frag);
    }

    #[test]
    fn ice_restart_body_carries_the_new_credentials() {
        let body = "a=ice-options:trickle ice2\r\na=group:BUNDLE 0 1\r\n\
            m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\na=ice-ufrag:ysXw\r\n\
            a=ice-pwd:vw5LmwG4y/e6dPP/zAP9Gp5k\r\n\
            a=candidate:1387637174 1 udp 2122260223 192.0.2.1 61764 typ host\r\n";
        let frag = parse(body).unwrap();
        assert_eq!(frag.ice_ufrag.as_deref(), Some("ysXw"));
        assert_eq!(frag.ice_pwd.as_deref(), Some("vw5LmwG4y/e6dPP/zAP9Gp5k"));
        assert_eq!(frag.candidates.len(), 1);
        assert!(!frag.end_of_candidates);
    }

    #[test]
    fn candidates_are_attributed_to_their_media_section_and_first_credentials_win() {
        let body = "a=ice-ufrag:sess\n\
            m=audio 9 UDP/TLS/RTP/SAVPF 111\n\
            a=candidate:1 1 udp 1 192.0.2.1 1000 typ host\n\
            a=mid:a\n\
            a=ice-ufrag:media\n\
            m=video 9 UDP/TLS/RTP/SAVPF 96\n\
            a=mid:v\n\
            a=x-unknown:whatever\n\
            a=candidate:2 1 udp 1 192.0.2.2 2000 typ host\n";
        let frag = parse(body).unwrap();
        assert_eq!(frag.ice_ufrag.as_deref(), Some("sess"));
        let placed: Vec<_> = frag
            .candidates
            .iter()
            .map(|c| (c.mid.as_deref(), c.mline_index))
            .collect();
        assert_eq!(placed, [(Some("a"), 0), (Some("v"), 1)]);
    }

    #[test]
    fn mdns_candidate_is_detected_case_insensitively() {
        let frag = parse(
            "a=candidate:9 1 udp 2113937151 4f2a8c1e-77d1-4b0b-9f3e-2b7d5c1a9e10.LOCAL 5000 typ host\n\
             a=candidate:8 1 udp 2113937151 192.0.2.9 5000 typ host\n\
             a=candidate:7 1 udp 2113937151 local 5000 typ host\n",
        )
        .unwrap();
        let mdns: Vec<bool> = frag.candidates.iter().map(FragCandidate::is_mdns).collect();
        assert_eq!(mdns, [true, false, false]);
        let first = &frag.candidates[0];
        assert_eq!(
            first.address(),
            Some("4f2a8c1e-77d1-4b0b-9f3e-2b7d5c1a9e10.LOCAL")
        );
        assert_eq!(first.mline_index, 0);
        assert_eq!(first.mid, None);
    }

    #[test]
    fn malformed_bodies_are_errors_naming_the_bad_line() {
        assert_eq!(parse(""), Err(SdpFragError::NothingRecognised));
        assert_eq!(parse("\r\n\r\n"), Err(SdpFragError::NothingRecognised));
        assert_eq!(
            parse("v=0\r\na=x-foo:1\r\n"),
            Err(SdpFragError::NothingRecognised)
        );
        let err = parse("a=ice-ufrag:abcd\r\nhello world\r\n").unwrap_err();
        assert!(matches!(err, SdpFragError::MalformedLine { line: 2, .. }));
        assert!(err.to_string().contains("hello world"), "{err}");
        assert!(matches!(
            parse("=x"),
            Err(SdpFragError::MalformedLine { line: 1, .. })
        ));
        assert!(matches!(
            parse("1=x"),
            Err(SdpFragError::MalformedLine { line: 1, .. })
        ));
        let err = parse("a=candidate:1 1 udp 1 192.0.2.1 1000 typ\n").unwrap_err();
        assert!(matches!(err, SdpFragError::ShortCandidate { line: 1, .. }));
        assert!(err.to_string().contains("typ"), "{err}");
        assert!(matches!(
            parse("a=candidate"),
            Err(SdpFragError::ShortCandidate { .. })
        ));
        assert!(matches!(
            parse("a=ice-pwd:  "),
            Err(SdpFragError::EmptyCredential { .. })
        ));
        let long = format!("a=candidate:{}", "x".repeat(10_000));
        let message = parse(&long).unwrap_err().to_string();
        assert!(message.len() < 200, "{message}");
    }

    #[test]
    fn answer_fragment_is_crlf_and_roundtrips_through_parse() {
        let candidates = [
            "candidate:1 1 udp 2130706431 198.51.100.1 39132 typ host".to_owned(),
            "candidate:2 1 tcp 1518280447 198.51.100.1 443 typ host tcptype passive".to_owned(),
        ];
        let body = answer_fragment("289b31b7", "0b66f472495ef0ccac7bda65", &candidates, "0");
        assert_eq!(
            body,
            "a=ice-lite\r\na=ice-ufrag:289b31b7\r\na=ice-pwd:0b66f472495ef0ccac7bda65\r\n\
             m=audio 9 UDP/TLS/RTP/SAVPF 0\r\na=mid:0\r\n\
             a=candidate:1 1 udp 2130706431 198.51.100.1 39132 typ host\r\n\
             a=candidate:2 1 tcp 1518280447 198.51.100.1 443 typ host tcptype passive\r\n\
             a=end-of-candidates\r\n"
        );
        let frag = parse(&body).unwrap();
        assert_eq!(frag.ice_ufrag.as_deref(), Some("289b31b7"));
        assert_eq!(frag.ice_pwd.as_deref(), Some("0b66f472495ef0ccac7bda65"));
        assert!(frag.end_of_candidates);
        let back: Vec<_> = frag
            .candidates
            .iter()
            .map(|c| c.candidate.clone())
            .collect();
        assert_eq!(back, candidates);
        assert!(
            frag.candidates
                .iter()
                .all(|c| c.mid.as_deref() == Some("0"))
        );
    }

    /// Deterministic byte source so the fuzz-style test is reproducible.
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
    fn every_prefix_and_random_body_is_answered_without_panic() {
        let valid = RFC_TRICKLE.replace('\n', "\r\n");
        for end in (0..=valid.len()).filter(|&i| valid.is_char_boundary(i)) {
            let _ = parse(&valid[..end]);
        }
        // Bytes biased towards SDP punctuation so the random bodies reach deep branches.
        const ALPHABET: &[u8] = b"am=:\r\n candidte.lo1\xC3\xA9";
        let mut rng = Lcg(0x5EED);
        let mut buf = Vec::with_capacity(256);
        for round in 0..2_000 {
            buf.clear();
            for _ in 0..round % 256 {
                let b = rng.byte();
                buf.push(if b & 1 == 0 {
                    b
                } else {
                    ALPHABET[usize::from(b) % ALPHABET.len()]
                });
            }
            if let Ok(frag) = parse(&String::from_utf8_lossy(&buf)) {
                for candidate in &frag.candidates {
                    let _ = (candidate.address(), candidate.is_mdns());
                }
            }
        }
    }
}
