//! `guard`: guards one rollout of the current kubeconfig's cluster from a policy file.
//!
//! ```text
//! cargo run -p deployguard-cli --bin guard -- --spec guard.yaml [--dry-run]
//! ```
//!
//! Exit codes: 0 promoted, 2 a bad spec (the message names the field) or kubeconfig, 3 rolled
//! back, 4 paused or failed (a person must look).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use deployguard_cli::emergency::ClientOptions;
use deployguard_cli::guard::{self, GuardExit};

/// Guards a Deployment's rollout by a policy file: judges the new version by the spec's checks
/// and its pods' health, rolls it back when it fails, and says why.
#[derive(Debug, Parser)]
#[command(
    name = "guard",
    after_help = "The spec's format: deployguard-core/schema/guard-spec.schema.json (a JSON Schema \
        editors check against). Exit codes: 0 promoted, 2 bad spec or kubeconfig, 3 rolled back, \
        4 paused or failed."
)]
struct Args {
    /// The guard's spec, YAML or JSON (`-`: standard input).
    #[arg(long, value_name = "FILE")]
    spec: PathBuf,
    /// Observe, judge and plan; write nothing (as `dryRun: true` in the spec).
    #[arg(long)]
    dry_run: bool,
    /// Only read and check the spec, then exit.
    #[arg(long)]
    check: bool,
    /// The kubeconfig file (default: KUBECONFIG, else ~/.kube/config).
    #[arg(long, value_name = "FILE")]
    kubeconfig: Option<PathBuf>,
    /// Send the kubeconfig's credentials to a plain http:// server (a local test cluster).
    #[arg(long)]
    allow_plain_http: bool,
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> ExitCode {
    let args = Args::parse();
    let spec = match guard::read_spec(&args.spec) {
        Ok(spec) => spec,
        Err(err) => {
            eprintln!("guard: {}", err.message());
            return ExitCode::from(GuardExit::Usage as u8);
        }
    };
    if args.check {
        println!(
            "{}: a valid spec guarding {}/{}",
            args.spec.display(),
            spec.namespace(),
            spec.target.deployment
        );
        return ExitCode::SUCCESS;
    }
    let client = ClientOptions {
        kubeconfig: args.kubeconfig.clone(),
        allow_plain_http: args.allow_plain_http,
        ..ClientOptions::default()
    };
    match guard::run(&spec, &client, args.dry_run).await {
        Ok((exit, outcome)) => {
            println!("{outcome}");
            ExitCode::from(exit as u8)
        }
        Err(err) => {
            eprintln!("guard: {err}");
            ExitCode::from(GuardExit::Usage as u8)
        }
    }
}
