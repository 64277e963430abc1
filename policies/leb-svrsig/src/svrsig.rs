//! `svrsig`: `base64url(JSON{sessionId,stream,timeTs}) + "." + base64url(HMAC-SHA256(key, payload))`
//! where `payload` is the first part as sent and `timeTs` is in Unix milliseconds.

use crate::settings::SvrsigSettings;
use gatehouse_sdk::crypto::{base64url_decode, base64url_encode, constant_time_eq, hmac_sha256};
use gatehouse_sdk::serde_json::{Value, json};
use gatehouse_sdk::types::{Denial, SessionFacts};

fn no_key() -> Denial {
    Denial::new(503, "svrsig key not configured")
}

/// Signs `facts`; 503 when no key is configured.
pub fn sign(settings: &SvrsigSettings, facts: &SessionFacts) -> Result<String, Denial> {
    let key = settings.key.as_deref().ok_or_else(no_key)?;
    let body = json!({
        "sessionId": facts.session_id,
        "stream": facts.stream,
        "timeTs": facts.issued_at_ms,
    });
    let payload = base64url_encode(body.to_string().as_bytes());
    let mac = hmac_sha256(key.as_bytes(), payload.as_bytes());
    Ok(format!("{payload}.{}", base64url_encode(&mac)))
}

/// The facts `svrsig` binds, at `now_ms`: 503 without a key; 403 "malformed svrsig",
/// "bad svrsig" (forged) or "svrsig expired" (older than the TTL).
pub fn verify(
    settings: &SvrsigSettings,
    svrsig: &str,
    now_ms: u64,
) -> Result<SessionFacts, Denial> {
    let key = settings.key.as_deref().ok_or_else(no_key)?;
    let malformed = || Denial::forbidden("malformed svrsig");
    let (payload, mac) = svrsig.trim().split_once('.').ok_or_else(malformed)?;
    let mac = base64url_decode(mac).ok_or_else(malformed)?;
    if !constant_time_eq(&hmac_sha256(key.as_bytes(), payload.as_bytes()), &mac) {
        return Err(Denial::forbidden("bad svrsig"));
    }
    let facts = decode(payload).ok_or_else(malformed)?;
    let expires_ms = facts
        .issued_at_ms
        .saturating_add(settings.ttl_secs.saturating_mul(1000));
    if now_ms > expires_ms {
        return Err(Denial::forbidden("svrsig expired"));
    }
    Ok(facts)
}

fn decode(payload: &str) -> Option<SessionFacts> {
    let body: Value = gatehouse_sdk::serde_json::from_slice(&base64url_decode(payload)?).ok()?;
    Some(SessionFacts {
        session_id: body.get("sessionId")?.as_str()?.to_owned(),
        stream: body.get("stream")?.as_str()?.to_owned(),
        issued_at_ms: body.get("timeTs")?.as_u64()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: u64 = 1_700_000_000_000;

    fn settings() -> SvrsigSettings {
        SvrsigSettings {
            key: Some("k3y".into()),
            ttl_secs: 60,
        }
    }

    fn facts() -> SessionFacts {
        SessionFacts {
            session_id: "s-1".into(),
            stream: "live/cam".into(),
            issued_at_ms: T0,
        }
    }

    fn reason(result: Result<SessionFacts, Denial>) -> (u16, String) {
        result.map_or_else(|d| (d.status, d.reason), |_| (200, String::new()))
    }

    #[test]
    fn a_signature_verifies_to_the_facts_it_binds() {
        let sig = sign(&settings(), &facts()).unwrap();
        assert_eq!(verify(&settings(), &sig, T0 + 1000), Ok(facts()));
    }

    #[test]
    fn the_payload_is_the_documented_json() {
        let sig = sign(&settings(), &facts()).unwrap();
        let payload = sig.split('.').next().unwrap();
        let json = String::from_utf8(base64url_decode(payload).unwrap()).unwrap();
        assert_eq!(
            json,
            r#"{"sessionId":"s-1","stream":"live/cam","timeTs":1700000000000}"#
        );
    }

    #[test]
    fn without_a_key_signing_and_verifying_fail_with_503() {
        let none = SvrsigSettings {
            key: None,
            ttl_secs: 60,
        };
        let d = sign(&none, &facts()).unwrap_err();
        assert_eq!(
            (d.status, d.reason.as_str()),
            (503, "svrsig key not configured")
        );
        assert_eq!(verify(&none, "a.b", T0).unwrap_err().status, 503);
    }

    #[test]
    fn a_forged_or_re_keyed_signature_is_refused() {
        let sig = sign(&settings(), &facts()).unwrap();
        let other = SvrsigSettings {
            key: Some("other".into()),
            ..settings()
        };
        assert_eq!(reason(verify(&other, &sig, T0)), (403, "bad svrsig".into()));
        let mut forged = facts();
        forged.stream = "live/other".into();
        let forged_payload = sign(&other, &forged).unwrap();
        let spliced = format!(
            "{}.{}",
            forged_payload.split('.').next().unwrap(),
            sig.split('.').nth(1).unwrap()
        );
        assert_eq!(
            reason(verify(&settings(), &spliced, T0)),
            (403, "bad svrsig".into())
        );
    }

    #[test]
    fn malformed_signatures_are_refused() {
        for bad in ["", "nodot", "a.!!!", "e30.e30"] {
            assert_eq!(reason(verify(&settings(), bad, T0)).0, 403, "{bad}");
        }
        // Correctly signed, but not the expected JSON.
        let payload = base64url_encode(br#"{"sessionId":1}"#);
        let mac = base64url_encode(&hmac_sha256(b"k3y", payload.as_bytes()));
        assert_eq!(
            reason(verify(&settings(), &format!("{payload}.{mac}"), T0)),
            (403, "malformed svrsig".into())
        );
    }

    #[test]
    fn a_signature_older_than_the_ttl_is_expired() {
        let sig = sign(&settings(), &facts()).unwrap();
        assert!(verify(&settings(), &sig, T0 + 60_000).is_ok());
        assert_eq!(
            reason(verify(&settings(), &sig, T0 + 60_001)),
            (403, "svrsig expired".into())
        );
    }
}
