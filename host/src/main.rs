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
    /// Policy module tools.
    Policy {
        #[command(subcommand)]
        command: PolicyCommand,
    },
}

#[derive(Subcommand)]
enum PolicyCommand {
    /// Compile a module, report the worlds it implements and whether it instantiates with its
    /// configuration (the `[policies.config.<file stem>]` table of --config). Exit 1 on failure.
    Check {
        /// The component (`.wasm`) to check.
        file: PathBuf,
        /// A gateway configuration supplying the module's config table and limits.
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve { config, log_json } => serve(config, log_json),
        Command::Policy {
            command: PolicyCommand::Check { file, config },
        } => policy_check(&file, config),
    }
}

fn load_config(path: Option<PathBuf>) -> Result<Config, ExitCode> {
    let mut config = match path {
        Some(path) => Config::from_file(&path).map_err(|e| {
            eprintln!("gatehouse: {e}");
            ExitCode::from(2)
        })?,
        None => Config::default(),
    };
    config
        .apply_go_live_env(|name| std::env::var(name).ok())
        .map_err(|e| {
            eprintln!("gatehouse: {e}");
            ExitCode::from(2)
        })?;
    Ok(config)
}

fn policy_check(file: &std::path::Path, config: Option<PathBuf>) -> ExitCode {
    let config = match load_config(config) {
        Ok(config) => config,
        Err(code) => return code,
    };
    match gatehouse::policy::check::check_file(file, &config.policies) {
        Ok(report) => {
            println!(
                "module:  {} ({} bytes, sha256 {})",
                report.module, report.bytes, report.sha256
            );
            println!("worlds:  {}", report.worlds.join(", "));
            match report.serves.is_empty() {
                true => println!("serves:  no hook of this configuration"),
                false => println!("serves:  {}", report.serves.join(", ")),
            }
            println!("ok: compiles and instantiates with its configuration");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("gatehouse: {e}");
            ExitCode::FAILURE
        }
    }
}

fn serve(path: Option<PathBuf>, log_json: bool) -> ExitCode {
    let mut config = match load_config(path) {
        Ok(config) => config,
        Err(code) => return code,
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
