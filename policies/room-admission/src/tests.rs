use super::*;
use gatehouse_sdk::types::{Action, Principal, RoomRules as OwnRules, RoomState};

fn admission(action: Action, publishers: u32, subscribers: u32) -> Admission {
    Admission {
        principal: Principal::anonymous(),
        room: RoomState {
            name: "demo".into(),
            publishers,
            subscribers,
            rules: OwnRules {
                pin: None,
                allowed: None,
                max_publishers: None,
            },
        },
        action,
        pin: None,
        token: None,
    }
}

fn decide(cfg: &[(&str, &str)], a: &Admission) -> Result<(), Denial> {
    admit(
        &RoomRules::load(&cfg, &a.room.name).with_room_rules(&a.room.rules),
        a,
    )
}

fn status(result: Result<(), Denial>) -> Option<(u16, String)> {
    result.err().map(|d| (d.status, d.reason))
}

#[test]
fn with_nothing_configured_everything_is_admitted() {
    assert_eq!(decide(&[], &admission(Action::Publish, 100, 100)), Ok(()));
    assert_eq!(decide(&[], &admission(Action::Subscribe, 100, 100)), Ok(()));
}

#[test]
fn a_publisher_over_the_limit_gets_409() {
    let cfg = [("max_publishers", "1")];
    assert_eq!(decide(&cfg, &admission(Action::Publish, 0, 0)), Ok(()));
    assert_eq!(
        status(decide(&cfg, &admission(Action::Publish, 1, 0))),
        Some((409, "publisher limit reached".into()))
    );
}

#[test]
fn a_subscriber_at_the_limit_gets_403() {
    let cfg = [("max_subscribers", "2")];
    assert_eq!(decide(&cfg, &admission(Action::Subscribe, 1, 1)), Ok(()));
    assert_eq!(
        status(decide(&cfg, &admission(Action::Subscribe, 1, 2))),
        Some((403, "subscriber limit reached".into()))
    );
    // Subscriber limits do not hold publishers back.
    assert_eq!(decide(&cfg, &admission(Action::Publish, 0, 5)), Ok(()));
}

#[test]
fn a_per_room_limit_overrides_the_global_one() {
    let cfg = [("max_subscribers", "1"), ("room.demo.max_subscribers", "0")];
    assert_eq!(decide(&cfg, &admission(Action::Subscribe, 0, 50)), Ok(()));
    let cfg = [("room.demo.max_publishers", "2")];
    assert!(decide(&cfg, &admission(Action::Publish, 2, 0)).is_err());
}

#[test]
fn a_room_pin_must_be_presented_exactly() {
    let cfg = [("room.demo.pin", "1234")];
    let mut a = admission(Action::Subscribe, 0, 0);
    assert_eq!(status(decide(&cfg, &a)), Some((403, "wrong pin".into())));
    a.pin = Some("1235".into());
    assert_eq!(status(decide(&cfg, &a)), Some((403, "wrong pin".into())));
    a.pin = Some("1234".into());
    assert_eq!(decide(&cfg, &a), Ok(()));
}

#[test]
fn an_allowed_list_admits_only_its_tokens() {
    let cfg = [("room.demo.allowed", r#"["alice", "bob"]"#)];
    let mut a = admission(Action::Publish, 0, 0);
    assert_eq!(status(decide(&cfg, &a)), Some((403, "not allowed".into())));
    a.token = Some("mallory".into());
    assert_eq!(status(decide(&cfg, &a)), Some((403, "not allowed".into())));
    a.token = Some("bob".into());
    assert_eq!(decide(&cfg, &a), Ok(()));
    // A plain comma-separated list works too.
    assert_eq!(decide(&[("room.demo.allowed", "alice,bob")], &a), Ok(()));
}

#[test]
fn a_principal_limited_to_other_rooms_is_refused() {
    let mut a = admission(Action::Subscribe, 0, 0);
    a.principal.rooms = vec!["other".into()];
    assert_eq!(
        status(decide(&[], &a)),
        Some((403, "room not allowed".into()))
    );
    a.principal.rooms.push("demo".into());
    assert_eq!(decide(&[], &a), Ok(()));
}

#[test]
fn a_principal_without_the_right_is_refused() {
    let mut a = admission(Action::Publish, 0, 0);
    a.principal.can_publish = false;
    assert_eq!(
        status(decide(&[], &a)),
        Some((403, "publish not allowed".into()))
    );
    let mut a = admission(Action::Subscribe, 0, 0);
    a.principal.can_subscribe = false;
    assert_eq!(
        status(decide(&[], &a)),
        Some((403, "subscribe not allowed".into()))
    );
}

#[test]
fn a_rooms_own_pin_and_allowed_list_replace_the_configured_ones() {
    let cfg = [("room.demo.pin", "1234"), ("room.demo.allowed", "[\"t1\"]")];
    let mut a = admission(Action::Subscribe, 0, 0);
    a.room.rules.pin = Some("42".into());
    a.room.rules.allowed = Some(vec!["t2".into()]);
    a.pin = Some("1234".into());
    a.token = Some("t2".into());
    assert_eq!(status(decide(&cfg, &a)), Some((403, "wrong pin".into())));
    a.pin = Some("42".into());
    assert_eq!(decide(&cfg, &a), Ok(()));
    a.token = Some("t1".into());
    assert_eq!(status(decide(&cfg, &a)), Some((403, "not allowed".into())));
}

#[test]
fn the_stricter_publisher_limit_holds() {
    let cfg = [("max_publishers", "5")];
    let mut a = admission(Action::Publish, 2, 0);
    a.room.rules.max_publishers = Some(2);
    assert_eq!(
        status(decide(&cfg, &a)),
        Some((409, "publisher limit reached".into()))
    );
    a.room.rules.max_publishers = Some(9);
    assert_eq!(decide(&cfg, &a), Ok(()));
    a.room.publishers = 5;
    assert_eq!(
        status(decide(&cfg, &a)),
        Some((409, "publisher limit reached".into()))
    );
}
