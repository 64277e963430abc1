//! The small set of primitives auth policies need: HMAC-SHA256, MD5 (Tencent's `txSecret`),
//! constant-time comparison, base64 and hex.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use md5::{Digest, Md5};
use subtle::ConstantTimeEq;

/// URL-safe alphabet that decodes with or without `=` padding.
const URL_SAFE_LENIENT: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::URL_SAFE,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// HMAC-SHA256 of `message` under `key` (any key length), computed by the gateway
/// ([`crate::host::hmac`]). All zeros for a message over 1 MiB.
pub fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    let mac = crate::host::hmac(crate::host::Hash::Sha256, key, message);
    <[u8; 32]>::try_from(mac.as_slice()).unwrap_or([0; 32])
}

/// Lowercase hex MD5 of `data` (32 characters).
pub fn md5_hex(data: &[u8]) -> String {
    hex_encode(&Md5::digest(data))
}

/// Whether `a` and `b` are equal, in time independent of where they differ (only their lengths
/// may leak). Use it for every comparison of a secret with a presented value.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

/// Standard base64 with `=` padding.
pub fn base64_encode(data: &[u8]) -> String {
    STANDARD.encode(data)
}

/// Decodes standard, padded base64; `None` when malformed.
pub fn base64_decode(text: &str) -> Option<Vec<u8>> {
    STANDARD.decode(text).ok()
}

/// URL-safe base64 without padding (the JWT and `svrsig` encoding).
pub fn base64url_encode(data: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(data)
}

/// Decodes URL-safe base64, with or without `=` padding; `None` when malformed.
pub fn base64url_decode(text: &str) -> Option<Vec<u8>> {
    URL_SAFE_LENIENT.decode(text).ok()
}

/// Lowercase hex of `data`.
pub fn hex_encode(data: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(data.len() * 2);
    for byte in data {
        out.push(char::from(DIGITS[usize::from(byte >> 4)]));
        out.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    out
}

/// Decodes hex of either case; `None` when the length is odd or a character is not a hex digit.
pub fn hex_decode(text: &str) -> Option<Vec<u8>> {
    let bytes = text.as_bytes();
    if !bytes.len().is_multiple_of(2) {
        return None;
    }
    bytes
        .chunks_exact(2)
        .map(|pair| Some(hex_digit(pair[0])? << 4 | hex_digit(pair[1])?))
        .collect()
}

fn hex_digit(c: u8) -> Option<u8> {
    char::from(c)
        .to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_sha256_matches_rfc_4231_case_2() {
        let mac = hmac_sha256(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(
            hex_encode(&mac),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn md5_hex_is_lowercase_and_matches_rfc_1321() {
        assert_eq!(md5_hex(b""), "d41d8cd98f00b204e9800998ecf8427e");
        assert_eq!(md5_hex(b"abc"), "900150983cd24fb0d6963f7d28e17f72");
    }

    #[test]
    fn constant_time_eq_compares_content_and_length() {
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(!constant_time_eq(b"secret", b"secreT"));
        assert!(!constant_time_eq(b"secret", b"secret!"));
        assert!(constant_time_eq(b"", b""));
    }

    #[test]
    fn base64_standard_pads_and_url_safe_does_not() {
        assert_eq!(base64_encode(b"\xfb\xff"), "+/8=");
        assert_eq!(base64url_encode(b"\xfb\xff"), "-_8");
        assert_eq!(base64_decode("+/8=").as_deref(), Some(&b"\xfb\xff"[..]));
        assert_eq!(base64url_decode("-_8").as_deref(), Some(&b"\xfb\xff"[..]));
        assert_eq!(base64url_decode("-_8=").as_deref(), Some(&b"\xfb\xff"[..]));
        assert_eq!(base64_decode("not base64!"), None);
        assert_eq!(base64url_decode("+/8"), None);
    }

    #[test]
    fn hex_round_trips_and_accepts_either_case() {
        assert_eq!(hex_encode(&[0x00, 0xab, 0xff]), "00abff");
        assert_eq!(hex_decode("00ABff"), Some(vec![0x00, 0xab, 0xff]));
        assert_eq!(hex_decode("abc"), None);
        assert_eq!(hex_decode("zz"), None);
    }
}
