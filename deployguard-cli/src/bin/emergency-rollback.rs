//! `emergency-rollback`: the seed runbook's emergency rollback script, done right.
//!
//! ```text
//! cargo run -p deployguard-cli --bin emergency-rollback -- DEPLOYMENT [--namespace NS] \
//!     [--strategy auto|manual|blue-green] [--max-rollback-time 600s] [--dry-run] [--yes] [--json]
//! ```
//!
//! Uses the current kubeconfig. Exit codes: 0 recovered or nothing to do, 1 failed, 2 usage,
//! 3 refused (migration gate, or no confirmation), 4 stopped (another writer changed the
//! deployment meanwhile).

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
    let terminal = std::io::stderr().is_terminal();
    options.spinner = terminal;
    // Warnings and RUST_LOG-selected logs go to stderr, beside the progress: coloured only on a
    // terminal, and never when NO_COLOR is set (https://no-color.org).
    let colour = terminal && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                // kube-rs logs each failed request at ERROR with neither server nor remedy;
                // the command says what failed, where, in its own words.
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,kube_client=off")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(colour)
        .with_target(false)
        .init();
    let mut out = std::io::stdout();
    if options.alb_listener.is_some() || options.alb_rule.is_some() {
        // An ALB needs no Kubernetes: the AWS configuration alone, in the ARN's region (the
        // ARN was checked when parsed, before any AWS call).
        let arn = options
            .alb_listener
            .as_deref()
            .or(options.alb_rule.as_deref());
        let sdk = emergency::aws_config(arn.and_then(emergency::arn_region)).await;
        let exit = emergency::run_alb(&sdk, &options, &mut Terminal, &mut out).await;
        return ExitCode::from(exit as u8);
    }
    let client_options = emergency::ClientOptions {
        kubeconfig: options.kubeconfig.clone(),
        allow_plain_http: options.allow_plain_http,
        ..emergency::ClientOptions::default()
    };
    let client = match emergency::client_with(&client_options).await {
        Ok((client, server)) => {
            options.server = Some(server);
            client
        }
        Err(err) => {
            eprintln!("emergency-rollback: {err}");
            let exit = emergency::error_report(&mut out, &options, Exit::Usage, &err.to_string());
            return ExitCode::from(exit as u8);
        }
    };
    let exit = emergency::run(
        client,
        &options,
        &mut Terminal,
        &mut out,
        Box::new(std::io::stderr()),
    )
    .await;
    ExitCode::from(exit as u8)
}
