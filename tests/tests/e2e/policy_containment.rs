//! Hostile and broken policy modules (tests/fixtures) cannot hurt the gateway: each request
//! is denied (fail closed, 503) within its deadline, other hooks and modules keep serving, a
//! module of the wrong world is refused, and repeated faults restore the last good version.
//!
//! The policy decides before the offer is parsed, so requests carry a junk body: an allowed
//! request then gets 400 (bad SDP), a denied one the policy's status.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Result, ensure};
use gatehouse_e2e::{bounded, http, start_gateway};

const LIMIT: Duration = Duration::from_secs(60);

/// A fixture component built by tests/build.rs.
pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("FIXTURES_DIR")).join(format!("{}.wasm", name.replace('-', "_")))
}

/// A fresh policies directory holding `fixture` as module `module`.
fn policies_dir(test: &str, module: &str, fixture_name: &str) -> Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("gatehouse-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    std::fs::copy(fixture(fixture_name), dir.join(format!("{module}.wasm")))?;
    Ok(dir)
}

async fn post_junk(base: &str, path: &str) -> Result<(u16, String, Duration)> {
    let started = Instant::now();
    let r = http()
        .post(format!("{base}{path}"))
        .header("Content-Type", "application/sdp")
        .body("v=0 not an offer")
        .send()
        .await?;
    let status = r.status().as_u16();
    Ok((status, r.text().await?, started.elapsed()))
}

async fn run(name: &str, body: impl std::future::Future<Output = Result<()>>) {
    if let Err(e) = bounded(name, LIMIT, body).await {
        panic!("{name}: {e:#}");
    }
}

/// Each hostile module serving `authorize` makes requests fail closed quickly, and the
/// gateway stays healthy for the next request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_modules_are_denied_within_the_deadline_and_the_gateway_keeps_serving() {
    run("hostile", async {
        for hostile in [
            "hostile-loop",
            "hostile-memory",
            "hostile-trap",
            "hostile-huge-reply",
        ] {
            let dir = policies_dir(hostile, "guard", hostile)?;
            let gw = start_gateway(|c| {
                c.policies.dir = Some(dir.clone());
                c.policies.authorize = "guard".into();
                c.policies.admit = String::new();
                c.policies.deadline_ms = 10; // the production default
            })
            .await?;
            let base = gw.base_url();
            for _ in 0..3 {
                let (status, body, took) = post_junk(&base, "/v1/whip/room").await?;
                println!("{hostile}: {status} {:?} in {took:?}", body.trim());
                ensure!(
                    status == 503,
                    "{hostile}: expected 503 (fail closed), got {status} {body}"
                );
                ensure!(
                    took < Duration::from_millis(500),
                    "{hostile}: took {took:?}"
                );
            }
            let health = http().get(format!("{base}/healthz")).send().await?;
            ensure!(
                health.status() == 200,
                "{hostile}: gateway unhealthy afterwards"
            );
            gw.shutdown().await;
            let _ = std::fs::remove_dir_all(&dir);
        }
        Ok(())
    })
    .await;
}

/// A reply larger than any client should see is cut to a short reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_8_mib_denial_reason_is_cut_before_reaching_the_client() {
    run("big_reply", async {
        let dir = policies_dir("big-reply", "guard", "hostile-big-reply")?;
        let gw = start_gateway(|c| {
            c.policies.dir = Some(dir.clone());
            c.policies.authorize = "guard".into();
            c.policies.admit = String::new();
            // Producing 8 MiB takes ~10 ms here: the deadline must not be what stops it.
            c.policies.deadline_ms = 1000;
        })
        .await?;
        let (status, body, _) = post_junk(&gw.base_url(), "/v1/whip/room").await?;
        ensure!((400..500).contains(&status), "status {status}");
        ensure!(
            body.len() <= 300,
            "{} bytes of denial reached the client",
            body.len()
        );
        gw.shutdown().await;
        let _ = std::fs::remove_dir_all(&dir);
        Ok(())
    })
    .await;
}

/// With a deadline long enough not to interfere, a memory bomb is stopped by the 32 MiB
/// limit (a trap), not by time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_memory_bomb_is_stopped_by_the_memory_limit() {
    run("memory_limit", async {
        let dir = policies_dir("memory-limit", "guard", "hostile-memory")?;
        let gw = start_gateway(|c| {
            c.policies.dir = Some(dir.clone());
            c.policies.authorize = "guard".into();
            c.policies.admit = String::new();
            c.policies.deadline_ms = 2000;
            c.policies.memory_mib = 32;
        })
        .await?;
        let (status, body, took) = post_junk(&gw.base_url(), "/v1/whip/room").await?;
        println!("memory bomb: {status} in {took:?}");
        ensure!(status == 503, "expected 503, got {status} {body}");
        let metrics = gw.gate().policy().metrics();
        let labels = |result| {
            [
                ("hook", "authorize"),
                ("module", "guard"),
                ("result", result),
            ]
        };
        ensure!(
            metrics.get("gatehouse_policy_decisions_total", &labels("trap")) == 1.0
                && metrics.get("gatehouse_policy_decisions_total", &labels("timeout")) == 0.0,
            "expected a trap, not a timeout: {:?}",
            metrics.snapshot()
        );
        gw.shutdown().await;
        let _ = std::fs::remove_dir_all(&dir);
        Ok(())
    })
    .await;
}

/// A module implementing another world than its hook needs denies (and says why at start).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_module_of_the_wrong_world_fails_closed() {
    run("wrong_world", async {
        let dir = policies_dir("wrong-world", "guard", "wrong-world")?;
        let gw = start_gateway(|c| {
            c.policies.dir = Some(dir.clone());
            c.policies.authorize = "guard".into();
            c.policies.admit = String::new();
        })
        .await?;
        let (status, body, _) = post_junk(&gw.base_url(), "/v1/whip/room").await?;
        ensure!(status == 503, "expected 503, got {status} {body}");
        gw.shutdown().await;
        let _ = std::fs::remove_dir_all(&dir);
        Ok(())
    })
    .await;
}

/// A slow module that finishes within its deadline is obeyed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_module_within_its_deadline_is_obeyed() {
    run("slow_ok", async {
        let dir = policies_dir("slow-ok", "guard", "slow-ok")?;
        let gw = start_gateway(|c| {
            c.policies.dir = Some(dir.clone());
            c.policies.authorize = "guard".into();
            c.policies.admit = String::new();
            c.policies.deadline_ms = 50;
        })
        .await?;
        let (status, body, took) = post_junk(&gw.base_url(), "/v1/whip/room").await?;
        println!("slow-ok: {status} in {took:?}");
        ensure!(
            status == 400,
            "allowed request with a junk offer should be 400, got {status} {body}"
        );
        gw.shutdown().await;
        let _ = std::fs::remove_dir_all(&dir);
        Ok(())
    })
    .await;
}
