//! What kubectl users do every day, with the real kubectl against the simulated cluster: create,
//! apply, validation, watches, deletion, and the defaults kubectl prints. Each test runs the
//! oldest and newest kubectl this project supports, and the versions between where they differ.

use deployguard_kube_sim::kubectl::Kubectl;
use deployguard_kube_sim::{FakeCluster, ServedCluster};

/// Runs `test` once per kubectl minor version, each on a fresh served cluster.
pub(crate) async fn each_version(
    minors: &[u32],
    test: impl AsyncFn(&FakeCluster, &ServedCluster, &Kubectl),
) {
    for &minor in minors {
        let cluster = FakeCluster::new();
        let served = cluster.serve().await.unwrap();
        let kubectl = Kubectl::version(minor, &served).unwrap();
        test(&cluster, &served, &kubectl).await;
    }
}

/// `kubectl get KIND NAME -o jsonpath=PATH`.
pub(crate) async fn jsonpath(kubectl: &Kubectl, kind: &str, name: &str, path: &str) -> String {
    kubectl
        .ok(&["get", kind, name, "-o", &format!("jsonpath={path}")])
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
pub(crate) async fn kubectl_create_works_on_every_version_whatever_the_body_encoding() {
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

/// A Deployment manifest with one field no Deployment has.
pub(crate) const WITH_UNKNOWN_FIELD: &str = "apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: default}
spec:
  replicas: 0
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: nginx:1.27, bogus: 1}]
";

pub(crate) fn manifest(kubectl: &Kubectl, text: &str) -> String {
    let path = kubectl.home().join("manifest.yaml");
    std::fs::write(&path, text).unwrap();
    path.to_string_lossy().into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
pub(crate) async fn apply_create_replace_and_explain_validate_against_the_servers_openapi() {
    each_version(&[27, 33], async |cluster, _, kubectl| {
        let clean = manifest(kubectl, &WITH_UNKNOWN_FIELD.replace(", bogus: 1", ""));
        assert_eq!(kubectl.ok(&["apply", "-f", &clean]).await.trim(), "deployment.apps/web created");
        assert_eq!(kubectl.ok(&["apply", "-f", &clean]).await.trim(), "deployment.apps/web unchanged");
        assert_eq!(kubectl.ok(&["replace", "-f", &clean]).await.trim(), "deployment.apps/web replaced");
        kubectl.ok(&["delete", "-f", &clean]).await;
        assert_eq!(kubectl.ok(&["create", "-f", &clean]).await.trim(), "deployment.apps/web created");
        kubectl.ok(&["delete", "-f", &clean]).await;

        // Strict (kubectl's default): the server refuses the unknown field, nothing is written.
        let bad = manifest(kubectl, WITH_UNKNOWN_FIELD);
        let refused = kubectl.run(&["apply", "-f", &bad]).await;
        assert_eq!(refused.code, 1);
        assert_eq!(
            refused.stderr.trim(),
            "Error from server (BadRequest): error when creating \"".to_owned() + &bad
                + "\": Deployment in version \"v1\" cannot be handled as a Deployment: strict decoding error: unknown field \"spec.template.spec.containers[0].bogus\""
        );
        assert!(cluster.get("apps/v1", "Deployment", "default", "web").is_err());
        // Warn: dropped, with the server's warning printed.
        let warned = kubectl.run(&["apply", "--validate=warn", "-f", &bad]).await;
        assert_eq!(warned.code, 0, "{}", warned.stderr);
        assert_eq!(warned.stderr.trim(), "Warning: unknown field \"spec.template.spec.containers[0].bogus\"");
        let stored = cluster.get("apps/v1", "Deployment", "default", "web").unwrap();
        assert!(stored["spec"]["template"]["spec"]["containers"][0].get("bogus").is_none());

        let explained = kubectl.ok(&["explain", "deployment.spec.replicas"]).await;
        assert!(explained.contains("FIELD: replicas <integer>") || explained.contains("FIELD:    replicas <integer>"), "{explained}");
        assert!(explained.contains("Number of desired pods"), "{explained}");
        let paths: Vec<String> = cluster.requests().iter().map(|r| r.path.clone()).collect();
        assert!(paths.iter().any(|p| p == "/openapi/v3/apis/apps/v1"), "{paths:?}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
pub(crate) async fn explain_finds_a_custom_resource_by_its_crds_schema() {
    each_version(&[27, 33], async |cluster, _, kubectl| {
        cluster
            .install_istio(deployguard_kube_sim::mesh::MeshConfig::default())
            .unwrap();
        let explained = kubectl.ok(&["explain", "virtualservices"]).await;
        assert!(explained.contains("VirtualService"), "{explained}");
        assert!(explained.contains("networking.istio.io"), "{explained}");
    })
    .await;
}

/// Each version on a fresh cluster whose controllers run ten times as fast as the wall clock.
pub(crate) async fn each_version_running(
    minors: &[u32],
    test: impl AsyncFn(&FakeCluster, &Kubectl),
) {
    for &minor in minors {
        let cluster = FakeCluster::builder()
            .controllers(true)
            .time_scale(10.0)
            .images(["ghcr.io/acme/api:1.4.2"])
            .build();
        let served = cluster.serve().await.unwrap();
        let kubectl = Kubectl::version(minor, &served).unwrap();
        test(&cluster, &kubectl).await;
    }
}

pub(crate) fn pod_waiting_reasons(cluster: &FakeCluster, app: &str) -> Vec<String> {
    cluster
        .pods("default")
        .unwrap_or_default()
        .into_iter()
        .filter(|p| {
            p.metadata
                .labels
                .as_ref()
                .and_then(|l| l.get("app"))
                .map(String::as_str)
                == Some(app)
        })
        .flat_map(|p| {
            p.status
                .and_then(|s| s.container_statuses)
                .unwrap_or_default()
        })
        .filter_map(|c| c.state.and_then(|s| s.waiting).and_then(|w| w.reason))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
pub(crate) async fn only_images_the_registry_holds_run_and_a_typo_fails_to_pull() {
    each_version_running(&[27, 33], async |cluster, kubectl| {
        kubectl.ok(&["create", "deployment", "good", "--image=ghcr.io/acme/api:1.4.2"]).await;
        kubectl.ok(&["create", "deployment", "typo", "--image=ngnix:1.27"]).await;
        let status = kubectl.run(&["rollout", "status", "deployment/good", "--timeout=30s"]).await;
        assert_eq!(status.stdout.trim().lines().last(), Some("deployment \"good\" successfully rolled out"), "{}", status.stderr);

        deployguard_kube_sim::wait::eventually("the typo'd image to back off", || {
            pod_waiting_reasons(cluster, "typo") == ["ImagePullBackOff"]
        })
        .await;
        let pods = kubectl.ok(&["get", "pods", "-l", "app=typo"]).await;
        assert!(pods.contains("ImagePullBackOff") && pods.contains("0/1"), "{pods}");
        let events = kubectl.ok(&["get", "events", "--field-selector", "reason=Failed", "-o", "jsonpath={.items[*].message}"]).await;
        assert!(
            events.contains("Failed to pull image \"ngnix:1.27\": rpc error: code = NotFound desc = failed to pull and unpack image \"docker.io/library/ngnix:1.27\""),
            "{events}"
        );
        let stalled = kubectl.run(&["rollout", "status", "deployment/typo", "--timeout=2s"]).await;
        assert_eq!(stalled.code, 1);
        assert!(stalled.stdout.contains("0 of 1 updated replicas are available"), "{}", stalled.stdout);

        // An image added at run time pulls from then on.
        cluster.add_images(&["ngnix:1.27"]);
        let status = kubectl.run(&["rollout", "status", "deployment/typo", "--timeout=60s"]).await;
        assert_eq!(status.code, 0, "{}{}", status.stdout, status.stderr);
    })
    .await;
}

/// A valid Deployment manifest with `edit` applied to its JSON form, as YAML kubectl reads.
pub(crate) fn deployment_with(edit: impl FnOnce(&mut serde_json::Value)) -> String {
    let mut manifest = serde_json::json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]}}}
    });
    edit(&mut manifest);
    manifest.to_string() // JSON is YAML
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
pub(crate) async fn what_a_real_server_refuses_is_refused_with_its_words_and_nothing_is_written() {
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "both 0",
            deployment_with(
                |d| d["spec"]["strategy"] = serde_json::json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 0}}),
            ),
            "spec.strategy.rollingUpdate.maxUnavailable: Invalid value: intstr.IntOrString{Type:0, IntVal:0, StrVal:\"\"}: may not be 0 when `maxSurge` is 0",
        ),
        (
            "recreate with rollingUpdate",
            deployment_with(|d| {
                d["spec"]["strategy"] =
                    serde_json::json!({"type": "Recreate", "rollingUpdate": {"maxSurge": 1}})
            }),
            "spec.strategy.rollingUpdate: Forbidden: may not be specified when strategy `type` is 'Recreate'",
        ),
        (
            "over 100%",
            deployment_with(
                |d| d["spec"]["strategy"] = serde_json::json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "150%"}}),
            ),
            "spec.strategy.rollingUpdate.maxSurge: Invalid value: \"150%\": must not be greater than 100%",
        ),
        (
            "unknown strategy",
            deployment_with(|d| d["spec"]["strategy"] = serde_json::json!({"type": "BlueGreen"})),
            "spec.strategy.type: Unsupported value: \"BlueGreen\": supported values: \"Recreate\", \"RollingUpdate\"",
        ),
        (
            "pull policy",
            deployment_with(|d| {
                d["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"] =
                    "Sometimes".into()
            }),
            "spec.template.spec.containers[0].imagePullPolicy: Unsupported value: \"Sometimes\": supported values: \"Always\", \"IfNotPresent\", \"Never\"",
        ),
        (
            "no containers",
            deployment_with(|d| {
                d["spec"]["template"]["spec"]["containers"] = serde_json::json!([])
            }),
            "spec.template.spec.containers: Required value",
        ),
        (
            "no image",
            deployment_with(|d| {
                d["spec"]["template"]["spec"]["containers"][0]
                    .as_object_mut()
                    .unwrap()
                    .remove("image");
            }),
            "spec.template.spec.containers[0].image: Required value",
        ),
        (
            "label key",
            deployment_with(|d| d["metadata"]["labels"]["bad key!"] = "x".into()),
            "metadata.labels: Invalid value: \"bad key!\": name part must consist of alphanumeric characters",
        ),
    ];
    each_version(&[27, 33], async |cluster, _, kubectl| {
        for (case, text, words) in &cases {
            let path = manifest(kubectl, text);
            let out = kubectl.run(&["apply", "-f", &path]).await;
            assert_eq!(out.code, 1, "{case}: {}", out.stdout);
            assert!(out.stderr.contains("Deployment \"web\" is invalid") && out.stderr.contains(words), "{case}: {}", out.stderr);
            assert!(cluster.get("apps/v1", "Deployment", "default", "web").is_err(), "{case}: nothing written");
        }
        let huge = format!("{{\"apiVersion\": \"v1\", \"kind\": \"ConfigMap\", \"metadata\": {{\"name\": \"huge\"}}, \"data\": {{\"blob\": \"{}\"}}}}", "x".repeat(3 * 1024 * 1024 + 1));
        let out = kubectl.run(&["create", "--validate=false", "-f", &manifest(kubectl, &huge)]).await;
        assert_eq!(out.code, 1);
        assert!(out.stderr.contains("Request entity too large: limit is 3145728"), "{}", out.stderr);
    })
    .await;
}

#[tokio::test]
pub(crate) async fn a_body_of_another_kind_or_version_than_its_url_is_a_bad_request() {
    let cluster = FakeCluster::new();
    let client = cluster.client();
    for (body, words) in [
        (
            r#"{"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"}}"#,
            "the API version in the data (v1) does not match the expected API version (apps/v1)",
        ),
        (
            r#"{"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": "web"}}"#,
            "the kind in the data (ReplicaSet) does not match the expected kind (Deployment)",
        ),
    ] {
        let request = http::Request::post("/apis/apps/v1/namespaces/default/deployments")
            .header("content-type", "application/json")
            .body(body.as_bytes().to_vec())
            .unwrap();
        let err = client
            .request::<serde_json::Value>(request)
            .await
            .unwrap_err();
        let kube::Error::Api(status) = err else {
            panic!("{err}")
        };
        assert_eq!((status.code, status.message.as_str()), (400, words));
    }
    assert!(
        cluster
            .get("apps/v1", "Deployment", "default", "web")
            .is_err()
    );
}

/// Containers of `busybox:1.36` run for a second, log `logs` and exit 0 (a Job's work).
pub(crate) fn busybox_completes(cluster: &FakeCluster, logs: &[&str]) {
    cluster.set_image_behaviour(
        "busybox:1.36",
        deployguard_kube_sim::ImageBehaviour::Completes {
            after: std::time::Duration::from_secs(1),
            exit_code: 0,
            logs: logs.iter().map(|l| (*l).to_owned()).collect(),
        },
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
pub(crate) async fn a_job_selects_its_own_pods_so_kubectl_logs_job_shows_its_log() {
    each_version_running(&[27, 33], async |cluster, kubectl| {
        busybox_completes(cluster, &["migrated 3 tables"]);
        kubectl
            .ok(&["create", "deployment", "app", "--image=nginx:1.27"])
            .await;
        kubectl
            .ok(&[
                "create",
                "job",
                "migrate",
                "--image=busybox:1.36",
                "--",
                "migrate",
            ])
            .await;
        let job = cluster
            .get("batch/v1", "Job", "default", "migrate")
            .unwrap();
        let uid = job["metadata"]["uid"].as_str().unwrap();
        assert_eq!(
            job["spec"]["selector"]["matchLabels"],
            serde_json::json!({"batch.kubernetes.io/controller-uid": uid})
        );
        let labels = &job["spec"]["template"]["metadata"]["labels"];
        assert_eq!(labels["batch.kubernetes.io/job-name"], "migrate");
        assert_eq!(labels["controller-uid"], uid);
        let wait = kubectl
            .run(&[
                "wait",
                "--for=condition=complete",
                "job/migrate",
                "--timeout=60s",
            ])
            .await;
        assert_eq!(wait.code, 0, "{}", wait.stderr);
        assert_eq!(
            kubectl.ok(&["logs", "job/migrate"]).await.trim(),
            "migrated 3 tables"
        );
        let pods = kubectl
            .ok(&["get", "pods", "-l", "job-name=migrate", "-o", "name"])
            .await;
        assert_eq!(pods.lines().count(), 1, "{pods}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
pub(crate) async fn the_defaults_a_real_server_fills_in_are_there() {
    each_version_running(&[27, 33], async |_, kubectl| {
        let version = kubectl.ok(&["version", "-o", "json"]).await;
        let version: serde_json::Value = serde_json::from_str(&version).unwrap();
        for field in [
            "gitCommit",
            "gitTreeState",
            "buildDate",
            "goVersion",
            "compiler",
            "platform",
        ] {
            assert!(
                version["serverVersion"][field]
                    .as_str()
                    .is_some_and(|v| !v.is_empty()),
                "{field}: {version}"
            );
        }
        kubectl.ok(&["create", "namespace", "team-b"]).await;
        assert_eq!(
            jsonpath(kubectl, "namespace", "team-b", "{.status.phase}").await,
            "Active"
        );
        assert!(
            kubectl
                .ok(&["get", "namespace", "team-b"])
                .await
                .contains("Active")
        );

        let probed = manifest(
            kubectl,
            &deployment_with(|d| {
                d["spec"]["replicas"] = 3.into();
                d["spec"]["template"]["spec"]["containers"][0]["readinessProbe"] =
                    serde_json::json!({"httpGet": {"path": "/healthz", "port": 8080}});
            }),
        );
        kubectl.ok(&["apply", "-f", &probed]).await;
        kubectl
            .ok(&["expose", "deployment", "web", "--port=80"])
            .await;
        let status = kubectl
            .run(&["rollout", "status", "deployment/web", "--timeout=60s"])
            .await;
        assert_eq!(status.code, 0, "{}", status.stderr);
        let pod = kubectl
            .ok(&["get", "pods", "-l", "app=web", "-o", "jsonpath={.items[0]}"])
            .await;
        let pod: serde_json::Value = serde_json::from_str(&pod).unwrap();
        let probe = &pod["spec"]["containers"][0]["readinessProbe"];
        assert_eq!(
            (
                &probe["timeoutSeconds"],
                &probe["periodSeconds"],
                &probe["successThreshold"],
                &probe["failureThreshold"],
                &probe["httpGet"]["scheme"]
            ),
            (&1.into(), &10.into(), &1.into(), &3.into(), &"HTTP".into()),
            "{probe}"
        );
        assert_eq!(pod["spec"]["serviceAccountName"], "default");
        let image_id = pod["status"]["containerStatuses"][0]["imageID"]
            .as_str()
            .unwrap();
        let digest = image_id
            .strip_prefix("docker.io/library/nginx@sha256:")
            .unwrap_or_else(|| panic!("{image_id}"));
        assert!(
            digest.len() == 64 && digest.chars().all(|c| c.is_ascii_hexdigit()),
            "{image_id}"
        );
        let ips = kubectl
            .ok(&["get", "pods", "-o", "jsonpath={.items[*].status.podIP}"])
            .await;
        let mut ips: Vec<&str> = ips.split_whitespace().collect();
        assert_eq!(ips.len(), 3);
        ips.sort_unstable();
        ips.dedup();
        assert_eq!(ips.len(), 3, "pod IPs are unique: {ips:?}");
        assert_eq!(
            jsonpath(
                kubectl,
                "service",
                "web",
                "{.spec.ipFamilies[0]} {.spec.ipFamilyPolicy} {.spec.internalTrafficPolicy}"
            )
            .await,
            "IPv4 SingleStack Cluster"
        );
    })
    .await;
}

/// Puts a finalizer on `object` (`kind/name`); `release` takes it off.
pub(crate) async fn hold(kubectl: &Kubectl, namespace: &str, object: &str) {
    let patch = r#"{"metadata":{"finalizers":["example.com/hold"]}}"#;
    kubectl
        .ok(&[
            "-n",
            namespace,
            "patch",
            object,
            "--type=merge",
            "-p",
            patch,
        ])
        .await;
}

pub(crate) async fn release(kubectl: &Kubectl, namespace: &str, object: &str) {
    let patch = r#"[{"op":"remove","path":"/metadata/finalizers"}]"#;
    kubectl
        .ok(&["-n", namespace, "patch", object, "--type=json", "-p", patch])
        .await;
}

pub(crate) fn header(table: &str) -> Vec<&str> {
    table
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
pub(crate) async fn jobs_endpoint_slices_secrets_and_watched_rows_print_their_columns() {
    each_version_running(&[27, 33], async |cluster, kubectl| {
        busybox_completes(cluster, &[]);
        kubectl
            .ok(&["create", "job", "migrate", "--image=busybox:1.36"])
            .await;
        kubectl
            .ok(&[
                "create",
                "secret",
                "generic",
                "creds",
                "--from-literal=a=b",
                "--from-literal=c=d",
            ])
            .await;
        kubectl
            .ok(&[
                "create",
                "deployment",
                "web",
                "--image=nginx:1.27",
                "--port=8080",
            ])
            .await;
        kubectl
            .ok(&[
                "expose",
                "deployment",
                "web",
                "--port=80",
                "--target-port=8080",
            ])
            .await;
        kubectl
            .ok(&[
                "wait",
                "--for=condition=complete",
                "job/migrate",
                "--timeout=60s",
            ])
            .await;
        kubectl
            .ok(&["rollout", "status", "deployment/web", "--timeout=60s"])
            .await;

        let jobs = kubectl.ok(&["get", "jobs"]).await;
        assert_eq!(
            header(&jobs),
            ["NAME", "STATUS", "COMPLETIONS", "DURATION", "AGE"],
            "{jobs}"
        );
        assert!(jobs.contains("Complete") && jobs.contains("1/1"), "{jobs}");
        let secrets = kubectl.ok(&["get", "secrets"]).await;
        assert_eq!(
            header(&secrets),
            ["NAME", "TYPE", "DATA", "AGE"],
            "{secrets}"
        );
        assert!(
            secrets.contains("Opaque") && secrets.split_whitespace().any(|w| w == "2"),
            "{secrets}"
        );
        let slices = kubectl
            .ok(&[
                "get",
                "endpointslices",
                "-l",
                "kubernetes.io/service-name=web",
            ])
            .await;
        assert_eq!(
            header(&slices),
            ["NAME", "ADDRESSTYPE", "PORTS", "ENDPOINTS", "AGE"],
            "{slices}"
        );
        assert!(
            slices.contains("IPv4") && slices.contains("8080") && slices.contains("10.244."),
            "{slices}"
        );

        // `get -w`: the rows after the first list are Tables too, with every column.
        let mut child = kubectl
            .command(&["get", "deployments", "--watch"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let reader = tokio::task::spawn_blocking(move || {
            use std::io::BufRead;
            std::io::BufReader::new(stdout)
                .lines()
                .take(3)
                .map(Result::unwrap)
                .collect::<Vec<_>>()
        });
        deployguard_kube_sim::wait::eventually("kubectl to watch", || {
            cluster
                .requests()
                .iter()
                .any(|r| r.path.ends_with("/deployments") && r.query.contains("watch=true"))
        })
        .await;
        kubectl
            .ok(&["scale", "deployment", "web", "--replicas=2"])
            .await;
        let lines = tokio::time::timeout(std::time::Duration::from_secs(30), reader)
            .await
            .unwrap()
            .unwrap();
        child.kill().unwrap();
        let _ = child.wait();
        assert_eq!(
            header(&lines[0]),
            ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"],
            "{lines:?}"
        );
        let watched: Vec<&str> = lines[2].split_whitespace().collect();
        assert_eq!(
            watched.len(),
            5,
            "a watched row has every column: {lines:?}"
        );
        assert_eq!(watched[0], "web");
        assert!(watched[1].ends_with("/2"), "{lines:?}");
    })
    .await;
}
