//! HMAC JSON Web Tokens (HS256, HS384, HS512), checked the way go-live checks them
//! (`golang-jwt/jwt/v5` with expiry required, `iat` checked, a leeway, an optional audience).
//!
//! ```
//! use gatehouse_sdk::jwt::{self, Algorithm, Validation};
//!
//! let claims = serde_json::json!({"sub": "alice", "room": "demo", "exp": 2_000_000_000});
//! let token = jwt::sign(Algorithm::Hs256, claims.as_object().unwrap(), b"secret");
//! let checked = jwt::verify(&token, b"secret", &Validation::at(1_900_000_000)).unwrap();
//! assert_eq!(checked["room"], "demo");
//! assert_eq!(
//!     jwt::verify(&token, b"secret", &Validation::at(2_100_000_000)),
//!     Err(jwt::Error::Expired)
//! );
//! ```

use crate::crypto::{base64url_decode, base64url_encode};
use crate::host::Hash;
use serde_json::{Map, Value};

/// The claims of a token: its JSON payload object.
pub type Claims = Map<String, Value>;

/// The HMAC algorithm of a token (its header's `alg`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Algorithm {
    /// HMAC-SHA256.
    Hs256,
    /// HMAC-SHA384.
    Hs384,
    /// HMAC-SHA512.
    Hs512,
}

impl Algorithm {
    /// The header's `alg` name: `"HS256"`, `"HS384"` or `"HS512"`.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Hs256 => "HS256",
            Algorithm::Hs384 => "HS384",
            Algorithm::Hs512 => "HS512",
        }
    }

    fn from_name(name: &str) -> Option<Self> {
        match name {
            "HS256" => Some(Algorithm::Hs256),
            "HS384" => Some(Algorithm::Hs384),
            "HS512" => Some(Algorithm::Hs512),
            _ => None,
        }
    }

    /// Computed by the gateway ([`crate::host::hmac`]): natively, with SHA instructions.
    fn mac(self, secret: &[u8], message: &[u8]) -> Vec<u8> {
        let hash = match self {
            Algorithm::Hs256 => Hash::Sha256,
            Algorithm::Hs384 => Hash::Sha384,
            Algorithm::Hs512 => Hash::Sha512,
        };
        crate::host::hmac(hash, secret, message)
    }
}

/// What [`verify`] checks besides the signature.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Validation<'a> {
    /// When set, the `aud` claim (a string or an array of strings) must be present and contain
    /// this value.
    pub audience: Option<&'a str>,
    /// Clock skew tolerated on `exp`, `nbf` and `iat`, in seconds (go-live: 30).
    pub leeway_secs: u64,
    /// The current time, Unix seconds (e.g. [`crate::host::now_secs`]).
    pub now_secs: u64,
}

impl Validation<'_> {
    /// No audience, 30 s leeway, checked at `now_secs`.
    pub fn at(now_secs: u64) -> Self {
        Validation {
            audience: None,
            leeway_secs: 30,
            now_secs,
        }
    }
}

/// Why a token was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// Not three base64url parts, or a header or payload that is not a JSON object.
    Malformed,
    /// The header's `alg` is not HS256, HS384 or HS512 (`none` included).
    UnsupportedAlgorithm,
    /// The signature does not match the secret.
    BadSignature,
    /// No `exp` claim, or one that is not a number.
    MissingExpiry,
    /// `exp` (plus leeway) has passed.
    Expired,
    /// `nbf` (minus leeway) is still in the future, or is not a number.
    NotYetValid,
    /// `iat` (minus leeway) is in the future, or is not a number.
    IssuedInFuture,
    /// An audience is required and `aud` does not contain it.
    WrongAudience,
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Error::Malformed => "malformed token",
            Error::UnsupportedAlgorithm => "unsupported algorithm",
            Error::BadSignature => "bad signature",
            Error::MissingExpiry => "token has no expiry",
            Error::Expired => "token expired",
            Error::NotYetValid => "token not valid yet",
            Error::IssuedInFuture => "token issued in the future",
            Error::WrongAudience => "wrong audience",
        })
    }
}

impl std::error::Error for Error {}

/// Checks `token`'s signature with `secret` and its registered claims against `validation`,
/// returning the claims.
///
/// Rules: `exp` required, valid while `now < exp + leeway`; `nbf` and `iat`, when present,
/// must be at most `now + leeway`; with an audience, `aud` must contain it. The signature is
/// compared in constant time.
pub fn verify(token: &str, secret: &[u8], validation: &Validation<'_>) -> Result<Claims, Error> {
    let payload = verified_payload(token, secret, validation)?;
    match serde_json::from_slice(&payload) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(Error::Malformed),
    }
}

/// [`verify`], reading the claims into `T` rather than a map: only the fields `T` names are
/// read (unknown ones are skipped), so a policy that needs three claims builds no map of all
/// of them. A claim of the wrong type for `T` makes the token [`Error::Malformed`].
///
/// ```
/// use gatehouse_sdk::jwt::{self, Algorithm, Validation};
///
/// #[derive(serde::Deserialize)]
/// struct Room {
///     room: Option<String>,
/// }
/// let claims = serde_json::json!({"room": "demo", "exp": 2_000_000_000});
/// let token = jwt::sign(Algorithm::Hs256, claims.as_object().unwrap(), b"secret");
/// let room: Room = jwt::verify_as(&token, b"secret", &Validation::at(1_900_000_000)).unwrap();
/// assert_eq!(room.room.as_deref(), Some("demo"));
/// ```
pub fn verify_as<T: serde::de::DeserializeOwned>(
    token: &str,
    secret: &[u8],
    validation: &Validation<'_>,
) -> Result<T, Error> {
    let payload = verified_payload(token, secret, validation)?;
    serde_json::from_slice(&payload).map_err(|_| Error::Malformed)
}

/// The payload of a genuine token whose registered claims pass `validation`.
fn verified_payload(
    token: &str,
    secret: &[u8],
    validation: &Validation<'_>,
) -> Result<Vec<u8>, Error> {
    let token = token.trim();
    let mut parts = token.split('.');
    let (Some(header_part), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Error::Malformed);
    };
    let alg = header_algorithm(header_part)?;
    let signature = base64url_decode(signature).ok_or(Error::Malformed)?;
    // `header.payload`, exactly as sent.
    let signed = token
        .get(..header_part.len() + 1 + payload.len())
        .ok_or(Error::Malformed)?;
    let expected = alg.mac(secret, signed.as_bytes());
    if !crate::crypto::constant_time_eq(&expected, &signature) {
        return Err(Error::BadSignature);
    }
    let payload = base64url_decode(payload).ok_or(Error::Malformed)?;
    // A derived struct would also accept a JSON array; the claims must be an object.
    if payload.trim_ascii_start().first() != Some(&b'{') {
        return Err(Error::Malformed);
    }
    let registered: Registered = serde_json::from_slice(&payload).map_err(|_| Error::Malformed)?;
    check_claims(&registered, validation)?;
    Ok(payload)
}

/// The registered claims [`verify`] checks; the others are skipped.
#[derive(serde::Deserialize)]
struct Registered {
    exp: Option<Value>,
    nbf: Option<Value>,
    iat: Option<Value>,
    aud: Option<Value>,
}

/// Signs `claims` with `secret`: `base64url(header) . base64url(claims) . base64url(mac)`.
/// Useful to mint tokens in tests or in a policy that issues them.
pub fn sign(alg: Algorithm, claims: &Claims, secret: &[u8]) -> String {
    let header = format!(r#"{{"alg":"{}","typ":"JWT"}}"#, alg.name());
    let payload = Value::Object(claims.clone()).to_string();
    let signed = format!(
        "{}.{}",
        base64url_encode(header.as_bytes()),
        base64url_encode(payload.as_bytes())
    );
    let mac = alg.mac(secret, signed.as_bytes());
    format!("{signed}.{}", base64url_encode(&mac))
}

/// The `alg` of a token's header. Only `alg` is read, so the header is not built into a map.
fn header_algorithm(part: &str) -> Result<Algorithm, Error> {
    #[derive(serde::Deserialize)]
    struct Header<'a> {
        #[serde(borrow)]
        alg: Option<std::borrow::Cow<'a, str>>,
    }
    let bytes = base64url_decode(part).ok_or(Error::Malformed)?;
    // A derived struct would also accept a JSON array; a header must be an object.
    if bytes.trim_ascii_start().first() != Some(&b'{') {
        return Err(Error::Malformed);
    }
    let header: Header<'_> = serde_json::from_slice(&bytes).map_err(|_| Error::Malformed)?;
    header
        .alg
        .as_deref()
        .and_then(Algorithm::from_name)
        .ok_or(Error::UnsupportedAlgorithm)
}

/// A NumericDate claim: `None` when absent (or null), `Err` when not a number.
fn numeric_date(value: Option<&Value>) -> Result<Option<f64>, ()> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(value) => value.as_f64().map(Some).ok_or(()),
    }
}

fn check_claims(claims: &Registered, v: &Validation<'_>) -> Result<(), Error> {
    // Seconds well below 2^53 are exact in f64.
    let now = v.now_secs as f64;
    let leeway = v.leeway_secs as f64;
    let exp = numeric_date(claims.exp.as_ref())
        .ok()
        .flatten()
        .ok_or(Error::MissingExpiry)?;
    if now >= exp + leeway {
        return Err(Error::Expired);
    }
    match numeric_date(claims.nbf.as_ref()) {
        Err(()) => return Err(Error::NotYetValid),
        Ok(Some(nbf)) if now < nbf - leeway => return Err(Error::NotYetValid),
        Ok(_) => {}
    }
    match numeric_date(claims.iat.as_ref()) {
        Err(()) => return Err(Error::IssuedInFuture),
        Ok(Some(iat)) if now < iat - leeway => return Err(Error::IssuedInFuture),
        Ok(_) => {}
    }
    if let Some(audience) = v.audience {
        let contains = match &claims.aud {
            Some(Value::String(aud)) => aud == audience,
            Some(Value::Array(auds)) => auds.iter().any(|a| a.as_str() == Some(audience)),
            _ => false,
        };
        if !contains {
            return Err(Error::WrongAudience);
        }
    }
    Ok(())
}

#[cfg(test)]
#[path = "jwt_tests.rs"]
mod tests;
