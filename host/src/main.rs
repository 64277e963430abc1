//! The `gatehouse` command.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use gatehouse::Config;
use gatehouse::config::LogFormat;

#[derive(Parser)]
#[command(
    name = "gatehouse",
    version,
    about = "WebAssembly-extensible WebRTC edge gateway"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway (with no --config: the embedded default, HTTP and UDP on port 7777).
    Serve {
        /// A TOML configuration file; every key is optional.
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// Log JSON lines instead of human-readable text.
        #[arg(long)]
        log_json: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve { config, log_json } => serve(config, log_json),
    }
}

fn serve(path: Option<PathBuf>, log_json: bool) -> ExitCode {
    let mut config = match path {
        Some(path) => match Config::from_file(&path) {
            Ok(config) => config,
            Err(e) => {
                eprintln!("gatehouse: {e}");
                return ExitCode::from(2);
            }
        },
        None => Config::default(),
    };
    if log_json {
        config.log.format = LogFormat::Json;
    }
    gatehouse::ops::logging::init(&config.log);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("gatehouse-http")
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("gatehouse: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(gatehouse::server::run_until_signal(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("gatehouse: {e}");
            ExitCode::FAILURE
        }
    }
}
