//! The incident replay: every scenario with a rollout (or one) on the embedded simulated cluster, once
//! as Kubernetes alone handles it and once guarded by deployguard, with a confusion table of
//! what the guard concluded against each scenario's ground truth.
//!
//! ```text
//! cargo run --example incident-replay -- [--scenario NAME] [--seed N] [--json] [--svg FILE] [--png FILE]
//! ```
//!
//! Simulated time runs on tokio's paused clock: fifteen minutes of incident replay in seconds.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use deployguard_examples::picture::{draw_png, draw_svg};
use deployguard_examples::replay::{render, render_table, rolling_scenarios, row};
use deployguard_testkit::cluster::scenarios;

/// Replays scenarios on the embedded simulated Kubernetes cluster, each once as Kubernetes
/// alone handles it and once guarded by deployguard, and compares them with each scenario's
/// ground truth.
#[derive(Debug, Parser)]
#[command(
    name = "incident-replay",
    after_help = "Simulated time runs on tokio's paused clock: a scenario takes about a second. \
        Run with --list-scenarios to see the scenarios."
)]
struct Args {
    /// Replay only this scenario, with its guarded timeline (default: every scenario with a rollout,
    /// as a table).
    #[arg(long)]
    scenario: Option<String>,
    /// The seed of the simulated traffic's noise.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Simulated minutes to replay after the new version starts rolling out.
    #[arg(long, default_value_t = 15, value_parser = clap::value_parser!(u64).range(1..=240))]
    minutes: u64,
    /// Print the table (and each guarded journal) as JSON.
    #[arg(long)]
    json: bool,
    /// Also draw the scenario's runs side by side as an SVG picture into FILE (with --scenario).
    #[arg(long, value_name = "FILE", requires = "scenario")]
    svg: Option<PathBuf>,
    /// Also draw the scenario's runs side by side as a PNG picture into FILE (with --scenario).
    #[arg(long, value_name = "FILE", requires = "scenario")]
    png: Option<PathBuf>,
    /// List the scenarios, their ground truth and what each holds, then exit.
    #[arg(long)]
    list_scenarios: bool,
}

#[tokio::main(flavor = "current_thread", start_paused = true)]
async fn main() -> ExitCode {
    let args = Args::parse();
    // RUST_LOG=deployguard=debug shows the guards' spans and journal on stderr, beside the
    // table on stdout (colour only on a terminal).
    use std::io::IsTerminal as _;
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("off")),
        )
        .init();
    if args.list_scenarios {
        let catalogue = scenarios::catalogue();
        let width = catalogue.iter().map(|s| s.name.len()).max().unwrap_or(0);
        for s in catalogue {
            let truth = s.truth.map_or_else(|| "-".to_owned(), |t| t.to_string());
            println!("{:<width$} {truth:<18} {}", s.name, s.description);
        }
        return ExitCode::SUCCESS;
    }
    let horizon = Duration::from_secs(args.minutes * 60);
    let names: Vec<String> = match &args.scenario {
        Some(name) => vec![name.clone()],
        None => rolling_scenarios()
            .iter()
            .map(|s| s.name.to_owned())
            .collect(),
    };
    let mut rows = Vec::new();
    for name in &names {
        eprintln!(
            "replaying {name} for {} simulated minutes (seed {}), unguarded then guarded ...",
            args.minutes, args.seed
        );
        match row(name, horizon, args.seed).await {
            Ok(r) => rows.push(r),
            Err(e) => {
                eprintln!("incident-replay: {e}");
                return ExitCode::from(2);
            }
        }
    }
    if args.json {
        match serde_json::to_string_pretty(&rows) {
            Ok(text) => println!("{text}"),
            Err(e) => {
                eprintln!("incident-replay: {e}");
                return ExitCode::FAILURE;
            }
        }
    } else if let [one] = rows.as_slice() {
        print!(
            "{}",
            render(&one.scenario, horizon, &one.unguarded, &one.guarded)
        );
    } else {
        print!("{}", render_table(&rows, horizon));
    }
    if let [one] = rows.as_slice() {
        for (path, draw) in [
            (&args.svg, draw_svg as fn(&_, &_, &_, &_) -> _),
            (&args.png, draw_png),
        ] {
            if let Some(path) = path {
                if let Err(e) = draw(path, &one.scenario, &one.unguarded, &one.guarded) {
                    eprintln!("incident-replay: {e}");
                    return ExitCode::FAILURE;
                }
                eprintln!("picture written to {}", path.display());
            }
        }
    }
    ExitCode::SUCCESS
}
