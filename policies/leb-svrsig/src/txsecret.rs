//! Tencent anti-leech URLs: `txSecret = md5(key + stream + txTime)` (lowercase hex) and
//! `txTime` = hex Unix expiry seconds (dialects.md §4.4).

use gatehouse_sdk::crypto::{constant_time_eq, md5_hex};
use gatehouse_sdk::types::{Denial, StreamUrl};

/// Checks `url` against `key` (`None` = not checked) at `now_secs`.
///
/// 403 "missing txSecret" when either parameter is absent or empty, "bad txTime" when `txTime`
/// is not hex, "txTime expired" when `now > txTime`, "bad txSecret" when the MD5 of
/// `key + stream + txTime` (txTime hashed exactly as received) differs from `txSecret`
/// (compared case-insensitively, in constant time).
pub fn check_url(key: Option<&str>, url: &StreamUrl, now_secs: u64) -> Result<(), Denial> {
    let Some(key) = key else {
        return Ok(());
    };
    let present = |v: &Option<String>| v.clone().filter(|v| !v.is_empty());
    let (Some(secret), Some(time)) = (present(&url.tx_secret), present(&url.tx_time)) else {
        return Err(Denial::forbidden("missing txSecret"));
    };
    let expiry = u64::from_str_radix(&time, 16).map_err(|_| Denial::forbidden("bad txTime"))?;
    if now_secs > expiry {
        return Err(Denial::forbidden("txTime expired"));
    }
    let expected = md5_hex(format!("{key}{}{time}", url.stream).as_bytes());
    if !constant_time_eq(secret.to_ascii_lowercase().as_bytes(), expected.as_bytes()) {
        return Err(Denial::forbidden("bad txSecret"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 0x5DDE5CBC = 2019-11-27 11:26:20 UTC.
    const EXPIRY: u64 = 0x5DDE_5CBC;

    fn url(secret: Option<&str>, time: Option<&str>) -> StreamUrl {
        StreamUrl {
            domain: "play.example.com".into(),
            app: "live".into(),
            stream: "cam1".into(),
            tx_secret: secret.map(Into::into),
            tx_time: time.map(Into::into),
        }
    }

    fn reason(r: Result<(), Denial>) -> String {
        r.err()
            .map(|d| format!("{} {}", d.status, d.reason))
            .unwrap_or_default()
    }

    #[test]
    fn without_a_key_every_url_is_allowed() {
        assert_eq!(check_url(None, &url(None, None), u64::MAX), Ok(()));
    }

    #[test]
    fn a_correct_secret_is_accepted_in_either_case_and_time_as_received() {
        let upper = md5_hex(b"k3ycam15DDE5CBC");
        assert_eq!(
            check_url(Some("k3y"), &url(Some(&upper), Some("5DDE5CBC")), EXPIRY),
            Ok(())
        );
        let shouted = upper.to_ascii_uppercase();
        assert_eq!(
            check_url(Some("k3y"), &url(Some(&shouted), Some("5DDE5CBC")), EXPIRY),
            Ok(())
        );
        // The txTime string is hashed as received: lowercase txTime needs its own secret.
        let lower = md5_hex(b"k3ycam15dde5cbc");
        assert_eq!(
            check_url(Some("k3y"), &url(Some(&lower), Some("5dde5cbc")), EXPIRY),
            Ok(())
        );
        assert_eq!(
            reason(check_url(
                Some("k3y"),
                &url(Some(&upper), Some("5dde5cbc")),
                EXPIRY
            )),
            "403 bad txSecret"
        );
    }

    #[test]
    fn missing_parameters_are_refused() {
        for (s, t) in [
            (None, Some("5DDE5CBC")),
            (Some("x"), None),
            (Some(""), Some("1")),
        ] {
            assert_eq!(
                reason(check_url(Some("k"), &url(s, t), 0)),
                "403 missing txSecret"
            );
        }
    }

    #[test]
    fn an_expired_or_unparsable_time_is_refused() {
        let secret = md5_hex(b"k3ycam15DDE5CBC");
        let u = url(Some(&secret), Some("5DDE5CBC"));
        assert_eq!(
            reason(check_url(Some("k3y"), &u, EXPIRY + 1)),
            "403 txTime expired"
        );
        let bad = url(Some(&secret), Some("tomorrow"));
        assert_eq!(reason(check_url(Some("k3y"), &bad, 0)), "403 bad txTime");
    }

    #[test]
    fn a_wrong_key_or_stream_is_a_bad_secret() {
        let secret = md5_hex(b"k3ycam15DDE5CBC");
        let mut u = url(Some(&secret), Some("5DDE5CBC"));
        assert_eq!(reason(check_url(Some("other"), &u, 0)), "403 bad txSecret");
        u.stream = "cam2".into();
        assert_eq!(reason(check_url(Some("k3y"), &u, 0)), "403 bad txSecret");
    }
}
