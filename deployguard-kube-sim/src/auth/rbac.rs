//! RBAC as the real authorizer evaluates it: `system:masters` first, then the rules bound to
//! the identity (and the bootstrap rules every authenticated user has), and Forbidden worded as
//! the server words it.

use super::*;

/// What a request asks to do, as the authorizer sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Attributes {
    Resource {
        verb: String,
        group: String,
        resource: String,
        subresource: String,
        namespace: String,
        name: String,
    },
    NonResource {
        verb: String,
        path: String,
    },
}

impl Attributes {
    pub(super) fn verb(&self) -> &str {
        match self {
            Self::Resource { verb, .. } | Self::NonResource { verb, .. } => verb,
        }
    }
}

/// The authorizer's decision and the reason SelfSubjectAccessReview reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Decision {
    pub(crate) allowed: bool,
    pub(crate) reason: String,
}

/// Whether `identity` may do `attributes`: `system:masters` first, then RBAC over the stored
/// Roles, ClusterRoles and bindings (and the bootstrap rules every authenticated user has).
pub(crate) fn authorize(
    store: &Store,
    types: &[ResourceType],
    identity: &Identity,
    attributes: &Attributes,
) -> Decision {
    if identity.is_privileged() {
        return Decision {
            allowed: true,
            reason: String::new(),
        };
    }
    if identity.groups.iter().any(|g| g == AUTHENTICATED)
        && bootstrap_rules()
            .iter()
            .any(|rule| rule_allows(rule, attributes))
    {
        return Decision {
            allowed: true,
            reason: "RBAC: allowed by ClusterRoleBinding \"system:basic-user\" of ClusterRole \"system:basic-user\" to Group \"system:authenticated\"".into(),
        };
    }
    let mut allowed_by = None;
    visit_rules(store, types, identity, attributes, &mut |source, rule| {
        if rule_allows(rule, attributes) {
            allowed_by = Some(source.to_owned());
            return false;
        }
        true
    });
    match allowed_by {
        Some(source) => Decision {
            allowed: true,
            reason: format!("RBAC: allowed by {source}"),
        },
        None => Decision {
            allowed: false,
            reason: String::new(),
        },
    }
}

/// What every authenticated user may do on a real cluster: discovery
/// (`system:discovery`, `system:public-info-viewer`) and reviewing oneself (`system:basic-user`).
pub(super) fn bootstrap_rules() -> &'static [Value] {
    static RULES: std::sync::OnceLock<Vec<Value>> = std::sync::OnceLock::new();
    RULES.get_or_init(|| {
        vec![
            json!({"verbs": ["get"], "nonResourceURLs": ["/api", "/api/*", "/apis", "/apis/*", "/healthz", "/livez", "/openapi", "/openapi/*", "/readyz", "/version", "/version/"]}),
            json!({"verbs": ["create"], "apiGroups": ["authorization.k8s.io"], "resources": ["selfsubjectaccessreviews", "selfsubjectrulesreviews"]}),
            json!({"verbs": ["create"], "apiGroups": ["authentication.k8s.io"], "resources": ["selfsubjectreviews"]}),
        ]
    })
}

pub(super) fn type_of(types: &[ResourceType], group: &str, kind: &str) -> Option<ResourceType> {
    types
        .iter()
        .find(|t| t.group == group && t.kind == kind)
        .cloned()
}

pub(super) fn strings(value: Option<&Value>) -> Vec<&str> {
    value
        .and_then(Value::as_array)
        .map(|items| items.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

pub(super) fn text<'a>(value: &'a Value, pointer: &str) -> &'a str {
    value.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

/// Calls `visit(source, rule)` for every rule bound to `identity` that applies where
/// `attributes` act (cluster-wide bindings, then the namespace's), until `visit` says stop.
/// `source` is how the RBAC authorizer describes the binding.
pub(super) fn visit_rules(
    store: &Store,
    types: &[ResourceType],
    identity: &Identity,
    attributes: &Attributes,
    visit: &mut dyn FnMut(&str, &Value) -> bool,
) {
    let everything = crate::selectors::LabelSelector::default();
    let no_fields = crate::selectors::FieldSelector::default();
    let group = "rbac.authorization.k8s.io";
    let (Some(cluster_roles), Some(cluster_bindings), Some(roles), Some(bindings)) = (
        type_of(types, group, "ClusterRole"),
        type_of(types, group, "ClusterRoleBinding"),
        type_of(types, group, "Role"),
        type_of(types, group, "RoleBinding"),
    ) else {
        return;
    };
    let role_rules = |binding: &Value, namespace: &str| -> Vec<Value> {
        let name = text(binding, "/roleRef/name");
        let role = match text(binding, "/roleRef/kind") {
            "ClusterRole" => store.get(&cluster_roles, "", name),
            "Role" => store.get(&roles, namespace, name),
            _ => return Vec::new(),
        };
        role.ok()
            .and_then(|r| r.get("rules").and_then(Value::as_array).cloned())
            .unwrap_or_default()
    };
    for binding in store.list(&cluster_bindings, None, &everything, &no_fields) {
        let Some(subject) = matching_subject(&binding, identity, "") else {
            continue;
        };
        let source = format!(
            "ClusterRoleBinding {:?} of {} {:?} to {subject}",
            text(&binding, "/metadata/name"),
            text(&binding, "/roleRef/kind"),
            text(&binding, "/roleRef/name"),
        );
        for rule in role_rules(&binding, "") {
            if !visit(&source, &rule) {
                return;
            }
        }
    }
    let namespace = match attributes {
        Attributes::Resource { namespace, .. } if !namespace.is_empty() => namespace,
        _ => return,
    };
    for binding in store.list(&bindings, Some(namespace), &everything, &no_fields) {
        let Some(subject) = matching_subject(&binding, identity, namespace) else {
            continue;
        };
        let source = format!(
            "RoleBinding {:?} of {} {:?} to {subject}",
            format!("{}/{namespace}", text(&binding, "/metadata/name")),
            text(&binding, "/roleRef/kind"),
            text(&binding, "/roleRef/name"),
        );
        for rule in role_rules(&binding, namespace) {
            if !visit(&source, &rule) {
                return;
            }
        }
    }
}

/// The binding's subject that is `identity`, described as the RBAC authorizer describes it
/// (`User "alice"`, `Group "ops"`, `ServiceAccount "guard/default"`).
pub(super) fn matching_subject(
    binding: &Value,
    identity: &Identity,
    namespace: &str,
) -> Option<String> {
    let subjects = binding.get("subjects").and_then(Value::as_array)?;
    subjects.iter().find_map(|subject| {
        let name = text(subject, "/name");
        match text(subject, "/kind") {
            "User" if identity.name == name => Some(format!("User {name:?}")),
            "Group" if identity.groups.iter().any(|g| g == name) => Some(format!("Group {name:?}")),
            "ServiceAccount" => {
                let ns = match text(subject, "/namespace") {
                    "" => namespace,
                    ns => ns,
                };
                (identity.name == format!("system:serviceaccount:{ns}:{name}"))
                    .then(|| format!("ServiceAccount {:?}", format!("{name}/{ns}")))
            }
            _ => None,
        }
    })
}

/// Whether one PolicyRule allows `attributes` (the RBAC authorizer's `RuleAllows`).
pub(super) fn rule_allows(rule: &Value, attributes: &Attributes) -> bool {
    let verbs = strings(rule.get("verbs"));
    if !verbs.iter().any(|v| *v == "*" || *v == attributes.verb()) {
        return false;
    }
    match attributes {
        Attributes::NonResource { path, .. } => {
            strings(rule.get("nonResourceURLs")).iter().any(|url| {
                *url == "*"
                    || url == path
                    || url
                        .strip_suffix('*')
                        .is_some_and(|prefix| path.starts_with(prefix))
            })
        }
        Attributes::Resource {
            group,
            resource,
            subresource,
            name,
            ..
        } => {
            let groups = strings(rule.get("apiGroups"));
            if !groups.iter().any(|g| *g == "*" || g == group) {
                return false;
            }
            let combined = if subresource.is_empty() {
                resource.clone()
            } else {
                format!("{resource}/{subresource}")
            };
            let resources = strings(rule.get("resources"));
            let resource_matches = resources.iter().any(|r| {
                *r == "*"
                    || *r == combined
                    || (!subresource.is_empty() && *r == format!("*/{subresource}"))
                    || (!subresource.is_empty() && *r == format!("{resource}/*"))
            });
            if !resource_matches {
                return false;
            }
            let names = strings(rule.get("resourceNames"));
            names.is_empty() || names.iter().any(|n| n == name)
        }
    }
}

/// The 403 the API server answers when the authorizer says no, worded as it words it.
pub(crate) fn forbidden(identity: &Identity, attributes: &Attributes) -> ApiError {
    match attributes {
        Attributes::NonResource { verb, path } => ApiError::new(
            403,
            "Forbidden",
            format!(
                "forbidden: User {:?} cannot {verb} path {path:?}",
                identity.name
            ),
        ),
        Attributes::Resource {
            verb,
            group,
            resource,
            subresource,
            namespace,
            name,
        } => {
            let shown = if subresource.is_empty() {
                resource.clone()
            } else {
                format!("{resource}/{subresource}")
            };
            let scope = if namespace.is_empty() {
                "at the cluster scope".to_owned()
            } else {
                format!("in the namespace {namespace:?}")
            };
            let why = format!(
                "User {:?} cannot {verb} resource {shown:?} in API group {group:?} {scope}",
                identity.name
            );
            let qualified = if group.is_empty() {
                resource.clone()
            } else {
                format!("{resource}.{group}")
            };
            let message = if name.is_empty() {
                format!("{qualified} is forbidden: {why}")
            } else {
                format!("{qualified} {name:?} is forbidden: {why}")
            };
            let mut details = json!({"group": group, "kind": resource});
            if !name.is_empty() {
                details["name"] = json!(name);
            }
            ApiError {
                details,
                ..ApiError::new(403, "Forbidden", message)
            }
        }
    }
}
