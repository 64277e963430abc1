//! `token-auth` (world `authorize`): who is this request? go-live's token rules exactly
//! (dialects.md §5.3), with Live777 JWT claims as an option.
//!
//! Config (`[policies.config.token-auth]`, every key optional):
//!
//! | key | meaning |
//! |---|---|
//! | `room_tokens` | `"room1:tok1;room2:tok2"`: rooms with their own token |
//! | `auth_token` | global static token |
//! | `jwt_secret` | HMAC key of HS256/384/512 JWTs (`Authorization: Bearer` only) |
//! | `jwt_audience` | required `aud` of JWTs |
//! | `admin_token` | static token of operator routes |
//! | `jwt_claims` | `"live777"`: Live777 claims `{id, exp, mode}` instead of go-live's |
//!
//! Static tokens come from `X-Auth-Token` (which wins) or `Authorization: Bearer`, compared in
//! constant time. Rooms, first matching rule: (1) a room in `room_tokens` takes its token or a
//! valid JWT; (2) with `auth_token`, it or a valid JWT; (3) with `jwt_secret`, a JWT only;
//! (4) otherwise open (`anonymous`). The `admin` action takes `admin_token` or an admin JWT
//! and is always denied when neither is configured. Every refusal is `401 unauthorized`.
//! (The gateway counts every decision itself: `gatehouse_policy_decisions_total`.)

mod decide;
mod settings;

pub use decide::authorize;
pub use settings::{ClaimStyle, Settings, parse_room_tokens};

use gatehouse_sdk::types::{Denial, Principal, Request};

/// The exported policy.
pub struct TokenAuth;

impl gatehouse_sdk::authorize::Guest for TokenAuth {
    fn authorize(request: Request) -> Result<Principal, Denial> {
        // An instance's config never changes (a reload makes new instances): read it once, so
        // warm instances skip six host calls per decision.
        static SETTINGS: std::sync::OnceLock<Settings> = std::sync::OnceLock::new();
        let settings = SETTINGS.get_or_init(|| Settings::load(&gatehouse_sdk::config::Host));
        authorize(settings, &request, gatehouse_sdk::host::now_secs())
    }
}

gatehouse_sdk::export_authorize!(TokenAuth);

#[cfg(test)]
mod tests;
