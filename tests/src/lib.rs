//! Helpers for Gatehouse's end-to-end tests (the tests themselves live in `tests/tests/`).
//!
//! - [`start_gateway`] runs an in-process gateway on 127.0.0.1 with ephemeral ports.
//! - [`Client`] runs one of the external clients (aiortc scripts in `tests/clients/`, the
//!   Chromium driver in `tests/browser/`) as a child process: `kill_on_drop`, bounded wait,
//!   killed on timeout, and its single JSON result line parsed.
//! - [`offers`] hands out real aiortc SDP offers for HTTP-level tests.
//!
//! The external tools are installed by `tests/setup.sh`; when they are missing the helpers fail
//! with a message saying so (they never skip silently).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail, ensure};
use serde_json::Value;
use tokio::io::AsyncReadExt;
use tokio::process::Command;

pub use gatehouse;

pub mod whip_http;

/// The `tests/` directory of the workspace.
pub fn tests_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn clients_dir() -> PathBuf {
    tests_dir().join("clients")
}

pub fn browser_dir() -> PathBuf {
    tests_dir().join("browser")
}

const SETUP_HINT: &str = "run `bash tests/setup.sh` (as root) from the workspace root first";

/// `<workspace>/tests/.venv/bin/python`, or an error telling to run tests/setup.sh.
pub fn venv_python() -> Result<PathBuf> {
    let p = tests_dir().join(".venv/bin/python");
    if !p.exists() {
        bail!("{} is missing: {SETUP_HINT}", p.display());
    }
    Ok(p)
}

/// Node + playwright-core + Debian's Chromium, or an error telling to run tests/setup.sh.
pub fn browser_tools() -> Result<(PathBuf, PathBuf)> {
    let pw = browser_dir().join("node_modules/playwright-core/package.json");
    if !pw.exists() {
        bail!("{} is missing: {SETUP_HINT}", pw.display());
    }
    let chromium = PathBuf::from("/usr/bin/chromium");
    if !chromium.exists() {
        bail!("/usr/bin/chromium is missing: {SETUP_HINT}");
    }
    Ok((PathBuf::from("node"), browser_dir().join("run_pages.mjs")))
}

/// Logs of the in-process gateway, shown for failing tests (`RUST_LOG` overrides the level).
pub fn init_logs() {
    use tracing_subscriber::EnvFilter;
    // default: warnings, minus the "access is OPEN" notice every test gateway prints
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("warn,gatehouse::server=error"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false)
        .with_test_writer()
        .try_init();
}

/// Start an in-process gateway with `Config::for_tests()` adjusted by `tweak`.
pub async fn start_gateway(
    tweak: impl FnOnce(&mut gatehouse::Config),
) -> Result<gatehouse::Gateway> {
    init_logs();
    let mut cfg = gatehouse::Config::for_tests();
    tweak(&mut cfg);
    let gw = tokio::time::timeout(Duration::from_secs(10), gatehouse::Gateway::start(cfg))
        .await
        .context("Gateway::start timed out")??;
    Ok(gw)
}

/// A gateway in its own process (`src/bin/gateway_node.rs`); pass
/// `env!("CARGO_BIN_EXE_gateway_node")` from the test. Killed when dropped.
pub struct GatewayProcess {
    child: tokio::process::Child,
    base_url: String,
}

impl GatewayProcess {
    pub async fn start(binary: &str) -> Result<Self> {
        Self::start_with_env(binary, &[]).await
    }

    /// [`GatewayProcess::start`] with extra environment variables.
    pub async fn start_with_env(binary: &str, env: &[(&str, &str)]) -> Result<Self> {
        use tokio::io::AsyncBufReadExt;
        let mut child = tokio::process::Command::new(binary)
            .envs(env.iter().copied())
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("spawn {binary}"))?;
        let stdout = child.stdout.take().context("gateway_node stdout")?;
        let mut lines = tokio::io::BufReader::new(stdout).lines();
        let first = tokio::time::timeout(Duration::from_secs(15), lines.next_line())
            .await
            .context("gateway_node did not start within 15 s")??
            .context("gateway_node exited before serving")?;
        let base_url = serde_json::from_str::<Value>(&first)?
            .get("http")
            .and_then(Value::as_str)
            .with_context(|| format!("gateway_node printed {first}"))?
            .to_owned();
        Ok(Self { child, base_url })
    }

    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// Sends SIGTERM (what an operator's `kill` or systemd sends) and waits for a clean exit.
    pub async fn terminate(mut self) -> Result<()> {
        let pid = self.child.id().context("gateway_node already exited")?;
        let status = tokio::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .await?;
        ensure!(status.success(), "kill -TERM {pid} failed");
        let exit = tokio::time::timeout(Duration::from_secs(10), self.child.wait())
            .await
            .context("gateway_node did not stop within 10 s of SIGTERM")??;
        ensure!(
            exit.success(),
            "gateway_node exited with {exit} after SIGTERM"
        );
        Ok(())
    }

    /// Closes its stdin (it shuts down cleanly) and waits; kills it after 10 s.
    pub async fn stop(mut self) -> Result<()> {
        drop(self.child.stdin.take());
        match tokio::time::timeout(Duration::from_secs(10), self.child.wait()).await {
            Ok(status) => {
                let status = status?;
                ensure!(status.success(), "gateway_node exited with {status}");
                Ok(())
            }
            Err(_) => {
                let _ = self.child.kill().await;
                bail!("gateway_node did not stop within 10 s")
            }
        }
    }
}

/// Run `body` bounded by `limit`; a timeout is an error naming the test.
pub async fn bounded<T>(
    name: &str,
    limit: Duration,
    body: impl std::future::Future<Output = Result<T>>,
) -> Result<T> {
    match tokio::time::timeout(limit, body).await {
        Ok(r) => r,
        Err(_) => Err(anyhow!("{name}: timed out after {limit:?}")),
    }
}

/// Media tests share 2 cores: run them one at a time within a test binary.
pub async fn media_lock() -> tokio::sync::MutexGuard<'static, ()> {
    static LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    LOCK.lock().await
}

/// What an external client printed and how it ended.
#[derive(Debug, Clone)]
pub struct ClientResult {
    pub name: String,
    /// The (last) JSON line of stdout, or `Value::Null` when there was none.
    pub json: Value,
    pub exit_code: Option<i32>,
    pub timed_out: bool,
    pub stderr: String,
    pub elapsed: Duration,
}

impl ClientResult {
    pub fn ok(&self) -> bool {
        self.exit_code == Some(0) && self.json.get("ok").and_then(Value::as_bool) == Some(true)
    }

    pub fn u64(&self, key: &str) -> u64 {
        self.json.get(key).and_then(Value::as_u64).unwrap_or(0)
    }

    pub fn f64(&self, key: &str) -> Option<f64> {
        self.json.get(key).and_then(Value::as_f64)
    }

    pub fn str(&self, key: &str) -> Option<&str> {
        self.json.get(key).and_then(Value::as_str)
    }

    /// A short description for assertion messages (the JSON plus the end of stderr).
    pub fn describe(&self) -> String {
        let tail: String = {
            let lines: Vec<&str> = self.stderr.lines().collect();
            let from = lines.len().saturating_sub(15);
            lines[from..].join("\n")
        };
        format!(
            "{} exit={:?} timed_out={} after {:.1}s\n  json: {}\n  stderr (tail):\n{}",
            self.name,
            self.exit_code,
            self.timed_out,
            self.elapsed.as_secs_f64(),
            self.json,
            tail
        )
    }

    /// Fail with the full description unless the client reported success.
    pub fn expect_ok(self) -> Result<Self> {
        if !self.ok() {
            bail!("client failed: {}", self.describe());
        }
        Ok(self)
    }
}

/// A running external client.
pub struct Client {
    name: String,
    child: tokio::process::Child,
    stdout: tokio::task::JoinHandle<String>,
    stderr: tokio::task::JoinHandle<String>,
    started: Instant,
    limit: Duration,
}

impl Client {
    /// Spawn `program args...` in `cwd`; it is killed if not finished within `limit` (or dropped).
    pub fn spawn(
        name: &str,
        program: &Path,
        args: &[String],
        cwd: &Path,
        limit: Duration,
    ) -> Result<Self> {
        let mut cmd = Command::new(program);
        cmd.args(args)
            .current_dir(cwd)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .env("PYTHONUNBUFFERED", "1")
            .env("PYTHONDONTWRITEBYTECODE", "1")
            // everything is on 127.0.0.1: never go through a proxy
            .env("NO_PROXY", "*")
            .env_remove("HTTP_PROXY")
            .env_remove("http_proxy")
            .env_remove("HTTPS_PROXY")
            .env_remove("https_proxy")
            .kill_on_drop(true);
        let mut child = cmd
            .spawn()
            .with_context(|| format!("spawning {name}: {}", program.display()))?;
        let mut out = child.stdout.take().expect("piped stdout");
        let mut err = child.stderr.take().expect("piped stderr");
        let stdout = tokio::spawn(async move {
            let mut s = String::new();
            let _ = out.read_to_string(&mut s).await;
            s
        });
        let stderr = tokio::spawn(async move {
            let mut s = String::new();
            let _ = err.read_to_string(&mut s).await;
            s
        });
        Ok(Self {
            name: name.to_string(),
            child,
            stdout,
            stderr,
            started: Instant::now(),
            limit,
        })
    }

    /// Spawn one of the Python clients in `tests/clients/`.
    pub fn python(script: &str, args: &[String], limit: Duration) -> Result<Self> {
        let py = venv_python()?;
        let mut full = vec![clients_dir().join(script).display().to_string()];
        full.extend(args.iter().cloned());
        Self::spawn(script, &py, &full, &clients_dir(), limit)
    }

    /// Wait for the client (bounded by its limit; killed and reaped on timeout).
    pub async fn finish(mut self) -> Result<ClientResult> {
        let remaining = self.limit.saturating_sub(self.started.elapsed());
        let (status, timed_out) = match tokio::time::timeout(remaining, self.child.wait()).await {
            Ok(st) => (Some(st.context("waiting for client")?), false),
            Err(_) => {
                let _ = self.child.kill().await; // SIGKILL + wait
                (None, true)
            }
        };
        let grace = Duration::from_secs(5);
        let stdout = tokio::time::timeout(grace, &mut self.stdout)
            .await
            .ok()
            .and_then(|r| r.ok())
            .unwrap_or_default();
        let stderr = tokio::time::timeout(grace, &mut self.stderr)
            .await
            .ok()
            .and_then(|r| r.ok())
            .unwrap_or_default();
        let json = stdout
            .lines()
            .rev()
            .find_map(|l| {
                serde_json::from_str::<Value>(l.trim())
                    .ok()
                    .filter(Value::is_object)
            })
            .unwrap_or(Value::Null);
        Ok(ClientResult {
            name: self.name.clone(),
            json,
            exit_code: status.and_then(|s| s.code()),
            timed_out,
            stderr,
            elapsed: self.started.elapsed(),
        })
    }
}

fn s(v: impl ToString) -> String {
    v.to_string()
}

/// Options of `whip_publish.py`.
#[derive(Debug, Clone)]
pub struct Publish {
    pub seconds: f64,
    pub video_codec: &'static str,
    pub audio: bool,
    pub trickle: bool,
    /// Count keyframe requests but never answer them (only the first frame is a keyframe).
    pub ignore_keyframe_requests: bool,
    /// The API answers 201 without a session resource (go-live's rooms API).
    pub no_session_resource: bool,
    /// runner365 signaling: 200 + answer, and this unpublish URL POSTed at the end.
    pub runner365_close: Option<String>,
    /// Frame size of the synthetic camera (a player reports what it decoded).
    pub size: (u32, u32),
}

impl Default for Publish {
    fn default() -> Self {
        Self {
            seconds: 8.0,
            video_codec: "vp8",
            audio: true,
            trickle: false,
            ignore_keyframe_requests: false,
            no_session_resource: false,
            runner365_close: None,
            size: (640, 480),
        }
    }
}

impl Publish {
    pub fn spawn(&self, url: &str) -> Result<Client> {
        let mut a = vec![s("--url"), s(url), s("--seconds"), s(self.seconds)];
        a.extend([s("--video-codec"), s(self.video_codec)]);
        a.extend([s("--width"), s(self.size.0), s("--height"), s(self.size.1)]);
        if !self.audio {
            a.push(s("--no-audio"));
        }
        if self.trickle {
            a.push(s("--trickle"));
        }
        if self.ignore_keyframe_requests {
            a.push(s("--ignore-keyframe-requests"));
        }
        if self.no_session_resource {
            a.push(s("--no-session-resource"));
        }
        if let Some(url) = &self.runner365_close {
            a.extend([s("--runner365-close"), s(url)]);
        }
        let limit = Duration::from_secs_f64(self.seconds + 40.0);
        a.extend([s("--timeout"), s(self.seconds + 30.0)]);
        Client::python("whip_publish.py", &a, limit)
    }
}

/// Options of `whep_play.py`.
#[derive(Debug, Clone, Default)]
pub struct Play {
    pub seconds: f64,
    pub min_video_frames: u64,
    pub ice_restart: bool,
    pub trickle: bool,
    pub delete: bool,
    /// Send a PLI every this many milliseconds once connected (0 = never).
    pub pli_interval_ms: u64,
    /// The API answers 201 without a session resource (go-live's rooms API).
    pub no_session_resource: bool,
    /// runner365 signaling: 200 + answer, and this unsubscribe URL POSTed at the end.
    pub runner365_close: Option<String>,
    /// `RID@SECONDS`: switch to that simulcast layer through `{session}/layer` mid-play.
    pub switch_layer: Option<String>,
}

impl Play {
    pub fn for_seconds(seconds: f64) -> Self {
        Self {
            seconds,
            ..Default::default()
        }
    }

    pub fn spawn(&self, url: &str) -> Result<Client> {
        let mut a = vec![s("--url"), s(url), s("--seconds"), s(self.seconds)];
        if self.min_video_frames > 0 {
            a.extend([s("--min-video-frames"), s(self.min_video_frames)]);
        }
        if self.ice_restart {
            a.push(s("--ice-restart"));
        }
        if self.trickle {
            a.push(s("--trickle"));
        }
        if self.delete {
            a.push(s("--delete"));
        }
        if self.pli_interval_ms > 0 {
            a.extend([s("--pli-interval-ms"), s(self.pli_interval_ms)]);
        }
        if self.no_session_resource {
            a.push(s("--no-session-resource"));
        }
        if let Some(url) = &self.runner365_close {
            a.extend([s("--runner365-close"), s(url)]);
        }
        if let Some(switch) = &self.switch_layer {
            a.extend([s("--switch-layer"), s(switch)]);
        }
        let limit = Duration::from_secs_f64(self.seconds + 40.0);
        a.extend([s("--timeout"), s(self.seconds + 30.0)]);
        Client::python("whep_play.py", &a, limit)
    }
}

/// Run the Chromium driver: publish.html + play.html of `base` on `stream` for `seconds`.
pub fn spawn_browser_pages(base: &str, stream: &str, seconds: f64) -> Result<Client> {
    spawn_browser_pages_with(base, stream, seconds, &[])
}

/// [`spawn_browser_pages`] with extra driver arguments (e.g. `["--video", "vp9"]`).
pub fn spawn_browser_pages_with(
    base: &str,
    stream: &str,
    seconds: f64,
    extra: &[&str],
) -> Result<Client> {
    let (node, script) = browser_tools()?;
    let mut a = vec![
        script.display().to_string(),
        s("--base"),
        s(base),
        s("--stream"),
        s(stream),
        s("--seconds"),
        s(seconds),
        s("--timeout"),
        s(seconds + 45.0),
    ];
    a.extend(extra.iter().map(s));
    Client::spawn(
        "run_pages.mjs",
        &node,
        &a,
        &browser_dir(),
        Duration::from_secs_f64(seconds + 55.0),
    )
}

/// The LEB player (`clients/leb_play.py`, aiortc) pulling `stream_url` from the gateway at
/// `base` for `seconds`, wanting `min_video_frames`; `extra` adds its other options
/// (`--srs`, `--tabrctl RID@S`, …).
pub fn spawn_leb_player(
    base: &str,
    stream_url: &str,
    seconds: f64,
    min_video_frames: u64,
    extra: &[&str],
) -> Result<Client> {
    let mut args = vec![
        "--url".to_owned(),
        base.to_owned(),
        "--stream-url".into(),
        stream_url.to_owned(),
        "--seconds".into(),
        seconds.to_string(),
        "--min-video-frames".into(),
        min_video_frames.to_string(),
    ];
    args.extend(extra.iter().map(|a| (*a).to_owned()));
    Client::python(
        "leb_play.py",
        &args,
        Duration::from_secs_f64(seconds + 36.0),
    )
}

/// Tencent's web player TXLivePlayer 1.3.5 in Chromium (`browser/run_txliveplayer.mjs`) playing
/// `stream` from the gateway at `base`; `stop` ends with `stopPlay()`, otherwise the page is
/// closed without a stopstream.
pub fn spawn_txliveplayer(base: &str, stream: &str, seconds: f64, stop: bool) -> Result<Client> {
    let (node, _) = browser_tools()?;
    let player = browser_dir().join("node_modules/tcplayer.js/package.json");
    if !player.exists() {
        bail!("{} is missing: {SETUP_HINT}", player.display());
    }
    let script = browser_dir().join("run_txliveplayer.mjs");
    let mut a = vec![
        script.display().to_string(),
        s("--gateway"),
        s(base),
        s("--stream"),
        s(stream),
        s("--seconds"),
        s(seconds),
    ];
    if !stop {
        a.push(s("--close-without-stop"));
    }
    Client::spawn(
        "run_txliveplayer.mjs",
        &node,
        &a,
        &browser_dir(),
        Duration::from_secs_f64(seconds + 50.0),
    )
}

/// Janode 1.8.0 (`browser/run_janode.mjs`) running the VideoRoom scenario against the Janus
/// API at `ws_url` with aiortc media peers (`clients/jsep_peer.py`); `extra` are further
/// arguments of the script (e.g. `--peer-ice-addresses` for the real Janus).
pub fn spawn_janode(ws_url: &str, room: u64, extra: &[String]) -> Result<Client> {
    let (node, _) = browser_tools()?;
    let janode = browser_dir().join("node_modules/janode/package.json");
    if !janode.exists() {
        bail!("{} is missing: {SETUP_HINT}", janode.display());
    }
    let mut a = vec![
        browser_dir().join("run_janode.mjs").display().to_string(),
        s("--url"),
        s(ws_url),
        s("--python"),
        venv_python()?.display().to_string(),
        s("--peer"),
        clients_dir().join("jsep_peer.py").display().to_string(),
        s("--room"),
        s(room),
        s("--timeout"),
        s(100),
    ];
    a.extend(extra.iter().cloned());
    Client::spawn(
        "run_janode.mjs",
        &node,
        &a,
        &browser_dir(),
        Duration::from_secs(110),
    )
}

/// janus.js 1.4.2 (npm `janus-gateway`) in headless Chromium (`browser/run_janusjs.mjs`): the
/// VideoRoom demo flow over HTTP long-poll with the fake camera, against the Janus API at
/// `server` (`http://…/janus`).
pub fn spawn_janusjs(server: &str, room: u64, extra: &[&str]) -> Result<Client> {
    let (node, _) = browser_tools()?;
    let janus_js = browser_dir().join("node_modules/janus-gateway/package.json");
    if !janus_js.exists() {
        bail!("{} is missing: {SETUP_HINT}", janus_js.display());
    }
    let a = vec![
        browser_dir().join("run_janusjs.mjs").display().to_string(),
        s("--server"),
        s(server),
        s("--room"),
        s(room),
        s("--seconds"),
        s(4),
        s("--timeout"),
        s(80),
    ];
    let a: Vec<String> = a.into_iter().chain(extra.iter().map(s)).collect();
    Client::spawn(
        "run_janusjs.mjs",
        &node,
        &a,
        &browser_dir(),
        Duration::from_secs(90),
    )
}

/// Real aiortc offers (generated once per test binary): `whip` (sendonly VP8+Opus),
/// `whep` (recvonly video+audio) and `datachannel` (no audio/video m-line).
#[derive(Debug, Clone)]
pub struct Offers {
    pub whip: Vec<String>,
    pub whep: Vec<String>,
    pub datachannel: Vec<String>,
}

pub async fn offers() -> Result<&'static Offers> {
    static OFFERS: tokio::sync::OnceCell<Offers> = tokio::sync::OnceCell::const_new();
    OFFERS
        .get_or_try_init(|| async {
            let run = Client::python(
                "make_offer.py",
                &[s("--pool"), s("whip=4,whep=3,datachannel=1")],
                Duration::from_secs(30),
            )?
            .finish()
            .await?;
            let list = |k: &str| -> Result<Vec<String>> {
                run.json
                    .get(k)
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(|v| v.as_str().map(str::to_string))
                            .collect()
                    })
                    .ok_or_else(|| anyhow!("make_offer.py gave no {k} offers: {}", run.describe()))
            };
            Ok(Offers {
                whip: list("whip")?,
                whep: list("whep")?,
                datachannel: list("datachannel")?,
            })
        })
        .await
}

/// A reqwest client that never uses a proxy.
pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("reqwest client")
}

/// POST an SDP body with `Content-Type: application/sdp`.
pub async fn post_sdp(url: &str, sdp: &str) -> Result<reqwest::Response> {
    Ok(http()
        .post(url)
        .header("Content-Type", "application/sdp")
        .body(sdp.to_string())
        .send()
        .await?)
}

/// Header value as a string ("" when absent).
pub fn header(resp: &reqwest::Response, name: &str) -> String {
    resp.headers()
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Resolve a (possibly relative) Location against the gateway's base URL.
pub fn absolute(base: &str, location: &str) -> String {
    if location.starts_with("http://") || location.starts_with("https://") {
        location.to_string()
    } else {
        format!("{}{}", base.trim_end_matches('/'), location)
    }
}

/// Waits (at most `limit`) until a publisher's media reaches `stream`; an error otherwise.
pub async fn wait_for_media(gw: &gatehouse::Gateway, stream: &str, limit: Duration) -> Result<()> {
    let (arrived, _) = wait_room(gw, stream, limit, |r| {
        r.is_some_and(|r| r.traffic.ingress_packets > 0)
    })
    .await;
    if !arrived {
        bail!("no publisher media reached {stream} within {limit:?}");
    }
    Ok(())
}

/// Poll `gw.room(stream)` until `pred` holds or `limit` passes; returns the last snapshot.
pub async fn wait_room(
    gw: &gatehouse::Gateway,
    stream: &str,
    limit: Duration,
    pred: impl Fn(Option<&gatehouse::media::RoomSnapshot>) -> bool,
) -> (bool, Option<gatehouse::media::RoomSnapshot>) {
    let deadline = Instant::now() + limit;
    loop {
        let snap = gw.room(stream).await;
        if pred(snap.as_ref()) {
            return (true, snap);
        }
        if Instant::now() >= deadline {
            return (false, snap);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The RFC 8840 fragment a client sends to trickle or restart ICE, for the first m-section of `offer`.
pub fn sdpfrag(offer: &str, ufrag: &str, pwd: &str, with_candidates: bool) -> String {
    let mut m_line = None;
    let mut mid = None;
    let mut group = None;
    let mut cands = Vec::new();
    let mut section = -1i32;
    for line in offer.lines().map(str::trim) {
        if line.starts_with("m=") {
            section += 1;
            if section == 0 {
                let mut parts: Vec<&str> = line.split(' ').collect();
                if parts.len() > 1 {
                    parts[1] = "9";
                }
                m_line = Some(parts.join(" "));
            }
            continue;
        }
        if section < 0 {
            if let Some(g) = line.strip_prefix("a=group:") {
                group = Some(g.to_string());
            }
        } else if section == 0 {
            if let Some(m) = line.strip_prefix("a=mid:") {
                mid = Some(m.to_string());
            }
            if line.starts_with("a=candidate:") {
                cands.push(line.to_string());
            }
        }
    }
    let mut out = String::new();
    if let Some(g) = group {
        out += &format!("a=group:{g}\r\n");
    }
    out += &format!(
        "{}\r\n",
        m_line.unwrap_or_else(|| "m=audio 9 UDP/TLS/RTP/SAVPF 0".into())
    );
    if let Some(m) = mid {
        out += &format!("a=mid:{m}\r\n");
    }
    out += &format!("a=ice-ufrag:{ufrag}\r\na=ice-pwd:{pwd}\r\n");
    if with_candidates {
        for c in cands {
            out += &format!("{c}\r\n");
        }
        out += "a=end-of-candidates\r\n";
    }
    out
}

/// `a=ice-ufrag` / `a=ice-pwd` of an SDP (first occurrence).
pub fn ice_credentials(sdp: &str) -> (Option<String>, Option<String>) {
    let find = |p: &str| {
        sdp.lines()
            .map(str::trim)
            .find_map(|l| l.strip_prefix(p).map(str::to_string))
    };
    (find("a=ice-ufrag:"), find("a=ice-pwd:"))
}
