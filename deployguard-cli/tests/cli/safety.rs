//! The emergency command under stress, on the simulated cluster in process (tokio's paused
//! clock): cut off after any of its requests and run again, run twice at once, pointed at a
//! rollout that is merely in progress, at a paused one, at a server that never answers.

use std::time::Duration;

use deployguard_cli::emergency::{self, Confirm, Exit};
use deployguard_core::engine::{
    EarlierRecovery, EventKind, Guard, GuardOutcome, MemoryJournal, RECOVERY, Strategy,
};
use deployguard_core::{DeploymentBackend, Fingerprint};
use deployguard_k8s::{KubeDeployment, LeaseLock};
use deployguard_testkit::cluster::k8s_openapi::api::apps::v1::Deployment;
use deployguard_testkit::cluster::wait::eventually;
use deployguard_testkit::cluster::{FakeCluster, SimulatedTraffic, scenarios};

struct Nobody;

impl Confirm for Nobody {
    fn confirm(&mut self, _: &str) -> Option<bool> {
        None
    }
}

async fn seed() -> FakeCluster {
    let cluster = FakeCluster::with_controllers();
    scenarios::load(&cluster, "seed-rolling-failure")
        .await
        .unwrap();
    eventually("the rollout to stall", || {
        scenarios::seed_has_stalled(&cluster)
    })
    .await;
    cluster
}

/// Runs `work` until the cluster has served `k` requests (or it finished), then drops it
/// mid-flight, as a crash would.
async fn cut_off_after<T: Send + 'static>(
    cluster: &FakeCluster,
    k: usize,
    work: impl std::future::Future<Output = T> + Send + 'static,
) {
    let task = tokio::spawn(work);
    while cluster.requests().len() < k && !task.is_finished() {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    task.abort();
    let _ = task.await;
}

async fn run(cluster: &FakeCluster, args: &[&str]) -> (Exit, String) {
    let options = emergency::parse(args.iter().map(|a| (*a).to_owned())).unwrap();
    let mut out = Vec::new();
    let exit = emergency::run(
        cluster.client(),
        &options,
        &mut Nobody,
        &mut out,
        Box::new(std::io::sink()),
    )
    .await;
    (exit, String::from_utf8(out).unwrap())
}

/// Runs the command in process with `args`; what it told on its progress stream.
async fn run_telling(cluster: &FakeCluster, args: &[&str]) -> (Exit, String) {
    let options = emergency::parse(args.iter().map(|a| (*a).to_owned())).unwrap();
    let progress = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let exit = emergency::run(
        cluster.client(),
        &options,
        &mut Nobody,
        &mut Vec::new(),
        Box::new(Shared(std::sync::Arc::clone(&progress))),
    )
    .await;
    let said = String::from_utf8(progress.lock().unwrap().clone()).unwrap();
    (exit, said)
}

fn writes(cluster: &FakeCluster) -> usize {
    cluster
        .requests()
        .iter()
        .filter(|r| r.verb.is_write())
        .count()
}

/// The image the deployment's template runs, and its revision number.
fn running(cluster: &FakeCluster) -> (String, String) {
    let deployment: Deployment = cluster.deployment("default", "app-deployment").unwrap();
    let image = deployment.spec.unwrap().template.spec.unwrap().containers[0]
        .image
        .clone()
        .unwrap();
    let revision =
        deployment.metadata.annotations.unwrap()["deployment.kubernetes.io/revision"].clone();
    (image, revision)
}

/// Exactly one effective rollback: v2.3.1 runs as revision 3 (1 → 2 → rollback renumbers 1 to
/// 3). A second rollback "to the revision before the current one" would have made v2.4.0
/// revision 4.
fn assert_one_rollback(cluster: &FakeCluster, context: &str) {
    assert_eq!(
        running(cluster),
        ("app:v2.3.1".to_owned(), "3".to_owned()),
        "{context}"
    );
}

#[tokio::test(start_paused = true)]
async fn cut_off_after_any_request_a_rerun_finishes_the_same_recovery() {
    // How many requests an uninterrupted run makes.
    let cluster = seed().await;
    cluster.clear_requests();
    let (exit, out) = run(&cluster, &["app-deployment", "--yes"]).await;
    assert_eq!(exit, Exit::Ok, "{out}");
    assert_one_rollback(&cluster, "uninterrupted");
    let total = cluster.requests().len();
    assert!(total > 5, "{total} requests");

    for k in 1..total {
        let cluster = seed().await;
        cluster.clear_requests();
        let first = {
            let cluster = cluster.clone();
            async move { run(&cluster, &["app-deployment", "--yes"]).await }
        };
        cut_off_after(&cluster, k, first).await;
        let (exit, out) = run(&cluster, &["app-deployment", "--yes"]).await;
        assert_eq!(exit, Exit::Ok, "cut after request {k}: {out}");
        assert_one_rollback(&cluster, &format!("cut after request {k}: {out}"));
        // A guard started afterwards finds the recovery finished and does nothing more.
        let guard = Guard::builder(
            Strategy::Rolling,
            std::sync::Arc::new(KubeDeployment::new(
                cluster.client(),
                "default",
                "app-deployment",
            )),
        )
        .build()
        .unwrap();
        let report = guard.run().await;
        assert!(
            matches!(
                report.outcome,
                GuardOutcome::RolledBack { .. } | GuardOutcome::Promoted { .. }
            ),
            "cut after request {k}: {}",
            report.outcome
        );
        assert_one_rollback(&cluster, &format!("guard after cut {k}"));
    }
}

#[tokio::test(start_paused = true)]
async fn two_commands_at_once_make_one_rollback() {
    // Staggered 0 to 5 s in 100 ms steps.
    for stagger_ms in (0..=50).map(|step| step * 100) {
        let cluster = seed().await;
        let first = {
            let cluster = cluster.clone();
            tokio::spawn(async move { run(&cluster, &["app-deployment", "--yes"]).await })
        };
        tokio::time::sleep(Duration::from_millis(stagger_ms)).await;
        let (second_exit, second_out) = run(&cluster, &["app-deployment", "--yes"]).await;
        let (first_exit, first_out) = first.await.unwrap();
        assert_eq!(first_exit, Exit::Ok, "{stagger_ms} ms: {first_out}");
        assert_eq!(second_exit, Exit::Ok, "{stagger_ms} ms: {second_out}");
        assert_one_rollback(&cluster, &format!("{stagger_ms} ms apart"));
    }
}

fn seed_guard(cluster: &FakeCluster) -> Guard {
    seed_guard_builder(cluster).build().unwrap()
}

/// A guard of the seed's deployment with one error-rate check on its Service's traffic.
fn seed_guard_builder(cluster: &FakeCluster) -> deployguard_core::engine::GuardBuilder {
    let probe = cluster.traffic_probe("default", "myapp-service", Duration::from_secs(10));
    Guard::builder(
        Strategy::Rolling,
        std::sync::Arc::new(KubeDeployment::new(
            cluster.client(),
            "default",
            "app-deployment",
        )),
    )
    .check(
        deployguard_core::analysis::AnalysisCheck::builder("error-rate", &probe, "error_rate")
            .success(deployguard_core::analysis::Threshold::at_most(0.01))
            .interval(Duration::from_secs(10))
            .build()
            .unwrap(),
    )
    .probe(std::sync::Arc::new(probe))
}

#[tokio::test(start_paused = true)]
async fn a_guard_and_the_command_at_once_make_one_rollback() {
    for stagger_ms in [0, 2_000, 9_000, 10_000, 11_000, 13_000] {
        let cluster = seed().await;
        let guard = seed_guard(&cluster);
        let guarded = tokio::spawn(async move { guard.run().await });
        tokio::time::sleep(Duration::from_millis(stagger_ms)).await;
        let (exit, out) = run(&cluster, &["app-deployment", "--yes"]).await;
        let report = guarded.await.unwrap();
        let d: Deployment = cluster.deployment("default", "app-deployment").unwrap();
        assert_eq!(
            exit,
            Exit::Ok,
            "{stagger_ms} ms: {out}\n{:#?}\n{:#?}",
            d.metadata.annotations,
            d.status
        );
        assert!(
            matches!(report.outcome, GuardOutcome::RolledBack { .. }),
            "{stagger_ms} ms: {}\n{:?}\n{:#?}\n{:?}",
            report.outcome,
            report.plan,
            d.status,
            d.metadata.generation
        );
        assert_one_rollback(
            &cluster,
            &format!("guard and command {stagger_ms} ms apart"),
        );
    }
}

#[tokio::test(start_paused = true)]
async fn five_guards_at_once_make_one_rollback() {
    let cluster = seed().await;
    let runs: Vec<_> = (0..5)
        .map(|_| {
            let guard = seed_guard(&cluster);
            tokio::spawn(async move { guard.run().await })
        })
        .collect();
    for run in runs {
        let report = run.await.unwrap();
        assert!(
            matches!(report.outcome, GuardOutcome::RolledBack { .. }),
            "{}",
            report.outcome
        );
    }
    assert_one_rollback(&cluster, "five guards");
}

/// Five replicas of a guard service, one Lease: exactly one acts; the others wait for it and
/// report its outcome.
#[tokio::test(start_paused = true)]
async fn five_guards_sharing_a_lease_one_acts() {
    let cluster = seed().await;
    let runs: Vec<_> = (0..5)
        .map(|replica| {
            let journal = MemoryJournal::new();
            let guard = seed_guard_builder(&cluster)
                .lock(
                    std::sync::Arc::new(LeaseLock::new(
                        cluster.client(),
                        "default",
                        "app-deployment",
                    )),
                    &format!("guard-{replica}"),
                )
                .journal(std::sync::Arc::new(journal.clone()))
                .build()
                .unwrap();
            tokio::spawn(async move { (guard.run().await, journal) })
        })
        .collect();
    let mut acted = 0;
    for run in runs {
        let (report, journal) = run.await.unwrap();
        assert!(
            matches!(report.outcome, GuardOutcome::RolledBack { .. }),
            "{}",
            report.outcome
        );
        acted += usize::from(
            journal
                .events()
                .iter()
                .any(|e| matches!(e.kind, EventKind::StepStarted { .. })),
        );
    }
    assert_eq!(acted, 1, "exactly one guard acted");
    assert_one_rollback(&cluster, "five guards sharing a lease");
    let lease: deployguard_testkit::cluster::k8s_openapi::api::coordination::v1::Lease = cluster
        .object("default", "deployguard-app-deployment")
        .unwrap();
    assert_eq!(
        lease.spec.unwrap().holder_identity,
        None,
        "released at the end"
    );
}

#[tokio::test(start_paused = true)]
async fn a_rollout_in_progress_is_not_rolled_back_and_a_stale_marker_is_never_acted_on() {
    let cluster = FakeCluster::with_controllers();
    scenarios::load(&cluster, "healthy-rollout").await.unwrap();
    cluster.clear_requests();
    // Progressing within its deadline, nothing failing: the automatic mode leaves it alone.
    let (exit, out) = run(&cluster, &["app-deployment", "--yes"]).await;
    assert_eq!(exit, Exit::Ok, "{out}");
    // Its pods are starting, and the command says for how long they may.
    assert!(
        out.trim().starts_with(
            "in progress and not failing (starting: 3 pods of the new version, the oldest 0 s of a 10 min budget (progressDeadlineSeconds))"
        ),
        "{out}"
    );
    assert_eq!(writes(&cluster), 0);

    // A marker left "in progress" by a failed run for a revision that no longer runs.
    let backend = KubeDeployment::new(cluster.client(), "default", "app-deployment");
    let stale = r#"{"state":"in_progress","failing":"0000000000","target":1,"restored":null,"reason":"an old failure"}"#;
    backend
        .set_marker(RECOVERY, Some(stale.to_owned()))
        .await
        .unwrap();
    let (exit, out) = run(&cluster, &["app-deployment", "--yes", "--json"]).await;
    assert_eq!(exit, Exit::Ok, "{out}");
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["assessment"]["earlier"]["state"], "stale", "{out}");
    assert_eq!(running(&cluster).0, "app:v2.4.0", "the newer release stays");

    // A guard finds the same marker stale, clears it, and judges the rollout on its merits.
    let guard = Guard::builder(Strategy::Rolling, std::sync::Arc::new(backend.clone()))
        .build()
        .unwrap();
    let report = guard.run().await;
    assert!(
        matches!(report.outcome, GuardOutcome::Promoted { .. }),
        "{}",
        report.outcome
    );
    assert_eq!(running(&cluster).0, "app:v2.4.0");
    assert!(!backend.markers().await.unwrap().contains_key(RECOVERY));
}

#[tokio::test(start_paused = true)]
async fn a_paused_deployment_is_refused_unless_asked_to_resume() {
    let cluster = seed().await;
    cluster
        .edit("default", "app-deployment", |d: &mut Deployment| {
            d.spec.as_mut().unwrap().paused = Some(true);
        })
        .unwrap();
    cluster.clear_requests();
    let (exit, out) = run(&cluster, &["app-deployment", "--yes"]).await;
    assert_eq!(exit, Exit::Refused, "{out}");
    assert!(
        out.starts_with("refusing: deployment default/app-deployment is paused"),
        "{out}"
    );
    assert_eq!(writes(&cluster), 0);
    let (exit, out) = run(&cluster, &["app-deployment", "--yes", "--resume-paused"]).await;
    assert_eq!(exit, Exit::Ok, "{out}");
    assert_one_rollback(&cluster, &out);
}

#[tokio::test(start_paused = true)]
async fn a_finished_recovery_is_reported_not_repeated() {
    let cluster = seed().await;
    let (exit, _) = run(&cluster, &["app-deployment", "--yes"]).await;
    assert_eq!(exit, Exit::Ok);
    cluster.clear_requests();
    let (exit, out) = run(&cluster, &["app-deployment", "--yes", "--json"]).await;
    assert_eq!(exit, Exit::Ok, "{out}");
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    let earlier: EarlierRecovery =
        serde_json::from_value(report["assessment"]["earlier"].clone()).unwrap();
    assert!(
        matches!(&earlier, EarlierRecovery::Finished { restored: Some(fp), .. } if *fp != Fingerprint::new("")),
        "{earlier}"
    );
    assert!(
        report["outcome"]
            .as_str()
            .unwrap()
            .starts_with("nothing to do: an earlier run recovered")
    );
    assert_eq!(writes(&cluster), 0);
    assert_one_rollback(&cluster, &out);
    // The report names what the recovery restored, never the broken revision as a target.
    assert!(report["assessment"]["rollback_target"].is_null(), "{out}");
    let (exit, said) = run_telling(&cluster, &["app-deployment", "--yes"]).await;
    assert_eq!(exit, Exit::Ok);
    assert!(said.contains("restored: revision 3 (app:v2.3.1)"), "{said}");
    assert!(!said.contains("rollback target"), "{said}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_never_answers_ends_the_command_at_its_deadline_naming_the_server() {
    // Accepts connections and never answers.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let silent = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kubeconfig");
    std::fs::write(
        &path,
        format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: silent\nclusters:\n- name: silent\n  cluster:\n    server: http://{address}\ncontexts:\n- name: silent\n  context:\n    cluster: silent\n    user: u\nusers:\n- name: u\n  user:\n    token: secret-token-never-printed\n"
        ),
    )
    .unwrap();
    // A token over plain HTTP only with the explicit flag.
    let (client, server) = emergency::client_with(&emergency::ClientOptions {
        kubeconfig: Some(path.clone()),
        allow_plain_http: true,
        ..emergency::ClientOptions::default()
    })
    .await
    .unwrap();
    let mut options = emergency::parse(
        ["app-deployment", "--yes", "--max-rollback-time", "2s"].map(String::from),
    )
    .unwrap();
    options.server = Some(server);
    let mut out = Vec::new();
    let progress = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let began = std::time::Instant::now();
    let exit = emergency::run(
        client,
        &options,
        &mut Nobody,
        &mut out,
        Box::new(Shared(std::sync::Arc::clone(&progress))),
    )
    .await;
    let took = began.elapsed();
    silent.abort();
    assert_eq!(exit, Exit::Failed);
    let said = String::from_utf8(progress.lock().unwrap().clone()).unwrap();
    assert!(
        said.contains(&format!("gave up after 2s (--max-rollback-time) while assessing the deployment: http://{address}/ did not answer in time")),
        "{said}"
    );
    assert!(!said.contains("secret-token"), "{said}");
    assert!(took < Duration::from_secs(10), "took {took:?}");
}

#[test]
fn configuration_errors_never_quote_the_file() {
    let message = "failed to parse kubeconfig YAML: users[0].user.token: invalid type: map, expected a string \"hunter2\" at line 7 column 13";
    assert_eq!(
        emergency::redacted(message),
        "failed to parse kubeconfig YAML at line 7 column 13"
    );
    assert_eq!(emergency::redacted("token 'abc' rejected"), "token");
}

/// Everything the command prints, in every mode and on every failure, is scanned for the bearer
/// token the cluster requires (and for a wrong one a misconfigured kubeconfig carries).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_output_ever_carries_a_token() {
    const TOKEN: &str = "dg-secret-token-4242";
    const WRONG: &str = "dg-secret-wrong-7777";
    let cluster = FakeCluster::builder()
        .controllers(true)
        .bearer_token(TOKEN)
        .build();
    scenarios::load(&cluster, "seed-rolling-failure")
        .await
        .unwrap();
    eventually("the rollout to stall", || {
        scenarios::seed_has_stalled(&cluster)
    })
    .await;
    // Over TLS, as a token goes (over plain HTTP the command refuses to send one).
    let served = cluster.serve_tls_on("127.0.0.1:0").await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good");
    served.write_kubeconfig(&good).unwrap();
    let wrong = dir.path().join("wrong");
    std::fs::write(&wrong, served.kubeconfig().replace(TOKEN, WRONG)).unwrap();
    let malformed = dir.path().join("malformed");
    std::fs::write(
        &malformed,
        format!("{}\n  bogus: [{TOKEN}\n", served.kubeconfig()),
    )
    .unwrap();

    let mut said = Vec::new();
    for (kubeconfig, args) in [
        (&good, vec!["app-deployment", "--dry-run", "--json"]),
        (&good, vec!["app-deployment"]),
        (&good, vec!["nope", "--yes"]),
        (
            &good,
            vec!["app-deployment", "--yes", "--max-rollback-time", "120s"],
        ),
        (&good, vec!["app-deployment", "--yes", "--json"]),
        (&wrong, vec!["app-deployment", "--yes"]),
        (&malformed, vec!["app-deployment", "--yes"]),
    ] {
        let (client, server) = match emergency::client_from(kubeconfig).await {
            Ok(connection) => connection,
            Err(err) => {
                said.push(format!("{err}\n{err:?}"));
                continue;
            }
        };
        let mut options = emergency::parse(args.iter().map(|a| (*a).to_owned())).unwrap();
        options.server = Some(server);
        let mut out = Vec::new();
        let progress = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let exit = emergency::run(
            client,
            &options,
            &mut Nobody,
            &mut out,
            Box::new(Shared(std::sync::Arc::clone(&progress))),
        )
        .await;
        said.push(format!(
            "{exit:?}\n{}\n{}",
            String::from_utf8(out).unwrap(),
            String::from_utf8(progress.lock().unwrap().clone()).unwrap()
        ));
    }
    said.push(format!("{cluster:?}\n{served:?}"));
    let everything = said.join("\n");
    assert!(
        everything.contains("Unauthorized"),
        "the wrong token was refused:\n{everything}"
    );
    assert!(everything.contains("rolled back"), "{everything}");
    for secret in [TOKEN, WRONG] {
        assert!(
            !everything.contains(secret),
            "{secret} leaked:\n{everything}"
        );
    }
}

struct Shared(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Shared {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The real binary, killed with SIGKILL after its k-th request to the server, then run again:
/// exactly one effective rollback, every time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_real_command_killed_mid_recovery_and_rerun_rolls_back_once() {
    let binary = std::path::PathBuf::from(env!("CARGO_BIN_EXE_emergency-rollback"));
    for k in [1, 4, 8] {
        // Ten times as fast as the wall clock, so the rollback rolls out in well under a second.
        let seed_incident = scenarios::served_seed(10.0).await.unwrap();
        let (cluster, kubeconfig) = (&seed_incident.cluster, &seed_incident.kubeconfig);
        let command = || {
            let mut command = tokio::process::Command::new(&binary);
            command
                .args([
                    "app-deployment",
                    "--yes",
                    "--max-rollback-time",
                    "60s",
                    "--lease-ttl",
                    "2s",
                ])
                .env("KUBECONFIG", kubeconfig)
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped());
            command
        };
        cluster.clear_requests();
        let mut first = command().spawn().unwrap();
        let reached = deployguard_testkit::cluster::wait::until(
            "the command's k-th request",
            Duration::from_secs(30),
            || cluster.requests().len() >= k,
        )
        .await;
        // The command makes 8 reads and 5 writes: it always reaches its k-th request.
        if let Err(timeout) = reached {
            panic!("the command never made its request {k}: {timeout:?}");
        }
        // SIGKILL: no chance to clean up.
        first.start_kill().unwrap();
        let killed = first.wait().await.unwrap();
        // Killed mid-recovery, not after it had finished by itself: no exit code, a signal.
        assert_eq!(
            killed.code(),
            None,
            "the command finished before it was killed after request {k}"
        );
        let rerun = command().output().await.unwrap();
        let stdout = String::from_utf8_lossy(&rerun.stdout);
        let stderr = String::from_utf8_lossy(&rerun.stderr);
        assert_eq!(
            rerun.status.code(),
            Some(0),
            "killed after request {k}: {stdout}\n{stderr}"
        );
        assert_one_rollback(
            cluster,
            &format!("killed after request {k}: {stdout}\n{stderr}"),
        );
        drop(seed_incident);
    }
}

/// Crash combinations: a guard cut off after any of its requests, finished by the command; the
/// command cut off, finished by a guard. Exactly one effective rollback every time.
#[tokio::test(start_paused = true)]
async fn a_recovery_cut_off_in_one_actor_is_finished_by_the_other() {
    // How many requests a guard makes up to the end of its recovery.
    let cluster = seed().await;
    cluster.clear_requests();
    let report = seed_guard(&cluster).run().await;
    assert!(
        matches!(report.outcome, GuardOutcome::RolledBack { .. }),
        "{}",
        report.outcome
    );
    let guard_total = cluster.requests().len();

    for k in (1..guard_total).step_by(3) {
        let cluster = seed().await;
        cluster.clear_requests();
        let guard = seed_guard(&cluster);
        cut_off_after(&cluster, k, async move { guard.run().await }).await;
        let (exit, out) = run(&cluster, &["app-deployment", "--yes"]).await;
        assert_eq!(exit, Exit::Ok, "guard cut after request {k}: {out}");
        assert_one_rollback(&cluster, &format!("guard cut after request {k}: {out}"));
    }

    let cluster = seed().await;
    cluster.clear_requests();
    let (exit, _) = run(&cluster, &["app-deployment", "--yes"]).await;
    assert_eq!(exit, Exit::Ok);
    let command_total = cluster.requests().len();
    for k in (1..command_total).step_by(3) {
        let cluster = seed().await;
        cluster.clear_requests();
        let first = {
            let cluster = cluster.clone();
            async move { run(&cluster, &["app-deployment", "--yes"]).await }
        };
        cut_off_after(&cluster, k, first).await;
        let report = seed_guard(&cluster).run().await;
        assert!(
            matches!(report.outcome, GuardOutcome::RolledBack { .. }),
            "command cut after request {k}: {}",
            report.outcome
        );
        // A cut before the command wrote its intent leaves the failing version, which the guard
        // recovers itself; after it, the guard finishes the command's recovery. Either way: one
        // rollback.
        assert_one_rollback(&cluster, &format!("command cut after request {k}"));
    }
}

/// The real binary against a healthy rollout seconds after it began, on a cluster at the wall
/// clock's speed and at a fifth of it: its pods are starting, not failing, and the command says
/// so with the budget it judged them by, and writes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_real_command_leaves_a_healthy_rollout_in_progress_alone_at_any_speed() {
    let binary = std::path::PathBuf::from(env!("CARGO_BIN_EXE_emergency-rollback"));
    for time_scale in [1.0, 0.2] {
        let cluster = FakeCluster::builder()
            .controllers(true)
            .time_scale(time_scale)
            .build();
        scenarios::load(&cluster, "healthy-rollout").await.unwrap();
        cluster.clear_requests();
        let served = cluster.serve().await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let kubeconfig = dir.path().join("kubeconfig");
        served.write_kubeconfig(&kubeconfig).unwrap();
        let output = tokio::process::Command::new(&binary)
            .args(["app-deployment", "--yes"])
            .env("KUBECONFIG", &kubeconfig)
            .stdin(std::process::Stdio::null())
            .output()
            .await
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        let context = format!(
            "time scale {time_scale}: {stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert_eq!(output.status.code(), Some(0), "{context}");
        assert!(
            stdout.contains("in progress and not failing (starting: ")
                && stdout.contains("budget (progressDeadlineSeconds)"),
            "{context}"
        );
        assert_eq!(writes(&cluster), 0, "{context}");
        let deployment = cluster.deployment("default", "app-deployment").unwrap();
        let image = deployment.spec.unwrap().template.spec.unwrap().containers[0]
            .image
            .clone();
        assert_eq!(image.as_deref(), Some("app:v2.4.0"), "{context}");
    }
}

/// Retries are shown as they happen, with times that advance: a person watching a recovery that
/// rides out 503s and conflicting lease writes sees each attempt and when the next comes.
#[tokio::test(start_paused = true)]
async fn retries_are_shown_with_times_that_advance() {
    use deployguard_testkit::cluster::{Fault, Verb};
    let cluster = seed().await;
    cluster.inject(
        Fault::conflict()
            .on(Verb::Create)
            .resource("leases")
            .times(2),
    );
    cluster.inject(
        Fault::status(503)
            .on(Verb::Patch)
            .resource("deployments")
            .times(5),
    );
    let (exit, said) = run_telling(&cluster, &["app-deployment", "--yes"]).await;
    assert_eq!(exit, Exit::Ok, "{said}");
    assert!(
        said.contains("taking the deployment's lease: attempt 1 failed (conflict: a create of the lease conflicted, and there is none"),
        "{said}"
    );
    let seconds: Vec<u64> = said
        .lines()
        .filter(|l| l.contains("attempt") && l.contains("trying again in"))
        .filter_map(|l| l.strip_prefix("[+")?.split('s').next()?.parse().ok())
        .collect();
    assert!(seconds.len() >= 5, "{said}");
    assert!(
        seconds.windows(2).all(|w| w[0] <= w[1]) && seconds.last() > seconds.first(),
        "times advance: {seconds:?}\n{said}"
    );
    assert!(
        said.contains("failed (unavailable: ServiceUnavailable (503)"),
        "{said}"
    );
}
