use super::*;
use serde_json::json;

const NOW: u64 = 1_700_000_000;

fn claims(value: Value) -> Claims {
    match value {
        Value::Object(map) => map,
        _ => panic!("claims must be an object"),
    }
}

fn token(value: Value) -> String {
    sign(Algorithm::Hs256, &claims(value), b"secret")
}

fn check(token: &str) -> Result<Claims, Error> {
    verify(token, b"secret", &Validation::at(NOW))
}

#[test]
fn every_hs_algorithm_round_trips() {
    for alg in [Algorithm::Hs256, Algorithm::Hs384, Algorithm::Hs512] {
        let t = sign(alg, &claims(json!({"exp": NOW + 60, "room": "r"})), b"k");
        let got = verify(&t, b"k", &Validation::at(NOW));
        assert_eq!(got.map(|c| c["room"].clone()), Ok(json!("r")), "{alg:?}");
    }
}

#[test]
fn a_token_from_another_library_verifies() {
    // jwt.io's HS256 example: valid signature, but no `exp`, so refused for that alone.
    let t = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c";
    assert_eq!(
        verify(t, b"your-256-bit-secret", &Validation::at(NOW)),
        Err(Error::MissingExpiry)
    );
    assert_eq!(
        verify(t, b"other", &Validation::at(NOW)),
        Err(Error::BadSignature)
    );
}

#[test]
fn a_wrong_secret_or_tampered_payload_is_a_bad_signature() {
    let t = token(json!({"exp": NOW + 60, "room": "a"}));
    assert_eq!(
        verify(&t, b"wrong", &Validation::at(NOW)),
        Err(Error::BadSignature)
    );
    let forged_payload = base64url_encode(br#"{"exp":9999999999,"room":"b"}"#);
    let mut parts: Vec<&str> = t.split('.').collect();
    parts[1] = &forged_payload;
    assert_eq!(check(&parts.join(".")), Err(Error::BadSignature));
}

#[test]
fn alg_none_and_asymmetric_algorithms_are_refused() {
    let payload = base64url_encode(br#"{"exp":9999999999}"#);
    for alg in ["none", "RS256", "hs256"] {
        let header = base64url_encode(format!(r#"{{"alg":"{alg}"}}"#).as_bytes());
        let t = format!("{header}.{payload}.");
        assert_eq!(check(&t), Err(Error::UnsupportedAlgorithm), "{alg}");
    }
}

#[test]
fn malformed_tokens_are_refused() {
    let good = token(json!({"exp": NOW + 60}));
    for t in ["", "a.b", "a.b.c.d", "!!.??.**", &format!("{good}.x")] {
        assert_eq!(check(t), Err(Error::Malformed), "{t}");
    }
    assert_eq!(check("e30.e30.AA"), Err(Error::UnsupportedAlgorithm));
    // A header must be an object, even one that names a good algorithm.
    let array_header = base64url_encode(br#"["HS256"]"#);
    assert_eq!(
        check(&format!("{array_header}.e30.AA")),
        Err(Error::Malformed)
    );
}

#[test]
fn a_correctly_signed_payload_that_is_not_an_object_is_malformed() {
    let signed = format!(
        "{}.{}",
        base64url_encode(br#"{"alg":"HS256"}"#),
        base64url_encode(b"[1]")
    );
    let mac = base64url_encode(&Algorithm::Hs256.mac(b"secret", signed.as_bytes()));
    assert_eq!(check(&format!("{signed}.{mac}")), Err(Error::Malformed));
}

#[test]
fn expiry_is_required_and_must_be_a_number() {
    assert_eq!(
        check(&token(json!({"sub": "x"}))),
        Err(Error::MissingExpiry)
    );
    assert_eq!(
        check(&token(json!({"exp": "soon"}))),
        Err(Error::MissingExpiry)
    );
}

#[test]
fn expiry_allows_thirty_seconds_of_leeway() {
    assert!(check(&token(json!({"exp": NOW - 29}))).is_ok());
    assert_eq!(check(&token(json!({"exp": NOW - 30}))), Err(Error::Expired));
    assert!(check(&token(json!({"exp": (NOW as f64) + 0.5}))).is_ok());
}

#[test]
fn not_before_and_issued_at_are_checked_when_present() {
    let exp = NOW + 3600;
    assert!(
        check(&token(
            json!({"exp": exp, "nbf": NOW + 30, "iat": NOW + 30})
        ))
        .is_ok()
    );
    assert_eq!(
        check(&token(json!({"exp": exp, "nbf": NOW + 31}))),
        Err(Error::NotYetValid)
    );
    assert_eq!(
        check(&token(json!({"exp": exp, "iat": NOW + 31}))),
        Err(Error::IssuedInFuture)
    );
    assert_eq!(
        check(&token(json!({"exp": exp, "nbf": "x"}))),
        Err(Error::NotYetValid)
    );
}

#[test]
fn an_audience_must_be_contained_in_aud_when_required() {
    let v = Validation {
        audience: Some("gatehouse"),
        ..Validation::at(NOW)
    };
    let exp = NOW + 60;
    let ok = |aud: Value| verify(&token(json!({"exp": exp, "aud": aud})), b"secret", &v);
    assert!(ok(json!("gatehouse")).is_ok());
    assert!(ok(json!(["other", "gatehouse"])).is_ok());
    assert_eq!(ok(json!("other")), Err(Error::WrongAudience));
    assert_eq!(ok(json!(["other"])), Err(Error::WrongAudience));
    assert_eq!(
        verify(&token(json!({"exp": exp})), b"secret", &v),
        Err(Error::WrongAudience)
    );
    // Without a required audience, any `aud` is fine.
    assert!(check(&token(json!({"exp": exp, "aud": "whatever"}))).is_ok());
}

#[test]
fn errors_read_as_short_phrases() {
    assert_eq!(Error::Expired.to_string(), "token expired");
}
