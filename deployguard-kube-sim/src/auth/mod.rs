//! Who is asking, and may they: bearer tokens, RBAC as the real authorizer evaluates it, and the
//! review APIs `kubectl auth can-i` and `kubectl auth whoami` call.
//!
//! A request without credentials is the cluster's admin unless the cluster was built with an
//! admin token, as before. Any other identity comes from a token the test or scenario issued
//! ([`FakeCluster::user_token`](crate::FakeCluster::user_token)) or a ServiceAccount token
//! (`kubectl create token`, [`FakeCluster::service_account_token`](crate::FakeCluster::service_account_token)).
//! The admin is in `system:masters`, which the API server allows everything before RBAC is
//! asked; everyone else is allowed exactly what their Roles and ClusterRoles grant through
//! bindings, plus the discovery and self-review rules every authenticated user has.

mod rbac;
mod reviews;
mod tokens;

pub(crate) use rbac::*;
pub(crate) use reviews::*;
pub(crate) use tokens::*;

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use serde_json::{Value, json};

use crate::clock::rfc3339;
use crate::resources::ResourceType;
use crate::status::ApiError;
use crate::store::Store;

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
