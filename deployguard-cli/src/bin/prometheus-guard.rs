//! Guards a rollout of a Deployment in the current kubeconfig, judging the new version against
//! the previous one on the metrics Prometheus already keeps: the error ratio per version, judged
//! by the sequential judge (e-values on the counts since the new version first served, valid
//! however often it looks, the `--max-error-rate` range as their floor).
//!
//! ```text
//! cargo run -p deployguard-cli --bin prometheus-guard -- app-deployment --service myapp-service \
//!     --prometheus http://127.0.0.1:9090 [--token-env PROM_TOKEN] [--interval 30s]
//! ```
//!
//! Try it against `fake-cluster --scenario bad-version --time-scale 10` with a Prometheus that
//! scrapes the fake cluster's `/metrics/traffic`.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use deployguard_cli::emergency;
use deployguard_core::analysis::{AnalysisCheck, Judge, Threshold};
use deployguard_core::engine::{Guard, GuardOutcome, Strategy};
use deployguard_k8s::KubeDeployment;
use deployguard_prometheus::{PrometheusConfig, PrometheusProbe, presets};

/// Guards a Deployment's rollout on Prometheus metrics: rolls a version that fails more than
/// the previous one back, and says why.
#[derive(Debug, Parser)]
#[command(name = "prometheus-guard")]
struct Args {
    /// The Deployment to guard.
    deployment: String,
    /// Its namespace.
    #[arg(long, short = 'n', default_value = "default")]
    namespace: String,
    /// The Service whose requests are counted (the `service` label of http_requests_total).
    #[arg(long)]
    service: String,
    /// Prometheus' base URL.
    #[arg(long, value_name = "URL")]
    prometheus: String,
    /// The environment variable that holds a bearer token for Prometheus (never on the command
    /// line, never printed).
    #[arg(long, value_name = "VAR")]
    token_env: Option<String>,
    /// Time between measurements (and the window each one covers).
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    interval: Duration,
    /// How long the completed rollout is still judged before it is promoted (0s: no bake).
    #[arg(long, default_value = "5m", value_parser = humantime::parse_duration)]
    bake: Duration,
    /// The error ratio the new version may not exceed on its own.
    #[arg(long, default_value_t = 0.01)]
    max_error_rate: f64,
    /// Observe, judge and plan; write nothing.
    #[arg(long)]
    dry_run: bool,
    /// Serve the guard's own metrics (decisions, outcomes, time to detect) for Prometheus at
    /// http://ADDR/metrics (`127.0.0.1:9464`).
    #[arg(long, value_name = "ADDR")]
    metrics_addr: Option<std::net::SocketAddr>,
    /// POST each abort, pause and outcome as JSON with a Slack-compatible `text` to this URL.
    #[arg(long, value_name = "URL")]
    webhook: Option<String>,
    /// Write each abort, pause and outcome as a Kubernetes Event on the Deployment
    /// (`kubectl describe deployment` shows them; needs `create` on events).
    #[arg(long)]
    events: bool,
}

/// Serves `registry` at `/metrics` on `addr` (every path answers it: a scrape target only).
async fn serve_metrics(
    addr: std::net::SocketAddr,
    registry: Arc<deployguard_prometheus::prometheus_client::registry::Registry>,
) -> deployguard_core::Result<std::net::SocketAddr> {
    deployguard_cli::serve::serve(
        addr,
        Arc::new(move |_path: &str| deployguard_cli::serve::metrics(&registry)),
    )
    .await
    .map_err(|e| {
        deployguard_core::Error::invalid_input(
            "--metrics-addr",
            format!("cannot listen on {addr}: {e}"),
        )
    })
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args).await {
        Ok(code) => code,
        Err(err) => {
            // Kubeconfig errors come redacted from `emergency::client`; no other message quotes
            // a secret (the token is never in one).
            eprintln!("prometheus-guard: {err}");
            ExitCode::from(2)
        }
    }
}

async fn run(args: &Args) -> deployguard_core::Result<ExitCode> {
    let mut config = PrometheusConfig::new(&args.prometheus)?;
    if let Some(var) = &args.token_env {
        let token = std::env::var(var).map_err(|_| {
            deployguard_core::Error::invalid_input("--token-env", format!("{var} is not set"))
        })?;
        config = config.bearer_token(token);
    }
    let probe = PrometheusProbe::new("prometheus", config)?.with(presets::error_ratio_by_version(
        &args.namespace,
        &args.service,
        args.interval,
    ));
    let check = AnalysisCheck::builder("error-rate", &probe, "error_rate")
        .judge(Judge::sequential())
        .success(Threshold::at_most(args.max_error_rate))
        .interval(args.interval)
        .initial_delay(args.interval)
        .build()?;
    let (client, server) = emergency::client().await?;
    eprintln!(
        "guarding {}/{} on {server}, measuring every {} with Prometheus at {} ...",
        args.namespace,
        args.deployment,
        humantime::format_duration(args.interval),
        args.prometheus
    );
    let mut builder = Guard::builder(
        Strategy::Rolling,
        Arc::new(KubeDeployment::try_new(
            client.clone(),
            &args.namespace,
            &args.deployment,
        )?),
    )
    .probe(Arc::new(probe))
    .check(check)
    .journal(Arc::new(deployguard_cli::guard::Words))
    .dry_run(args.dry_run)
    .bake(args.bake);
    if let Some(addr) = args.metrics_addr {
        let mut registry = deployguard_prometheus::prometheus_client::registry::Registry::default();
        let metrics = deployguard_prometheus::GuardMetrics::register(&mut registry);
        let bound = serve_metrics(addr, Arc::new(registry)).await?;
        eprintln!("serving the guard's metrics at http://{bound}/metrics");
        builder = builder.journal(Arc::new(metrics));
    }
    if let Some(url) = &args.webhook {
        let notifier = deployguard_prometheus::WebhookNotifier::new(
            url,
            deployguard_core::engine::RetryPolicy::default(),
            Duration::from_secs(120),
        )?;
        builder = builder.journal(Arc::new(notifier));
    }
    if args.events && !args.dry_run {
        let events = deployguard_k8s::KubeEvents::new(client, &args.namespace, &args.deployment)?;
        builder = builder.journal(Arc::new(events));
    }
    let guard = builder.build()?;
    let report = guard.run().await;
    Ok(match report.outcome {
        GuardOutcome::Promoted { .. } => ExitCode::SUCCESS,
        GuardOutcome::RolledBack { .. } => ExitCode::from(3),
        _ => ExitCode::from(4),
    })
}
