//! The `gatehouse` binary: configuration errors at start-up, JSON logs, serving, and a clean
//! exit on SIGTERM. Every process started here is killed if a test fails half-way.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

struct Gatehouse(Child);

impl Drop for Gatehouse {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A config file in the temp directory, removed when the test is done with it.
struct ConfigFile(std::path::PathBuf);

impl AsRef<std::ffi::OsStr> for ConfigFile {
    fn as_ref(&self) -> &std::ffi::OsStr {
        self.0.as_os_str()
    }
}

impl Drop for ConfigFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn config_file(name: &str, text: &str) -> ConfigFile {
    let path =
        std::env::temp_dir().join(format!("gatehouse-cli-{}-{name}.toml", std::process::id()));
    std::fs::write(&path, text).unwrap();
    ConfigFile(path)
}

fn http_get(addr: SocketAddr, path: &str) -> String {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
}

#[test]
fn unknown_config_key_is_a_startup_error_naming_key_and_line() {
    let path = config_file(
        "unknown",
        "[http]\nlisten = \"127.0.0.1:0\"\n[webrtc]\nudp_port = 1\n",
    );
    let output = Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .args(["serve", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("udp_port") && stderr.contains("line 4"),
        "{stderr}"
    );
}

#[test]
fn bad_value_is_a_startup_error_naming_the_key() {
    let path = config_file("badvalue", "[webrtc]\nconsent_timeout_secs = 0\n");
    let output = Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .args(["serve", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("webrtc.consent_timeout_secs"), "{stderr}");
}

#[test]
fn serves_with_json_logs_and_exits_cleanly_on_sigterm() {
    let path = config_file(
        "serve",
        "[http]\nlisten = \"127.0.0.1:0\"\n[webrtc]\nudp_listen = \"127.0.0.1:0\"\n",
    );
    let mut child = Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .args(["serve", "--log-json", "--config"])
        .arg(&path)
        .env_remove("RUST_LOG")
        .env_remove("AUTH_TOKEN")
        .env_remove("ROOM_TOKENS")
        .env_remove("JWT_SECRET")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let gatehouse = Gatehouse(child);
    let (lines_tx, lines) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut open_warning = false;
    let http_addr: SocketAddr = loop {
        let line = lines
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .expect("no 'HTTP signaling listening' log line within 10 s");
        open_warning |= line.contains("\"level\":\"WARN\"") && line.contains("access is OPEN");
        let json: serde_json::Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("log line is not JSON ({e}): {line}"));
        if let Some(addr) = json["fields"]["http_addr"].as_str() {
            break addr.parse().unwrap();
        }
    };
    assert!(open_warning, "no loud warning that access is open");
    assert!(http_get(http_addr, "/healthz").ends_with("ok\n"));
    assert!(http_get(http_addr, "/play.html").contains("<video"));

    let pid = gatehouse.0.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let mut gatehouse = gatehouse;
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = gatehouse.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "still running 10 s after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "exit status after SIGTERM: {status}");
    let rest: Vec<String> = lines.try_iter().collect();
    assert!(
        rest.iter().any(|l| l.contains("gateway stopped")),
        "{rest:?}"
    );
}
