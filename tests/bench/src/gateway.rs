//! The gateway under test: a `gatehouse serve` child pinned to one CPU, on loopback ports.

use std::net::{Ipv4Addr, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context as _;

/// A running gateway; SIGTERM and reaped on drop.
pub struct GatewayProcess {
    child: Child,
    pub http_port: u16,
    pub base_url: String,
    _config: PathBuf,
}

fn free_port() -> anyhow::Result<u16> {
    // Bound and released: a small race with other processes, acceptable for a benchmark.
    let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))?;
    Ok(socket.local_addr()?.port())
}

impl GatewayProcess {
    /// Starts `binary` with `taskset -c cpu`, logging to `log_path`.
    pub fn start(
        binary: &Path,
        cpu: usize,
        keyframe_cache: bool,
        work_dir: &Path,
        log_path: &Path,
    ) -> anyhow::Result<Self> {
        let webrtc = if keyframe_cache {
            "keyframe_cache = true\n"
        } else {
            ""
        };
        Self::start_with(binary, cpu, webrtc, "", work_dir, log_path)
    }

    /// [`GatewayProcess::start`] with extra `[webrtc]` keys and extra sections.
    pub fn start_with(
        binary: &Path,
        cpu: usize,
        webrtc_keys: &str,
        sections: &str,
        work_dir: &Path,
        log_path: &Path,
    ) -> anyhow::Result<Self> {
        let http_port = free_port()?;
        let udp_port = free_port()?;
        let config = work_dir.join(format!("gateway-{http_port}.toml"));
        let mut text = format!(
            "[http]\nlisten = \"127.0.0.1:{http_port}\"\n\n[webrtc]\nudp_listen = \"127.0.0.1:{udp_port}\"\n"
        );
        text.push_str(webrtc_keys);
        text.push_str("\n[log]\nlevel = \"warn\"\n");
        text.push_str(sections);
        std::fs::write(&config, text).context("writing the gateway config")?;
        let log = std::fs::File::create(log_path).context("gateway log file")?;
        let child = Command::new("taskset")
            .arg("-c")
            .arg(cpu.to_string())
            .arg(binary)
            .arg("serve")
            .arg("--config")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {} under taskset", binary.display()))?;
        let mut gateway = Self {
            child,
            http_port,
            base_url: format!("http://127.0.0.1:{http_port}"),
            _config: config,
        };
        gateway.wait_ready(Duration::from_secs(30))?;
        Ok(gateway)
    }

    /// The gateway's pid (taskset execs it, so the child's pid is the gateway's).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    fn wait_ready(&mut self, limit: Duration) -> anyhow::Result<()> {
        let until = Instant::now() + limit;
        while Instant::now() < until {
            if let Some(status) = self.child.try_wait()? {
                anyhow::bail!("gateway exited during start-up: {status}");
            }
            if TcpStream::connect((Ipv4Addr::LOCALHOST, self.http_port)).is_ok() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        anyhow::bail!("gateway not listening after {limit:?}")
    }
}

impl Drop for GatewayProcess {
    fn drop(&mut self) {
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let until = Instant::now() + Duration::from_secs(5);
        while Instant::now() < until {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
