//! The operator end to end on the served simulated cluster with the real kubectl: `kubectl
//! apply -f deploy/` and a RolloutGuard guard the seed incident (rolled back) and its healthy
//! twin (promoted); `kubectl get rolloutguards` and `kubectl describe` say what happened; a bad
//! spec shows in status; of two replicas one acts, and when it dies mid-recovery the other
//! finishes the recovery, once.

use std::sync::Arc;
use std::time::Duration;

use deployguard_cli::emergency;

use crate::common::image_and_revision;
use deployguard_cli::operator::{self, OperatorOptions, OperatorState};
use deployguard_core::engine::{EventKind, JournalSink, MemoryJournal};
use deployguard_testkit::cluster::kubectl::Kubectl;
use deployguard_testkit::cluster::wait::until;
use deployguard_testkit::cluster::{FakeCluster, scenarios};

const GUARD: &str = "
apiVersion: deployguard.dev/v1alpha1
kind: RolloutGuard
metadata: {name: app, namespace: default}
spec:
  target: {deployment: app-deployment}
  probes:
    - {name: pods, kind: podReadiness}
  checks:
    - name: ready
      probe: pods
      metric: ready_fraction
      success: {min: 0.5}
      initialDelay: 5s
      interval: 5s
      noData: ignore
  bake: 5s
  patience: {podFailureAfter: 5s}
  deadlines: {recovery: 90s, poll: 500ms}
";

/// The seed incident served, with `kubectl apply -f deploy/` done.
async fn seed_with_deploy() -> (scenarios::ServedSeed, Kubectl) {
    let seed = scenarios::served_seed(10.0).await.unwrap();
    let kubectl = Kubectl::new(&seed.served).unwrap();
    kubectl
        .ok(&["apply", "-f", deploy_dir().to_str().unwrap()])
        .await;
    (seed, kubectl)
}

fn deploy_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy")
}

/// One operator replica, in process, until the returned handle is aborted or dropped.
struct Replica {
    state: Arc<OperatorState>,
    journal: Arc<MemoryJournal>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Replica {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn replica(kubeconfig: &std::path::Path, identity: &str) -> Replica {
    sharded(kubeconfig, identity, None).await
}

/// A replica that guards only RolloutGuards with the labels `selector`.
async fn sharded(kubeconfig: &std::path::Path, identity: &str, selector: Option<&str>) -> Replica {
    let (client, _) = emergency::client_from(kubeconfig).await.unwrap();
    let options = OperatorOptions {
        identity: identity.into(),
        lease_namespace: "deployguard-system".into(),
        lease_ttl: Duration::from_secs(3),
        resync: Duration::from_millis(200),
        selector: selector.map(str::to_owned),
        ..OperatorOptions::default()
    };
    let state = Arc::new(OperatorState::default());
    let journal = Arc::new(MemoryJournal::default());
    let sink: Arc<dyn JournalSink> = Arc::<MemoryJournal>::clone(&journal);
    let running = Arc::clone(&state);
    let task = tokio::spawn(async move {
        operator::run(client, options, running, Some(sink), std::future::pending())
            .await
            .unwrap();
    });
    Replica {
        state,
        journal,
        task,
    }
}

fn acted(journal: &MemoryJournal) -> usize {
    journal
        .events()
        .iter()
        .filter(|e| matches!(e.kind, EventKind::StepStarted { .. }))
        .count()
}

async fn apply(kubectl: &Kubectl, dir: &std::path::Path, manifest: &str) {
    let path = dir.join("guard.yaml");
    std::fs::write(&path, manifest).unwrap();
    kubectl.ok(&["apply", "-f", path.to_str().unwrap()]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_apply_deploy_and_a_rolloutguard_guard_the_seed_and_its_twin() {
    let dir = tempfile::tempdir().unwrap();
    let seed = scenarios::served_seed(10.0).await.unwrap();
    let kubectl = Kubectl::new(&seed.served).unwrap();
    let applied = kubectl
        .ok(&["apply", "-f", deploy_dir().to_str().unwrap()])
        .await;
    assert!(
        applied.contains(
            "customresourcedefinition.apiextensions.k8s.io/rolloutguards.deployguard.dev created"
        ),
        "{applied}"
    );
    apply(&kubectl, dir.path(), GUARD).await;
    let operator = replica(&seed.kubeconfig, "a").await;
    until("the seed rolled back", Duration::from_secs(60), || {
        image_and_revision(&seed.cluster).0 == "app:v2.3.1"
    })
    .await
    .unwrap();
    let mut shown = String::new();
    for _ in 0..100 {
        shown = kubectl.ok(&["get", "rolloutguards"]).await;
        if shown.contains("RolledBack") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        shown.starts_with("NAME") && shown.contains("TARGET") && shown.contains("PHASE"),
        "{shown}"
    );
    assert!(
        shown.contains("app-deployment") && shown.contains("RolledBack") && shown.contains("abort"),
        "{shown}"
    );
    let described = kubectl
        .ok(&["describe", "deployment", "app-deployment"])
        .await;
    assert!(described.contains("RolledBack"), "{described}");
    let mut described = String::new();
    for _ in 0..50 {
        described = kubectl.ok(&["describe", "rolloutguard", "app"]).await;
        if described.contains("RolledBack") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        described.contains("Events:") && described.contains("RolledBack"),
        "{described}"
    );
    let status = kubectl
        .ok(&[
            "get",
            "rolloutguard",
            "app",
            "-o",
            "jsonpath={.status.conditions[0].reason}",
        ])
        .await;
    assert_eq!(status, "SpecRead");
    assert!(
        operator
            .state
            .ready
            .load(std::sync::atomic::Ordering::SeqCst)
    );
    drop(operator);

    // The healthy twin, under the same resource: judged through its bake, then promoted.
    let cluster = FakeCluster::builder()
        .controllers(true)
        .time_scale(10.0)
        .build();
    scenarios::load(&cluster, "healthy-rollout").await.unwrap();
    let served = cluster.serve().await.unwrap();
    let kubeconfig = dir.path().join("healthy");
    served.write_kubeconfig(&kubeconfig).unwrap();
    let kubectl = Kubectl::new(&served).unwrap();
    kubectl
        .ok(&["apply", "-f", deploy_dir().to_str().unwrap()])
        .await;
    apply(&kubectl, dir.path(), GUARD).await;
    // The scenario's own rollout finishes first: the twin is the next one.
    until(
        "the scenario's rollout to finish",
        Duration::from_secs(60),
        || {
            let deployment = cluster.deployment("default", "app-deployment").unwrap();
            let status = deployment.status.clone().unwrap_or_default();
            status.observed_generation == deployment.metadata.generation
                && status.updated_replicas == Some(6)
                && status.available_replicas == Some(6)
                && status.replicas == Some(6)
        },
    )
    .await
    .unwrap();
    let operator = replica(&kubeconfig, "a").await;
    until(
        "the operator to read its resources",
        Duration::from_secs(20),
        || {
            operator
                .state
                .ready
                .load(std::sync::atomic::Ordering::SeqCst)
        },
    )
    .await
    .unwrap();
    // A rollout that starts under the operator's eyes (whatever rolled out before it ran is
    // not its to judge): a healthy version, promoted after its bake.
    kubectl
        .ok(&[
            "set",
            "image",
            "deployment/app-deployment",
            "app=app:v2.3.1",
        ])
        .await;
    let mut shown = String::new();
    for _ in 0..600 {
        shown = kubectl.ok(&["get", "rolloutguards"]).await;
        if shown.contains("Promoted") || shown.contains("Paused") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let message = kubectl
        .ok(&[
            "get",
            "rolloutguard",
            "app",
            "-o",
            "jsonpath={.status.message}",
        ])
        .await;
    assert!(shown.contains("Promoted"), "{shown}\n{message}");
    assert_eq!(image_and_revision(&cluster).0, "app:v2.3.1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spec_the_operator_cannot_use_shows_in_status_and_nothing_is_guarded() {
    let dir = tempfile::tempdir().unwrap();
    let (seed, kubectl) = seed_with_deploy().await;
    // What the CRD's schema can check, the API server refuses: nothing is stored.
    for (bad, field, name) in [
        (
            "interval: 10 fortnights",
            "spec.checks[0].interval",
            "fortnights",
        ),
        (
            "deployment: Not_A_Name",
            "spec.target.deployment",
            "bad-name",
        ),
        ("kind: podReadiness", "spec.probes[0].kind", "bad-kind"),
    ] {
        let original = match field {
            "spec.checks[0].interval" => "interval: 5s",
            "spec.target.deployment" => "deployment: app-deployment",
            _ => "kind: podReadiness",
        };
        let bad = if name == "bad-kind" {
            "kind: podHealth"
        } else {
            bad
        };
        let path = dir.path().join(format!("{name}.yaml"));
        std::fs::write(
            &path,
            GUARD
                .replace(original, bad)
                .replace("name: app,", &format!("name: {name},")),
        )
        .unwrap();
        let refused = kubectl.run(&["apply", "-f", path.to_str().unwrap()]).await;
        assert_ne!(refused.code, 0, "{name}: {}", refused.stdout);
        assert!(
            refused
                .stderr
                .contains(&format!("The RolloutGuard \"{name}\" is invalid: {field}")),
            "{name}: {}",
            refused.stderr
        );
    }
    // What it cannot (a check naming a probe there is not), the operator reports in status.
    apply(
        &kubectl,
        dir.path(),
        &GUARD.replace("probe: pods", "probe: pod"),
    )
    .await;
    let _operator = replica(&seed.kubeconfig, "a").await;
    let mut reason = String::new();
    for _ in 0..100 {
        reason = kubectl
            .ok(&[
                "get",
                "rolloutguard",
                "app",
                "-o",
                "jsonpath={.status.conditions[0].reason}: {.status.conditions[0].message}",
            ])
            .await;
        if reason.starts_with("InvalidSpec") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        reason.starts_with("InvalidSpec: checks[0].probe: \"pod\" is not among the probes"),
        "{reason}"
    );
    let shown = kubectl.ok(&["get", "rolloutguards"]).await;
    assert!(shown.contains("Invalid"), "{shown}");
    // Nothing guarded: the stalled rollout is as it was.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(image_and_revision(&seed.cluster).0, "app:v2.4.0");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn of_two_replicas_one_acts_and_the_other_finishes_its_recovery_once() {
    let dir = tempfile::tempdir().unwrap();
    let seed = scenarios::served_seed(10.0).await.unwrap();
    // Recover at the wall clock's pace, so there is a recovery under way to interrupt.
    seed.cluster.set_time_scale(1.0);
    let kubectl = Kubectl::new(&seed.served).unwrap();
    kubectl
        .ok(&["apply", "-f", deploy_dir().to_str().unwrap()])
        .await;
    let first = replica(&seed.kubeconfig, "first").await;
    until("the first replica to lead", Duration::from_secs(10), || {
        first
            .state
            .leading
            .load(std::sync::atomic::Ordering::SeqCst)
    })
    .await
    .unwrap();
    let second = replica(&seed.kubeconfig, "second").await;
    apply(&kubectl, dir.path(), GUARD).await;
    // The first acts: its recovery is recorded on the Deployment, then it dies.
    until("a recovery under way", Duration::from_secs(60), || {
        acted(&first.journal) >= 3
    })
    .await
    .unwrap();
    assert_eq!(acted(&second.journal), 0, "one replica acts");
    assert!(
        !second
            .state
            .leading
            .load(std::sync::atomic::Ordering::SeqCst)
    );
    drop(first);
    until(
        "the second to finish the recovery",
        Duration::from_secs(90),
        || {
            image_and_revision(&seed.cluster) == ("app:v2.3.1".to_owned(), "3".to_owned())
                && second
                    .journal
                    .events()
                    .iter()
                    .any(|e| matches!(e.kind, EventKind::Finished { .. }))
        },
    )
    .await
    .unwrap();
    assert!(
        second
            .state
            .leading
            .load(std::sync::atomic::Ordering::SeqCst)
    );
    // Exactly one rollback: v2.3.1 is revision 3, not a fourth.
    assert_eq!(
        image_and_revision(&seed.cluster),
        ("app:v2.3.1".to_owned(), "3".to_owned())
    );
}

#[test]
fn the_committed_deploy_folder_is_what_the_code_writes() {
    let mut stale = Vec::new();
    for (file, manifest) in operator::manifests() {
        let path = deploy_dir().join(file);
        let current = serde_json::to_string_pretty(&manifest).unwrap() + "\n";
        if std::env::var_os("UPDATE_EXPECT").is_some() {
            std::fs::write(&path, &current).unwrap();
        }
        if std::fs::read_to_string(&path).unwrap_or_default() != current {
            stale.push(path.display().to_string());
        }
    }
    assert!(
        stale.is_empty(),
        "stale: {stale:?}; run `cargo run -p deployguard-cli --bin deployguard-operator -- --write-manifests deploy`"
    );
}

/// GET `path` from `addr`: the status code and body.
async fn get(addr: &str, path: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Ok(mut socket) = tokio::net::TcpStream::connect(addr).await else {
        return (0, String::new());
    };
    let _ = socket
        .write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
        .await;
    let mut answer = String::new();
    let _ = socket.read_to_string(&mut answer).await;
    let code = answer
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (code, answer)
}

/// The binary as a platform team runs it: serving its probes and metrics, guarding the seed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_binary_serves_its_probes_and_guards_the_seed() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let (seed, kubectl) = seed_with_deploy().await;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_deployguard-operator"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--lease-ttl",
            "3s",
            "--identity",
            "binary",
        ])
        .env("KUBECONFIG", &seed.kubeconfig)
        .env("HOME", dir.path())
        .env_remove("RUST_LOG")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            let _ = sender.send(line);
        }
    });
    let first = receiver.recv_timeout(Duration::from_secs(20)).unwrap();
    let addr = first.rsplit("http://").next().unwrap().trim().to_owned();
    assert!(
        first.contains("deployguard-operator binary on http://"),
        "{first}"
    );
    assert_eq!(get(&addr, "/healthz").await.0, 200);
    apply(&kubectl, dir.path(), GUARD).await;
    let rolled_back = until(
        "the binary to roll the seed back",
        Duration::from_secs(60),
        || image_and_revision(&seed.cluster).0 == "app:v2.3.1",
    )
    .await;
    let (ready, _) = get(&addr, "/readyz").await;
    let (code, metrics) = get(&addr, "/metrics").await;
    let _ = child.kill();
    let _ = child.wait();
    rolled_back.unwrap();
    assert_eq!(ready, 200);
    assert_eq!(code, 200);
    assert!(metrics.contains("deployguard_"), "{metrics}");
    assert_eq!(
        get(&addr, "/nothing").await.0,
        0,
        "stopped with the process"
    );
}

/// A shard guards only its RolloutGuards: one labelled for another shard is left alone, even
/// after the shard has read every resource.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shard_guards_only_the_resources_its_selector_picks() {
    let dir = tempfile::tempdir().unwrap();
    let (seed, kubectl) = seed_with_deploy().await;
    apply(
        &kubectl,
        dir.path(),
        &GUARD.replace(
            "metadata: {name: app, namespace: default}",
            "metadata: {name: app, namespace: default, labels: {team: other}}",
        ),
    )
    .await;
    let shop = sharded(&seed.kubeconfig, "shop", Some("team=shop")).await;
    until(
        "the shard to read its resources",
        Duration::from_secs(20),
        || shop.state.ready.load(std::sync::atomic::Ordering::SeqCst),
    )
    .await
    .unwrap();
    let status = kubectl
        .ok(&["get", "rolloutguard", "app", "-o", "jsonpath={.status}"])
        .await;
    assert_eq!(status, "", "another shard's resource is not touched");
    assert_eq!(acted(&shop.journal), 0);
    // Idle, it reads from its watches: what reaches the server is its lease, nothing polled.
    seed.cluster.clear_requests();
    until("three lease renewals", Duration::from_secs(20), || {
        seed.cluster
            .requests()
            .iter()
            .filter(|r| r.path.contains("/leases/") && r.method == "PUT")
            .count()
            >= 3
    })
    .await
    .unwrap();
    let polled: Vec<String> = seed
        .cluster
        .requests()
        .iter()
        .filter(|r| !r.path.contains("/leases/") && !r.query.contains("watch=true"))
        .map(|r| format!("{} {}?{}", r.method, r.path, r.query))
        .collect();
    assert!(polled.is_empty(), "{polled:?}");
    // Labelled for it, it is guarded.
    kubectl
        .ok(&["label", "rolloutguard", "app", "team=shop", "--overwrite"])
        .await;
    until(
        "the shard to roll the seed back",
        Duration::from_secs(60),
        || image_and_revision(&seed.cluster).0 == "app:v2.3.1",
    )
    .await
    .unwrap();
}
