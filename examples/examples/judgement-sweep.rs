//! Judgement over parameters the named scenarios fix: how long the new version takes to start,
//! how much traffic the service has, how many more errors the new version makes, and how long
//! after it becomes ready it starts making them. Each row is one variation, replayed guarded
//! (the incident replay's own guard) on the simulated cluster with several traffic seeds, and
//! what the guard did against the truth: a version is at fault when it fails more than the
//! replay's checks allow (over 1% errors, and over a point above the old version's 0.2%).
//!
//! ```text
//! cargo run --release --example judgement-sweep -- --seeds 5
//! ```

use std::time::Duration;

use clap::Parser;
use deployguard_examples::replay::{Action, replay_variation};
use deployguard_testkit::cluster::scenarios::Variation;

#[derive(Parser)]
#[command(
    about = "Sweeps the guard's judgement over start time, traffic, error increase and failure onset"
)]
struct Args {
    /// Traffic seeds per variation.
    #[arg(long, default_value_t = 5)]
    seeds: u64,
    /// Only the classes named (start, traffic, errors, onset); all by default.
    #[arg(long)]
    class: Vec<String>,
}

/// The bad version's error factor where a class varies something else: 15% errors.
const BAD: f64 = 75.0;

fn variations(class: &str) -> Vec<(String, Variation)> {
    let base = Variation::healthy();
    let secs = Duration::from_secs;
    let mut out = Vec::new();
    match class {
        "start" => {
            for start in [2, 30, 90, 180, 300] {
                for factor in [1.0, BAD] {
                    let v = Variation {
                        start: secs(start),
                        error_factor: factor,
                        ..base
                    };
                    out.push((format!("start {start} s"), v));
                }
            }
        }
        "traffic" => {
            for rps in [1.0, 5.0, 20.0, 78.0, 200.0] {
                for factor in [1.0, BAD] {
                    let v = Variation {
                        requests_per_second: rps,
                        error_factor: factor,
                        ..base
                    };
                    out.push((format!("{rps} rps"), v));
                }
            }
        }
        "errors" => {
            for factor in [2.0, 5.0, 10.0, 20.0, 50.0] {
                let v = Variation {
                    error_factor: factor,
                    ..base
                };
                out.push((format!("errors x{factor}"), v));
            }
        }
        "onset" => {
            for minutes in [0, 1, 3, 5, 10] {
                let v = Variation {
                    error_factor: BAD,
                    onset: secs(minutes * 60),
                    ..base
                };
                out.push((format!("onset {minutes} min"), v));
            }
        }
        _ => {}
    }
    out
}

#[tokio::main(flavor = "current_thread", start_paused = true)]
async fn main() -> deployguard_core::Result<()> {
    let args = Args::parse();
    let classes: Vec<String> = if args.class.is_empty() {
        ["start", "traffic", "errors", "onset"]
            .map(str::to_owned)
            .to_vec()
    } else {
        args.class.clone()
    };
    // Long enough for the slowest start's rollout (five-minute pods, in waves) and its bake.
    let horizon = Duration::from_secs(30 * 60);
    println!(
        "deployguard judgement sweep: {} seed(s) per row, {} min of simulated time each\n",
        args.seeds,
        horizon.as_secs() / 60
    );
    println!(
        "| class | variation | truth | promoted | rolled back | paused | other | right | acted after (median) |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    let mut wrong = 0;
    for class in &classes {
        for (label, variation) in variations(class) {
            let at_fault = variation.at_fault();
            let (mut promoted, mut rolled_back, mut paused, mut other) = (0, 0, 0, 0);
            let mut acted: Vec<u64> = Vec::new();
            for seed in 1..=args.seeds {
                let run = replay_variation(&variation, true, horizon, seed).await?;
                match run.action {
                    Action::Rollout => promoted += 1,
                    Action::RolledBack => rolled_back += 1,
                    Action::Paused => paused += 1,
                    _ => other += 1,
                }
                if let Some(at) = run.detected {
                    acted.push(at.as_secs());
                }
            }
            acted.sort_unstable();
            let right = if at_fault { rolled_back } else { promoted };
            wrong += args.seeds - right;
            let truth = if at_fault { "at fault" } else { "healthy" };
            let median = acted
                .get(acted.len() / 2)
                .map_or("-".to_owned(), |s| format!("{s} s"));
            println!(
                "| {class} | {label}{} | {truth} | {promoted} | {rolled_back} | {paused} | {other} | {right}/{} | {median} |",
                if variation.error_factor != 1.0 && class != "errors" {
                    format!(", errors x{}", variation.error_factor)
                } else {
                    String::new()
                },
                args.seeds
            );
        }
    }
    println!("\n{wrong} run(s) against the truth");
    println!(
        "a failure that begins after the bake (5 min from the rollout's completion by default, \
         `GuardBuilder::bake`) is promoted: the guard has stopped watching by then"
    );
    Ok(())
}
