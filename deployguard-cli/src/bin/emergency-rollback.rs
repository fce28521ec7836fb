//! `emergency-rollback`: the seed runbook's emergency rollback script, done right.
//!
//! ```text
//! cargo run -p deployguard-cli --bin emergency-rollback -- DEPLOYMENT [--namespace NS] \
//!     [--strategy auto|manual|blue-green] [--max-rollback-time 600s] [--dry-run] [--yes] [--json]
//! ```
//!
//! Uses the current kubeconfig. Exit codes: 0 recovered or nothing to do, 1 failed, 2 usage,
//! 3 refused (migration gate, or no confirmation).

use std::io::IsTerminal;
use std::process::ExitCode;

use deployguard_cli::emergency::{self, Exit, Terminal};

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> ExitCode {
    let mut options = match emergency::parse(std::env::args().skip(1)) {
        Ok(options) => options,
        // --help and --version print and exit 0; mistakes print the usage and exit 2.
        Err(err) => err.exit(),
    };
    options.spinner = std::io::stderr().is_terminal();
    // Warnings and RUST_LOG-selected logs go to stderr, beside the progress.
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
    if options.alb_listener.is_some() || options.alb_rule.is_some() {
        // An ALB needs no Kubernetes: the AWS configuration alone.
        let sdk = emergency::aws_config().await;
        let exit = emergency::run_alb(&sdk, &options, &mut Terminal, &mut std::io::stdout()).await;
        return ExitCode::from(exit as u8);
    }
    let client = match emergency::client().await {
        Ok((client, server)) => {
            options.server = Some(server);
            client
        }
        Err(err) => {
            eprintln!("emergency-rollback: {err}");
            return ExitCode::from(Exit::Usage as u8);
        }
    };
    let exit = emergency::run(
        client,
        &options,
        &mut Terminal,
        &mut std::io::stdout(),
        Box::new(std::io::stderr()),
    )
    .await;
    ExitCode::from(exit as u8)
}
