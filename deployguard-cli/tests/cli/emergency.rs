//! The emergency-rollback command against the simulated cluster served over HTTP, with a client
//! built from a kubeconfig, as an operator would run it.

use std::time::Duration;

use deployguard_cli::emergency::{self, Confirm, Exit, Options};
use deployguard_testkit::cluster::k8s_openapi::api::{apps::v1::Deployment, core::v1::Service};
use deployguard_testkit::cluster::kubectl::Kubectl;
use deployguard_testkit::cluster::wait::eventually;
use deployguard_testkit::cluster::{FakeCluster, ServedCluster, scenarios};
use serde_json::{Value, json};

struct Nobody;

impl Confirm for Nobody {
    fn confirm(&mut self, _: &str) -> Option<bool> {
        None
    }
}

async fn served(scenario: &str) -> (FakeCluster, ServedCluster, kube::Client, tempfile::TempDir) {
    served_at(scenario, 1.0).await
}

/// [`served`], the cluster's time `time_scale` times the wall clock's.
async fn served_at(
    scenario: &str,
    time_scale: f64,
) -> (FakeCluster, ServedCluster, kube::Client, tempfile::TempDir) {
    let cluster = FakeCluster::builder()
        .controllers(true)
        .time_scale(time_scale)
        .build();
    scenarios::load(&cluster, scenario).await.unwrap();
    let served = cluster.serve().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kubeconfig");
    served.write_kubeconfig(&path).unwrap();
    let kubeconfig = kube::config::Kubeconfig::read_from(&path).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .unwrap();
    let client = kube::Client::try_from(config).unwrap();
    (cluster, served, client, dir)
}

/// The seed incident, stalled, with its request log cleared.
async fn stalled_seed() -> (FakeCluster, ServedCluster, kube::Client, tempfile::TempDir) {
    let seed = served("seed-rolling-failure").await;
    eventually("the rollout to stall", || {
        scenarios::seed_has_stalled(&seed.0)
    })
    .await;
    seed.0.clear_requests();
    seed
}

fn options(args: &[&str]) -> Options {
    emergency::parse(args.iter().map(|a| (*a).to_owned())).unwrap()
}

async fn run(client: kube::Client, args: &[&str]) -> (Exit, String) {
    let mut out = Vec::new();
    let exit = emergency::run(
        client,
        &options(args),
        &mut Nobody,
        &mut out,
        Box::new(std::io::sink()),
    )
    .await;
    (exit, String::from_utf8(out).unwrap())
}

fn writes(cluster: &FakeCluster) -> Vec<String> {
    cluster
        .requests()
        .iter()
        .filter(|r| r.verb.is_write())
        .map(|r| format!("{} {}", r.method, r.path))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seed_incident_is_rolled_back_within_the_deadline_and_kubectl_agrees() {
    let (cluster, served, client, _dir) = stalled_seed().await;
    let progress = Captured::default();
    let mut out = Vec::new();
    let exit = emergency::run(
        client,
        &options(&["app-deployment", "--yes", "--max-rollback-time", "120s"]),
        &mut Nobody,
        &mut out,
        Box::new(progress.clone()),
    )
    .await;
    let out = String::from_utf8(out).unwrap();
    assert_eq!(exit, Exit::Ok, "{out}");
    assert_eq!(out.trim(), "rolled back: 6/6 ready, 6 available");
    // What decided, with the budget it used: the pods answered 503 past the start their probes
    // declare.
    let found = progress.text();
    assert!(
        found.contains("failure: readiness-failing")
            && found.contains("its app answers the readiness probe with an error")
            && found.contains("past the 15 s a start takes (its probes declare 15 s)"),
        "{found}"
    );
    let d = cluster
        .get("apps/v1", "Deployment", "default", "app-deployment")
        .unwrap();
    assert_eq!(
        d["spec"]["template"]["spec"]["containers"][0]["image"],
        "app:v2.3.1"
    );
    assert_eq!(d["status"]["readyReplicas"], 6);
    // The only writes: the deployment's lease, the guard's markers and one conditional
    // rollback patch. No pod was created to test health (the script pulled an unpinned curl
    // image for that).
    let writes = writes(&cluster);
    assert!(
        writes.iter().all(|w| w
            .starts_with("PATCH /apis/apps/v1/namespaces/default/deployments/app-deployment")
            || w.contains("/apis/coordination.k8s.io/v1/namespaces/default/leases")),
        "{writes:?}"
    );
    let rows = Kubectl::new(&served)
        .unwrap()
        .rollout_history("app-deployment")
        .await
        .unwrap();
    let history = rows.join("\n");
    assert_eq!(
        rows,
        ["2 deploy app:v2.4.0", "3 deploy app:v2.3.1"],
        "{history}"
    );
    drop(served);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_migration_refuses_the_rollback_and_says_why() {
    let (cluster, _served, client, _dir) = served_at("migration-job-failed", 10.0).await;
    // The incident as a person finds it: the Job failed, and the new pods have answered 503
    // for longer than their start takes.
    eventually("the migration Job to fail", || {
        cluster
            .get("batch/v1", "Job", "default", "db-migrate-43")
            .is_ok_and(|j| j["status"]["failed"] == 1)
            && scenarios::new_pods_aged(&cluster, scenarios::SEED_STALLED_FOR)
    })
    .await;
    cluster.clear_requests();
    let (exit, out) = run(client, &["app-deployment"]).await;
    assert_eq!(exit, Exit::Refused, "{out}");
    assert!(out.starts_with("refusing to roll back: migration gate: the last migration failed: job db-migrate-43 failed: BackoffLimitExceeded"), "{out}");
    assert!(
        out.contains("migration 43 failed; schema marked dirty"),
        "{out}"
    );
    assert_eq!(writes(&cluster), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_writes_nothing_and_shows_the_plan_as_json() {
    let (cluster, _served, client, _dir) = stalled_seed().await;
    let (exit, out) = run(client, &["app-deployment", "--dry-run", "--json"]).await;
    assert_eq!(exit, Exit::Ok);
    assert_eq!(
        writes(&cluster),
        Vec::<String>::new(),
        "the request log shows no write"
    );
    let report: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        report["outcome"],
        "dry run: this plan would run; nothing was written"
    );
    // The target is a revision number, not text captured from a log.
    assert_eq!(report["assessment"]["rollback_target"]["id"], json!(1));
    assert_eq!(
        report["plan"]["steps"][2],
        json!({"step": "roll_back", "to": 1, "expected_current": 2})
    );
    // Pods were found through the deployment's ReplicaSets, though they are labelled app=myapp.
    assert_eq!(
        report["assessment"]["snapshot"]["pods"]
            .as_array()
            .unwrap()
            .len(),
        8
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_terminal_or_yes_nothing_is_written_and_zero_pods_divide_nothing() {
    let (cluster, _served, client, _dir) = stalled_seed().await;
    // Pointed at a cluster by mistake, with no terminal and no --yes: in every mode it shows the
    // plan and refuses to write.
    for mode in ["auto", "manual"] {
        let (exit, out) = run(client.clone(), &["app-deployment", "--strategy", mode]).await;
        assert_eq!(exit, Exit::Refused, "{mode}: {out}");
        assert!(
            out.starts_with(
                "refusing to write: there is no terminal to confirm on; run again with --yes"
            ),
            "{mode}: {out}"
        );
        assert!(
            out.contains("roll back to revision 1"),
            "{mode}: the plan is shown: {out}"
        );
    }
    assert_eq!(writes(&cluster), Vec::<String>::new());

    cluster
        .edit("default", "app-deployment", |d: &mut Deployment| {
            let spec = d.spec.as_mut().unwrap();
            spec.replicas = Some(0);
            spec.template.spec.as_mut().unwrap().containers[0].image = Some("app:v2.3.1".into());
        })
        .unwrap();
    eventually("the deployment to scale to zero", || {
        cluster
            .get("apps/v1", "Deployment", "default", "app-deployment")
            .is_ok_and(|d| {
                d["status"].get("replicas").is_none()
                    && d["status"]["observedGeneration"] == d["metadata"]["generation"]
            })
    })
    .await;
    let (exit, out) = run(client, &["app-deployment", "--json"]).await;
    assert_eq!(exit, Exit::Ok, "{out}");
    let report: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["outcome"], "healthy; nothing to roll back");
    assert_eq!(report["assessment"]["healthy_fraction"], Value::Null);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blue_green_switches_the_selector_back_to_a_ready_stable_side() {
    let (cluster, _served, client, _dir) = served("seed-blue-green").await;
    let args = [
        "myapp-green",
        "--strategy",
        "blue-green",
        "--service",
        "myapp-service",
        "--stable",
        "blue",
        "--candidate",
        "green",
    ];
    let (exit, out) = run(client.clone(), &args).await;
    assert_eq!(
        (exit, out.trim()),
        (
            Exit::Ok,
            "default/myapp-green: traffic is already on version=blue (service default/myapp-service)"
        )
    );
    // A bad cutover to green; then the emergency switch back.
    cluster
        .edit("default", "myapp-service", |s: &mut Service| {
            let selector = s.spec.as_mut().unwrap().selector.as_mut().unwrap();
            selector.insert("version".into(), "green".into());
        })
        .unwrap();
    eventually("the endpoints to follow the green selector", || {
        cluster
            .get("v1", "Endpoints", "default", "myapp-service")
            .is_ok_and(|e| e.to_string().contains("myapp-green"))
    })
    .await;
    cluster.clear_requests();
    let (exit, out) = run(client.clone(), &args).await;
    assert_eq!(exit, Exit::Refused, "no consent, no write: {out}");
    assert_eq!(writes(&cluster), Vec::<String>::new());
    let consented: Vec<&str> = args.iter().copied().chain(["--yes"]).collect();
    let (exit, out) = run(client, &consented).await;
    assert_eq!(exit, Exit::Ok, "{out}");
    let service = cluster
        .get("v1", "Service", "default", "myapp-service")
        .unwrap();
    assert_eq!(
        service["spec"]["selector"],
        json!({"app": "myapp", "version": "blue"})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_istio_route_is_put_back_on_the_stable_subset_with_consent_and_a_dry_run_writes_nothing()
{
    let (cluster, _served, client, _dir) = served("seed-istio-canary").await;
    let weights = |cluster: &FakeCluster| {
        let vs = cluster
            .get(
                "networking.istio.io/v1",
                "VirtualService",
                "default",
                "myapp",
            )
            .unwrap();
        (
            vs["spec"]["http"][1]["route"][0]["weight"].clone(),
            vs["spec"]["http"][1]["route"][1]["weight"].clone(),
        )
    };
    // The canary got half the traffic, by hand.
    let mut vs = cluster
        .get(
            "networking.istio.io/v1",
            "VirtualService",
            "default",
            "myapp",
        )
        .unwrap();
    vs["spec"]["http"][1]["route"][0]["weight"] = json!(50);
    vs["spec"]["http"][1]["route"][1]["weight"] = json!(50);
    cluster.replace(vs).unwrap();
    eventually("the canary's pods to be ready", || {
        cluster
            .get("apps/v1", "Deployment", "default", "app-canary")
            .is_ok_and(|d| d["status"]["readyReplicas"] == json!(3))
    })
    .await;
    let args = [
        "app-canary",
        "--strategy",
        "blue-green",
        "--virtual-service",
        "myapp",
        "--route",
        "primary",
        "--stable",
        "stable",
    ];
    cluster.clear_requests();
    let dry: Vec<&str> = args.iter().copied().chain(["--dry-run"]).collect();
    let (exit, out) = run(client.clone(), &dry).await;
    assert_eq!(
        (exit, out.trim()),
        (
            Exit::Ok,
            "dry run: would set virtualservice default/myapp from canary=50%, stable=50% to canary=0%, stable=100%; nothing was written"
        )
    );
    let (exit, out) = run(client.clone(), &args).await;
    assert_eq!(exit, Exit::Refused, "no consent, no write: {out}");
    assert_eq!(writes(&cluster), Vec::<String>::new());
    assert_eq!(weights(&cluster), (json!(50), json!(50)));

    let consented: Vec<&str> = args.iter().copied().chain(["--yes"]).collect();
    let (exit, out) = run(client.clone(), &consented).await;
    assert_eq!(exit, Exit::Ok, "{out}");
    assert!(out.contains("applied by the mesh"), "{out}");
    assert_eq!(weights(&cluster), (json!(100), json!(0)));
    // Run twice: nothing more to do, nothing written.
    cluster.clear_requests();
    let (exit, out) = run(client.clone(), &consented).await;
    assert_eq!(exit, Exit::Ok, "{out}");
    assert!(out.contains("already on subset stable"), "{out}");
    assert!(
        writes(&cluster)
            .iter()
            .all(|w| !w.contains("virtualservices")),
        "{:?}",
        writes(&cluster)
    );

    // A subset the route does not have is named, and nothing is written.
    let wrong: Vec<&str> = [
        "app-canary",
        "--strategy",
        "blue-green",
        "--virtual-service",
        "myapp",
        "--stable",
        "stable",
    ]
    .to_vec();
    let (exit, out) = run(client, &wrong).await;
    assert_eq!(exit, Exit::Usage, "{out}");
    assert!(out.contains("canary-header, primary"), "{out}");
}

#[test]
fn arguments_are_positional_and_validated() {
    let parsed = options(&["web", "-n", "shop", "--max-rollback-time", "10m", "--yes"]);
    assert_eq!(
        (
            parsed.deployment.as_str(),
            parsed.namespace.as_str(),
            parsed.max_rollback_time,
            parsed.yes
        ),
        ("web", "shop", Duration::from_secs(600), true)
    );
    // Bad input: a clear message naming what was wrong, before any request is made.
    let cases: &[(&[&str], &str)] = &[
        (&[], "the following required arguments were not provided"),
        (&["a", "b"], "unexpected argument 'b'"),
        (
            &["app-deployment?x=1"],
            "\"app-deployment?x=1\" is not a valid name",
        ),
        (&["App"], "\"App\" is not a valid name"),
        (&["-web"], "unexpected argument '-w'"),
        (&["web-"], "\"web-\" is not a valid name"),
        (&["a/b"], "\"a/b\" is not a valid name"),
        (&["../kube-system/secrets"], "is not a valid name"),
        (&["web%2F..%2Fx"], "is not a valid name"),
        (&[&"x".repeat(64)], "at most 63 characters"),
        (&["web", "-n", "Shop"], "\"Shop\" is not a valid name"),
        (&["web", "-n", ""], "\"\" is not a valid name"),
        (
            &["web", "--max-rollback-time", "0s"],
            "0s is too short: a recovery needs at least 1s",
        ),
        (&["web", "--max-rollback-time", "1ms"], "1ms is too short"),
        (
            &["web", "--service", "myapp"],
            "--service switches traffic, which only --strategy blue-green does",
        ),
        (
            &[
                "web",
                "--strategy",
                "manual",
                "--virtual-service",
                "vs",
                "--stable",
                "s",
            ],
            "--virtual-service switches traffic, which only --strategy blue-green does; with --strategy manual it would be ignored",
        ),
        (&["web", "--stable", "blue"], "--stable switches traffic"),
        (
            &["web", "--selector-key", "track"],
            "--selector-key switches traffic",
        ),
        (
            &[
                "web",
                "--strategy",
                "blue-green",
                "--service",
                "svc",
                "--stable",
                "blue",
                "--candidate",
                "green",
                "--resume-paused",
            ],
            "--resume-paused applies to rolling a deployment back",
        ),
        (
            &[
                "web",
                "--strategy",
                "blue-green",
                "--service",
                "svc",
                "--stable",
                "blue",
                "--candidate",
                "green",
                "--lease-ttl",
                "5s",
            ],
            "--lease-ttl applies to rolling a deployment back",
        ),
        (
            &[
                "shop",
                "--strategy",
                "blue-green",
                "--alb-listener",
                "arn:aws:elasticloadbalancing:eu-west-1:123456789012:listener/app/shop/zz/1",
                "--stable",
                "a",
                "--candidate",
                "b",
            ],
            "is not an ALB listener ARN (its resource is not listener/app/NAME/ followed by hexadecimal IDs)",
        ),
        (
            &[
                "shop",
                "--strategy",
                "blue-green",
                "--alb-rule",
                "arn:aws:elasticloadbalancing:eu-west-1:123456789012:listener/app/shop/50dc6c495c0c9188/f2f7dc8efc522ab2",
                "--stable",
                "a",
                "--candidate",
                "b",
            ],
            "is not an ALB listener-rule ARN",
        ),
        (
            &[
                "shop",
                "--strategy",
                "blue-green",
                "--alb-listener",
                "not-an-arn",
                "--stable",
                "a",
                "--candidate",
                "b",
            ],
            "is not an ALB listener ARN (it has fewer than six ':'-separated parts)",
        ),
        (
            &[
                "shop",
                "--strategy",
                "blue-green",
                "--alb-listener",
                "arn:aws:elasticloadbalancing:eu-west-1:1234:listener/app/shop/50dc6c495c0c9188/f2f7dc8efc522ab2",
                "--stable",
                "a",
                "--candidate",
                "b",
            ],
            "its account is not 12 digits",
        ),
        (
            &[
                "shop",
                "--strategy",
                "blue-green",
                "--alb-listener",
                "arn:aws:elasticloadbalancing:eu-west-1:123456789012:listener/app/shop/50dc6c495c0c9188/f2f7dc8efc522ab2",
                "--stable",
                "a",
                "--candidate",
                "b",
                "--kubeconfig",
                "/x",
            ],
            "use the AWS configuration, not a kubeconfig",
        ),
        (
            &["web", "--max-rollback-time", "10"],
            "is not a duration like 90s",
        ),
        (
            &["web", "--max-rollback-time", "-5s"],
            "unexpected argument '-5'",
        ),
        (
            &["web", "--max-rollback-time", "99999999999999999h"],
            "is not a duration",
        ),
        (
            &["web", "--max-rollback-time", "25h"],
            "longer than the 24h",
        ),
        (
            &["web", "--strategy", "yolo"],
            "invalid value 'yolo' for '--strategy",
        ),
        (
            &["web", "--strategy", "blue-green", "--stable", "blue"],
            "--service <SERVICE> (a Service selector), --virtual-service <NAME> (an Istio route), --http-route <NAME> (a Gateway API route) or --alb-listener",
        ),
        (
            &["web", "--strategy", "blue-green", "--service", "svc"],
            "--stable <STABLE>",
        ),
        (
            &[
                "web",
                "--strategy",
                "blue-green",
                "--service",
                "svc",
                "--stable",
                "blue",
            ],
            "--candidate <CANDIDATE>",
        ),
        (
            &["web", "--strategy", "blue-green", "--virtual-service", "vs"],
            "--stable <STABLE>",
        ),
        (
            &["web", "--route", "primary"],
            "--virtual-service <VIRTUAL_SERVICE>",
        ),
        (
            &["web", "--service", "Bad_Name"],
            "\"Bad_Name\" is not a valid name",
        ),
        (&["web", "--unknown"], "unexpected argument '--unknown'"),
    ];
    for (args, expected) in cases {
        let err = emergency::parse(args.iter().map(|a| (*a).to_owned())).unwrap_err();
        let text = err.to_string();
        assert!(text.contains(expected), "{args:?}: {text}");
        assert_eq!(err.exit_code(), 2, "{args:?}");
    }
    // --help explains every option, and exits 0.
    let help = emergency::parse(["--help".to_owned()]).unwrap_err();
    assert_eq!(help.exit_code(), 0);
    let help = help.to_string();
    for option in [
        "--namespace",
        "--strategy",
        "--max-rollback-time",
        "--dry-run",
        "--yes",
        "--json",
        "--service",
        "--selector-key",
        "--stable",
        "--candidate",
        "Exit codes",
    ] {
        assert!(
            help.contains(option),
            "{option} missing from --help:\n{help}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rollback_reads_each_object_once_and_waits_on_a_watch() {
    let (cluster, _served, client, _dir) = stalled_seed().await;
    let (exit, out) = run(
        client,
        &["app-deployment", "--yes", "--max-rollback-time", "120s"],
    )
    .await;
    assert_eq!(exit, Exit::Ok, "{out}");
    let requests = cluster.requests();
    let log: Vec<String> = requests
        .iter()
        .map(|r| {
            let watch = if r.query.contains("watch=true") {
                " (watch)"
            } else {
                ""
            };
            format!("{} {}{watch}", r.method, r.path)
        })
        .collect();
    let deployment = "/apis/apps/v1/namespaces/default/deployments/app-deployment";
    let lease = "/apis/coordination.k8s.io/v1/namespaces/default/leases";
    assert_eq!(
        log,
        [
            // The assessment: the deployment, its ReplicaSets, their pods, warnings about pods.
            format!("GET {deployment}"),
            "GET /apis/apps/v1/namespaces/default/replicasets".to_owned(),
            "GET /api/v1/namespaces/default/pods".to_owned(),
            "GET /api/v1/namespaces/default/events".to_owned(),
            // The migration gate, decided once: the plan runs at once.
            "GET /api/v1/namespaces/default/configmaps/schema-version".to_owned(),
            "GET /apis/batch/v1/namespaces/default/jobs".to_owned(),
            // One actor: the lease, read and taken.
            format!("GET {lease}/deployguard-app-deployment"),
            format!("POST {lease}"),
            // Intent, rollback (both conditional on the generation read), then the wait on a
            // watch, the outcome, and the lease let go from what was written.
            format!("PATCH {deployment}"),
            format!("PATCH {deployment}"),
            "GET /apis/apps/v1/namespaces/default/deployments (watch)".to_owned(),
            format!("PATCH {deployment}"),
            format!("PUT {lease}/deployguard-app-deployment"),
        ],
        "{log:#?}"
    );
    let reads = requests.iter().filter(|r| !r.verb.is_write()).count();
    assert_eq!(reads, 8);
    let events = requests
        .iter()
        .find(|r| r.path.ends_with("/events"))
        .unwrap();
    assert_eq!(
        events.query,
        "&fieldSelector=involvedObject.kind%3DPod%2Ctype%3DWarning"
    );
}

/// A progress writer whose text a test reads afterwards.
#[derive(Clone, Default)]
struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_route_is_put_back_on_the_stable_service_with_consent_and_a_dry_run_writes_nothing()
 {
    let (cluster, _served, client, _dir) = served("gateway-canary").await;
    let route = |cluster: &FakeCluster| {
        cluster
            .get(
                "gateway.networking.k8s.io/v1",
                "HTTPRoute",
                "default",
                "myapp",
            )
            .unwrap()
    };
    let weights = |cluster: &FakeCluster| {
        let route = route(cluster);
        (
            route["spec"]["rules"][0]["backendRefs"][0]["weight"].clone(),
            route["spec"]["rules"][0]["backendRefs"][1]["weight"].clone(),
        )
    };
    // The canary got a third of the traffic, by hand.
    let mut edited = route(&cluster);
    edited["spec"]["rules"][0]["backendRefs"][0]["weight"] = json!(2);
    edited["spec"]["rules"][0]["backendRefs"][1]["weight"] = json!(1);
    cluster.replace(edited).unwrap();
    eventually("the canary's pods to be ready", || {
        cluster
            .get("apps/v1", "Deployment", "default", "app-canary")
            .is_ok_and(|d| d["status"]["readyReplicas"] == json!(3))
    })
    .await;
    let args = [
        "app-canary",
        "--strategy",
        "blue-green",
        "--http-route",
        "myapp",
        "--rule",
        "primary",
        "--stable",
        "app-stable",
    ];
    // Relative weights that are no whole percentages are named, and nothing is written.
    cluster.clear_requests();
    let (exit, out) = run(client.clone(), &args).await;
    assert_eq!(exit, Exit::Failed, "{out}");
    assert!(out.contains("not whole percentages"), "{out}");
    assert_eq!(writes(&cluster), Vec::<String>::new());
    let mut edited = route(&cluster);
    edited["spec"]["rules"][0]["backendRefs"][0]["weight"] = json!(1);
    cluster.replace(edited).unwrap();

    let dry: Vec<&str> = args.iter().copied().chain(["--dry-run"]).collect();
    let (exit, out) = run(client.clone(), &dry).await;
    assert_eq!(
        (exit, out.trim()),
        (
            Exit::Ok,
            "dry run: would set httproute default/myapp from app-canary=50%, app-stable=50% to app-canary=0%, app-stable=100%; nothing was written"
        )
    );
    let (exit, out) = run(client.clone(), &args).await;
    assert_eq!(exit, Exit::Refused, "no consent, no write: {out}");
    assert_eq!(writes(&cluster), Vec::<String>::new());
    assert_eq!(weights(&cluster), (json!(1), json!(1)));

    let consented: Vec<&str> = args.iter().copied().chain(["--yes"]).collect();
    let (exit, out) = run(client.clone(), &consented).await;
    assert_eq!(exit, Exit::Ok, "{out}");
    assert!(out.contains("accepted by the gateway"), "{out}");
    assert_eq!(weights(&cluster), (json!(100), json!(0)));
    // Run twice: nothing more to do, nothing written.
    cluster.clear_requests();
    let (exit, out) = run(client.clone(), &consented).await;
    assert_eq!(exit, Exit::Ok, "{out}");
    assert!(out.contains("already on Service app-stable"), "{out}");
    assert!(
        writes(&cluster).iter().all(|w| !w.contains("httproutes")),
        "{:?}",
        writes(&cluster)
    );
    // A rule the route does not have is named, and nothing is written.
    let wrong: Vec<&str> = args
        .iter()
        .map(|a| if *a == "primary" { "canary" } else { a })
        .chain(["--yes"])
        .collect();
    let (exit, out) = run(client.clone(), &wrong).await;
    assert_eq!(exit, Exit::Usage, "{out}");
    assert!(
        out.contains("rule \"canary\" is not in it (its rules: primary)"),
        "{out}"
    );
}
