//! The fidelity matrix, part by part: each behaviour of a real cluster a team's manifests and
//! kubectl habits touch, as the kubectl command a person types and the real cluster's answer,
//! on the oldest and newest kubectl this project supports.

use std::time::Duration;

use deployguard_kube_sim::FakeCluster;
use deployguard_kube_sim::kubectl::Kubectl;

use super::daily::each_version;

const WIDGETS: &str = r#"{"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
 "metadata": {"name": "widgets.example.com"},
 "spec": {"group": "example.com", "scope": "Namespaced",
  "names": {"kind": "Widget", "plural": "widgets", "singular": "widget", "listKind": "WidgetList"},
  "versions": [{"name": "v1", "served": true, "storage": true, "schema": {"openAPIV3Schema": {
   "type": "object", "properties": {"spec": {"type": "object", "required": ["size"], "properties": {
    "size": {"type": "integer", "minimum": 1, "maximum": 10},
    "colour": {"type": "string", "enum": ["red", "blue"], "default": "red"}}}}}}}]}}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_cluster_has_the_kubernetes_service_and_the_default_cluster_roles() {
    each_version(&[27, 33], async |_, _, kubectl| {
        let ip = kubectl
            .ok(&[
                "get",
                "service",
                "kubernetes",
                "-o",
                "jsonpath={.spec.clusterIP}:{.spec.ports[0].port}",
            ])
            .await;
        assert_eq!(ip, "10.96.0.1:443");
        let roles = kubectl
            .ok(&[
                "get",
                "clusterrole",
                "cluster-admin",
                "admin",
                "edit",
                "view",
                "-o",
                "name",
            ])
            .await;
        assert_eq!(
            roles.lines().collect::<Vec<_>>(),
            [
                "clusterrole.rbac.authorization.k8s.io/cluster-admin",
                "clusterrole.rbac.authorization.k8s.io/admin",
                "clusterrole.rbac.authorization.k8s.io/edit",
                "clusterrole.rbac.authorization.k8s.io/view"
            ]
        );
        let binding = kubectl
            .ok(&[
                "get",
                "clusterrolebinding",
                "cluster-admin",
                "-o",
                "jsonpath={.subjects[0].name}",
            ])
            .await;
        assert_eq!(binding, "system:masters");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_namespace_gets_the_root_ca_config_map() {
    let cluster = FakeCluster::builder()
        .controllers(true)
        .time_scale(20.0)
        .build();
    let served = cluster.serve().await.unwrap();
    for minor in [27, 33] {
        let kubectl = Kubectl::version(minor, &served).unwrap();
        let ns = format!("team-{minor}");
        kubectl.ok(&["create", "namespace", &ns]).await;
        let mut found = String::new();
        for _ in 0..100 {
            found = kubectl
                .run(&[
                    "get",
                    "configmap",
                    "kube-root-ca.crt",
                    "-n",
                    &ns,
                    "-o",
                    "name",
                ])
                .await
                .stdout;
            if !found.is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(
            found.trim(),
            "configmap/kube-root-ca.crt",
            "kubectl 1.{minor}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crd_is_established_and_its_resources_are_defaulted_and_checked() {
    each_version(&[27, 33], async |_, _, kubectl| {
        let dir = tempfile::tempdir().unwrap();
        let crd = dir.path().join("crd.json");
        std::fs::write(&crd, WIDGETS).unwrap();
        kubectl.ok(&["apply", "-f", crd.to_str().unwrap()]).await;
        let waited = kubectl
            .ok(&["wait", "--for", "condition=established", "--timeout=10s", "crd/widgets.example.com"])
            .await;
        assert_eq!(waited.trim(), "customresourcedefinition.apiextensions.k8s.io/widgets.example.com condition met");
        let widget = dir.path().join("widget.yaml");
        std::fs::write(&widget, "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\nspec: {size: 3}\n").unwrap();
        kubectl.ok(&["apply", "-f", widget.to_str().unwrap()]).await;
        let colour = kubectl
            .ok(&["get", "widget", "w", "-o", "jsonpath={.spec.colour}"])
            .await;
        assert_eq!(colour, "red", "the schema's default is stored");
        std::fs::write(&widget, "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: v}\nspec: {size: 30, colour: green}\n").unwrap();
        let refused = kubectl.run(&["apply", "-f", widget.to_str().unwrap()]).await;
        assert_ne!(refused.code, 0);
        for expected in [
            "The Widget \"v\" is invalid",
            "spec.size: Invalid value: 30: spec.size in body should be less than or equal to 10",
            "spec.colour: Unsupported value: \"green\": supported values: \"red\", \"blue\"",
        ] {
            assert!(refused.stderr.contains(expected), "{expected}: {}", refused.stderr);
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_field_selector_the_server_does_not_support_is_a_bad_request() {
    each_version(&[27, 33], async |_, _, kubectl| {
        kubectl
            .ok(&[
                "get",
                "pods",
                "--field-selector",
                "status.phase=Running,spec.nodeName=node-1",
            ])
            .await;
        kubectl
            .ok(&[
                "get",
                "events",
                "--field-selector",
                "involvedObject.kind=Pod,type=Warning",
            ])
            .await;
        let refused = kubectl
            .run(&["get", "deployments", "--field-selector", "spec.replicas=3"])
            .await;
        assert_ne!(refused.code, 0);
        assert!(
            refused
                .stderr
                .contains("field label not supported: spec.replicas"),
            "{}",
            refused.stderr
        );
    })
    .await;
}

fn service(name: &str, kind: &str, extra_port: &str) -> String {
    format!(
        r#"{{"apiVersion": "v1", "kind": "Service", "metadata": {{"name": "{name}"}},
 "spec": {{"type": "{kind}", "selector": {{"app": "{name}"}}, "ports": [{{"port": 80{extra_port}}}]}}}}"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn services_get_unique_cluster_ips_and_node_ports_in_range() {
    each_version(&[27, 33], async |_, _, kubectl| {
        let dir = tempfile::tempdir().unwrap();
        let apply = async |name: &str, body: String| {
            let path = dir.path().join(format!("{name}.json"));
            std::fs::write(&path, body).unwrap();
            kubectl.run(&["apply", "-f", path.to_str().unwrap()]).await
        };
        for (name, kind) in [("a", "ClusterIP"), ("b", "ClusterIP"), ("np", "NodePort"), ("lb", "LoadBalancer")] {
            let done = apply(name, service(name, kind, "")).await;
            assert_eq!(done.code, 0, "{name}: {}", done.stderr);
        }
        let ips = kubectl
            .ok(&["get", "services", "-o", "jsonpath={range .items[*]}{.spec.clusterIP} {end}"])
            .await;
        let ips: Vec<&str> = ips.split_whitespace().collect();
        let unique: std::collections::BTreeSet<&&str> = ips.iter().collect();
        assert_eq!(ips.len(), 5, "{ips:?}");
        assert_eq!(unique.len(), 5, "{ips:?}");
        assert!(ips.iter().all(|ip| ip.starts_with("10.96.")), "{ips:?}");
        let node_port: i64 = kubectl
            .ok(&["get", "service", "np", "-o", "jsonpath={.spec.ports[0].nodePort}"])
            .await
            .parse()
            .unwrap();
        assert!((30000..=32767).contains(&node_port), "{node_port}");
        let table = kubectl.ok(&["get", "service", "lb", "np"]).await;
        let lb = table.lines().find(|l| l.starts_with("lb ")).unwrap();
        assert!(lb.contains("<pending>") && lb.contains("80:3"), "{table}");

        // A node port out of range, or taken, is refused; a ClusterIP may not change.
        let refused = apply("bad", service("bad", "NodePort", ", \"nodePort\": 80")).await;
        assert!(
            refused.stderr.contains("spec.ports[0].nodePort: Invalid value: 80: provided port is not in the valid range. The range of valid ports is 30000-32767"),
            "{}",
            refused.stderr
        );
        let taken = apply("dup", service("dup", "NodePort", &format!(", \"nodePort\": {node_port}"))).await;
        assert!(taken.stderr.contains("provided port is already allocated"), "{}", taken.stderr);
        let moved = kubectl
            .run(&["patch", "service", "a", "-p", r#"{"spec": {"clusterIP": "10.96.9.9", "clusterIPs": ["10.96.9.9"]}}"#])
            .await;
        assert!(moved.stderr.contains("may not change once set"), "{}", moved.stderr);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_create_service_works_whatever_the_body_encoding() {
    // 1.32 and later send the Service as protobuf.
    each_version(&[27, 33], async |_, _, kubectl| {
        kubectl
            .ok(&["create", "service", "clusterip", "web", "--tcp=80:8080"])
            .await;
        kubectl
            .ok(&["create", "service", "nodeport", "edge", "--tcp=443:8443", "--node-port=30443"])
            .await;
        let shown = kubectl
            .ok(&["get", "service", "web", "edge", "-o", "jsonpath={range .items[*]}{.spec.type} {.spec.selector.app} {.spec.ports[0].port}>{.spec.ports[0].targetPort}:{.spec.ports[0].nodePort};{end}"])
            .await;
        assert_eq!(shown, "ClusterIP web 80>8080:;NodePort edge 443>8443:30443;");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rbac_kinds_have_their_real_schemas() {
    each_version(&[27, 33], async |_, _, kubectl| {
        let explained = kubectl.ok(&["explain", "role.rules"]).await;
        assert!(explained.contains("verbs"), "{explained}");
        let dir = tempfile::tempdir().unwrap();
        let role = dir.path().join("role.yaml");
        std::fs::write(
            &role,
            "apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata: {name: reader}\nrules:\n- apiGroups: [\"\"]\n  resources: [pods]\n  verbs: [get, list]\n",
        )
        .unwrap();
        let applied = kubectl.run(&["apply", "-f", role.to_str().unwrap()]).await;
        assert_eq!(applied.code, 0, "{}", applied.stderr);
        assert!(!applied.stderr.contains("Warning"), "{}", applied.stderr);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_value_of_the_wrong_type_is_refused_whatever_the_write() {
    each_version(&[27, 33], async |_, _, kubectl| {
        kubectl
            .ok(&["create", "deployment", "web", "--image=nginx:1.27", "--replicas=2"])
            .await;
        let patched = kubectl
            .run(&["patch", "deployment", "web", "--type=merge", "-p", r#"{"spec": {"replicas": "three"}}"#])
            .await;
        assert_ne!(patched.code, 0);
        assert!(
            patched.stderr.contains("cannot unmarshal string into Go struct field DeploymentSpec.spec.replicas of type int32"),
            "{}",
            patched.stderr
        );
        let replicas = kubectl
            .ok(&["get", "deployment", "web", "-o", "jsonpath={.spec.replicas}"])
            .await;
        assert_eq!(replicas, "2", "nothing was written");
        let dir = tempfile::tempdir().unwrap();
        let manifest = dir.path().join("cm.yaml");
        std::fs::write(&manifest, "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: numbered\n  labels: {tier: 5}\n").unwrap();
        let applied = kubectl.run(&["apply", "-f", manifest.to_str().unwrap()]).await;
        assert_ne!(applied.code, 0);
        assert!(
            applied.stderr.contains("cannot unmarshal number into Go struct field ObjectMeta.metadata.labels of type string"),
            "{}",
            applied.stderr
        );
    })
    .await;
}
