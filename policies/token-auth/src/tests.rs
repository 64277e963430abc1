use super::*;
use gatehouse_sdk::jwt::{self, Algorithm};
use gatehouse_sdk::serde_json::{Value, json};
use gatehouse_sdk::types::Action;

const NOW: u64 = 1_700_000_000;

fn request(action: Action, room: &str, headers: &[(&str, &str)]) -> Request {
    Request {
        dialect: "rooms".into(),
        action,
        room: (!room.is_empty()).then(|| room.to_owned()),
        method: "POST".into(),
        path: format!("/api/whip/publish/{room}"),
        headers: gatehouse_sdk::headers::block(headers.iter().copied()),
        client_ip: "192.0.2.1".into(),
    }
}

fn decide(
    settings: &[(&str, &str)],
    action: Action,
    room: &str,
    headers: &[(&str, &str)],
) -> Result<Principal, Denial> {
    authorize(
        &Settings::load(&settings),
        &request(action, room, headers),
        NOW,
    )
}

fn allowed(
    settings: &[(&str, &str)],
    action: Action,
    room: &str,
    headers: &[(&str, &str)],
) -> bool {
    decide(settings, action, room, headers).is_ok()
}

fn jwt_with(secret: &str, mut claims: Value) -> String {
    if claims.get("exp").is_none() {
        claims["exp"] = json!(NOW + 600);
    }
    let Value::Object(map) = claims else {
        panic!("object")
    };
    format!(
        "Bearer {}",
        jwt::sign(Algorithm::Hs256, &map, secret.as_bytes())
    )
}

fn jwt(claims: Value) -> String {
    jwt_with("s3cret", claims)
}

const PUB: Action = Action::Publish;
const SUB: Action = Action::Subscribe;
const ADMIN: Action = Action::Admin;

#[test]
fn with_nothing_configured_everyone_is_anonymous_with_full_room_rights() {
    let p = decide(&[], PUB, "demo", &[]).unwrap();
    assert_eq!(p, Principal::anonymous());
    assert!(allowed(&[], SUB, "other", &[]));
}

#[test]
fn with_nothing_configured_admin_is_always_denied() {
    assert_eq!(
        decide(&[], ADMIN, "", &[("x-auth-token", "anything")]),
        Err(Denial::unauthorized())
    );
}

#[test]
fn live777_operator_routes_are_open_only_while_nothing_is_configured() {
    let live777 = |settings: &[(&str, &str)], headers: &[(&str, &str)]| {
        let mut request = request(Action::Admin, "cam", headers);
        request.dialect = "live777".into();
        authorize(&Settings::load(&settings), &request, NOW).is_ok()
    };
    assert!(live777(&[], &[]), "Live777 with no tokens is open");
    assert!(
        !allowed(&[], Action::Admin, "cam", &[]),
        "go-live admin stays closed"
    );
    assert!(!live777(&[("auth_token", "t")], &[]));
    assert!(!live777(&[("admin_token", "a")], &[]));
    assert!(live777(
        &[("admin_token", "a")],
        &[("authorization", "Bearer a")]
    ));
}

#[test]
fn a_room_token_opens_its_room_from_either_header() {
    let cfg = [("room_tokens", "demo:tok1;other:tok2")];
    assert!(allowed(&cfg, PUB, "demo", &[("x-auth-token", "tok1")]));
    assert!(allowed(
        &cfg,
        SUB,
        "demo",
        &[("authorization", "bearer tok1")]
    ));
    let p = decide(&cfg, PUB, "demo", &[("x-auth-token", "tok1")]).unwrap();
    assert_eq!(
        (p.subject.as_str(), p.rooms),
        ("room-token:demo", vec!["demo".to_owned()])
    );
    assert!(!allowed(&cfg, PUB, "demo", &[("x-auth-token", "tok2")]));
    assert!(!allowed(&cfg, PUB, "demo", &[]));
}

#[test]
fn x_auth_token_wins_over_authorization_for_static_tokens() {
    let cfg = [("auth_token", "good")];
    let both = [("x-auth-token", "bad"), ("authorization", "Bearer good")];
    assert!(!allowed(&cfg, PUB, "r", &both));
}

#[test]
fn the_global_token_does_not_open_a_room_with_its_own_token() {
    let cfg = [("room_tokens", "demo:tok1"), ("auth_token", "global")];
    assert!(!allowed(&cfg, PUB, "demo", &[("x-auth-token", "global")]));
    assert!(allowed(
        &cfg,
        PUB,
        "elsewhere",
        &[("x-auth-token", "global")]
    ));
    // Rooms not listed fall through to the global token rule.
    assert!(!allowed(&cfg, PUB, "elsewhere", &[]));
}

#[test]
fn a_valid_jwt_opens_a_room_with_its_own_token() {
    let cfg = [("room_tokens", "demo:tok1"), ("jwt_secret", "s3cret")];
    assert!(allowed(
        &cfg,
        PUB,
        "demo",
        &[("authorization", &jwt(json!({})))]
    ));
    assert!(!allowed(
        &cfg,
        PUB,
        "demo",
        &[("authorization", &jwt(json!({"room": "other"})))]
    ));
}

#[test]
fn the_global_token_or_a_jwt_opens_any_room() {
    let cfg = [("auth_token", "global"), ("jwt_secret", "s3cret")];
    assert!(allowed(
        &cfg,
        SUB,
        "r",
        &[("authorization", "Bearer global")]
    ));
    assert!(allowed(
        &cfg,
        SUB,
        "r",
        &[("authorization", &jwt(json!({"room": "r"})))]
    ));
    assert!(!allowed(
        &cfg,
        SUB,
        "r",
        &[("authorization", "Bearer nope")]
    ));
}

#[test]
fn with_only_a_jwt_secret_a_jwt_is_required() {
    let cfg = [("jwt_secret", "s3cret")];
    assert!(!allowed(&cfg, PUB, "r", &[]));
    assert!(!allowed(&cfg, PUB, "r", &[("x-auth-token", "whatever")]));
    let p = decide(
        &cfg,
        PUB,
        "r",
        &[("authorization", &jwt(json!({"sub": "alice", "room": ""})))],
    )
    .unwrap();
    assert_eq!((p.subject.as_str(), p.rooms.is_empty()), ("alice", true));
}

#[test]
fn a_jwt_counts_only_via_bearer() {
    let cfg = [("jwt_secret", "s3cret")];
    let raw = jwt(json!({})).trim_start_matches("Bearer ").to_owned();
    assert!(!allowed(&cfg, PUB, "r", &[("x-auth-token", &raw)]));
    assert!(allowed(
        &cfg,
        PUB,
        "r",
        &[("authorization", &format!("BEARER {raw}"))]
    ));
}

#[test]
fn a_jwt_room_claim_must_match_the_room() {
    let cfg = [("jwt_secret", "s3cret")];
    let h = jwt(json!({"room": "a"}));
    assert!(allowed(&cfg, PUB, "a", &[("authorization", &h)]));
    assert!(!allowed(&cfg, PUB, "b", &[("authorization", &h)]));
    let typed_wrong = jwt(json!({"room": 7}));
    assert!(!allowed(&cfg, PUB, "a", &[("authorization", &typed_wrong)]));
}

#[test]
fn expired_forged_or_wrong_audience_jwts_are_refused() {
    let cfg = [("jwt_secret", "s3cret"), ("jwt_audience", "gh")];
    let ok = jwt(json!({"aud": ["x", "gh"]}));
    assert!(allowed(&cfg, PUB, "r", &[("authorization", &ok)]));
    for bad in [
        jwt(json!({"aud": "gh", "exp": NOW - 31})),
        jwt(json!({"aud": "other"})),
        jwt(json!({})),
        jwt_with("forged", json!({"aud": "gh"})),
    ] {
        assert_eq!(
            decide(&cfg, PUB, "r", &[("authorization", &bad)]),
            Err(Denial::unauthorized()),
            "{bad}"
        );
    }
}

#[test]
fn admin_needs_the_admin_token_or_an_admin_jwt() {
    let cfg = [
        ("admin_token", "root"),
        ("jwt_secret", "s3cret"),
        ("auth_token", "global"),
    ];
    assert!(allowed(&cfg, ADMIN, "", &[("x-auth-token", "root")]));
    assert!(allowed(
        &cfg,
        ADMIN,
        "",
        &[("authorization", "Bearer root")]
    ));
    assert!(!allowed(&cfg, ADMIN, "", &[("x-auth-token", "global")]));
    for claims in [
        json!({"role": "Admin"}),
        json!({"admin": true}),
        json!({"admin": 1}),
    ] {
        assert!(
            allowed(
                &cfg,
                ADMIN,
                "demo",
                &[("authorization", &jwt(claims.clone()))]
            ),
            "{claims}"
        );
    }
    for claims in [
        json!({}),
        json!({"role": "user"}),
        json!({"admin": false}),
        json!({"admin": "true"}),
    ] {
        assert!(
            !allowed(&cfg, ADMIN, "", &[("authorization", &jwt(claims.clone()))]),
            "{claims}"
        );
    }
}

#[test]
fn an_admin_jwt_is_refused_when_no_secret_is_configured() {
    let cfg = [("admin_token", "root")];
    assert!(!allowed(
        &cfg,
        ADMIN,
        "",
        &[("authorization", &jwt(json!({"role": "admin"})))]
    ));
}

#[test]
fn room_principals_report_admin_rights_of_the_same_credentials() {
    let cfg = [("auth_token", "t"), ("admin_token", "t")];
    assert!(
        decide(&cfg, PUB, "r", &[("x-auth-token", "t")])
            .unwrap()
            .admin
    );
    assert!(
        !decide(&[("auth_token", "t")], PUB, "r", &[("x-auth-token", "t")])
            .unwrap()
            .admin
    );
}

#[test]
fn live777_mode_bits_grant_subscribe_publish_and_admin() {
    let cfg = [("jwt_secret", "s3cret"), ("jwt_claims", "live777")];
    let token = |id: &str, mode: u64| jwt(json!({"id": id, "mode": mode}));
    let h = token("cam1", 4);
    assert!(allowed(&cfg, SUB, "cam1", &[("authorization", &h)]));
    assert!(!allowed(&cfg, PUB, "cam1", &[("authorization", &h)]));
    assert!(!allowed(&cfg, SUB, "cam2", &[("authorization", &h)]));
    let p = decide(&cfg, PUB, "any", &[("authorization", &token("*", 6))]).unwrap();
    assert!(p.can_publish && p.can_subscribe && !p.admin && p.rooms.is_empty());
    assert!(allowed(
        &cfg,
        ADMIN,
        "cam1",
        &[("authorization", &token("cam1", 1))]
    ));
    assert!(!allowed(
        &cfg,
        ADMIN,
        "cam2",
        &[("authorization", &token("cam1", 7))]
    ));
    assert!(!allowed(
        &cfg,
        ADMIN,
        "",
        &[("authorization", &token("cam1", 7))]
    ));
    assert!(allowed(
        &cfg,
        ADMIN,
        "",
        &[("authorization", &token("*", 1))]
    ));
    assert!(!allowed(
        &cfg,
        ADMIN,
        "",
        &[("authorization", &token("*", 6))]
    ));
}

#[test]
fn live777_tokens_without_id_or_mode_are_refused() {
    let cfg = [("jwt_secret", "s3cret"), ("jwt_claims", "live777")];
    for claims in [
        json!({"mode": 7}),
        json!({"id": "*"}),
        json!({"id": "*", "mode": "7"}),
    ] {
        assert!(
            !allowed(&cfg, SUB, "x", &[("authorization", &jwt(claims.clone()))]),
            "{claims}"
        );
    }
}

#[test]
fn every_refusal_is_401_unauthorized() {
    let d = decide(&[("auth_token", "t")], SUB, "r", &[]).unwrap_err();
    assert_eq!((d.status, d.reason.as_str()), (401, "unauthorized"));
}
