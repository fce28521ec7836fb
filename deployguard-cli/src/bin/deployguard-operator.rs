//! `deployguard-operator`: guards every rollout a `RolloutGuard` resource names, in the current
//! kubeconfig's cluster or in-cluster (its ServiceAccount). Run several replicas: one leads.
//!
//! ```text
//! kubectl apply -f deploy/          # the CRD, RBAC and the operator's Deployment
//! cargo run -p deployguard-cli --bin deployguard-operator -- --lease-namespace default
//! ```

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use clap::Parser;
use deployguard_cli::emergency::{self, ClientOptions};
use deployguard_cli::operator::{self, OperatorOptions, OperatorState};

/// Guards every rollout a RolloutGuard resource (deployguard.dev/v1alpha1) names.
#[derive(Debug, Parser)]
#[command(name = "deployguard-operator")]
struct Args {
    /// Serve /metrics (the guards' metrics), /healthz and /readyz here.
    #[arg(long, default_value = "127.0.0.1:8080", value_name = "ADDR")]
    listen: std::net::SocketAddr,
    /// This replica's name in the leader lease (default: $POD_NAME, else the process id).
    #[arg(long)]
    identity: Option<String>,
    /// Where the leader lease lives (default: $POD_NAMESPACE, else deployguard-system).
    #[arg(long)]
    lease_namespace: Option<String>,
    /// How long leadership lasts without a renewal.
    #[arg(long, default_value = "15s", value_parser = humantime::parse_duration)]
    lease_ttl: Duration,
    /// Only RolloutGuards in this namespace (a shard).
    #[arg(long)]
    namespace: Option<String>,
    /// Only RolloutGuards with these labels (a shard), e.g. team=shop.
    #[arg(long)]
    selector: Option<String>,
    /// The kubeconfig file (default: KUBECONFIG, else ~/.kube/config, else in-cluster).
    #[arg(long, value_name = "FILE")]
    kubeconfig: Option<PathBuf>,
    /// Send the kubeconfig's credentials to a plain http:// server (a local test cluster).
    #[arg(long)]
    allow_plain_http: bool,
    /// Write the manifests (`kubectl apply -f DIR`) into DIR and exit.
    #[arg(long, value_name = "DIR")]
    write_manifests: Option<PathBuf>,
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,kube_client=off")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
    if let Some(dir) = &args.write_manifests {
        for (file, manifest) in operator::manifests() {
            let text = serde_json::to_string_pretty(&manifest).unwrap_or_default() + "\n";
            if let Err(err) =
                std::fs::create_dir_all(dir).and_then(|()| std::fs::write(dir.join(file), text))
            {
                eprintln!(
                    "deployguard-operator: cannot write {}: {err}",
                    dir.join(file).display()
                );
                return ExitCode::from(1);
            }
        }
        return ExitCode::SUCCESS;
    }
    let client_options = ClientOptions {
        kubeconfig: args.kubeconfig.clone(),
        allow_plain_http: args.allow_plain_http,
        ..ClientOptions::default()
    };
    let (client, server) = match emergency::client_with(&client_options).await {
        Ok(connection) => connection,
        Err(err) => {
            eprintln!("deployguard-operator: {err}");
            return ExitCode::from(2);
        }
    };
    let mut options = OperatorOptions {
        lease_ttl: args.lease_ttl,
        namespace: args.namespace.clone(),
        selector: args.selector.clone(),
        ..OperatorOptions::default()
    };
    if let Some(identity) = args
        .identity
        .clone()
        .or_else(|| std::env::var("POD_NAME").ok())
    {
        options.identity = identity;
    }
    if let Some(namespace) = args
        .lease_namespace
        .clone()
        .or_else(|| std::env::var("POD_NAMESPACE").ok())
    {
        options.lease_namespace = namespace;
    }
    let state = Arc::new(OperatorState::default());
    let mut registry = deployguard_prometheus::prometheus_client::registry::Registry::default();
    let metrics = deployguard_prometheus::GuardMetrics::register(&mut registry);
    let registry = Arc::new(registry);
    let answering = Arc::clone(&state);
    let bound = deployguard_cli::serve::serve(
        args.listen,
        Arc::new(move |path: &str| match path {
            "/healthz" => (200, "text/plain", "ok\n".into()),
            "/readyz" if answering.ready.load(Ordering::SeqCst) => {
                (200, "text/plain", "ready\n".into())
            }
            "/readyz" => (
                503,
                "text/plain",
                "not ready: the RolloutGuards were not read yet\n".into(),
            ),
            "/metrics" => deployguard_cli::serve::metrics(&registry),
            _ => (404, "text/plain", "not found\n".into()),
        }),
    )
    .await;
    let bound = match bound {
        Ok(bound) => bound,
        Err(err) => {
            eprintln!(
                "deployguard-operator: cannot listen on {}: {err}",
                args.listen
            );
            return ExitCode::from(2);
        }
    };
    eprintln!(
        "deployguard-operator {} on {server}; serving /metrics, /healthz and /readyz at http://{bound}",
        options.identity
    );
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    match operator::run(client, options, state, Some(Arc::new(metrics)), shutdown).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("deployguard-operator: {err}");
            ExitCode::from(1)
        }
    }
}
