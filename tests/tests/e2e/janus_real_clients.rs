//! Janus's VideoRoom through Meetecho's own client libraries: Janode 1.8.0 over WebSocket (on
//! a `[janus] listen` port, as on Janus's 8188)
//! (`browser/run_janode.mjs`) with aiortc media peers (`clients/jsep_peer.py`) runs the whole
//! scenario against the gateway's `/janus`: create room, two publishers with
//! joinConfigurePublisher, listParticipants, a subscriber in the multistream `streams` form
//! (server offer, `start` with the answer, decoded frames), `switch` to the other publisher
//! (its size decodes, no renegotiation), pause/start, a legacy `feed` subscriber, `update`
//! adding the first publisher to that subscriber's PeerConnection and removing it again
//! (renegotiated: both sizes decode, then only one), leave, destroy. janus.js in headless Chromium does the demo's VideoRoom flow over HTTP long-poll
//! with the fake camera. Both clients also run against Debian's Janus 1.1.2, so the tests
//! prove compatibility rather than our reading of the spec.

use std::time::Duration;

use anyhow::{Result, ensure};
use gatehouse_e2e::{bounded, media_lock, spawn_janode, spawn_janusjs, start_gateway};
use serde_json::Value;

const LIMIT: Duration = Duration::from_secs(150);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn janode_runs_the_videoroom_scenario_with_decoded_frames() {
    let _guard = media_lock().await;
    let result: Result<()> = bounded("janode", LIMIT, async {
        // On a Janus-style port (`[janus] listen`): the WebSocket at `/`, as Janode expects of
        // a Janus server.
        let gw = start_gateway(|c| c.janus.listen = vec!["127.0.0.1:0".parse().unwrap()]).await?;
        let ws = format!("ws://{}", gw.janus_addrs()[0]);
        let run = spawn_janode(&ws, 4242, &[])?.finish().await?;
        gw.shutdown().await;
        let steps = &run.json["steps"];
        let step = |name: &str| -> &Value { &steps[name] };
        println!(
            "janode: exit {:?} in {:.1} s; alice {} frames at {}px, after switch {}px in {} ms, \
             paused growth {}, legacy subscriber {} frames",
            run.exit_code,
            run.elapsed.as_secs_f64(),
            step("e_s1_alice")["video_frames"],
            step("e_s1_alice")["width"],
            step("f_s1_switch")["width_after"],
            step("f_s1_switch")["width_320_ms"],
            step("g_s1_pause")["growth_while_paused"],
            step("h_s2_legacy")["video_frames"],
        );
        ensure!(run.ok(), "{}", run.describe());
        for name in [
            "a_room",
            "b_alice",
            "c_bob",
            "d_participants",
            "e_s1_alice",
            "f_s1_switch",
            "g_s1_pause",
            "h_s2_legacy",
            "h2_s1_update",
            "h3_queued_update",
            "h4_display",
            "i_teardown",
        ] {
            ensure!(step(name)["ok"] == true, "step {name}: {}", step(name));
        }
        ensure!(step("e_s1_alice")["width"] == 640, "alice decodes at 640");
        ensure!(
            step("f_s1_switch")["width_after"] == 320,
            "bob decodes after the switch"
        );
        ensure!(
            step("g_s1_pause")["growth_while_paused"]
                .as_u64()
                .is_some_and(|g| g <= 2)
        );
        let queued = step("h3_queued_update");
        ensure!(queued["queued_reply_has_jsep"] == false, "{queued}");
        println!(
            "queued update: offered {}, both decoding after {} ms; display event {}",
            queued["offered_streams"],
            queued["both_decoding_ms"],
            step("h4_display")["event"]
        );
        let update = step("h2_s1_update");
        println!(
            "update: both feeds decoding after {} ms; after unsubscribe alice +{} frames, bob +{}",
            update["both_decoding_ms"],
            update["alice_growth_after_unsubscribe"],
            update["bob_growth_after_unsubscribe"]
        );
        Ok(())
    })
    .await;
    if let Err(e) = result {
        panic!("janode_runs_the_videoroom_scenario_with_decoded_frames: {e:#}");
    }
}

/// Debian's Janus 1.1.2 running inside a network namespace of the test's own (a veth pair:
/// the test side `.1`, Janus `.2`). Janus never gathers loopback and pins its sockets to its
/// NIC, so it needs a real interface; the namespace keeps that interface the test's own.
pub(crate) struct NamespacedJanus {
    namespace: String,
    host_ip: String,
    pub(crate) janus_ip: String,
    run_dir: std::path::PathBuf,
    pid: Option<u32>,
}

fn run(program: &str, args: &[&str]) -> Result<()> {
    let out = std::process::Command::new(program).args(args).output()?;
    ensure!(
        out.status.success(),
        "{program} {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr).trim()
    );
    Ok(())
}

impl NamespacedJanus {
    pub(crate) fn start(ws_port: u16, http_port: u16) -> Result<Self> {
        let id = std::process::id() % 200 + 20;
        let namespace = format!("gh-janus-{}", std::process::id());
        let (host_if, ns_if) = (format!("ghjh{id}"), format!("ghjn{id}"));
        let mut janus = Self {
            namespace: namespace.clone(),
            host_ip: format!("10.231.{id}.1"),
            janus_ip: format!("10.231.{id}.2"),
            run_dir: std::env::temp_dir().join(format!("gh-janus-run-{}", std::process::id())),
            pid: None,
        };
        // Created first so that Drop removes whatever part of the set-up succeeded.
        run("ip", &["netns", "add", &namespace])
            .map_err(|e| e.context("creating a network namespace (needs root / CAP_SYS_ADMIN)"))?;
        let in_ns = |args: &[&str]| -> Result<()> {
            let mut full = vec!["netns", "exec", namespace.as_str()];
            full.extend_from_slice(args);
            run("ip", &full)
        };
        run(
            "ip",
            &[
                "link", "add", &host_if, "type", "veth", "peer", "name", &ns_if,
            ],
        )?;
        run("ip", &["link", "set", &ns_if, "netns", &namespace])?;
        run(
            "ip",
            &[
                "addr",
                "add",
                &format!("{}/30", janus.host_ip),
                "dev",
                &host_if,
            ],
        )?;
        run("ip", &["link", "set", &host_if, "up"])?;
        in_ns(&[
            "ip",
            "addr",
            "add",
            &format!("{}/30", janus.janus_ip),
            "dev",
            &ns_if,
        ])?;
        in_ns(&["ip", "link", "set", &ns_if, "up"])?;
        in_ns(&["ip", "link", "set", "lo", "up"])?;
        let script = gatehouse_e2e::tests_dir().join("janus/run_real_janus.sh");
        let out = std::process::Command::new("ip")
            .args(["netns", "exec", &namespace, "bash"])
            .arg(&script)
            .args([ws_port.to_string(), http_port.to_string()])
            .arg(&janus.run_dir)
            .env("JANUS_BIND_IP", &janus.janus_ip)
            .output()?;
        let pid = String::from_utf8_lossy(&out.stdout).trim().parse().ok();
        janus.pid = pid;
        ensure!(
            out.status.success() && pid.is_some(),
            "run_real_janus.sh: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
        Ok(janus)
    }
}

impl Drop for NamespacedJanus {
    fn drop(&mut self) {
        if let Some(pid) = self.pid {
            let pid = pid.to_string();
            let _ = run("kill", &[&pid]);
            for _ in 0..50 {
                if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = run("kill", &["-9", &pid]);
        }
        // Deleting the namespace removes its end of the veth pair, and with it ours.
        let _ = run("ip", &["netns", "del", &self.namespace]);
        let _ = std::fs::remove_dir_all(&self.run_dir);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_janode_scenario_passes_against_debian_janus_1_1_2() {
    let _guard = media_lock().await;
    let result: Result<()> = bounded("janode_real_janus", LIMIT, async {
        let janus = NamespacedJanus::start(8188, 8088)?;
        let ws = format!("ws://{}:8188", janus.janus_ip);
        let peer_ice = vec!["--peer-ice-addresses".to_owned(), janus.host_ip.clone()];
        let run = spawn_janode(&ws, 4242, &peer_ice)?.finish().await?;
        drop(janus);
        let steps = &run.json["steps"];
        println!(
            "janode vs Janus 1.1.2: exit {:?} in {:.1} s; alice {}px, after switch {}px, \
             legacy subscriber {} frames",
            run.exit_code,
            run.elapsed.as_secs_f64(),
            steps["e_s1_alice"]["width"],
            steps["f_s1_switch"]["width_after"],
            steps["h_s2_legacy"]["video_frames"],
        );
        ensure!(run.ok(), "{}", run.describe());
        Ok(())
    })
    .await;
    if let Err(e) = result {
        panic!("the_same_janode_scenario_passes_against_debian_janus_1_1_2: {e:#}");
    }
}

/// Runs janus.js against `server` and checks its result.
async fn janusjs_plays(server: &str, room: u64, against: &str) -> Result<()> {
    let run = spawn_janusjs(server, room, &[])?.finish().await?;
    println!(
        "janus.js vs {against}: exit {:?} in {:.1} s; webrtcup publisher {} subscriber {}, \
         {} frames decoded at {}x{}",
        run.exit_code,
        run.elapsed.as_secs_f64(),
        run.json["webrtcup_publisher"],
        run.json["webrtcup_subscriber"],
        run.json["frames_decoded"],
        run.json["width"],
        run.json["height"],
    );
    ensure!(run.ok(), "{}", run.describe());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn janusjs_in_chromium_publishes_and_plays_over_http_long_poll() {
    let _guard = media_lock().await;
    let result: Result<()> = bounded("janusjs", LIMIT, async {
        let gw = start_gateway(|_| {}).await?;
        let outcome = janusjs_plays(&format!("{}/janus", gw.base_url()), 4343, "gatehouse").await;
        gw.shutdown().await;
        outcome
    })
    .await;
    if let Err(e) = result {
        panic!("janusjs_in_chromium_publishes_and_plays_over_http_long_poll: {e:#}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn janusjs_runs_the_same_flow_against_debian_janus_1_1_2() {
    let _guard = media_lock().await;
    let result: Result<()> = bounded("janusjs_real_janus", LIMIT, async {
        let janus = NamespacedJanus::start(8188, 8088)?;
        let server = format!("http://{}:8088/janus", janus.janus_ip);
        let outcome = janusjs_plays(&server, 4343, "Janus 1.1.2").await;
        drop(janus);
        outcome
    })
    .await;
    if let Err(e) = result {
        panic!("janusjs_runs_the_same_flow_against_debian_janus_1_1_2: {e:#}");
    }
}

/// janus.js restarts ICE on both handles against `server`: the publisher re-offers with
/// `iceRestart` and gets an answer with new credentials, the subscriber's `configure {restart:
/// true}` brings a new offer; video goes on afterwards.
async fn janusjs_restarts_ice(server: &str, against: &str) -> Result<()> {
    let run = spawn_janusjs(server, 4545, &["--ice-restart"])?
        .finish()
        .await?;
    let restart = &run.json["ice_restart"];
    println!("janus.js ICE restart vs {against}: {restart}");
    ensure!(run.ok(), "{}", run.describe());
    let (before, after) = (&restart["before"], &restart["after"]);
    for handle in ["pub", "sub"] {
        ensure!(
            before[handle].is_string()
                && after[handle].is_string()
                && before[handle] != after[handle],
            "{handle}: the server's ICE credentials did not change: {restart}"
        );
    }
    let frames = |k: &str| restart[k].as_u64().unwrap_or(0);
    ensure!(
        frames("frames_after") >= frames("frames_before") + 20,
        "video stalled after the restart: {restart}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn janusjs_restarts_ice_on_both_handles_and_video_goes_on() {
    let _guard = media_lock().await;
    let result: Result<()> = bounded("janusjs_ice_restart", LIMIT, async {
        let gw = start_gateway(|_| {}).await?;
        let outcome = janusjs_restarts_ice(&format!("{}/janus", gw.base_url()), "gatehouse").await;
        gw.shutdown().await;
        outcome
    })
    .await;
    if let Err(e) = result {
        panic!("janusjs_restarts_ice_on_both_handles_and_video_goes_on: {e:#}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn janusjs_restarts_ice_the_same_way_against_debian_janus_1_1_2() {
    let _guard = media_lock().await;
    let result: Result<()> = bounded("janusjs_ice_restart_real_janus", LIMIT, async {
        let janus = NamespacedJanus::start(8188, 8088)?;
        let server = format!("http://{}:8088/janus", janus.janus_ip);
        let outcome = janusjs_restarts_ice(&server, "Janus 1.1.2").await;
        drop(janus);
        outcome
    })
    .await;
    if let Err(e) = result {
        panic!("janusjs_restarts_ice_the_same_way_against_debian_janus_1_1_2: {e:#}");
    }
}
