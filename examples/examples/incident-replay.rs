//! The incident replay: the seed incident (or another scenario) on the embedded simulated
//! cluster, once as Kubernetes alone handles it and once guarded by deployguard.
//!
//! ```text
//! cargo run --example incident-replay -- [--scenario NAME] [--json] [--svg FILE] [--png FILE]
//! ```
//!
//! Simulated time runs on tokio's paused clock: fifteen minutes of incident replay in seconds.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use deployguard_examples::picture::{draw_png, draw_svg};
use deployguard_examples::replay::{render, replay};
use deployguard_testkit::cluster::scenarios;

/// Replays an incident on the embedded simulated Kubernetes cluster, once as Kubernetes alone
/// handles it and once guarded by deployguard, and compares them.
#[derive(Debug, Parser)]
#[command(
    name = "incident-replay",
    after_help = "Simulated time runs on tokio's paused clock: the replay takes seconds. \
        Run with --list-scenarios to see the scenarios."
)]
struct Args {
    /// The scenario to replay (a rolling one; see --list-scenarios).
    #[arg(long, default_value = "seed-rolling-failure")]
    scenario: String,
    /// Simulated minutes to replay after the faulty version rolls out.
    #[arg(long, default_value_t = 15, value_parser = clap::value_parser!(u64).range(1..=240))]
    minutes: u64,
    /// Print the guarded run's journal as JSON instead of the table.
    #[arg(long)]
    json: bool,
    /// Also draw the runs side by side as an SVG picture into FILE.
    #[arg(long, value_name = "FILE")]
    svg: Option<PathBuf>,
    /// Also draw the runs side by side as a PNG picture into FILE.
    #[arg(long, value_name = "FILE")]
    png: Option<PathBuf>,
    /// List the scenarios and what each holds, then exit.
    #[arg(long)]
    list_scenarios: bool,
}

#[tokio::main(flavor = "current_thread", start_paused = true)]
async fn main() -> ExitCode {
    let args = Args::parse();
    if args.list_scenarios {
        for (name, what) in scenarios::list() {
            println!("{name:<22} {what}");
        }
        return ExitCode::SUCCESS;
    }
    let horizon = Duration::from_secs(args.minutes * 60);
    eprintln!(
        "replaying {} for {} simulated minutes, unguarded then guarded ...",
        args.scenario, args.minutes
    );
    let (unguarded, guarded) = match (
        replay(&args.scenario, false, horizon).await,
        replay(&args.scenario, true, horizon).await,
    ) {
        (Ok(u), Ok(g)) => (u, g),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("incident-replay: {e}");
            return ExitCode::from(2);
        }
    };
    if args.json {
        match serde_json::to_string_pretty(&guarded.journal) {
            Ok(text) => println!("{text}"),
            Err(e) => {
                eprintln!("incident-replay: {e}");
                return ExitCode::FAILURE;
            }
        }
    } else {
        print!("{}", render(&args.scenario, horizon, &unguarded, &guarded));
    }
    for (path, draw) in [
        (&args.svg, draw_svg as fn(&_, &_, &_, &_) -> _),
        (&args.png, draw_png),
    ] {
        if let Some(path) = path {
            if let Err(e) = draw(path, &args.scenario, &unguarded, &guarded) {
                eprintln!("incident-replay: {e}");
                return ExitCode::FAILURE;
            }
            eprintln!("picture written to {}", path.display());
        }
    }
    ExitCode::SUCCESS
}
