//! `policy-bench [ITERATIONS]`: what one `authorize` call costs (issue 3), on the shipped
//! `token-auth` module with a realistic request (8 headers, an HS256 bearer JWT):
//!
//! 1. **fresh**: a fresh store and instance per call (the production `authorize` path);
//! 2. **reused**: one warm instance (the production path of quality reports);
//! 3. **native**: the same decision in Rust, with the same `gatehouse-sdk` JWT code;
//!
//! then, to show what dominates, (1) and (2) on the request without its token (the policy
//! denies before any JWT work) and `jwt::verify` alone, natively.
//!
//! Prints a markdown table (default 20,000 timed calls per variant, after a warm-up) and the
//! machine. Build and run in release:
//! `cargo run --release -j2 -p gatehouse --bin policy-bench [-- ITERATIONS]`.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::hint::black_box;
use std::time::Duration;

use anyhow::{Context, bail};
use gatehouse::policy::bench::{self, Stats};
use gatehouse::policy::{self, Action, Request};
use gatehouse_sdk::config::Source;
use gatehouse_sdk::jwt::{self, Algorithm, Validation};
use gatehouse_sdk::serde_json::{Value, json};
use gatehouse_sdk::{headers, token, types as sdk};

const DEFAULT_ITERATIONS: usize = 20_000;
const SECRET: &str = "bench-secret-7f3a9c2e5b1d4a6f8e0c";
const AUDIENCE: &str = "gatehouse";
const ROOM: &str = "demo";
/// Issue 3's targets for the p50 of a call.
const FRESH_TARGET: Duration = Duration::from_micros(30);
const REUSED_TARGET: Duration = Duration::from_micros(5);

fn main() -> anyhow::Result<()> {
    let iterations = match std::env::args().nth(1) {
        Some(arg) => arg
            .parse::<usize>()
            .ok()
            .filter(|n| *n > 0)
            .with_context(|| format!("ITERATIONS must be a positive integer, not {arg:?}"))?,
        None => DEFAULT_ITERATIONS,
    };
    let module = policy::shipped_module("token-auth").context("token-auth is not shipped")?;
    let config = BTreeMap::from([
        ("jwt_secret".to_owned(), SECRET.to_owned()),
        ("jwt_audience".to_owned(), AUDIENCE.to_owned()),
    ]);
    let request = request(&bearer_jwt());

    let costs = bench::authorize_costs(module, config.clone(), &request, iterations)?;
    match &costs.decision {
        Ok(principal) if principal.subject == "alice" => {}
        other => bail!("token-auth did not allow the bench request: {other:?}"),
    }

    let native_request = sdk_request(&request);
    match native_authorize(&config, &native_request) {
        Ok(principal) if principal.subject == "alice" => {}
        other => bail!("the native decision did not allow the bench request: {other:?}"),
    }
    let samples = bench::time_calls(iterations, || {
        let _decision = black_box(native_authorize(&config, black_box(&native_request)));
        Ok::<(), Infallible>(())
    })?;
    let native = Stats::from_samples(samples).context("no native calls timed")?;

    // Breakdown: the same calls without a token (the policy loads its settings, finds no
    // bearer token and denies: the boundary without the JWT work), and the JWT check alone.
    let mut no_token = request.clone();
    no_token.headers = headers::block(
        headers::pairs(&request.headers).filter(|(name, _)| *name != "authorization"),
    );
    let boundary = bench::authorize_costs(module, config.clone(), &no_token, iterations)?;
    if !matches!(&boundary.decision, Err(denial) if denial.status == 401) {
        bail!("token-auth did not deny the tokenless request: {boundary:?}");
    }
    let jwt = bearer_jwt();
    let verify = || {
        let validation = Validation {
            audience: Some(AUDIENCE),
            ..Validation::at(gatehouse_sdk::host::now_secs())
        };
        jwt::verify(black_box(&jwt), SECRET.as_bytes(), &validation)
    };
    verify().context("the bench JWT does not verify")?;
    let samples = bench::time_calls(iterations, || verify().map(drop))?;
    let jwt_only = Stats::from_samples(samples).context("no jwt::verify calls timed")?;

    println!(
        "policy `authorize` call, shipped token-auth (jwt_secret + jwt_audience), 8 headers, \
         HS256 bearer JWT; {iterations} timed calls per variant after {} warm-up calls\n",
        bench::warm_up_calls(iterations)
    );
    println!(
        "| variant | p50 µs | p99 µs | mean µs | process CPU µs per call | calls/s | p50 ratio to native |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for (variant, stats) in [
        ("fresh store + instance per call", &costs.fresh),
        ("reused instance", &costs.reused),
        ("native Rust, same logic", &native),
        (
            "breakdown: fresh, no token (401 before any JWT work)",
            &boundary.fresh,
        ),
        (
            "breakdown: reused, no token (401 before any JWT work)",
            &boundary.reused,
        ),
        ("breakdown: native `jwt::verify` alone", &jwt_only),
    ] {
        let cpu = stats
            .cpu_per_call
            .map_or_else(|| "—".to_owned(), |cpu| format!("{:.2}", micros(cpu)));
        println!(
            "| {variant} | {:.2} | {:.2} | {:.2} | {cpu} | {:.0} | {:.1}× |",
            micros(stats.p50),
            micros(stats.p99),
            micros(stats.mean),
            stats.calls_per_sec(),
            stats.p50.as_secs_f64() / native.p50.as_secs_f64().max(f64::MIN_POSITIVE),
        );
    }
    println!();
    println!("machine: {}", machine());
    for (variant, stats, target) in [
        ("fresh", &costs.fresh, FRESH_TARGET),
        ("reused", &costs.reused, REUSED_TARGET),
    ] {
        let verdict = if stats.p50 <= target { "met" } else { "MISSED" };
        println!(
            "target {variant} p50 ≤ {:.0} µs: {verdict} ({:.2} µs)",
            micros(target),
            micros(stats.p50)
        );
    }
    Ok(())
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// An HS256 JWT for `alice` in room `demo`, valid for an hour, signed natively.
fn bearer_jwt() -> String {
    let now = gatehouse_sdk::host::now_secs();
    let claims = json!({
        "sub": "alice",
        "room": ROOM,
        "aud": AUDIENCE,
        "iat": now,
        "exp": now + 3600,
    });
    let claims = claims.as_object().cloned().unwrap_or_default();
    jwt::sign(Algorithm::Hs256, &claims, SECRET.as_bytes())
}

/// A WHIP publish into `demo`, with the headers a browser sends.
fn request(jwt: &str) -> Request {
    let headers = [
        ("host", "gatehouse.example.com"),
        (
            "user-agent",
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) \
             Chrome/126.0.0.0 Safari/537.36",
        ),
        ("accept", "application/sdp"),
        ("content-type", "application/sdp"),
        ("content-length", "4312"),
        ("origin", "https://app.example.com"),
        ("authorization", &format!("Bearer {jwt}")),
        ("x-request-id", "5f0c6a7e-2b1d-4c3e-9a8f-7d6e5c4b3a21"),
    ];
    Request {
        dialect: "whip".into(),
        action: Action::Publish,
        room: Some(ROOM.into()),
        method: "POST".into(),
        path: format!("/whip/{ROOM}"),
        headers: headers::block(headers.iter().copied()),
        client_ip: "203.0.113.7".into(),
    }
}

/// The same request as the guest sees it (built once, outside the timing).
fn sdk_request(r: &Request) -> sdk::Request {
    sdk::Request {
        dialect: r.dialect.clone(),
        action: match r.action {
            Action::Publish => sdk::Action::Publish,
            Action::Subscribe => sdk::Action::Subscribe,
            Action::Admin => sdk::Action::Admin,
        },
        room: r.room.clone(),
        method: r.method.clone(),
        path: r.path.clone(),
        headers: r.headers.clone(),
        client_ip: r.client_ip.clone(),
    }
}

/// token-auth's work per call (policies/token-auth: `Settings::load`, `decide::authorize`,
/// the decision counter), natively, on the path this configuration takes: rule (3), "JWTs
/// only", with go-live claims. Any other configuration is refused rather than mis-measured.
fn native_authorize(
    config: &BTreeMap<String, String>,
    request: &sdk::Request,
) -> Result<sdk::Principal, sdk::Denial> {
    // `Settings::load`: the same six lookups the guest makes through the `config` import.
    let live777 = config
        .string("jwt_claims")
        .is_some_and(|s| s.eq_ignore_ascii_case("live777"));
    let other_rules = [
        config.string("room_tokens"),
        config.string("auth_token"),
        config.string("admin_token"),
    ];
    let jwt_secret = config.string("jwt_secret");
    let jwt_audience = config.string("jwt_audience");
    if live777 || other_rules.iter().any(Option::is_some) || request.action == sdk::Action::Admin {
        return Err(sdk::Denial::new(500, "not the benchmarked path"));
    }
    let now_secs = gatehouse_sdk::host::now_secs();
    // `room_access` looks up the static token first (rules 1 and 2 would compare it).
    black_box(token::presented(&request.headers));
    let room = request.room.as_deref().unwrap_or("");
    let granted = (|| {
        let secret = jwt_secret.as_deref()?;
        let bearer = token::bearer(&request.headers)?;
        let validation = Validation {
            audience: jwt_audience.as_deref(),
            ..Validation::at(now_secs)
        };
        let claims: GoLiveClaims = jwt::verify_as(bearer, secret.as_bytes(), &validation).ok()?;
        let principal = go_live_principal(&claims)?;
        (principal.may_use_room(room) && principal.may(request.action)).then_some(principal)
    })();
    granted.ok_or_else(sdk::Denial::unauthorized)
}

/// decide.rs `TokenClaims`: the claims read, kept as JSON.
#[derive(serde::Deserialize)]
struct GoLiveClaims {
    room: Option<Value>,
    role: Option<Value>,
    admin: Option<Value>,
    sub: Option<Value>,
}

/// decide.rs `go_live_principal`: claims `{room?, role?, admin?}`.
fn go_live_principal(claims: &GoLiveClaims) -> Option<sdk::Principal> {
    let room = optional_string(claims.room.as_ref())?;
    let role = optional_string(claims.role.as_ref())?;
    let admin = role.is_some_and(|r| r.eq_ignore_ascii_case("admin"))
        || match &claims.admin {
            Some(Value::Bool(b)) => *b,
            Some(Value::Number(n)) => n.as_f64() == Some(1.0),
            _ => false,
        };
    let subject = claims
        .sub
        .as_ref()
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .unwrap_or("jwt")
        .to_owned();
    Some(sdk::Principal {
        rooms: room
            .filter(|r| !r.is_empty())
            .map(|r| vec![r.to_owned()])
            .unwrap_or_default(),
        admin,
        ..sdk::Principal::new(subject)
    })
}

/// decide.rs `optional_string`: absent/null → `Some(None)`, a string → `Some(Some)`.
fn optional_string(claim: Option<&Value>) -> Option<Option<&str>> {
    match claim {
        None | Some(Value::Null) => Some(None),
        Some(Value::String(s)) => Some(Some(s)),
        Some(_) => None,
    }
}

/// `nproc`, CPU model and SHA extensions, kernel, load average.
fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name")?.split_once(':'))
        .map_or("unknown CPU", |(_, m)| m.trim());
    let sha_ni = cpuinfo
        .lines()
        .find(|l| l.starts_with("flags"))
        .is_some_and(|l| l.split_whitespace().any(|f| f == "sha_ni"));
    let nproc = std::thread::available_parallelism().map_or(0, |n| n.get());
    let read = |path| std::fs::read_to_string(path).unwrap_or_default();
    let kernel = read("/proc/sys/kernel/osrelease");
    let loadavg = read("/proc/loadavg");
    let load: Vec<&str> = loadavg.split_whitespace().take(3).collect();
    format!(
        "{model}{}, nproc {nproc}, kernel {}, load average {}",
        if sha_ni { " (SHA-NI)" } else { "" },
        kernel.trim(),
        load.join(" ")
    )
}
