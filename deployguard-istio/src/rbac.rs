//! The exact Role rules the Istio router needs, as data and as YAML, in the style of
//! `deployguard_k8s::rbac`.

use deployguard_k8s::rbac::{role_yaml_of, rule};
use k8s_openapi::api::rbac::v1::PolicyRule;

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
    role_yaml_of(namespace, name, &rules())
}
