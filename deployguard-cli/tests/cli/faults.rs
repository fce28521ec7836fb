//! Seeded faults on 20% of the API server's answers, for the emergency command and for a guard:
//! every transient kind is recovered from within the deadline, and no run ends in a wrong state
//! or rolls back twice.

use std::sync::Arc;
use std::time::Duration;

use deployguard_cli::emergency::{self, Confirm, Exit};
use deployguard_core::analysis::{AnalysisCheck, Threshold};
use deployguard_core::engine::{Guard, GuardOutcome, Strategy};
use deployguard_k8s::{JobMigrationInspector, KubeDeployment};
use deployguard_testkit::cluster::k8s_openapi::api::apps::v1::Deployment;
use deployguard_testkit::cluster::wait::eventually;
use deployguard_testkit::cluster::{FakeCluster, SimulatedTraffic, parse_fault, scenarios};
use tokio::time::Instant;

/// Every kind of fault, as `fake-cluster --fault` spells them.
const KINDS: [&str; 8] = [
    "503",
    "429",
    "500",
    "reset",
    "hang-504",
    "latency-2000",
    "lost-response",
    // A write answered 409 (a create: AlreadyExists) with nothing written: the lease's create,
    // renewals and the rollback's patch each read again and retry.
    "conflict",
];
/// Seeds per kind and per client: 25 in the suite; `DEPLOYGUARD_FAULT_SEEDS=100` for the full
/// sweep the reliability goals are measured with.
fn seeds() -> u64 {
    std::env::var("DEPLOYGUARD_FAULT_SEEDS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(25)
}
const SHARE: f64 = 0.2;
const DEADLINE: Duration = Duration::from_secs(300);

/// A guard of the seed's deployment through `client`, judging the error rate of its Service's
/// traffic every `interval` and the new version's pods, with the migration gate.
fn error_rate_guard(
    cluster: &FakeCluster,
    client: deployguard_testkit::cluster::kube::Client,
    interval: Duration,
) -> deployguard_core::engine::GuardBuilder {
    let probe = cluster.traffic_probe("default", "myapp-service", Duration::from_secs(10));
    Guard::builder(
        Strategy::Rolling,
        Arc::new(KubeDeployment::new(
            client.clone(),
            "default",
            "app-deployment",
        )),
    )
    .check(
        AnalysisCheck::builder("error-rate", &probe, "error_rate")
            .success(Threshold::at_most(0.01))
            .interval(interval)
            .build()
            .unwrap(),
    )
    .probe(Arc::new(probe))
    .migrations(Arc::new(JobMigrationInspector::new(client, "default")))
    // What is tested is riding out faults, not patience: a hard failure counts after 5 s.
    .pod_failure_after(Some(Duration::from_secs(5)))
}

struct Nobody;

impl Confirm for Nobody {
    fn confirm(&mut self, _: &str) -> Option<bool> {
        None
    }
}

async fn faulty_seed(kind: &str, seed: u64) -> FakeCluster {
    let cluster = FakeCluster::with_controllers();
    scenarios::load(&cluster, "seed-rolling-failure")
        .await
        .unwrap();
    eventually("the rollout to stall", || {
        scenarios::seed_has_stalled(&cluster)
    })
    .await;
    cluster.inject(parse_fault(kind).unwrap().probability(SHARE, seed));
    cluster
}

/// v2.3.1 runs as revision 3: exactly one effective rollback.
fn recovered_once(cluster: &FakeCluster) -> bool {
    let deployment: Deployment = cluster.deployment("default", "app-deployment").unwrap();
    let image = deployment.spec.unwrap().template.spec.unwrap().containers[0]
        .image
        .clone();
    let revision =
        deployment.metadata.annotations.unwrap()["deployment.kubernetes.io/revision"].clone();
    image.as_deref() == Some("app:v2.3.1") && revision == "3"
}

#[tokio::test(start_paused = true)]
async fn the_emergency_command_recovers_through_every_transient_fault() {
    let mut failures = Vec::new();
    for kind in KINDS {
        for seed in 0..seeds() {
            let cluster = faulty_seed(kind, seed).await;
            let options = emergency::parse(
                [
                    "app-deployment",
                    "--yes",
                    "--json",
                    "--max-rollback-time",
                    "300s",
                ]
                .map(String::from),
            )
            .unwrap();
            let mut out = Vec::new();
            let started = Instant::now();
            let exit = emergency::run(
                cluster.client(),
                &options,
                &mut Nobody,
                &mut out,
                Box::new(std::io::sink()),
            )
            .await;
            let took = started.elapsed();
            cluster.clear_faults();
            let out = String::from_utf8(out).unwrap();
            if exit != Exit::Ok || !recovered_once(&cluster) || took > DEADLINE {
                failures.push(format!(
                    "{kind} seed {seed}: {exit:?} after {took:?}: {out}"
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} runs failed:\n{}",
        failures.len(),
        KINDS.len() as u64 * seeds(),
        failures.join("\n")
    );
}

#[tokio::test(start_paused = true)]
async fn a_guard_recovers_through_every_transient_fault() {
    let mut failures = Vec::new();
    for kind in KINDS {
        for seed in 0..seeds() {
            let cluster = faulty_seed(kind, seed).await;
            let guard = error_rate_guard(&cluster, cluster.client(), Duration::from_secs(10))
                .recovery_deadline(DEADLINE)
                .build()
                .unwrap();
            let started = Instant::now();
            let report = guard.run().await;
            let took = started.elapsed();
            cluster.clear_faults();
            let rolled_back = matches!(report.outcome, GuardOutcome::RolledBack { .. });
            if !rolled_back || !recovered_once(&cluster) || took > DEADLINE * 2 {
                failures.push(format!(
                    "{kind} seed {seed}: {} after {took:?}",
                    report.outcome
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} runs failed:\n{}",
        failures.len(),
        KINDS.len() as u64 * seeds(),
        failures.join("\n")
    );
}

/// Every kind of fault, for real-time runs: hangs and latencies shortened so runs stay short.
fn real_time_kinds() -> [(&'static str, deployguard_testkit::cluster::Fault); 7] {
    use deployguard_testkit::cluster::Fault;
    [
        ("503", Fault::status(503)),
        ("429", Fault::status(429)),
        ("500", Fault::status(500)),
        ("reset", Fault::reset()),
        (
            "hang-504",
            Fault::hang_then(Duration::from_millis(500), 504),
        ),
        ("latency", Fault::latency(Duration::from_millis(300))),
        ("lost-response", Fault::lose_response()),
    ]
}

/// The same faults through a client built as the command builds it (kubeconfig, HTTP, connect
/// and read timeouts), against the cluster served on loopback, in real time: one seed per kind,
/// with hangs and latencies shortened so the run stays short.
/// The command over HTTP in real time (the cluster ten times as fast): one seed per kind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_command_over_http_recovers_through_every_fault_kind() {
    let kinds = real_time_kinds();
    let mut failures = Vec::new();
    for (seed, (kind, fault)) in kinds.into_iter().enumerate() {
        let seed_incident = scenarios::served_seed(10.0).await.unwrap();
        let (cluster, kubeconfig) = (&seed_incident.cluster, &seed_incident.kubeconfig);
        let (client, server) = emergency::client_from(kubeconfig).await.unwrap();
        cluster.inject(fault.probability(SHARE, seed as u64));
        let mut options = emergency::parse(
            [
                "app-deployment",
                "--yes",
                "--json",
                "--max-rollback-time",
                "120s",
                "--lease-ttl",
                "2s",
            ]
            .map(String::from),
        )
        .unwrap();
        options.server = Some(server);
        let mut out = Vec::new();
        let started = std::time::Instant::now();
        let exit = emergency::run(
            client,
            &options,
            &mut Nobody,
            &mut out,
            Box::new(std::io::sink()),
        )
        .await;
        let took = started.elapsed();
        cluster.clear_faults();
        let out = String::from_utf8(out).unwrap();
        if exit != Exit::Ok || !recovered_once(cluster) || took > Duration::from_secs(120) {
            failures.push(format!("{kind}: {exit:?} after {took:?}: {out}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// A guard through the same client, over HTTP, in real time (the cluster ten times as fast):
/// one seed per kind, the error answers here and the broken connections in the next test (the
/// two run side by side).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guard_over_http_recovers_through_every_error_answer() {
    a_guard_over_http_recovers_through(&["503", "429", "500"]).await;
}

/// A guard over HTTP through resets, hangs, latency and lost responses.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guard_over_http_recovers_through_every_broken_connection() {
    a_guard_over_http_recovers_through(&["reset", "hang-504", "latency", "lost-response"]).await;
}

async fn a_guard_over_http_recovers_through(which: &[&str]) {
    let kinds = real_time_kinds();
    assert!(
        which
            .iter()
            .all(|w| kinds.iter().any(|(kind, _)| kind == w))
    );
    let mut failures = Vec::new();
    for (seed, (kind, fault)) in kinds.into_iter().enumerate() {
        if !which.contains(&kind) {
            continue;
        }
        let seed_incident = scenarios::served_seed(10.0).await.unwrap();
        let (cluster, kubeconfig) = (&seed_incident.cluster, &seed_incident.kubeconfig);
        let (client, _) = emergency::client_from(kubeconfig).await.unwrap();
        cluster.inject(fault.probability(SHARE, 100 + seed as u64));
        // Ten simulated seconds of traffic are one real second here.
        // The seed's new pods answer 503 past their start: the guard blames them once that has
        // lasted 2 real seconds (20 simulated), not the default 20 s of real time.
        let guard = error_rate_guard(cluster, client, Duration::from_secs(1))
            .pod_failure_after(Some(Duration::from_secs(2)))
            .poll_interval(Duration::from_millis(500))
            .recovery_deadline(Duration::from_secs(120))
            .build()
            .unwrap();
        let started = std::time::Instant::now();
        let report = guard.run().await;
        let took = started.elapsed();
        cluster.clear_faults();
        let rolled_back = matches!(report.outcome, GuardOutcome::RolledBack { .. });
        if !rolled_back || !recovered_once(cluster) || took > Duration::from_secs(120) {
            failures.push(format!("{kind}: {} after {took:?}", report.outcome));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
