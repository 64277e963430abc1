//! Hot reload of policy modules while requests flow: a module renamed into the policies
//! directory takes over with no request failing, a file written in place half-way never goes
//! live, and a new version that keeps faulting is replaced by the last good one.
//!
//! Requests carry a junk offer: allowed ones get 400 (bad SDP), `deny-all` gives 403, a
//! faulting module 503. Anything else is a failure.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Result, bail, ensure};
use gatehouse_e2e::{bounded, http, start_gateway};

const LIMIT: Duration = Duration::from_secs(60);

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("FIXTURES_DIR")).join(format!("{}.wasm", name.replace('-', "_")))
}

fn policies_dir(test: &str) -> Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("gatehouse-reload-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    std::fs::copy(fixture("allow-all"), dir.join("guard.wasm"))?;
    Ok(dir)
}

/// Deploys `fixture` as `guard.wasm` the safe way: write a temporary file, then rename.
fn deploy(dir: &Path, fixture_name: &str) -> Result<()> {
    let tmp = dir.join("guard.wasm.tmp");
    std::fs::copy(fixture(fixture_name), &tmp)?;
    std::fs::rename(&tmp, dir.join("guard.wasm"))?;
    Ok(())
}

async fn decision(base: &str) -> Result<u16> {
    let r = http()
        .post(format!("{base}/v1/whip/reload"))
        .header("Content-Type", "application/sdp")
        .body("v=0 not an offer")
        .send()
        .await?;
    Ok(r.status().as_u16())
}

/// Polls until the decision is `want`, within `limit`; returns how long it took.
async fn wait_for(base: &str, want: u16, limit: Duration) -> Result<Duration> {
    let started = Instant::now();
    loop {
        let got = decision(base).await?;
        if got == want {
            return Ok(started.elapsed());
        }
        if started.elapsed() > limit {
            bail!("still {got} after {limit:?}, expected {want}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn gateway(dir: &Path, breaker: u32) -> Result<gatehouse_e2e::gatehouse::Gateway> {
    let dir = dir.to_path_buf();
    start_gateway(move |c| {
        c.policies.dir = Some(dir);
        c.policies.authorize = "guard".into();
        c.policies.admit = String::new();
        c.policies.breaker_faults = breaker;
    })
    .await
}

async fn run(name: &str, body: impl std::future::Future<Output = Result<()>>) {
    if let Err(e) = bounded(name, LIMIT, body).await {
        panic!("{name}: {e:#}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renamed_module_takes_over_while_requests_flow_and_none_fails() {
    run("reload_swap", async {
        let dir = policies_dir("swap")?;
        let gw = gateway(&dir, 5).await?;
        let base = gw.base_url();
        ensure!(decision(&base).await? == 400, "allow-all should be live at start");
        let client = {
            let base = base.clone();
            tokio::spawn(async move {
                let mut seen = Vec::new();
                let until = Instant::now() + Duration::from_secs(3);
                while Instant::now() < until {
                    seen.push((Instant::now(), decision(&base).await?));
                }
                Ok::<_, anyhow::Error>(seen)
            })
        };
        tokio::time::sleep(Duration::from_millis(700)).await;
        let deployed = Instant::now();
        deploy(&dir, "deny-all")?;
        let seen = client.await??;
        let unexpected: Vec<u16> = seen
            .iter()
            .map(|(_, s)| *s)
            .filter(|s| *s != 400 && *s != 403)
            .collect();
        ensure!(unexpected.is_empty(), "statuses other than allow/deny: {unexpected:?}");
        let first_deny = seen.iter().position(|(_, s)| *s == 403);
        let Some(first_deny) = first_deny else {
            bail!("deny-all never took over ({} requests)", seen.len());
        };
        ensure!(
            seen[first_deny..].iter().all(|(_, s)| *s == 403),
            "an allow came after the new module went live"
        );
        let switch = seen[first_deny].0.saturating_duration_since(deployed);
        println!(
            "hot reload: {} requests, {} before the swap, deny-all live {switch:?} after the rename",
            seen.len(),
            first_deny
        );
        ensure!(first_deny > 0, "no request was served by the first module");
        gw.shutdown().await;
        let _ = std::fs::remove_dir_all(&dir);
        Ok(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_truncated_or_corrupt_file_written_in_place_never_goes_live() {
    run("reload_truncated", async {
        let dir = policies_dir("truncated")?;
        let gw = gateway(&dir, 5).await?;
        let base = gw.base_url();
        let live = gw.gate().policy().versions();
        let deny = std::fs::read(fixture("deny-all"))?;
        std::fs::write(dir.join("guard.wasm"), &deny[..deny.len() / 2])?;
        tokio::time::sleep(Duration::from_millis(800)).await;
        ensure!(decision(&base).await? == 400, "a truncated file went live");
        std::fs::write(dir.join("guard.wasm"), b"\0asm garbage")?;
        tokio::time::sleep(Duration::from_millis(800)).await;
        ensure!(decision(&base).await? == 400, "a corrupt file went live");
        ensure!(
            gw.gate().policy().versions() == live,
            "live version changed"
        );
        let rejected = gw.gate().policy().metrics().get(
            "gatehouse_policy_loads_total",
            &[("module", "guard"), ("result", "error")],
        );
        ensure!(rejected >= 2.0, "rejected loads counted: {rejected}");
        // The watcher still works: the complete file goes live.
        std::fs::write(dir.join("guard.wasm"), &deny)?;
        let took = wait_for(&base, 403, Duration::from_secs(5)).await?;
        println!("in-place writes: 2 bad files rejected, the complete one live after {took:?}");
        gw.shutdown().await;
        let _ = std::fs::remove_dir_all(&dir);
        Ok(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_faults_of_a_new_version_restore_the_last_good_one() {
    run("reload_breaker", async {
        let dir = policies_dir("breaker")?;
        let gw = gateway(&dir, 3).await?;
        let base = gw.base_url();
        deploy(&dir, "hostile-trap")?;
        wait_for(&base, 503, Duration::from_secs(5)).await?;
        let mut statuses = vec![503];
        for _ in 0..6 {
            statuses.push(decision(&base).await?);
        }
        println!("breaker: statuses after deploying a trapping module {statuses:?}");
        let faults = statuses.iter().take_while(|s| **s == 503).count();
        ensure!(
            faults <= 3,
            "{faults} faulting requests before the breaker tripped"
        );
        ensure!(
            statuses[faults..].iter().all(|s| *s == 400),
            "the last good module was not restored: {statuses:?}"
        );
        gw.shutdown().await;
        let _ = std::fs::remove_dir_all(&dir);
        Ok(())
    })
    .await;
}

/// The walkthrough of examples/custom-policy.md: a gateway configured for a module that is not
/// deployed yet fails closed; renaming the built example into the directory makes it live.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_ip_allowlist_policy_goes_live_without_a_restart() {
    run("example_policy", async {
        let dir = std::env::temp_dir().join(format!("gatehouse-example-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        let policies = dir.clone();
        let gw = start_gateway(move |c| {
            c.policies.dir = Some(policies);
            c.policies.authorize = "ip-allowlist".into();
            c.policies.admit = String::new();
            c.policies.config.insert(
                "ip-allowlist".into(),
                toml::from_str("allow = [\"127.0.0.1/32\", \"::1/128\"]").unwrap_or_default(),
            );
        })
        .await?;
        let base = gw.base_url();
        ensure!(decision(&base).await? == 503, "no module yet: fail closed");
        let tmp = dir.join("ip-allowlist.wasm.tmp");
        std::fs::copy(fixture("ip-allowlist"), &tmp)?;
        std::fs::rename(&tmp, dir.join("ip-allowlist.wasm"))?;
        let took = wait_for(&base, 400, Duration::from_secs(5)).await?;
        println!("example policy live {took:?} after the rename; 127.0.0.1 allowed");
        gw.shutdown().await;
        let _ = std::fs::remove_dir_all(&dir);
        Ok(())
    })
    .await;
}
