//! kubectl 1.27 and 1.33 `rollout` commands, `set image` and `describe` against the served
//! cluster with its controllers running, and the seed's emergency-rollback script doing what it
//! would do against a real cluster. kubectl is a real process, so the cluster runs on the wall
//! clock, ten times as fast (pods start and deadlines pass in a tenth of the time).
#![cfg(feature = "cluster")]

use std::process::Command;

use deployguard_testkit::cluster::kubectl::Kubectl;
use deployguard_testkit::cluster::wait::eventually;
use deployguard_testkit::cluster::{FakeCluster, ServedCluster, scenarios};

/// The images these tests run (the simulated registry pulls nothing else).
const IMAGES: [&str; 3] = ["app:v2.3.1", "app:v2.4.0", "app:v2.5.0"];

async fn cluster(scenario: &str) -> (FakeCluster, ServedCluster) {
    let cluster = FakeCluster::builder()
        .controllers(true)
        .time_scale(10.0)
        .images(IMAGES)
        .build();
    scenarios::load(&cluster, scenario).await.unwrap();
    let served = cluster.serve().await.unwrap();
    (cluster, served)
}

async fn each_version(scenario: &str, test: impl AsyncFn(&FakeCluster, &Kubectl)) {
    for minor in [27, 33] {
        let (cluster, served) = cluster(scenario).await;
        let kubectl = Kubectl::version(minor, &served).unwrap();
        test(&cluster, &kubectl).await;
    }
}

fn revisions(history: &str) -> Vec<String> {
    history
        .lines()
        .skip_while(|l| !l.starts_with("REVISION"))
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollout_status_success_and_failure_paths() {
    each_version("healthy-rollout", async |_, kubectl| {
        let out = kubectl
            .run(&[
                "rollout",
                "status",
                "deployment/app-deployment",
                "--timeout=60s",
            ])
            .await;
        assert_eq!(out.code, 0, "{}", out.stderr);
        assert_eq!(
            out.stdout.lines().last(),
            Some("deployment \"app-deployment\" successfully rolled out"),
            "{}",
            out.stdout
        );
    })
    .await;
    each_version("seed-rolling-failure", async |cluster, kubectl| {
        eventually("the rollout to stall", || scenarios::seed_has_stalled(cluster)).await;
        let out = kubectl.run(&["rollout", "status", "deployment/app-deployment", "--timeout=2s"]).await;
        assert_eq!(out.code, 1);
        assert_eq!(
            out.stdout.lines().next(),
            Some("Waiting for deployment \"app-deployment\" rollout to finish: 3 out of 6 new replicas have been updated...")
        );
        assert_eq!(out.stderr.trim(), "error: timed out waiting for the condition");
        // With a short progress deadline the controller gives up, and so does kubectl.
        kubectl.ok(&["patch", "deployment", "app-deployment", "-p", r#"{"spec":{"progressDeadlineSeconds":2}}"#]).await;
        eventually("the progress deadline to pass", || {
            cluster.get("apps/v1", "Deployment", "default", "app-deployment").is_ok_and(|d| d.to_string().contains("ProgressDeadlineExceeded"))
        })
        .await;
        let out = kubectl.run(&["rollout", "status", "deployment/app-deployment", "--timeout=10s"]).await;
        assert_eq!(out.code, 1, "{}", out.stdout);
        assert_eq!(out.stderr.trim(), "error: deployment \"app-deployment\" exceeded its progress deadline");
        let missing = kubectl.run(&["rollout", "status", "deployment/nope"]).await;
        assert_eq!((missing.code, missing.stderr.trim()), (1, "Error from server (NotFound): deployments.apps \"nope\" not found"));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_undo_renumbers_and_skips_a_matching_template() {
    each_version("seed-rolling-failure", async |cluster, kubectl| {
        eventually("the rollout to stall", || scenarios::seed_has_stalled(cluster)).await;
        let history = kubectl.ok(&["rollout", "history", "deployment/app-deployment"]).await;
        assert_eq!(revisions(&history), ["1 deploy app:v2.3.1", "2 deploy app:v2.4.0"]);
        let detail = kubectl.ok(&["rollout", "history", "deployment/app-deployment", "--revision=2"]).await;
        assert!(detail.contains("app:v2.4.0") && detail.contains("revision #2"), "{detail}");

        let undo = kubectl.ok(&["rollout", "undo", "deployment/app-deployment"]).await;
        assert_eq!(undo.trim(), "deployment.apps/app-deployment rolled back");
        let status = kubectl.run(&["rollout", "status", "deployment/app-deployment", "--timeout=60s"]).await;
        assert_eq!(status.code, 0, "{}{}", status.stdout, status.stderr);
        // Revision 1 came back as 3.
        let history = kubectl.ok(&["rollout", "history", "deployment/app-deployment"]).await;
        assert_eq!(revisions(&history), ["2 deploy app:v2.4.0", "3 deploy app:v2.3.1"]);
        let image = kubectl.ok(&["get", "deployment", "app-deployment", "-o", "jsonpath={.spec.template.spec.containers[0].image}"]).await;
        assert_eq!(image, "app:v2.3.1");

        let skipped = kubectl.ok(&["rollout", "undo", "deployment/app-deployment", "--to-revision=3"]).await;
        assert_eq!(skipped.trim(), "deployment.apps/app-deployment skipped rollback (current template already matches revision 3)");
        let missing = kubectl.run(&["rollout", "undo", "deployment/app-deployment", "--to-revision=1"]).await;
        assert_eq!((missing.code, missing.stderr.trim()), (1, "error: unable to find specified revision 1 in history"));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_resume_restart_and_set_image() {
    each_version("healthy-rollout", async |cluster, kubectl| {
        kubectl
            .ok(&[
                "rollout",
                "status",
                "deployment/app-deployment",
                "--timeout=60s",
            ])
            .await;
        assert_eq!(
            kubectl
                .ok(&["rollout", "pause", "deployment/app-deployment"])
                .await
                .trim(),
            "deployment.apps/app-deployment paused"
        );
        let again = kubectl
            .run(&["rollout", "pause", "deployment/app-deployment"])
            .await;
        assert_eq!(
            (again.code, again.stderr.trim()),
            (
                1,
                "error: deployments.apps \"app-deployment\" is already paused"
            )
        );
        let undo = kubectl
            .run(&["rollout", "undo", "deployment/app-deployment"])
            .await;
        assert_eq!(undo.code, 1);
        assert!(
            undo.stderr
                .contains("you cannot rollback a paused deployment"),
            "{}",
            undo.stderr
        );
        // A paused deployment does not start a rollout for a new image.
        let set = kubectl
            .ok(&[
                "set",
                "image",
                "deployment/app-deployment",
                "app=app:v2.5.0",
            ])
            .await;
        assert_eq!(set.trim(), "deployment.apps/app-deployment image updated");
        // Once the controller has observed the new template, a paused deployment still has
        // only its two ReplicaSets.
        eventually("the controller to observe the new template", || {
            cluster
                .get("apps/v1", "Deployment", "default", "app-deployment")
                .is_ok_and(|d| d["status"]["observedGeneration"] == d["metadata"]["generation"])
        })
        .await;
        let sets = kubectl.ok(&["get", "rs", "-o", "name"]).await;
        assert_eq!(sets.lines().count(), 2, "{sets}");

        assert_eq!(
            kubectl
                .ok(&["rollout", "resume", "deployment/app-deployment"])
                .await
                .trim(),
            "deployment.apps/app-deployment resumed"
        );
        let status = kubectl
            .run(&[
                "rollout",
                "status",
                "deployment/app-deployment",
                "--timeout=60s",
            ])
            .await;
        assert_eq!(status.code, 0, "{}{}", status.stdout, status.stderr);
        assert_eq!(
            kubectl
                .ok(&["get", "rs", "-o", "name"])
                .await
                .lines()
                .count(),
            3
        );

        assert_eq!(
            kubectl
                .ok(&["rollout", "restart", "deployment/app-deployment"])
                .await
                .trim(),
            "deployment.apps/app-deployment restarted"
        );
        let status = kubectl
            .run(&[
                "rollout",
                "status",
                "deployment/app-deployment",
                "--timeout=60s",
            ])
            .await;
        assert_eq!(status.code, 0, "{}{}", status.stdout, status.stderr);
        let history = kubectl
            .ok(&["rollout", "history", "deployment/app-deployment"])
            .await;
        assert_eq!(revisions(&history).len(), 4, "{history}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn describe_pod_shows_the_failure_events() {
    each_version("image-pull-failure", async |cluster, kubectl| {
        eventually("pods in ImagePullBackOff", || pods_backing_off(cluster)).await;
        let pods = kubectl.ok(&["get", "pods", "-o", "name"]).await;
        let new_pods: Vec<&str> = pods.lines().collect();
        let described = kubectl.ok(&["describe", "pods"]).await;
        assert!(new_pods.len() >= 6, "{pods}");
        assert!(described.contains("ImagePullBackOff"), "{described}");
        assert!(
            described.contains("Failed to pull image \"app:v2.4.0\""),
            "{described}"
        );
        assert!(
            described.contains("Back-off pulling image \"app:v2.4.0\""),
            "{described}"
        );
    })
    .await;
}

/// The seed's script, as vendored in `tests/fixtures`. When the shared folder sits beside the
/// repository (as on developer machines and CI), the copy must be identical to it.
fn seed_script() -> std::path::PathBuf {
    let manifest = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let vendored = manifest.join("tests/fixtures/emergency_rollback.sh");
    let shared = manifest.join("../../shared/seed/emergency_rollback.sh");
    if shared.is_file() {
        assert_eq!(
            std::fs::read(&shared).unwrap(),
            std::fs::read(&vendored).unwrap(),
            "the vendored seed script differs from shared/"
        );
    }
    vendored
}

/// The script's log files (`deployment_rollback_*.log`) in `dir`.
fn rollback_logs(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("deployment_rollback_"))
        })
        .collect()
}

/// The script writes its log into `/var/log`. So that a test never writes outside its own
/// temporary directory (and never sees another run's logs), the script runs in a private mount
/// namespace where `log_dir` is bind-mounted over `/var/log`.
fn sandboxed_script(log_dir: &std::path::Path) -> Command {
    let mut command = Command::new("unshare");
    command
        .args(["--mount", "--propagation", "private", "sh", "-c"])
        .arg(r#"mount --bind "$1" /var/log && shift && exec bash "$@""#)
        .arg("sh")
        .arg(log_dir)
        .arg(seed_script());
    command
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seed_script_dies_on_its_own_bugs_as_it_would_on_a_real_cluster() {
    let (cluster, served) = cluster("seed-rolling-failure").await;
    eventually("the rollout to stall", || {
        scenarios::seed_has_stalled(&cluster)
    })
    .await;
    let kubectl = Kubectl::version(33, &served).unwrap();
    let log_dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str], env: &[(&str, &str)]| {
        let mut command = sandboxed_script(log_dir.path());
        command
            .args(args)
            .env("KUBECONFIG", kubectl.kubeconfig())
            .env("HOME", kubectl.home());
        for (k, v) in env {
            command.env(k, v);
        }
        command
    };

    // Bug: positional arguments are ignored; only DEPLOYMENT_NAME is read.
    let mut positional = run(&["app-deployment"], &[]);
    let out = tokio::task::spawn_blocking(move || positional.output())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("Usage:"));

    // Bug: pods are looked up by `app=<deployment>`; the seed's pods are labelled `app: myapp`,
    // so none are found and the health percentage divides by zero. The script exits there,
    // before any rollback — against a real cluster it would do exactly the same.
    cluster.clear_requests();
    let mut by_env = run(&[], &[("DEPLOYMENT_NAME", "app-deployment")]);
    let out = tokio::task::spawn_blocking(move || by_env.output())
        .await
        .unwrap()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("Deployment status: 5/6 ready, 3 updated"),
        "{stdout}"
    );
    assert!(stdout.contains("✗ Deployment is not stable: Waiting for deployment \"app-deployment\" rollout to finish: 3 out of 6 new replicas have been updated..."), "{stdout}");
    assert!(
        stdout
            .trim_end()
            .ends_with("Checking deployment health for app-deployment"),
        "{stdout}"
    );
    assert!(stderr.contains("division by 0"), "{stderr}");
    let pod_queries: Vec<String> = cluster
        .requests()
        .iter()
        .filter(|r| r.path.ends_with("/pods"))
        .map(|r| r.query.clone())
        .collect();
    assert!(
        pod_queries
            .iter()
            .any(|q| q.contains("labelSelector=app%3Dapp-deployment")),
        "{pod_queries:?}"
    );
    let writes = cluster
        .requests()
        .iter()
        .filter(|r| r.verb.is_write())
        .count();
    assert_eq!(writes, 0, "nothing was rolled back");
    let image = kubectl
        .ok(&[
            "get",
            "deployment",
            "app-deployment",
            "-o",
            "jsonpath={.spec.template.spec.containers[0].image}",
        ])
        .await;
    assert_eq!(image, "app:v2.4.0");

    // Bug: the log goes to /var/log, which needs root; here that is the sandboxed directory,
    // and this run wrote exactly one log there, which tells the same story as stdout.
    let logs = rollback_logs(log_dir.path());
    assert_eq!(logs.len(), 1, "{logs:?}");
    let log = std::fs::read_to_string(&logs[0]).unwrap();
    assert!(
        log.contains("Checking deployment health for app-deployment"),
        "{log}"
    );
}

/// Whether a pod of the new version waits in ImagePullBackOff, with its BackOff event recorded.
fn pods_backing_off(cluster: &FakeCluster) -> bool {
    let pods = cluster.list("v1", "Pod", "default");
    let events = cluster.list("v1", "Event", "default");
    pods.iter()
        .any(|p| p.to_string().contains("ImagePullBackOff"))
        && events.iter().any(|e| e["reason"] == "BackOff")
}
