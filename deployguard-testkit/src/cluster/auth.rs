//! Who is asking, and may they: bearer tokens, RBAC as the real authorizer evaluates it, and the
//! review APIs `kubectl auth can-i` and `kubectl auth whoami` call.
//!
//! A request without credentials is the cluster's admin unless the cluster was built with an
//! admin token, as before. Any other identity comes from a token the test or scenario issued
//! ([`FakeCluster::user_token`](super::FakeCluster::user_token)) or a ServiceAccount token
//! (`kubectl create token`, [`FakeCluster::service_account_token`](super::FakeCluster::service_account_token)).
//! The admin is in `system:masters`, which the API server allows everything before RBAC is
//! asked; everyone else is allowed exactly what their Roles and ClusterRoles grant through
//! bindings, plus the discovery and self-review rules every authenticated user has.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use serde_json::{Value, json};

use super::clock::rfc3339;
use super::resources::ResourceType;
use super::status::ApiError;
use super::store::Store;

/// The admin's group: allowed everything before RBAC is consulted.
const MASTERS: &str = "system:masters";
/// Every authenticated identity is in this group.
const AUTHENTICATED: &str = "system:authenticated";
/// How long a ServiceAccount token lives when the request names no expiry (`kubectl create
/// token` asks for one hour).
const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(3600);
/// The shortest lifetime the API server issues (`expirationSeconds` below it is invalid).
const MIN_TOKEN_LIFETIME: u64 = 600;
/// The audience a token is issued for when the request names none.
const API_AUDIENCE: &str = "https://kubernetes.default.svc.cluster.local";

/// An authenticated identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Identity {
    pub(crate) name: String,
    pub(crate) uid: Option<String>,
    pub(crate) groups: Vec<String>,
}

impl Identity {
    /// The identity of the admin credential (the kubeconfig of `fake-cluster`, or no
    /// credential at all on a cluster without an admin token).
    pub(crate) fn admin() -> Self {
        Self {
            name: "kubernetes-admin".into(),
            uid: None,
            groups: vec![MASTERS.into(), AUTHENTICATED.into()],
        }
    }

    fn user(name: &str, groups: &[&str]) -> Self {
        let mut groups: Vec<String> = groups.iter().map(|g| (*g).to_owned()).collect();
        if !groups.iter().any(|g| g == AUTHENTICATED) {
            groups.push(AUTHENTICATED.into());
        }
        Self {
            name: name.into(),
            uid: None,
            groups,
        }
    }

    fn service_account(namespace: &str, name: &str, uid: &str) -> Self {
        Self {
            name: format!("system:serviceaccount:{namespace}:{name}"),
            uid: Some(uid.into()),
            groups: vec![
                "system:serviceaccounts".into(),
                format!("system:serviceaccounts:{namespace}"),
                AUTHENTICATED.into(),
            ],
        }
    }

    fn is_privileged(&self) -> bool {
        self.groups.iter().any(|g| g == MASTERS)
    }
}

/// One issued bearer token.
#[derive(Debug, Clone)]
struct Credential {
    identity: Identity,
    /// Cluster time after which the token no longer authenticates.
    expires: Option<SystemTime>,
    /// A ServiceAccount token is valid only while its account (this uid) exists.
    account: Option<(String, String, String)>,
}

/// The tokens issued so far.
#[derive(Default)]
pub(crate) struct Tokens {
    issued: HashMap<String, Credential>,
    counter: u64,
}

impl std::fmt::Debug for Tokens {
    // Tokens are credentials: Debug says how many there are, never what they are.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokens")
            .field("issued", &self.issued.len())
            .finish_non_exhaustive()
    }
}

impl Tokens {
    fn mint(&mut self, prefix: &str, claims: &Value) -> String {
        self.counter += 1;
        let seed = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        let signature = format!(
            "{:016x}{:016x}",
            mix(seed ^ self.counter),
            mix(self.counter.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ seed.rotate_left(17))
        );
        // Service account tokens are JWTs on a real cluster, and people decode them; a test
        // user's token is an opaque string, as a static token file's would be.
        if claims.is_null() {
            return format!("{prefix}.{signature}");
        }
        format!(
            "{}.{}.{}",
            base64url(br#"{"alg":"RS256","kid":"deployguard-fake-cluster"}"#),
            base64url(claims.to_string().as_bytes()),
            base64url(signature.as_bytes())
        )
    }

    /// A token for a user the test names.
    pub(crate) fn issue_user(&mut self, name: &str, groups: &[&str]) -> String {
        self.issue_static(Identity::user(name, groups))
    }

    /// A token for the admin, for a kubeconfig that must carry a credential (over TLS, kubectl
    /// asks for a password when the user has none).
    pub(crate) fn issue_admin(&mut self) -> String {
        self.issue_static(Identity::admin())
    }

    fn issue_static(&mut self, identity: Identity) -> String {
        let token = self.mint(&format!("user-{}", self.counter + 1), &Value::Null);
        self.issued.insert(
            token.clone(),
            Credential {
                identity,
                expires: None,
                account: None,
            },
        );
        token
    }

    /// A token for ServiceAccount `account` (a stored object) valid for `lifetime` from `now`.
    fn issue_account(
        &mut self,
        account: &Value,
        now: SystemTime,
        lifetime: Duration,
        audiences: &[String],
    ) -> (String, SystemTime) {
        let text = |pointer: &str| {
            account
                .pointer(pointer)
                .and_then(Value::as_str)
                .unwrap_or("")
        };
        let (namespace, name, uid) = (
            text("/metadata/namespace"),
            text("/metadata/name"),
            text("/metadata/uid"),
        );
        let issued_at = now
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let expires = now + lifetime;
        let identity = Identity::service_account(namespace, name, uid);
        let claims = json!({
            "aud": audiences,
            "exp": issued_at + lifetime.as_secs(),
            "iat": issued_at,
            "iss": "https://kubernetes.default.svc.cluster.local",
            "kubernetes.io": {"namespace": namespace, "serviceaccount": {"name": name, "uid": uid}},
            "nbf": issued_at,
            "sub": identity.name,
        });
        let token = self.mint("", &claims);
        self.issued.insert(
            token.clone(),
            Credential {
                identity,
                expires: Some(expires),
                account: Some((namespace.into(), name.into(), uid.into())),
            },
        );
        (token, expires)
    }
}

fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

fn base64url(bytes: &[u8]) -> String {
    base64(
        bytes,
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_",
        false,
    )
}

/// Standard base64 with padding (kubeconfig `*-data` fields).
pub(crate) fn base64_standard(bytes: &[u8]) -> String {
    base64(
        bytes,
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/",
        true,
    )
}

fn base64(bytes: &[u8], alphabet: &[u8; 64], pad: bool) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(char::from(alphabet[((n >> (18 - 6 * i)) & 63) as usize]));
        }
        if pad {
            out.extend(std::iter::repeat_n('=', 3 - chunk.len()));
        }
    }
    out
}

/// Who sent `authorization` (the header's value): the admin, an issued token's identity, or
/// 401 as the real server answers a missing, unknown, expired or orphaned token.
pub(crate) fn authenticate(
    admin_token: Option<&str>,
    tokens: &Tokens,
    store: &Store,
    types: &[ResourceType],
    authorization: Option<&str>,
) -> Result<Identity, ApiError> {
    let unauthorized = || ApiError::injected(401, "Unauthorized");
    let presented = authorization
        .and_then(|h| h.strip_prefix("Bearer "))
        .map(str::trim);
    let Some(token) = presented else {
        return match admin_token {
            None => Ok(Identity::admin()),
            Some(_) => Err(unauthorized()),
        };
    };
    if admin_token == Some(token) {
        return Ok(Identity::admin());
    }
    let credential = tokens.issued.get(token).ok_or_else(unauthorized)?;
    if credential.expires.is_some_and(|at| store.clock.now() >= at) {
        return Err(unauthorized());
    }
    if let Some((namespace, name, uid)) = &credential.account {
        let accounts = type_of(types, "", "ServiceAccount").ok_or_else(unauthorized)?;
        let current = store
            .get(&accounts, namespace, name)
            .map_err(|_| unauthorized())?;
        if current.pointer("/metadata/uid").and_then(Value::as_str) != Some(uid.as_str()) {
            return Err(unauthorized());
        }
    }
    Ok(credential.identity.clone())
}

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
    fn verb(&self) -> &str {
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
fn bootstrap_rules() -> &'static [Value] {
    static RULES: std::sync::OnceLock<Vec<Value>> = std::sync::OnceLock::new();
    RULES.get_or_init(|| {
        vec![
            json!({"verbs": ["get"], "nonResourceURLs": ["/api", "/api/*", "/apis", "/apis/*", "/healthz", "/livez", "/openapi", "/openapi/*", "/readyz", "/version", "/version/"]}),
            json!({"verbs": ["create"], "apiGroups": ["authorization.k8s.io"], "resources": ["selfsubjectaccessreviews", "selfsubjectrulesreviews"]}),
            json!({"verbs": ["create"], "apiGroups": ["authentication.k8s.io"], "resources": ["selfsubjectreviews"]}),
        ]
    })
}

fn type_of(types: &[ResourceType], group: &str, kind: &str) -> Option<ResourceType> {
    types
        .iter()
        .find(|t| t.group == group && t.kind == kind)
        .cloned()
}

fn strings(value: Option<&Value>) -> Vec<&str> {
    value
        .and_then(Value::as_array)
        .map(|items| items.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

fn text<'a>(value: &'a Value, pointer: &str) -> &'a str {
    value.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

/// Calls `visit(source, rule)` for every rule bound to `identity` that applies where
/// `attributes` act (cluster-wide bindings, then the namespace's), until `visit` says stop.
/// `source` is how the RBAC authorizer describes the binding.
fn visit_rules(
    store: &Store,
    types: &[ResourceType],
    identity: &Identity,
    attributes: &Attributes,
    visit: &mut dyn FnMut(&str, &Value) -> bool,
) {
    let everything = super::selectors::LabelSelector::default();
    let no_fields = super::selectors::FieldSelector::default();
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
fn matching_subject(binding: &Value, identity: &Identity, namespace: &str) -> Option<String> {
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
fn rule_allows(rule: &Value, attributes: &Attributes) -> bool {
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

/// Issues a token for ServiceAccount `account` from a TokenRequest `body` (`kubectl create
/// token`): the TokenRequest answer, or 422 for a lifetime the server would refuse.
pub(crate) fn token_request(
    tokens: &mut Tokens,
    account: &Value,
    body: &Value,
    now: SystemTime,
) -> Result<Value, ApiError> {
    let name = text(account, "/metadata/name");
    let seconds = body
        .pointer("/spec/expirationSeconds")
        .and_then(Value::as_u64)
        .unwrap_or(DEFAULT_TOKEN_LIFETIME.as_secs());
    if seconds < MIN_TOKEN_LIFETIME {
        let rt = ResourceType::custom(
            "authentication.k8s.io",
            "v1",
            "TokenRequest",
            "tokenrequests",
        );
        return Err(ApiError::invalid(
            &rt,
            name,
            "spec.expirationSeconds",
            &format!("Invalid value: {seconds}: may not specify a duration less than 10 minutes"),
        ));
    }
    let mut audiences: Vec<String> = strings(body.pointer("/spec/audiences"))
        .into_iter()
        .map(str::to_owned)
        .collect();
    if audiences.is_empty() {
        audiences.push(API_AUDIENCE.into());
    }
    let (token, expires) =
        tokens.issue_account(account, now, Duration::from_secs(seconds), &audiences);
    Ok(json!({
        "kind": "TokenRequest",
        "apiVersion": "authentication.k8s.io/v1",
        "metadata": {"name": name, "namespace": text(account, "/metadata/namespace"), "creationTimestamp": null},
        "spec": {"audiences": audiences, "expirationSeconds": seconds, "boundObjectRef": null},
        "status": {"token": token, "expirationTimestamp": rfc3339(expires)},
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resource(verb: &str, group: &str, resource: &str, sub: &str, name: &str) -> Attributes {
        Attributes::Resource {
            verb: verb.into(),
            group: group.into(),
            resource: resource.into(),
            subresource: sub.into(),
            namespace: "default".into(),
            name: name.into(),
        }
    }

    #[test]
    fn rules_match_as_the_rbac_authorizer_matches_them() {
        let rule =
            json!({"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["get", "patch"]});
        assert!(rule_allows(
            &rule,
            &resource("patch", "apps", "deployments", "", "web")
        ));
        assert!(!rule_allows(
            &rule,
            &resource("delete", "apps", "deployments", "", "web")
        ));
        assert!(!rule_allows(
            &rule,
            &resource("get", "", "deployments", "", "web")
        ));
        // A subresource needs its own rule.
        assert!(!rule_allows(
            &rule,
            &resource("get", "apps", "deployments", "scale", "web")
        ));
        let named = json!({"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"], "resourceNames": ["a"]});
        assert!(rule_allows(
            &named,
            &resource("get", "", "pods", "log", "a")
        ));
        assert!(!rule_allows(
            &named,
            &resource("get", "", "pods", "log", "b")
        ));
        let wild = json!({"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]});
        assert!(rule_allows(
            &wild,
            &resource("deletecollection", "batch", "jobs", "", "")
        ));
        let urls = json!({"verbs": ["get"], "nonResourceURLs": ["/apis/*"]});
        let path = |p: &str| Attributes::NonResource {
            verb: "get".into(),
            path: p.into(),
        };
        assert!(rule_allows(&urls, &path("/apis/apps/v1")));
        assert!(!rule_allows(&urls, &path("/metrics")));
    }

    #[test]
    fn forbidden_is_worded_as_the_api_server_words_it() {
        let who = Identity::service_account("default", "guard", "u1");
        let err = forbidden(&who, &resource("patch", "apps", "deployments", "", "web"));
        assert_eq!(
            err.message,
            "deployments.apps \"web\" is forbidden: User \"system:serviceaccount:default:guard\" cannot patch resource \"deployments\" in API group \"apps\" in the namespace \"default\""
        );
        let err = forbidden(&who, &resource("get", "", "pods", "log", "web-1"));
        assert_eq!(
            err.message,
            "pods \"web-1\" is forbidden: User \"system:serviceaccount:default:guard\" cannot get resource \"pods/log\" in API group \"\" in the namespace \"default\""
        );
        let cluster = Attributes::Resource {
            verb: "list".into(),
            group: String::new(),
            resource: "namespaces".into(),
            subresource: String::new(),
            namespace: String::new(),
            name: String::new(),
        };
        assert_eq!(
            forbidden(&who, &cluster).message,
            "namespaces is forbidden: User \"system:serviceaccount:default:guard\" cannot list resource \"namespaces\" in API group \"\" at the cluster scope"
        );
    }

    #[test]
    fn debug_never_prints_a_token() {
        let mut tokens = Tokens::default();
        let token = tokens.issue_user("alice", &[]);
        let printed = format!("{tokens:?}");
        assert!(!printed.contains(&token), "{printed}");
        assert!(printed.contains("issued: 1"), "{printed}");
    }

    #[test]
    fn base64url_has_no_padding() {
        assert_eq!(base64url(b"f"), "Zg");
        assert_eq!(base64url(b"fo"), "Zm8");
        assert_eq!(base64url(b"foo"), "Zm9v");
        assert_eq!(base64url(b"{\"a\":1}?"), "eyJhIjoxfT8");
        assert_eq!(base64_standard(b"f"), "Zg==");
        assert_eq!(base64_standard(b"fo"), "Zm8=");
        assert_eq!(base64_standard(b"\xfb\xff"), "+/8=");
    }
}
