//! `fake-cluster`: serves the simulated Kubernetes cluster on loopback until interrupted.
//!
//! ```text
//! fake-cluster [--scenario NAME] [--listen 127.0.0.1:0] [--kubeconfig PATH] [--time-scale N]
//! fake-cluster --list-scenarios
//! ```
//!
//! The first line on stdout is `listening on http(s)://HOST:PORT`, the second `kubeconfig: PATH`;
//! each request served is logged as one line on stderr.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use deployguard_testkit::cluster::{FakeCluster, Fault, parse_fault, scenarios};

/// Serves a simulated Kubernetes API server (with its Deployment, ReplicaSet, kubelet,
/// Endpoints and Job controllers) on loopback, for kubectl, kube-rs and scripts.
#[derive(Debug, Parser)]
#[command(
    name = "fake-cluster",
    after_help = "The first line on stdout is `listening on http(s)://HOST:PORT`, the second \
        `kubeconfig: PATH`. Each request served is logged on stderr as `METHOD PATH STATUS`. \
        Stop it with Ctrl-C; a kubeconfig it chose itself is removed then.\n\n\
        Example:\n  fake-cluster --scenario seed-rolling-failure --kubeconfig kc.yaml &\n  \
        KUBECONFIG=kc.yaml kubectl get deploy,rs,pods"
)]
struct Args {
    /// The scenario to load (see --list-scenarios); `empty` is a cluster with its namespaces only.
    #[arg(long, default_value = "empty", value_parser = scenario_name)]
    scenario: String,
    /// The loopback address to listen on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:0", value_name = "ADDR")]
    listen: String,
    /// Where to write a kubeconfig for this cluster (default: a new temporary directory, never
    /// the working directory).
    #[arg(long, value_name = "PATH")]
    kubeconfig: Option<PathBuf>,
    /// Run cluster time this many times as fast as the wall clock (pods start, back-offs and
    /// progress deadlines pass sooner), e.g. 10 for a ten-times-faster demo.
    #[arg(long, default_value_t = 1.0, value_name = "N", value_parser = time_scale)]
    time_scale: f64,
    /// Require this bearer token on every request (the kubeconfig carries it) and act as the
    /// cluster's admin for it. Implies --tls: kubectl sends tokens only over TLS. Without it,
    /// requests with no credentials are the admin. Other identities come from ServiceAccount
    /// tokens (`kubectl create token NAME`), authorized by the Roles, ClusterRoles and bindings
    /// you create, as on a real cluster
    #[arg(long, value_name = "TOKEN")]
    token: Option<String>,
    /// Serve HTTPS with a self-signed certificate made at start, which the kubeconfig trusts
    /// (needed to use tokens with kubectl: `kubectl --token=$(kubectl create token NAME) ...`)
    #[arg(long)]
    tls: bool,
    /// Inject a fault into a share of requests, e.g. `503:0.2` (20% answered 503). Kinds: an
    /// HTTP status (429, 500, 503, …), `reset` (the connection closes unanswered), `lost-response`
    /// (served, then the answer is lost), `hang-504` (10 s of silence, then 504), `conflict`,
    /// `latency-<ms>`. Repeatable; which requests are hit follows --fault-seed.
    #[arg(long, value_name = "KIND:SHARE", value_parser = fault_spec)]
    fault: Vec<(String, f64)>,
    /// The seed that picks which requests the faults hit (the same seed, the same requests).
    #[arg(long, default_value_t = 1, value_name = "N")]
    fault_seed: u64,
    /// Delay every request by this many milliseconds.
    #[arg(long, value_name = "MS")]
    latency: Option<u64>,
    /// The seed of the scenario's simulated traffic (arrivals, errors, latencies), served as
    /// Prometheus metrics at /metrics/traffic.
    #[arg(long, default_value_t = 1, value_name = "N")]
    traffic_seed: u64,
    /// Add an image to the simulated registry, e.g. `ghcr.io/acme/api:1.4.2` (repeatable): its
    /// containers start and become ready after 2 s. The registry already holds the scenario's
    /// images and a few public ones (nginx:1.25–1.27, busybox:1.36, pause:3.10, and nginx and
    /// busybox :latest); any other image fails to pull (ErrImagePull, then ImagePullBackOff), as
    /// a typo'd image does on a real cluster.
    #[arg(long, value_name = "IMAGE")]
    image: Vec<String>,
    /// List the scenarios and what each holds, then exit.
    #[arg(long)]
    list_scenarios: bool,
}

fn scenario_name(name: &str) -> Result<String, String> {
    let names: Vec<&str> = scenarios::list().iter().map(|(name, _)| *name).collect();
    if names.contains(&name) {
        Ok(name.to_owned())
    } else {
        Err(format!(
            "unknown scenario {name:?}; the scenarios are: {}",
            names.join(", ")
        ))
    }
}

fn fault_spec(text: &str) -> Result<(String, f64), String> {
    let (kind, share) = text.split_once(':').unwrap_or((text, "1"));
    if parse_fault(kind).is_none() {
        return Err(format!(
            "{kind:?} is not a fault: an HTTP status 400-599, reset, lost-response, hang-504, conflict or latency-<ms>"
        ));
    }
    let share: f64 = share
        .parse()
        .ok()
        .filter(|s: &f64| (0.0..=1.0).contains(s))
        .ok_or_else(|| format!("{share:?} is not a share between 0 and 1"))?;
    Ok((kind.to_owned(), share))
}

/// How fast cluster time runs while a scenario is set up.
const SETUP_SCALE: f64 = 20.0;

fn time_scale(text: &str) -> Result<f64, String> {
    text.parse()
        .ok()
        .filter(|scale: &f64| *scale > 0.0 && scale.is_finite() && *scale <= 1000.0)
        .ok_or_else(|| format!("{text:?} is not a number greater than 0 and at most 1000"))
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    if args.list_scenarios {
        for (name, about) in scenarios::list() {
            println!("{name:<24} {about}");
        }
        return ExitCode::SUCCESS;
    }
    let controllers = args.scenario != "static-web";
    let mut builder = FakeCluster::builder()
        .controllers(controllers)
        // The scenario is set up fast whatever the scale asked for (a slow cluster would take
        // minutes to reach its starting point), then runs at that scale.
        .time_scale(args.time_scale.max(SETUP_SCALE))
        .images(args.image.iter().cloned())
        .log_requests(true);
    if let Some(token) = &args.token {
        builder = builder.bearer_token(token);
    }
    let cluster = builder.build();
    if let Err(err) = scenarios::load_seeded(&cluster, &args.scenario, args.traffic_seed).await {
        eprintln!("fake-cluster: loading {}: {}", args.scenario, err.message);
        return ExitCode::from(2);
    }
    cluster.set_time_scale(args.time_scale);
    // Faults hit clients' requests, not the scenario's own setup.
    for (index, (kind, share)) in args.fault.iter().enumerate() {
        if let Some(fault) = parse_fault(kind) {
            cluster.inject(fault.probability(*share, args.fault_seed.wrapping_add(index as u64)));
        }
    }
    if let Some(ms) = args.latency {
        cluster.inject(Fault::latency(std::time::Duration::from_millis(ms)));
    }
    let served = if args.tls || args.token.is_some() {
        cluster.serve_tls_on(&args.listen).await
    } else {
        cluster.serve_on(&args.listen).await
    };
    let served = match served {
        Ok(served) => served,
        Err(err) => {
            eprintln!("fake-cluster: cannot listen on {}: {err}", args.listen);
            return ExitCode::from(1);
        }
    };
    // Without --kubeconfig, a temporary directory of its own, removed on exit.
    let (path, _temporary) = match &args.kubeconfig {
        Some(path) => (path.clone(), None),
        None => match tempfile::Builder::new().prefix("fake-cluster-").tempdir() {
            Ok(dir) => (dir.path().join("kubeconfig"), Some(dir)),
            Err(err) => {
                eprintln!("fake-cluster: cannot create a temporary directory: {err}");
                return ExitCode::from(1);
            }
        },
    };
    if let Err(err) = served.write_kubeconfig(&path) {
        eprintln!("fake-cluster: cannot write {}: {err}", path.display());
        return ExitCode::from(1);
    }
    println!("listening on {}", served.url());
    println!("kubeconfig: {}", path.display());
    let _ = tokio::signal::ctrl_c().await;
    ExitCode::SUCCESS
}
