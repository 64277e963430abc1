//! Where clients put their token, following go-live (`LessUp/go-live`):
//!
//! - `X-Auth-Token: <token>`, which wins for static-token matching when present;
//! - otherwise `Authorization: Bearer <token>` (the scheme matched case-insensitively).
//!
//! A JWT is only ever taken from `Authorization: Bearer`.

use crate::headers;

/// The token of `Authorization: Bearer <token>` (scheme in any case), trimmed; `None` when the
/// header is absent, uses another scheme, or carries an empty token.
///
/// ```
/// assert_eq!(gatehouse_sdk::token::bearer("authorization: bearer abc\n"), Some("abc"));
/// ```
pub fn bearer(headers: &str) -> Option<&str> {
    let value = headers::get(headers, "authorization")?.trim();
    let (scheme, token) = value.split_once(|c: char| c.is_ascii_whitespace())?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// The trimmed `X-Auth-Token` header; `None` when absent or empty.
pub fn x_auth_token(headers: &str) -> Option<&str> {
    let token = headers::get(headers, "x-auth-token")?.trim();
    (!token.is_empty()).then_some(token)
}

/// The token to match against static tokens: `X-Auth-Token` when present, otherwise the
/// bearer token (go-live ignores `Authorization` for static matching once `X-Auth-Token` is
/// sent).
pub fn presented(headers: &str) -> Option<&str> {
    x_auth_token(headers).or_else(|| bearer(headers))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> String {
        headers::block(pairs.iter().copied())
    }

    #[test]
    fn bearer_scheme_is_case_insensitive_and_token_trimmed() {
        for value in ["Bearer abc", "bearer abc", "BEARER   abc  ", "  Bearer abc"] {
            assert_eq!(
                bearer(&headers(&[("authorization", value)])),
                Some("abc"),
                "{value}"
            );
        }
    }

    #[test]
    fn other_schemes_and_empty_tokens_are_not_bearer_tokens() {
        for value in ["Basic abc", "Bearer", "Bearer   ", "Bearerabc", "abc"] {
            assert_eq!(
                bearer(&headers(&[("authorization", value)])),
                None,
                "{value}"
            );
        }
        assert_eq!(bearer(&headers(&[])), None);
    }

    #[test]
    fn x_auth_token_wins_over_bearer_for_static_matching() {
        let both = headers(&[("authorization", "Bearer jwt"), ("x-auth-token", "static")]);
        assert_eq!(presented(&both), Some("static"));
        assert_eq!(bearer(&both), Some("jwt"));
    }

    #[test]
    fn an_empty_x_auth_token_falls_back_to_bearer() {
        let h = headers(&[("x-auth-token", " "), ("authorization", "Bearer b")]);
        assert_eq!(x_auth_token(&h), None);
        assert_eq!(presented(&h), Some("b"));
    }
}
