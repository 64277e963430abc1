//! `gatehouse-bench`: the fan-out benchmark of Gatehouse.
//!
//! `gatehouse-bench run` measures a floor baseline, starts the gateway pinned to one CPU, pins
//! itself to the other, publishes a synthetic 2 Mb/s VP8+Opus stream over WHIP and steps the
//! number of WHEP subscribers, writing `report.md` and `report.json`.

mod client;
mod floor;
mod gateway;
mod generator;
mod netio;
mod procstat;
mod report;
mod reports;
mod runner;
mod signaling;
mod stream;
mod subscriber;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Parser, Subcommand, ValueEnum};

use client::SrtpChoice;

#[derive(Parser)]
#[command(version, about = "Fan-out benchmark of the Gatehouse gateway")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum Srtp {
    /// AES_CM_128_HMAC_SHA1_80, what browsers negotiate.
    Cm,
    /// AEAD_AES_128_GCM.
    Gcm,
}

impl From<Srtp> for SrtpChoice {
    fn from(s: Srtp) -> Self {
        match s {
            Srtp::Cm => SrtpChoice::AesCmHmacSha1_80,
            Srtp::Gcm => SrtpChoice::AeadAes128Gcm,
        }
    }
}

#[derive(Subcommand)]
enum Command {
    /// The whole benchmark: floor, steps, report.
    Run {
        /// The gateway binary (default: `gatehouse` next to this binary).
        #[arg(long)]
        gateway: Option<PathBuf>,
        /// Subscriber counts to step through (stops at saturation).
        #[arg(long, value_delimiter = ',', default_value = "10,50,100,200,400,800")]
        steps: Vec<usize>,
        /// Measurement window per step.
        #[arg(long, default_value_t = 10)]
        step_secs: u64,
        /// Late joiners per step, for time to first frame.
        #[arg(long, default_value_t = 20)]
        late_joiners: usize,
        /// Time between late joiners: above the gateway's 500 ms keyframe-request interval, so
        /// each joiner's own PLI is measured (closer joiners share the publisher's keyframes).
        #[arg(long, default_value_t = 600)]
        joiner_spacing_ms: u64,
        #[arg(long, default_value_t = 3)]
        floor_secs: u64,
        #[arg(long, value_enum, default_value_t = Srtp::Cm)]
        srtp: Srtp,
        /// Also measure time to first frame with the gateway's keyframe cache on.
        #[arg(long)]
        keyframe_cache: bool,
        #[arg(long, default_value = "target/bench")]
        out: PathBuf,
    },
    /// Load an already running gateway (no pinning, no CPU figures): one publisher, N
    /// subscribers, one window; prints the step as JSON.
    Load {
        /// The gateway's base URL, e.g. http://127.0.0.1:7777.
        #[arg(long)]
        url: String,
        #[arg(long, default_value_t = 10)]
        subscribers: usize,
        #[arg(long, default_value_t = 5)]
        secs: u64,
        #[arg(long, default_value_t = 0)]
        late_joiners: usize,
        #[arg(long, default_value_t = 600)]
        joiner_spacing_ms: u64,
        #[arg(long, value_enum, default_value_t = Srtp::Cm)]
        srtp: Srtp,
    },
    /// LEB quality-report burst: reportquality at --rate per second while pulls keep opening.
    Reports {
        #[arg(long)]
        gateway: Option<PathBuf>,
        /// LEB sessions whose svrsigs the reports carry.
        #[arg(long, default_value_t = 2000)]
        sessions: usize,
        #[arg(long, default_value_t = 10_000)]
        rate: u64,
        #[arg(long, default_value_t = 5)]
        secs: u64,
        /// Requests in flight at most.
        #[arg(long, default_value_t = 256)]
        concurrency: usize,
        #[arg(long, default_value = "target/bench")]
        out: PathBuf,
    },
    /// Only the floor baseline.
    Floor {
        #[arg(long, default_value_t = 3)]
        secs: u64,
        #[arg(long, value_enum, default_value_t = Srtp::Cm)]
        srtp: Srtp,
    },
}

fn sibling_gateway() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe().context("locating this binary")?;
    let dir = exe.parent().context("binary directory")?;
    Ok(dir.join("gatehouse"))
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Run {
            gateway,
            steps,
            step_secs,
            late_joiners,
            joiner_spacing_ms,
            floor_secs,
            srtp,
            keyframe_cache,
            out,
        } => {
            let gateway = match gateway {
                Some(g) => g,
                None => sibling_gateway()?,
            };
            anyhow::ensure!(
                gateway.exists(),
                "gateway binary {} not found (build it with `cargo build --release -p gatehouse`)",
                gateway.display()
            );
            let options = runner::RunOptions {
                gateway,
                steps,
                plan: runner::StepPlan {
                    window: Duration::from_secs(step_secs),
                    late_joiners,
                    joiner_spacing: Duration::from_millis(joiner_spacing_ms),
                },
                floor_secs,
                srtp: srtp.into(),
                gateway_cpu: 0,
                generator_cpu: 1,
                out_dir: out.clone(),
                compare_keyframe_cache: keyframe_cache,
            };
            let result = runner::run(&options)?;
            let md = report::markdown(&result);
            std::fs::write(out.join("report.md"), &md).context("writing report.md")?;
            std::fs::write(
                out.join("report.json"),
                serde_json::to_string_pretty(&result)?,
            )
            .context("writing report.json")?;
            println!("{md}");
            eprintln!("report: {}", out.join("report.md").display());
        }
        Command::Load {
            url,
            subscribers,
            secs,
            late_joiners,
            joiner_spacing_ms,
            srtp,
        } => {
            let plan = runner::StepPlan {
                window: Duration::from_secs(secs),
                late_joiners,
                joiner_spacing: Duration::from_millis(joiner_spacing_ms),
            };
            let mut generator = runner::start_generator(srtp.into(), url.trim_end_matches('/'))?;
            let step = runner::measure_step(&plan, None, &mut generator, subscribers);
            generator.shutdown();
            println!("{}", serde_json::to_string(&step?)?);
        }
        Command::Reports {
            gateway,
            sessions,
            rate,
            secs,
            concurrency,
            out,
        } => {
            let gateway = match gateway {
                Some(g) => g,
                None => sibling_gateway()?,
            };
            let burst = reports::run(&reports::ReportOptions {
                gateway,
                sessions,
                rate,
                secs,
                concurrency,
                out_dir: out.clone(),
            })?;
            let json = serde_json::to_string_pretty(&burst)?;
            std::fs::write(out.join("reports.json"), &json).context("writing reports.json")?;
            println!("{json}");
        }
        Command::Floor { secs, srtp } => {
            let srtp: SrtpChoice = srtp.into();
            for receivers in [floor::Receivers::LikeSubscribers, floor::Receivers::Plain] {
                let floor = floor::run(
                    srtp.srtp_profile(),
                    receivers,
                    Duration::from_secs(secs),
                    0,
                    1,
                )?;
                println!("{}", serde_json::to_string_pretty(&floor)?);
            }
        }
    }
    Ok(())
}
