//! The operator's manifests, made from the code they describe: the CRD (its printer columns,
//! the status subresource, its structural schema), least-privilege RBAC from
//! `deployguard_k8s::rbac::rules`, and the operator's Deployment. `deploy/` holds them as
//! written by [`manifests`]; a test keeps the folder current.

use kube::discovery::ApiResource;
use serde_json::{Value, json};

use super::{GROUP, KIND, VERSION};

/// The RolloutGuard's API resource, for dynamic clients.
pub fn api_resource() -> ApiResource {
    ApiResource {
        group: GROUP.into(),
        version: VERSION.into(),
        api_version: format!("{GROUP}/{VERSION}"),
        kind: KIND.into(),
        plural: "rolloutguards".into(),
    }
}

/// The CustomResourceDefinition. Its schema is `GuardSpec`'s, made structural
/// (the operator's `schema` module): the API server refuses wrong types, unknown kinds, missing fields, bad
/// names and durations; what it cannot check (references between probes and checks, each
/// check's ranges, a field of another kind than the one named) the operator reports in status
/// as `InvalidSpec`, naming the field.
pub fn crd() -> Value {
    let name = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$";
    let open = json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true});
    let mut spec = super::schema::structural(&deployguard_core::spec::GuardSpec::json_schema());
    // A Deployment's name is a DNS-1123 subdomain.
    spec["properties"]["target"]["properties"]["deployment"]["maxLength"] = json!(253);
    spec["properties"]["target"]["properties"]["deployment"]["pattern"] = json!(name);
    spec["properties"]["target"]["properties"]["namespace"]["maxLength"] = json!(63);
    json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": format!("rolloutguards.{GROUP}")},
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": KIND,
                "listKind": format!("{KIND}List"),
                "plural": "rolloutguards",
                "singular": "rolloutguard",
                "shortNames": ["rg"],
                "categories": ["deployguard"],
            },
            "versions": [{
                "name": VERSION,
                "served": true,
                "storage": true,
                "subresources": {"status": {}},
                "additionalPrinterColumns": [
                    {"name": "Target", "type": "string", "jsonPath": ".spec.target.deployment"},
                    {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
                    {"name": "Last decision", "type": "string", "jsonPath": ".status.lastDecision"},
                    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
                ],
                "schema": {"openAPIV3Schema": {
                    "type": "object",
                    "description": "Guards every rollout of a Deployment by a policy: deployguard's GuardSpec (deployguard-core/schema/guard-spec.schema.json).",
                    "properties": {
                        "spec": spec,
                        "status": open,
                    },
                }},
            }],
        },
    })
}

/// Every manifest of `kubectl apply -f deploy/`, by file name, in the order they apply.
pub fn manifests() -> Vec<(&'static str, Value)> {
    let namespace = "deployguard-system";
    let mut rules: Vec<Value> = deployguard_k8s::rbac::rules()
        .into_iter()
        .map(|rule| serde_json::to_value(rule).unwrap_or_default())
        .collect();
    rules.push(json!({"apiGroups": [GROUP], "resources": ["rolloutguards"], "verbs": ["get", "list", "watch"]}));
    rules.push(json!({"apiGroups": [GROUP], "resources": ["rolloutguards/status"], "verbs": ["get", "patch", "update"]}));
    vec![
        (
            "00-namespace.json",
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}),
        ),
        ("01-crd.json", crd()),
        (
            "02-rbac.json",
            json!({
                "apiVersion": "v1",
                "kind": "List",
                "items": [
                    {"apiVersion": "v1", "kind": "ServiceAccount",
                     "metadata": {"name": "deployguard-operator", "namespace": namespace}},
                    {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
                     "metadata": {"name": "deployguard-operator"}, "rules": rules},
                    {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
                     "metadata": {"name": "deployguard-operator"},
                     "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "deployguard-operator"},
                     "subjects": [{"kind": "ServiceAccount", "name": "deployguard-operator", "namespace": namespace}]},
                ],
            }),
        ),
        (
            "03-operator.json",
            json!({
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": "deployguard-operator", "namespace": namespace,
                             "labels": {"app": "deployguard-operator"}},
                "spec": {
                    "replicas": 2,
                    "selector": {"matchLabels": {"app": "deployguard-operator"}},
                    "template": {
                        "metadata": {"labels": {"app": "deployguard-operator"}},
                        "spec": {
                            "serviceAccountName": "deployguard-operator",
                            "containers": [{
                                "name": "operator",
                                "image": "deployguard/operator:0.1.0",
                                "args": ["--listen", "0.0.0.0:8080"],
                                "env": [
                                    {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                                    {"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
                                ],
                                "ports": [{"name": "http", "containerPort": 8080}],
                                "readinessProbe": {"httpGet": {"path": "/readyz", "port": "http"}, "periodSeconds": 5},
                                "livenessProbe": {"httpGet": {"path": "/healthz", "port": "http"}, "periodSeconds": 10},
                                "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"memory": "256Mi"}},
                                "securityContext": {"runAsNonRoot": true, "readOnlyRootFilesystem": true,
                                                    "allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}},
                            }],
                        },
                    },
                },
            }),
        ),
    ]
}
