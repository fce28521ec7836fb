//! The real kubectl (1.27 and 1.33) against the simulated cluster served on loopback.

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::Duration;

use deployguard_kube_sim::kubectl::Kubectl;
use deployguard_kube_sim::{FakeCluster, Fault, Verb};
use serde_json::json;

fn seed(cluster: &FakeCluster) {
    cluster
        .create(json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}},
            "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "web", "image": "nginx:1.3"}]}}}
        }))
        .unwrap();
    let pod = cluster
        .create(json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "web-abc12", "namespace": "default", "labels": {"app": "web"}},
            "spec": {"containers": [{"name": "web", "image": "nginx:1.3"}]},
            "status": {"phase": "Pending", "containerStatuses": [{"name": "web", "ready": false, "restartCount": 0, "image": "nginx:1.3", "imageID": "",
                "state": {"waiting": {"reason": "ImagePullBackOff", "message": "Back-off pulling image \"nginx:1.3\""}}}]}
        }))
        .unwrap();
    let uid = pod["metadata"]["uid"].as_str().unwrap();
    cluster
        .create(json!({
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"name": "web-abc12.1", "namespace": "default"},
            "involvedObject": {"kind": "Pod", "namespace": "default", "name": "web-abc12", "uid": uid, "apiVersion": "v1", "fieldPath": "spec.containers{web}"},
            "reason": "BackOff", "message": "Back-off pulling image \"nginx:1.3\"", "type": "Warning", "count": 3,
            "source": {"component": "kubelet"},
            "firstTimestamp": "2026-01-01T00:00:00Z", "lastTimestamp": "2026-01-01T00:00:00Z"
        }))
        .unwrap();
}

async fn each_version(test: impl AsyncFn(&FakeCluster, &Kubectl)) {
    for minor in [27, 33] {
        let cluster = FakeCluster::new();
        seed(&cluster);
        let served = cluster.serve().await.unwrap();
        let kubectl = Kubectl::version(minor, &served).unwrap();
        test(&cluster, &kubectl).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_prints_server_side_table_columns_jsonpath_and_yaml() {
    each_version(async |_, kubectl| {
        let table = kubectl.ok(&["get", "deployments"]).await;
        let header: Vec<&str> = table.lines().next().unwrap().split_whitespace().collect();
        assert_eq!(
            header,
            ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"],
            "{table}"
        );
        assert!(table.lines().nth(1).unwrap().starts_with("web"), "{table}");
        assert!(table.contains("0/3"), "{table}");

        let wide = kubectl.ok(&["get", "deploy", "-o", "wide"]).await;
        assert!(
            wide.contains("CONTAINERS") && wide.contains("nginx:1.3") && wide.contains("app=web"),
            "{wide}"
        );

        let pods = kubectl.ok(&["get", "pods"]).await;
        let header: Vec<&str> = pods.lines().next().unwrap().split_whitespace().collect();
        assert_eq!(
            header,
            ["NAME", "READY", "STATUS", "RESTARTS", "AGE"],
            "{pods}"
        );
        assert!(
            pods.contains("ImagePullBackOff") && pods.contains("0/1"),
            "{pods}"
        );

        assert_eq!(
            kubectl
                .ok(&[
                    "get",
                    "deployment",
                    "web",
                    "-o",
                    "jsonpath={.spec.replicas}"
                ])
                .await,
            "3"
        );
        let names = kubectl
            .ok(&[
                "get",
                "pods",
                "-l",
                "app=web",
                "-o",
                "jsonpath={.items[*].metadata.name}",
            ])
            .await;
        assert_eq!(names, "web-abc12");
        let yaml = kubectl
            .ok(&["get", "deployment", "web", "-o", "yaml"])
            .await;
        assert!(
            yaml.contains("kind: Deployment") && yaml.contains("revisionHistoryLimit: 10"),
            "{yaml}"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_object_is_the_real_not_found_error() {
    each_version(async |_, kubectl| {
        let out = kubectl.run(&["get", "deployment", "x"]).await;
        assert_eq!(out.code, 1);
        assert_eq!(
            out.stderr.trim(),
            "Error from server (NotFound): deployments.apps \"x\" not found"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn describe_shows_the_pod_and_its_events() {
    each_version(async |_, kubectl| {
        let pod = kubectl.ok(&["describe", "pod", "web-abc12"]).await;
        assert!(pod.contains("Name:") && pod.contains("web-abc12"), "{pod}");
        assert!(pod.contains("ImagePullBackOff"), "{pod}");
        assert!(
            pod.contains("BackOff") && pod.contains("Back-off pulling image"),
            "events shown: {pod}"
        );
        let deployment = kubectl.ok(&["describe", "deployment", "web"]).await;
        assert!(
            deployment.contains("Replicas:") && deployment.contains("RollingUpdate"),
            "{deployment}"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn patch_scale_annotate_and_delete() {
    each_version(async |cluster, kubectl| {
        let replicas = || cluster.get("apps/v1", "Deployment", "default", "web").unwrap()["spec"]["replicas"].clone();
        let out = kubectl.ok(&["patch", "deployment", "web", "--type", "json", "-p", r#"[{"op":"replace","path":"/spec/replicas","value":2}]"#]).await;
        assert_eq!(out.trim(), "deployment.apps/web patched");
        assert_eq!(replicas(), 2);
        kubectl.ok(&["patch", "deployment", "web", "--type", "merge", "-p", r#"{"spec":{"replicas":4}}"#]).await;
        assert_eq!(replicas(), 4);
        let out = kubectl.ok(&["patch", "deployment", "web", "-p", r#"{"spec":{"template":{"spec":{"containers":[{"name":"web","image":"nginx:1.4"}]}}}}"#]).await;
        assert_eq!(out.trim(), "deployment.apps/web patched");
        let same = kubectl.ok(&["patch", "deployment", "web", "--type", "merge", "-p", r#"{"spec":{"replicas":4}}"#]).await;
        assert_eq!(same.trim(), "deployment.apps/web patched (no change)");
        let image = cluster.get("apps/v1", "Deployment", "default", "web").unwrap()["spec"]["template"]["spec"]["containers"][0]["image"].clone();
        assert_eq!(image, "nginx:1.4");
        let failed = kubectl.run(&["patch", "deployment", "web", "--type", "json", "-p", r#"[{"op":"test","path":"/spec/replicas","value":9}]"#]).await;
        assert_eq!(failed.code, 1, "{}", failed.stderr);

        assert_eq!(kubectl.ok(&["scale", "deployment", "web", "--replicas=6"]).await.trim(), "deployment.apps/web scaled");
        assert_eq!(replicas(), 6);
        // kubectl 1.27 prints "annotate", later versions "annotated": client-side wording.
        let annotated = kubectl.ok(&["annotate", "deployment", "web", "team=payments"]).await;
        assert!(annotated.starts_with("deployment.apps/web annotate"), "{annotated}");
        let generation = cluster.get("apps/v1", "Deployment", "default", "web").unwrap()["metadata"]["generation"].clone();
        assert_eq!(generation, 6, "spec and annotation changes each bump the generation");
        assert_eq!(kubectl.ok(&["delete", "deployment", "web"]).await.trim(), "deployment.apps \"web\" deleted");
        assert!(cluster.get("apps/v1", "Deployment", "default", "web").is_err());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_watch_sees_a_change() {
    each_version(async |cluster, kubectl| {
        let mut child = kubectl
            .command(&[
                "get",
                "deployment",
                "web",
                "--watch",
                "-o",
                "jsonpath={.spec.replicas}{\"\\n\"}",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let reader = tokio::task::spawn_blocking(move || {
            let mut lines = BufReader::new(stdout).lines();
            let first = lines.next().unwrap().unwrap();
            let second = lines.next().unwrap().unwrap();
            (first, second)
        });
        deployguard_kube_sim::wait::eventually("kubectl to start watching", || {
            cluster
                .requests()
                .iter()
                .any(|r| r.path.ends_with("/deployments") && r.query.contains("watch=true"))
        })
        .await;
        kubectl
            .ok(&["scale", "deployment", "web", "--replicas=7"])
            .await;
        let (first, second) = tokio::time::timeout(Duration::from_secs(20), reader)
            .await
            .unwrap()
            .unwrap();
        child.kill().unwrap();
        let _ = child.wait();
        assert_eq!((first.as_str(), second.as_str()), ("3", "7"));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn injected_faults_reach_kubectl() {
    each_version(async |cluster, kubectl| {
        kubectl.ok(&["get", "deployment", "web"]).await; // warm discovery
        cluster.inject(Fault::status(503).on(Verb::Get).resource("deployments"));
        let out = kubectl
            .run(&["get", "deployment", "web", "-o", "name"])
            .await;
        assert_ne!(out.code, 0);
        assert!(
            out.stderr.contains("ServiceUnavailable")
                || out.stderr.contains("503")
                || out.stderr.contains("injected fault"),
            "{}",
            out.stderr
        );
        cluster.clear_faults();
        assert_eq!(
            kubectl
                .ok(&["get", "deployment", "web", "-o", "name"])
                .await
                .trim(),
            "deployment.apps/web"
        );
    })
    .await;
}
