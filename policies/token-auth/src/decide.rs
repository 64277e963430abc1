//! The decision: go-live's room and admin rules (dialects.md §5.3), with go-live or Live777
//! JWT claims.

use crate::settings::{ClaimStyle, Settings};
use gatehouse_sdk::crypto::constant_time_eq;
use gatehouse_sdk::jwt::{self, Validation};
use gatehouse_sdk::serde_json::Value;
use gatehouse_sdk::token;
use gatehouse_sdk::types::{Action, Denial, Principal, Request};

/// Live777 `mode` bit: subscribe (WHEP).
const MODE_READ: u64 = 4;
/// Live777 `mode` bit: publish (WHIP).
const MODE_WRITE: u64 = 2;
/// Live777 `mode` bit: admin (cascade, record, operator routes).
const MODE_EXEC: u64 = 1;

/// Who `request` is, at `now_secs`, under `settings`; every refusal is `401 unauthorized`.
pub fn authorize(
    settings: &Settings,
    request: &Request,
    now_secs: u64,
) -> Result<Principal, Denial> {
    let room = request.room.as_deref().unwrap_or("");
    let jwt = || valid_jwt(settings, request, now_secs);
    let granted = match request.action {
        // Live777: an empty `[auth] tokens` leaves everything open, operator routes included
        // (go-live instead refuses admin until an admin token is set).
        Action::Admin if request.dialect == "live777" && settings.nothing_configured() => {
            Some(Principal {
                admin: true,
                ..Principal::anonymous()
            })
        }
        Action::Admin => admin(settings, request, jwt()),
        action => room_access(settings, request, room, action, jwt),
    };
    granted.ok_or_else(Denial::unauthorized)
}

/// go-live's `authOKRoom`: the first matching rule decides.
fn room_access(
    settings: &Settings,
    request: &Request,
    room: &str,
    action: Action,
    jwt: impl Fn() -> Option<TokenClaims>,
) -> Option<Principal> {
    let static_token = token::presented(&request.headers);
    let matches = |expected: &str| {
        static_token.is_some_and(|t| constant_time_eq(t.as_bytes(), expected.as_bytes()))
    };
    let by_jwt =
        || jwt().and_then(|claims| jwt_room_principal(settings.claims, &claims, room, action));
    let is_admin = || admin(settings, request, jwt()).is_some();

    // (1) A room with its own token: that token or a JWT (the global token does not count).
    if let Some(room_token) = settings.room_token(room) {
        if matches(room_token) {
            return Some(Principal {
                rooms: vec![room.to_owned()],
                admin: is_admin(),
                ..Principal::new(format!("room-token:{room}"))
            });
        }
        return by_jwt();
    }
    // (2) A global token: it or a JWT.
    if let Some(auth_token) = &settings.auth_token {
        if matches(auth_token) {
            return Some(Principal {
                admin: is_admin(),
                ..Principal::new("auth-token")
            });
        }
        return by_jwt();
    }
    // (3) JWTs only.
    if settings.jwt_secret.is_some() {
        return by_jwt();
    }
    // (4) Open.
    Some(Principal {
        admin: is_admin(),
        ..Principal::anonymous()
    })
}

/// go-live's `adminOK`: the admin token (either header) or an admin JWT; denied when neither
/// is configured.
fn admin(settings: &Settings, request: &Request, jwt: Option<TokenClaims>) -> Option<Principal> {
    let presented = token::presented(&request.headers);
    if let Some(expected) = &settings.admin_token
        && presented.is_some_and(|t| constant_time_eq(t.as_bytes(), expected.as_bytes()))
    {
        return Some(Principal {
            admin: true,
            ..Principal::new("admin-token")
        });
    }
    let principal = claims_principal(settings.claims, &jwt?)?;
    // A Live777 token administers its own stream (`id`) or, with `id = "*"`, everything.
    let room = request.room.as_deref().unwrap_or("");
    let in_scope = settings.claims == ClaimStyle::GoLive || principal.may_use_room(room);
    (principal.admin && in_scope).then_some(principal)
}

/// The claims of the bearer JWT, when a secret is configured and the token is valid.
fn valid_jwt(settings: &Settings, request: &Request, now_secs: u64) -> Option<TokenClaims> {
    let secret = settings.jwt_secret.as_deref()?;
    let bearer = token::bearer(&request.headers)?;
    let validation = Validation {
        audience: settings.jwt_audience.as_deref(),
        ..Validation::at(now_secs)
    };
    jwt::verify_as(bearer, secret.as_bytes(), &validation).ok()
}

/// The principal of a valid JWT for `action` in `room`, if its claims allow it.
fn jwt_room_principal(
    style: ClaimStyle,
    claims: &TokenClaims,
    room: &str,
    action: Action,
) -> Option<Principal> {
    let principal = claims_principal(style, claims)?;
    (principal.may_use_room(room) && principal.may(action)).then_some(principal)
}

/// The rights `claims` grant, read in `style`; `None` when they are unusable.
fn claims_principal(style: ClaimStyle, claims: &TokenClaims) -> Option<Principal> {
    match style {
        ClaimStyle::GoLive => go_live_principal(claims),
        ClaimStyle::Live777 => live777_principal(claims),
    }
}

/// go-live claims `{room?, role?, admin?}`. A `room` or `role` that is not a string makes the
/// token invalid, as go-live's typed claims do.
fn go_live_principal(claims: &TokenClaims) -> Option<Principal> {
    let room = optional_string(claims.room.as_ref())?;
    let role = optional_string(claims.role.as_ref())?;
    let admin = role.is_some_and(|r| r.eq_ignore_ascii_case("admin"))
        || match &claims.admin {
            Some(Value::Bool(b)) => *b,
            Some(Value::Number(n)) => n.as_f64() == Some(1.0),
            _ => false,
        };
    Some(Principal {
        rooms: room
            .filter(|r| !r.is_empty())
            .map(|r| vec![r.to_owned()])
            .unwrap_or_default(),
        admin,
        ..Principal::new(subject(claims, "jwt"))
    })
}

/// Live777 claims `{id, mode}`: `id` a stream or `*`, `mode` the r/w/x bits. Missing or
/// mistyped claims make the token invalid.
fn live777_principal(claims: &TokenClaims) -> Option<Principal> {
    let id = claims.id.as_ref()?.as_str()?;
    let mode = claims.mode.as_ref()?.as_u64()?;
    Some(Principal {
        subject: subject(claims, &format!("live777:{id}")),
        rooms: if id == "*" {
            Vec::new()
        } else {
            vec![id.to_owned()]
        },
        can_publish: mode & MODE_WRITE != 0,
        can_subscribe: mode & MODE_READ != 0,
        admin: mode & MODE_EXEC != 0,
    })
}

/// `Some(None)` when the claim is absent or null, `Some(Some(s))` for a string, `None` otherwise.
fn optional_string(claim: Option<&Value>) -> Option<Option<&str>> {
    match claim {
        None | Some(Value::Null) => Some(None),
        Some(Value::String(s)) => Some(Some(s)),
        Some(_) => None,
    }
}

/// The `sub` claim, or `fallback`.
fn subject(claims: &TokenClaims, fallback: &str) -> String {
    claims
        .sub
        .as_ref()
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .unwrap_or(fallback)
        .to_owned()
}

/// The claims token-auth reads (go-live's and Live777's); the others are skipped. Each is
/// kept as JSON so that a mistyped claim the style does not use cannot spoil the token.
#[derive(Debug, Default, gatehouse_sdk::serde::Deserialize)]
#[serde(crate = "gatehouse_sdk::serde")]
pub struct TokenClaims {
    room: Option<Value>,
    role: Option<Value>,
    admin: Option<Value>,
    sub: Option<Value>,
    id: Option<Value>,
    mode: Option<Value>,
}
