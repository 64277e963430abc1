//! The policy's config table, parsed.

use gatehouse_sdk::config::Source;

/// How JWT claims grant rights.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ClaimStyle {
    /// go-live: `room` (absent or empty = any room), `role = "admin"` or `admin = true/1`.
    #[default]
    GoLive,
    /// Live777: `id` (a stream or `*`) and `mode` bits r=4 (subscribe), w=2 (publish),
    /// x=1 (admin).
    Live777,
}

/// The settings of `[policies.config.token-auth]`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Settings {
    /// `room_tokens = "room1:tok1;room2:tok2"`: rooms with their own token.
    pub room_tokens: Vec<(String, String)>,
    /// `auth_token`: the global static token.
    pub auth_token: Option<String>,
    /// `jwt_secret`: the HMAC key of JWTs; unset = JWTs not accepted.
    pub jwt_secret: Option<String>,
    /// `jwt_audience`: when set, a JWT's `aud` must contain it.
    pub jwt_audience: Option<String>,
    /// `admin_token`: the static token of operator routes.
    pub admin_token: Option<String>,
    /// `jwt_claims = "live777"` selects [`ClaimStyle::Live777`]; anything else is go-live.
    pub claims: ClaimStyle,
}

impl Settings {
    /// No token, no room token and no JWT secret: access is open.
    pub fn nothing_configured(&self) -> bool {
        self.room_tokens.is_empty()
            && self.auth_token.is_none()
            && self.jwt_secret.is_none()
            && self.admin_token.is_none()
    }

    /// Reads the settings from `source` (empty values count as unset).
    pub fn load(source: &impl Source) -> Self {
        let claims = match source.string("jwt_claims") {
            Some(style) if style.eq_ignore_ascii_case("live777") => ClaimStyle::Live777,
            _ => ClaimStyle::GoLive,
        };
        Settings {
            room_tokens: source
                .string("room_tokens")
                .map(|v| parse_room_tokens(&v))
                .unwrap_or_default(),
            auth_token: source.string("auth_token"),
            jwt_secret: source.string("jwt_secret"),
            jwt_audience: source.string("jwt_audience"),
            admin_token: source.string("admin_token"),
            claims,
        }
    }

    /// The token of `room` when `room_tokens` lists it.
    pub fn room_token(&self, room: &str) -> Option<&str> {
        // A later entry for the same room wins, as in go-live's map.
        self.room_tokens
            .iter()
            .rev()
            .find(|(r, _)| r == room)
            .map(|(_, t)| t.as_str())
    }
}

/// Parses go-live's `ROOM_TOKENS`: items split on `;`, each split at its first `:`, both halves
/// trimmed; items without a `:` or with an empty room or token are skipped.
pub fn parse_room_tokens(text: &str) -> Vec<(String, String)> {
    text.split(';')
        .filter_map(|item| {
            let (room, token) = item.split_once(':')?;
            let (room, token) = (room.trim(), token.trim());
            (!room.is_empty() && !token.is_empty()).then(|| (room.to_owned(), token.to_owned()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_tokens_split_on_semicolons_then_the_first_colon() {
        assert_eq!(
            parse_room_tokens(" a : t1 ;b:t:2;;bad; :x;c: ;d:t4"),
            vec![
                ("a".to_owned(), "t1".to_owned()),
                ("b".to_owned(), "t:2".to_owned()),
                ("d".to_owned(), "t4".to_owned()),
            ]
        );
    }

    #[test]
    fn a_later_room_token_overrides_an_earlier_one() {
        let s = Settings::load(&[("room_tokens", "a:1;a:2")]);
        assert_eq!(s.room_token("a"), Some("2"));
        assert_eq!(s.room_token("b"), None);
    }

    #[test]
    fn empty_settings_are_unset_and_claim_style_defaults_to_go_live() {
        let s = Settings::load(&[("auth_token", ""), ("jwt_secret", " ")]);
        assert_eq!(s, Settings::default());
        let live = Settings::load(&[("jwt_claims", "Live777")]);
        assert_eq!(live.claims, ClaimStyle::Live777);
    }
}
