//! The exact Role rules the Kubernetes backend needs, as data and as YAML.

use k8s_openapi::api::rbac::v1::PolicyRule;

/// One rule: `verbs` on `resources` of API group `group` (`""` for the core group).
pub fn rule(group: &str, resources: &[&str], verbs: &[&str]) -> PolicyRule {
    PolicyRule {
        api_groups: Some(vec![group.to_owned()]),
        resources: Some(resources.iter().map(|r| (*r).to_owned()).collect()),
        verbs: verbs.iter().map(|v| (*v).to_owned()).collect(),
        ..PolicyRule::default()
    }
}

/// The rules `KubeDeployment`, `KubeEvents`, `PodReadinessProbe`, `ServiceSelectorRouter`,
/// `JobMigrationInspector` and `LeaseLock` need, nothing more.
pub fn rules() -> Vec<PolicyRule> {
    vec![
        // observe, history, rollback_to (JSON patch), set_paused, scale, markers.
        rule("apps", &["deployments"], &["get", "list", "watch", "patch"]),
        // history; mark_verified annotates a ReplicaSet.
        rule("apps", &["replicasets"], &["get", "list", "watch", "patch"]),
        rule("", &["pods"], &["get", "list", "watch"]),
        rule("", &["pods/log"], &["get"]),
        // Events: read for diagnosis; KubeEvents writes what the guard decided.
        rule("", &["events"], &["list", "watch", "create"]),
        // ServiceSelectorRouter.
        rule("", &["services"], &["get", "list", "watch", "patch"]),
        rule(
            "discovery.k8s.io",
            &["endpointslices"],
            &["get", "list", "watch"],
        ),
        // JobMigrationInspector.
        rule("batch", &["jobs"], &["get", "list", "watch"]),
        rule("", &["configmaps"], &["get", "list", "watch"]),
        // LeaseLock: one actor per deployment.
        rule(
            "coordination.k8s.io",
            &["leases"],
            &["get", "create", "update"],
        ),
    ]
}

/// The rules `GatewayRouter` needs in its namespace, nothing more.
pub fn gateway_rules() -> Vec<PolicyRule> {
    vec![
        // current, apply (a JSON patch of the weights), verify (the route's status).
        rule(
            "gateway.networking.k8s.io",
            &["httproutes"],
            &["get", "patch"],
        ),
        // A backend's Service selector, and whether its pods are ready.
        rule("", &["services"], &["get"]),
        rule("", &["pods"], &["list"]),
    ]
}

/// A `Role` named `name` in `namespace` with [`rules`], as YAML for `kubectl apply -f`.
pub fn role_yaml(namespace: &str, name: &str) -> String {
    role_yaml_of(namespace, name, &rules())
}

/// A `Role` named `name` in `namespace` with `rules`, as YAML for `kubectl apply -f` (other
/// crates' rules too: the Istio router's).
pub fn role_yaml_of(namespace: &str, name: &str, rules: &[PolicyRule]) -> String {
    let mut yaml = format!(
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata:\n  name: {name}\n  namespace: {namespace}\nrules:\n"
    );
    let list = |items: &[String]| {
        items
            .iter()
            .map(|i| format!("\"{i}\""))
            .collect::<Vec<_>>()
            .join(", ")
    };
    for rule in rules {
        yaml.push_str(&format!(
            "- apiGroups: [{}]\n  resources: [{}]\n  verbs: [{}]\n",
            list(rule.api_groups.as_deref().unwrap_or_default()),
            list(rule.resources.as_deref().unwrap_or_default()),
            list(&rule.verbs)
        ));
    }
    yaml
}
