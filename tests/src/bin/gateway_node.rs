//! A gateway in a process of its own, for tests that need two servers (a cascade between two
//! gatehouse processes). It serves `Config::for_tests()` (ports chosen by the OS), prints one
//! line `{"http":"http://…"}` once serving, and stops when stdin closes (so it never outlives
//! the test that started it) or on SIGTERM. go-live's `RECORD_ENABLED` / `RECORD_DIR` apply,
//! as they do to `gatehouse serve`.

use std::process::ExitCode;

use tokio::io::AsyncReadExt;

#[tokio::main]
async fn main() -> ExitCode {
    // Logs go to stderr: stdout carries the one line the test reads.
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,gatehouse::policy=error"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false)
        .with_writer(std::io::stderr)
        .init();
    let mut config = gatehouse::Config::for_tests();
    config.record.apply_env(|name| std::env::var(name).ok());
    let gateway = match gatehouse::Gateway::start(config).await {
        Ok(gateway) => gateway,
        Err(e) => {
            eprintln!("gateway_node: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("{}", serde_json::json!({ "http": gateway.base_url() }));
    let mut stdin = tokio::io::stdin();
    let mut sink = [0u8; 256];
    let mut terminate =
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(signal) => signal,
            Err(e) => {
                eprintln!("gateway_node: {e}");
                return ExitCode::FAILURE;
            }
        };
    loop {
        tokio::select! {
            read = stdin.read(&mut sink) => if matches!(read, Ok(0) | Err(_)) { break },
            _ = terminate.recv() => break,
        }
    }
    gateway.shutdown().await;
    ExitCode::SUCCESS
}
