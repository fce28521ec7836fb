//! What kubectl users do every day, with the real kubectl against the simulated cluster: create,
//! apply, validation, watches, deletion, and the defaults kubectl prints. Each test runs the
//! oldest and newest kubectl this project supports, and the versions between where they differ.
#![cfg(feature = "cluster")]

use deployguard_testkit::cluster::kubectl::Kubectl;
use deployguard_testkit::cluster::{FakeCluster, ServedCluster};

/// Runs `test` once per kubectl minor version, each on a fresh served cluster.
async fn each_version(minors: &[u32], test: impl AsyncFn(&FakeCluster, &ServedCluster, &Kubectl)) {
    for &minor in minors {
        let cluster = FakeCluster::new();
        let served = cluster.serve().await.unwrap();
        let kubectl = Kubectl::version(minor, &served).unwrap();
        test(&cluster, &served, &kubectl).await;
    }
}

/// `kubectl get KIND NAME -o jsonpath=PATH`.
async fn jsonpath(kubectl: &Kubectl, kind: &str, name: &str, path: &str) -> String {
    kubectl
        .ok(&["get", kind, name, "-o", &format!("jsonpath={path}")])
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_create_works_on_every_version_whatever_the_body_encoding() {
    // 1.32 and 1.33 send these bodies as protobuf; 1.27 as JSON.
    each_version(&[27, 32, 33], async |cluster, _, kubectl| {
        for args in [
            &[
                "create",
                "configmap",
                "settings",
                "--from-literal=mode=fast",
            ][..],
            &[
                "create",
                "secret",
                "generic",
                "creds",
                "--from-literal=password=s3cret",
            ],
            &["create", "namespace", "team-a"],
            &[
                "create",
                "deployment",
                "web",
                "--image=nginx:1.27",
                "--replicas=0",
                "--port=80",
            ],
            &[
                "create",
                "job",
                "migrate",
                "--image=busybox:1.36",
                "--",
                "echo",
                "done",
            ],
        ] {
            kubectl.ok(args).await;
        }
        assert_eq!(
            jsonpath(kubectl, "configmap", "settings", "{.data.mode}").await,
            "fast"
        );
        assert_eq!(
            jsonpath(kubectl, "secret", "creds", "{.data.password}").await,
            "czNjcmV0",
            "base64 of the bytes sent"
        );
        assert_eq!(
            jsonpath(kubectl, "namespace", "team-a", "{.metadata.name}").await,
            "team-a"
        );
        let deployment = cluster
            .get("apps/v1", "Deployment", "default", "web")
            .unwrap();
        assert_eq!(
            deployment["spec"]["replicas"], 0,
            "an explicit zero is kept"
        );
        let container = &deployment["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(container["image"], "nginx:1.27");
        assert_eq!(container["ports"][0]["containerPort"], 80);
        assert!(
            container.get("stdin").is_none(),
            "Go's JSON omits empty fields: {container}"
        );
        assert_eq!(deployment["spec"]["selector"]["matchLabels"]["app"], "web");
        let job = cluster
            .get("batch/v1", "Job", "default", "migrate")
            .unwrap();
        assert_eq!(
            job["spec"]["template"]["spec"]["containers"][0]["command"],
            serde_json::json!(["echo", "done"])
        );
        assert_eq!(job["spec"]["template"]["spec"]["restartPolicy"], "Never");
    })
    .await;
}
