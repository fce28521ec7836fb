//! The emergency-rollback command against the simulated cluster served over HTTP, with a client
//! built from a kubeconfig, as an operator would run it.

use std::time::Duration;

use deployguard_examples::emergency::{self, Confirm, Exit, Options};
use deployguard_testkit::cluster::{FakeCluster, ServedCluster, scenarios};
use serde_json::{Value, json};

struct Nobody;

impl Confirm for Nobody {
    fn confirm(&mut self, _: &str) -> Option<bool> {
        None
    }
}

/// Waits (real time: the cluster is served to real clients) until `ready` holds, up to 30 s.
async fn until(what: &str, mut ready: impl FnMut() -> bool) {
    for _ in 0..600 {
        if ready() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}


/// Read-modify-write, again on a conflict: the controllers write status concurrently.
fn edit(
    cluster: &FakeCluster,
    api_version: &str,
    kind: &str,
    name: &str,
    change: impl Fn(&mut Value),
) {
    for _ in 0..20 {
        let mut object = cluster.get(api_version, kind, "default", name).unwrap();
        change(&mut object);
        match cluster.replace(object) {
            Ok(_) => return,
            Err(err) if err.code == 409 => continue,
            Err(err) => panic!("{err}"),
        }
    }
    panic!("{kind} {name} kept changing");
}

async fn served(scenario: &str) -> (FakeCluster, ServedCluster, kube::Client, tempfile::TempDir) {
    let cluster = FakeCluster::with_controllers();
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
    let (cluster, served, client, dir) = served("seed-rolling-failure").await;
    until("the rollout to stall", || scenarios::seed_has_stalled(&cluster)).await;
    cluster.clear_requests();
    let (exit, out) = run(
        client,
        &["app-deployment", "--yes", "--max-rollback-time", "120s"],
    )
    .await;
    assert_eq!(exit, Exit::Ok, "{out}");
    assert_eq!(out.trim(), "rolled back: 6/6 ready, 6 available");
    let d = cluster
        .get("apps/v1", "Deployment", "default", "app-deployment")
        .unwrap();
    assert_eq!(
        d["spec"]["template"]["spec"]["containers"][0]["image"],
        "app:v2.3.1"
    );
    assert_eq!(d["status"]["readyReplicas"], 6);
    // The only writes: the guard's markers and one conditional rollback patch. No pod was
    // created to test health (the script pulled an unpinned curl image for that).
    let writes = writes(&cluster);
    assert!(
        writes
            .iter()
            .all(|w| w
                .starts_with("PATCH /apis/apps/v1/namespaces/default/deployments/app-deployment")),
        "{writes:?}"
    );
    let kubectl = std::process::Command::new("kubectl")
        .args(["rollout", "history", "deployment/app-deployment"])
        .env("KUBECONFIG", dir.path().join("kubeconfig"))
        .arg("--cache-dir")
        .arg(dir.path().join("cache"))
        .output()
        .unwrap();
    let history = String::from_utf8_lossy(&kubectl.stdout);
    let rows: Vec<String> = history
        .lines()
        .skip(2)
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    assert_eq!(
        rows,
        ["2 deploy app:v2.4.0", "3 deploy app:v2.3.1"],
        "{history}"
    );
    drop(served);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_migration_refuses_the_rollback_and_says_why() {
    let (cluster, _served, client, _dir) = served("migration-job-failed").await;
    until("the migration Job to fail", || {
        cluster
            .get("batch/v1", "Job", "default", "db-migrate-43")
            .is_ok_and(|j| j["status"]["failed"] == 1)
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
    let (cluster, _served, client, _dir) = served("seed-rolling-failure").await;
    until("the rollout to stall", || scenarios::seed_has_stalled(&cluster)).await;
    cluster.clear_requests();
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
async fn manual_mode_refuses_without_a_terminal_and_zero_pods_divide_nothing() {
    let (cluster, _served, client, _dir) = served("seed-rolling-failure").await;
    until("the rollout to stall", || scenarios::seed_has_stalled(&cluster)).await;
    cluster.clear_requests();
    let (exit, out) = run(client.clone(), &["app-deployment", "--strategy", "manual"]).await;
    assert_eq!(exit, Exit::Refused);
    assert!(
        out.starts_with("refusing: --strategy manual needs a terminal to confirm on, or --yes"),
        "{out}"
    );
    assert_eq!(writes(&cluster), Vec::<String>::new());

    edit(&cluster, "apps/v1", "Deployment", "app-deployment", |d| {
        d["spec"]["replicas"] = json!(0);
        d["spec"]["template"]["spec"]["containers"][0]["image"] = json!("app:v2.3.1");
    });
    until("the deployment to scale to zero", || {
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
            "default/myapp-green: traffic is already on the stable side (version=blue)"
        )
    );
    // A bad cutover to green; then the emergency switch back.
    edit(&cluster, "v1", "Service", "myapp-service", |s| {
        s["spec"]["selector"]["version"] = json!("green");
    });
    until("the endpoints to follow the green selector", || {
        cluster
            .get("v1", "Endpoints", "default", "myapp-service")
            .is_ok_and(|e| e.to_string().contains("myapp-green"))
    })
    .await;
    let (exit, out) = run(client, &args).await;
    assert_eq!(exit, Exit::Ok, "{out}");
    let service = cluster
        .get("v1", "Service", "default", "myapp-service")
        .unwrap();
    assert_eq!(
        service["spec"]["selector"],
        json!({"app": "myapp", "version": "blue"})
    );
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
    let parse = |args: &[&str]| emergency::parse(args.iter().map(|a| (*a).to_owned())).unwrap_err();
    assert_eq!(parse(&[]), "DEPLOYMENT is required");
    assert_eq!(
        parse(&["a", "b"]),
        "unexpected argument \"b\": one DEPLOYMENT only"
    );
    assert_eq!(
        parse(&["a", "--max-rollback-time", "0s"]),
        "--max-rollback-time: must be greater than zero"
    );
    assert_eq!(
        parse(&["a", "--strategy", "yolo"]),
        "--strategy: \"yolo\" is not auto, manual or blue-green"
    );
    assert_eq!(
        parse(&["a", "--strategy", "blue-green"]),
        "--strategy blue-green needs --service, --stable and --candidate"
    );
}
