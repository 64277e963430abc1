//! The LEB hooks of the policy plane, called in-process the way the LEB dialect
//! does: `leb-svrsig` (sign/verify svrsig, txSecret/txTime) fails closed, and
//! `quality-report` runs on warm instances and fails open.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Result, ensure};
use gatehouse_e2e::gatehouse::policy::{QualityReport, ReportBody, SessionFacts, StreamUrl};
use gatehouse_e2e::{bounded, start_gateway};

const LIMIT: Duration = Duration::from_secs(60);

async fn run(name: &str, body: impl std::future::Future<Output = Result<()>>) {
    if let Err(e) = bounded(name, LIMIT, body).await {
        panic!("{name}: {e:#}");
    }
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn md5_hex(text: &str) -> String {
    gatehouse_sdk::crypto::md5_hex(text.as_bytes())
}

fn url(stream: &str, secret: Option<String>, time: Option<String>) -> StreamUrl {
    StreamUrl {
        domain: "play.example.com".into(),
        app: "live".into(),
        stream: stream.into(),
        tx_secret: secret,
        tx_time: time,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn svrsig_round_trips_and_forged_or_expired_values_are_refused() {
    run("svrsig", async {
        let gw = start_gateway(|c| {
            c.policies.config.insert(
                "leb-svrsig".into(),
                toml::from_str("svrsig_key = \"sig-key\"\nsvrsig_ttl_secs = 1").unwrap_or_default(),
            );
        })
        .await?;
        let policy = gw.gate().policy().clone();
        let facts = SessionFacts {
            session_id: "s-1".into(),
            stream: "cam".into(),
            issued_at_ms: now_secs() * 1000,
        };
        let sig = policy
            .sign(&facts)
            .map_err(|d| anyhow::anyhow!("sign: {d:?}"))?;
        let back = policy
            .verify(&sig)
            .map_err(|d| anyhow::anyhow!("verify: {d:?}"))?;
        ensure!(back.session_id == "s-1" && back.stream == "cam", "{back:?}");
        let forged = format!("{}x", sig);
        ensure!(
            policy.verify(&forged).err().map(|d| d.status) == Some(403),
            "forged accepted"
        );
        ensure!(policy.verify("garbage").is_err(), "garbage accepted");
        tokio::time::sleep(Duration::from_millis(2100)).await;
        ensure!(
            policy.verify(&sig).err().map(|d| d.status) == Some(403),
            "expired accepted"
        );
        gw.shutdown().await;
        Ok(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_svrsig_key_fails_closed_and_an_absent_one_is_a_random_process_key() {
    run("svrsig_keys", async {
        let facts = SessionFacts {
            session_id: "s".into(),
            stream: "cam".into(),
            issued_at_ms: now_secs() * 1000,
        };
        // `svrsig_key = ""` switches signing off: every pull is refused (fail closed).
        let gw = start_gateway(|c| {
            c.policies.config.insert(
                "leb-svrsig".into(),
                toml::from_str("svrsig_key = \"\"").unwrap_or_default(),
            );
        })
        .await?;
        let refused = gw.gate().policy().sign(&facts).err().map(|d| d.status);
        ensure!(refused == Some(503), "{refused:?}");
        gw.shutdown().await;
        // No key configured: the gateway signs with a random key of its own.
        let gw = start_gateway(|_| {}).await?;
        let sig = gw.gate().policy().sign(&facts);
        ensure!(sig.as_ref().is_ok_and(|s| !s.is_empty()), "{sig:?}");
        gw.shutdown().await;
        Ok(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tx_secret_is_md5_of_key_stream_and_hex_expiry_in_either_case() {
    run("tx_secret", async {
        let gw = start_gateway(|c| {
            c.policies.config.insert(
                "leb-svrsig".into(),
                toml::from_str("[tx_key]\n\"play.example.com\" = \"anti-leech\"")
                    .unwrap_or_default(),
            );
        })
        .await?;
        let policy = gw.gate().policy().clone();
        let future = format!("{:x}", now_secs() + 600);
        let upper = future.to_uppercase();
        let secret = |time: &str| md5_hex(&format!("anti-leech{}{time}", "cam"));
        let cases = [
            (
                "valid, lowercase txTime",
                url("cam", Some(secret(&future)), Some(future.clone())),
                Ok(()),
            ),
            (
                "valid, uppercase txTime",
                url(
                    "cam",
                    Some(secret(&upper).to_uppercase()),
                    Some(upper.clone()),
                ),
                Ok(()),
            ),
            (
                "expired",
                {
                    let past = format!("{:x}", now_secs() - 60);
                    url("cam", Some(secret(&past)), Some(past))
                },
                Err(403),
            ),
            (
                "wrong key",
                url(
                    "cam",
                    Some(md5_hex(&format!("other{}{future}", "cam"))),
                    Some(future.clone()),
                ),
                Err(403),
            ),
            (
                "other stream",
                url("cam2", Some(secret(&future)), Some(future.clone())),
                Err(403),
            ),
            ("missing", url("cam", None, None), Err(403)),
        ];
        for (what, url, want) in cases {
            let got = policy.check_url(&url).map_err(|d| d.status);
            ensure!(got == want, "{what}: {got:?}, expected {want:?}");
        }
        let mut unsigned_domain = url("cam", None, None);
        unsigned_domain.domain = "free.example.com".into();
        ensure!(
            policy.check_url(&unsigned_domain).is_ok(),
            "a domain without a key is open"
        );
        gw.shutdown().await;
        Ok(())
    })
    .await;
}

fn quality(stream: &str) -> QualityReport {
    QualityReport {
        stream: stream.into(),
        session_id: "s".into(),
        client_ip: "127.0.0.1".into(),
        body: ReportBody::FirstFrame(240),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quality_reports_yield_measurements_on_warm_instances() {
    run("quality", async {
        let gw = start_gateway(|_| {}).await?;
        let policy = gw.gate().policy().clone();
        for _ in 0..50 {
            let outcome = policy
                .report(&quality("cam"))
                .ok_or_else(|| anyhow::anyhow!("report dropped"))?;
            ensure!(outcome.accepted, "{outcome:?}");
            ensure!(
                outcome
                    .measurements
                    .iter()
                    .any(|m| m.name == "leb_first_frame_ms" && m.value == 240.0),
                "{outcome:?}"
            );
        }
        let rejected = policy
            .report(&quality(""))
            .ok_or_else(|| anyhow::anyhow!("dropped"))?;
        ensure!(
            !rejected.accepted,
            "a report without a stream is invalid: {rejected:?}"
        );
        gw.shutdown().await;
        Ok(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quality_reports_fail_open_when_no_module_can_judge_them() {
    run("quality_fail_open", async {
        let gw = start_gateway(|c| c.policies.quality = "no-such-module".into()).await?;
        let policy = gw.gate().policy().clone();
        ensure!(
            policy.report(&quality("cam")).is_none(),
            "report should be dropped"
        );
        let dropped = policy.metrics().get(
            "gatehouse_policy_reports_dropped_total",
            &[("module", "no-such-module"), ("why", "missing")],
        );
        ensure!(dropped == 1.0, "dropped reports counted: {dropped}");
        gw.shutdown().await;
        Ok(())
    })
    .await;
}
