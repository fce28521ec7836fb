//! The review APIs `kubectl auth can-i` and `kubectl auth whoami` call: SelfSubjectAccessReview,
//! SelfSubjectRulesReview and SelfSubjectReview, computed, never stored.

use super::*;

/// Answers a SelfSubjectAccessReview, SelfSubjectRulesReview or SelfSubjectReview body for
/// `identity` (they are computed, never stored), or `None` for any other kind.
pub(crate) fn review(
    store: &Store,
    types: &[ResourceType],
    identity: &Identity,
    rt: &ResourceType,
    body: &Value,
) -> Option<Value> {
    let mut answer = json!({
        "kind": rt.kind,
        "apiVersion": rt.api_version(),
        "metadata": {"creationTimestamp": null},
    });
    match rt.kind.as_str() {
        "SelfSubjectAccessReview" => {
            let spec = body.get("spec").cloned().unwrap_or_else(|| json!({}));
            let attributes = if let Some(r) = spec.get("resourceAttributes") {
                Attributes::Resource {
                    verb: text(r, "/verb").to_owned(),
                    group: text(r, "/group").to_owned(),
                    resource: text(r, "/resource").to_owned(),
                    subresource: text(r, "/subresource").to_owned(),
                    namespace: text(r, "/namespace").to_owned(),
                    name: text(r, "/name").to_owned(),
                }
            } else {
                let n = spec
                    .get("nonResourceAttributes")
                    .cloned()
                    .unwrap_or_default();
                Attributes::NonResource {
                    verb: text(&n, "/verb").to_owned(),
                    path: text(&n, "/path").to_owned(),
                }
            };
            let decision = authorize(store, types, identity, &attributes);
            answer["spec"] = spec;
            answer["status"] = json!({"allowed": decision.allowed});
            if !decision.reason.is_empty() {
                answer["status"]["reason"] = json!(decision.reason);
            }
        }
        "SelfSubjectRulesReview" => {
            let namespace = text(body, "/spec/namespace").to_owned();
            let mut resource_rules = Vec::new();
            let mut non_resource_rules = Vec::new();
            let mut take = |rule: &Value| {
                if rule.get("nonResourceURLs").is_some() {
                    non_resource_rules.push(
                        json!({"verbs": rule["verbs"], "nonResourceURLs": rule["nonResourceURLs"]}),
                    );
                } else {
                    let mut r = json!({"verbs": rule["verbs"], "apiGroups": rule.get("apiGroups").cloned().unwrap_or(json!([])), "resources": rule.get("resources").cloned().unwrap_or(json!([]))});
                    if let Some(names) = rule.get("resourceNames") {
                        r["resourceNames"] = names.clone();
                    }
                    resource_rules.push(r);
                }
            };
            if identity.is_privileged() {
                take(&json!({"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}));
                take(&json!({"verbs": ["*"], "nonResourceURLs": ["*"]}));
            }
            for rule in bootstrap_rules() {
                take(rule);
            }
            let attributes = Attributes::Resource {
                verb: String::new(),
                group: String::new(),
                resource: String::new(),
                subresource: String::new(),
                namespace: namespace.clone(),
                name: String::new(),
            };
            visit_rules(store, types, identity, &attributes, &mut |_, rule| {
                take(rule);
                true
            });
            answer["spec"] = json!({"namespace": namespace});
            answer["status"] = json!({"resourceRules": resource_rules, "nonResourceRules": non_resource_rules, "incomplete": false});
        }
        "SelfSubjectReview" => {
            let mut user = json!({"username": identity.name, "groups": identity.groups});
            if let Some(uid) = &identity.uid {
                user["uid"] = json!(uid);
            }
            answer["status"] = json!({"userInfo": user});
        }
        _ => return None,
    }
    Some(answer)
}
