//! Deletion and field ownership with the real kubectl: graceful deletion, finalizers, orphans,
//! namespaces emptied before they go, and server-side apply's managers and conflicts.

use super::daily::*;
use deployguard_kube_sim::FakeCluster;
use deployguard_kube_sim::kubectl::Kubectl;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deletion_is_graceful_honours_finalizers_orphans_and_empties_namespaces() {
    each_version_running(&[27, 33], async |cluster, kubectl| {
        // A pod on a node: Terminating (out of its Service at once), then gone; its ReplicaSet
        // replaces it without waiting.
        kubectl
            .ok(&[
                "create",
                "deployment",
                "web",
                "--image=nginx:1.27",
                "--replicas=2",
            ])
            .await;
        kubectl
            .ok(&["rollout", "status", "deployment/web", "--timeout=60s"])
            .await;
        let pods = cluster.pods("default").unwrap();
        let victim = pods[0].metadata.name.clone().unwrap();
        // A finalizer keeps the pod visible once its kubelet has stopped it (a second later).
        hold(kubectl, "default", &format!("pod/{victim}")).await;
        let out = kubectl
            .ok(&["delete", "pod", &victim, "--wait=false"])
            .await;
        assert_eq!(out.trim(), format!("pod \"{victim}\" deleted"));
        let terminating = cluster.get("v1", "Pod", "default", &victim).unwrap();
        assert!(
            terminating["metadata"]["deletionTimestamp"].is_string(),
            "{terminating}"
        );
        assert_eq!(terminating["metadata"]["deletionGracePeriodSeconds"], 30);
        assert!(
            kubectl
                .ok(&["get", "pod", &victim])
                .await
                .contains("Terminating")
        );
        // Out of its Service and replaced, while it terminates.
        kubectl
            .ok(&["rollout", "status", "deployment/web", "--timeout=60s"])
            .await;
        assert_eq!(cluster.pods("default").unwrap().len(), 3);
        release(kubectl, "default", &format!("pod/{victim}")).await;
        deployguard_kube_sim::wait::eventually("the pod to go", || {
            cluster.get("v1", "Pod", "default", &victim).is_err()
        })
        .await;

        // --cascade=orphan keeps the ReplicaSet and its pods, without the owner's reference.
        kubectl
            .ok(&["delete", "deployment", "web", "--cascade=orphan"])
            .await;
        let sets = cluster.replica_sets("default").unwrap();
        assert_eq!(sets.len(), 1, "the ReplicaSet stays");
        assert!(
            sets[0]
                .metadata
                .owner_references
                .as_ref()
                .is_none_or(Vec::is_empty),
            "orphaned"
        );
        assert_eq!(cluster.pods("default").unwrap().len(), 2);

        // A finalizer holds an object until it is removed.
        kubectl
            .ok(&["create", "configmap", "held", "--from-literal=a=b"])
            .await;
        hold(kubectl, "default", "configmap/held").await;
        kubectl
            .ok(&["delete", "configmap", "held", "--wait=false"])
            .await;
        assert!(
            jsonpath(
                kubectl,
                "configmap",
                "held",
                "{.metadata.deletionTimestamp}"
            )
            .await
            .len()
                > 10
        );
        release(kubectl, "default", "configmap/held").await;
        assert!(cluster.get("v1", "ConfigMap", "default", "held").is_err());

        // A namespace is Terminating while its pods stop, refuses new content, then goes.
        kubectl.ok(&["create", "namespace", "team-c"]).await;
        kubectl
            .ok(&[
                "-n",
                "team-c",
                "create",
                "deployment",
                "api",
                "--image=nginx:1.27",
            ])
            .await;
        kubectl
            .ok(&[
                "-n",
                "team-c",
                "rollout",
                "status",
                "deployment/api",
                "--timeout=60s",
            ])
            .await;
        kubectl
            .ok(&[
                "-n",
                "team-c",
                "create",
                "configmap",
                "held",
                "--from-literal=a=b",
            ])
            .await;
        hold(kubectl, "team-c", "configmap/held").await;
        kubectl
            .ok(&["delete", "namespace", "team-c", "--wait=false"])
            .await;
        assert_eq!(
            jsonpath(kubectl, "namespace", "team-c", "{.status.phase}").await,
            "Terminating"
        );
        let refused = kubectl
            .run(&["-n", "team-c", "create", "configmap", "late"])
            .await;
        assert!(
            refused.stderr.contains("because it is being terminated"),
            "{}",
            refused.stderr
        );
        deployguard_kube_sim::wait::eventually("the namespace's pods to stop", || {
            cluster.pods("team-c").unwrap().is_empty()
        })
        .await;
        assert_eq!(
            jsonpath(kubectl, "namespace", "team-c", "{.status.phase}").await,
            "Terminating",
            "held by the finalizer"
        );
        release(kubectl, "team-c", "configmap/held").await;
        deployguard_kube_sim::wait::eventually("the namespace to go", || {
            cluster.get("v1", "Namespace", "", "team-c").is_err()
        })
        .await;
        assert!(cluster.pods("team-c").unwrap().is_empty());
        assert!(cluster.deployment("team-c", "api").is_err());
    })
    .await;
}

/// A Deployment configuration for server-side apply.
const APPLIED: &str = "apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: default, labels: {app: web, tier: front}}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: nginx:1.27}]
";

/// `MANAGER OPERATION` per managedFields entry.
async fn managers(kubectl: &Kubectl) -> String {
    jsonpath(
        kubectl,
        "deployment",
        "web",
        "{range .metadata.managedFields[*]}{.manager} {.operation};{end}",
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_side_apply_tracks_field_managers_and_refuses_to_take_a_field_silently() {
    each_version(&[27, 33], async |_, _, kubectl| {
        let config = manifest(kubectl, APPLIED);
        assert_eq!(
            kubectl.ok(&["apply", "--server-side", "-f", &config]).await.trim(),
            "deployment.apps/web serverside-applied"
        );
        assert_eq!(managers(kubectl).await, "kubectl Apply;");

        // Another manager takes .spec.replicas; applying 2 again would take it back silently.
        kubectl
            .ok(&["patch", "deployment", "web", "--type=merge", "-p", r#"{"spec":{"replicas":5}}"#])
            .await;
        assert_eq!(managers(kubectl).await, "kubectl Apply;kubectl-patch Update;");
        let refused = kubectl.run(&["apply", "--server-side", "-f", &config]).await;
        assert_eq!(refused.code, 1);
        assert!(
            refused.stderr.starts_with(
                "error: Apply failed with 1 conflict: conflict with \"kubectl-patch\" using apps/v1: .spec.replicas\n"
            ),
            "{}",
            refused.stderr
        );
        assert_eq!(jsonpath(kubectl, "deployment", "web", "{.spec.replicas}").await, "5", "nothing written");

        // Forced, the field changes hands; the patcher owns nothing any more.
        kubectl
            .ok(&["apply", "--server-side", "--force-conflicts", "-f", &config])
            .await;
        assert_eq!(jsonpath(kubectl, "deployment", "web", "{.spec.replicas}").await, "2");
        assert_eq!(managers(kubectl).await, "kubectl Apply;");

        // A field dropped from the configuration, owned by nobody else, is removed.
        let smaller = manifest(kubectl, &APPLIED.replace(", tier: front", ""));
        kubectl.ok(&["apply", "--server-side", "-f", &smaller]).await;
        assert_eq!(
            jsonpath(kubectl, "deployment", "web", "{.metadata.labels}").await,
            r#"{"app":"web"}"#
        );
        // The same configuration again writes nothing.
        let before = jsonpath(kubectl, "deployment", "web", "{.metadata.resourceVersion}").await;
        kubectl.ok(&["apply", "--server-side", "-f", &smaller]).await;
        assert_eq!(
            jsonpath(kubectl, "deployment", "web", "{.metadata.resourceVersion}").await,
            before
        );
    })
    .await;
}

#[tokio::test]
async fn a_yaml_apply_body_is_read_as_yaml_and_a_conflict_names_every_field() {
    use deployguard_kube_sim::kube;
    let cluster = FakeCluster::new();
    let client = cluster.client();
    let apply = |manager: &str, body: &str, force: bool| {
        http::Request::patch(format!(
            "/apis/apps/v1/namespaces/default/deployments/web?fieldManager={manager}{}",
            if force { "&force=true" } else { "" }
        ))
        .header("content-type", "application/apply-patch+yaml")
        .body(body.as_bytes().to_vec())
        .unwrap()
    };
    let created: serde_json::Value = client
        .request(apply("deployer", APPLIED, false))
        .await
        .unwrap();
    assert_eq!(created["spec"]["replicas"], 2);
    assert_eq!(
        created["metadata"]["managedFields"][0]["manager"],
        "deployer"
    );
    assert_eq!(
        created["metadata"]["managedFields"][0]["fieldsV1"]["f:spec"]["f:replicas"],
        serde_json::json!({})
    );
    let other = APPLIED
        .replace("replicas: 2", "replicas: 3")
        .replace("nginx:1.27", "nginx:1.26");
    let err = client
        .request::<serde_json::Value>(apply("ci", &other, false))
        .await
        .unwrap_err();
    let kube::Error::Api(status) = err else {
        panic!("{err}")
    };
    assert_eq!((status.code, status.reason.as_str()), (409, "Conflict"));
    assert_eq!(
        status.message,
        "Apply failed with 2 conflicts: conflicts with \"deployer\":\n- .spec.replicas\n- .spec.template.spec.containers[name=\"web\"].image"
    );
    let forced: serde_json::Value = client.request(apply("ci", &other, true)).await.unwrap();
    assert_eq!(forced["spec"]["replicas"], 3);
    let bad = client
        .request::<serde_json::Value>(apply("ci", "spec: [unclosed", false))
        .await
        .unwrap_err();
    assert!(bad.to_string().contains("error decoding YAML"), "{bad}");
}
