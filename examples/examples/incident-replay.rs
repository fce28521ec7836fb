//! The incident replay: the seed incident (or another scenario) on the embedded simulated
//! cluster, once as Kubernetes alone handles it and once guarded by deployguard.
//!
//! ```text
//! cargo run --example incident-replay [-- --scenario NAME] [--json]
//! ```
//!
//! Simulated time runs on tokio's paused clock: fifteen minutes of incident replay in seconds.

use std::process::ExitCode;
use std::time::Duration;

use deployguard_examples::replay::{render, replay};

const HORIZON: Duration = Duration::from_secs(15 * 60);

#[tokio::main(flavor = "current_thread", start_paused = true)]
async fn main() -> ExitCode {
    let mut scenario = "seed-rolling-failure".to_owned();
    let mut json = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--scenario" => match args.next() {
                Some(name) => scenario = name,
                None => return usage("--scenario needs a name"),
            },
            "--json" => json = true,
            other => return usage(&format!("unknown argument {other:?}")),
        }
    }
    let (unguarded, guarded) = match (
        replay(&scenario, false, HORIZON).await,
        replay(&scenario, true, HORIZON).await,
    ) {
        (Ok(u), Ok(g)) => (u, g),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("incident-replay: {e}");
            return ExitCode::from(2);
        }
    };
    if json {
        match serde_json::to_string_pretty(&guarded.journal) {
            Ok(text) => println!("{text}"),
            Err(e) => {
                eprintln!("incident-replay: {e}");
                return ExitCode::FAILURE;
            }
        }
    } else {
        print!("{}", render(&scenario, HORIZON, &unguarded, &guarded));
    }
    ExitCode::SUCCESS
}

fn usage(problem: &str) -> ExitCode {
    eprintln!("incident-replay: {problem}\nusage: incident-replay [--scenario NAME] [--json]");
    ExitCode::from(2)
}
