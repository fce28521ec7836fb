//! The exact Role rules the Istio router needs, as data and as YAML, in the style of
//! `deployguard_k8s::rbac`.

use k8s_openapi::api::rbac::v1::PolicyRule;

fn rule(group: &str, resources: &[&str], verbs: &[&str]) -> PolicyRule {
    PolicyRule {
        api_groups: Some(vec![group.to_owned()]),
        resources: Some(resources.iter().map(|r| (*r).to_owned()).collect()),
        verbs: verbs.iter().map(|v| (*v).to_owned()).collect(),
        ..PolicyRule::default()
    }
}

/// The rules `IstioRouter` needs in its namespace, nothing more. (Discovery of the served
/// version reads `/apis`, which every authenticated user may.)
pub fn rules() -> Vec<PolicyRule> {
    vec![
        // current, apply (a JSON patch of the weights), verify.
        rule(
            "networking.istio.io",
            &["virtualservices"],
            &["get", "patch"],
        ),
        // The subsets' labels, before a backend gets traffic.
        rule("networking.istio.io", &["destinationrules"], &["list"]),
        // The destination host's selector, and whether its subset's pods are ready.
        rule("", &["services"], &["get"]),
        rule("", &["pods"], &["list"]),
    ]
}

/// A `Role` named `name` in `namespace` with [`rules`], as YAML for `kubectl apply -f`.
pub fn role_yaml(namespace: &str, name: &str) -> String {
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
    for rule in rules() {
        yaml.push_str(&format!(
            "- apiGroups: [{}]\n  resources: [{}]\n  verbs: [{}]\n",
            list(rule.api_groups.as_deref().unwrap_or_default()),
            list(rule.resources.as_deref().unwrap_or_default()),
            list(&rule.verbs)
        ));
    }
    yaml
}
