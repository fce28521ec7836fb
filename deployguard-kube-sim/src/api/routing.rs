//! Where a request goes (discovery, OpenAPI, a resource and its subresource) and what it asks
//! to do, as the authorizer sees it.

use super::*;

/// Where a request goes.
pub(super) enum Route {
    Api,
    Apis,
    GroupVersion(String, String),
    Version,
    Health,
    /// `/metrics/<name>`, served by an extension.
    Metrics(String),
    OpenApiV2,
    /// `/openapi/v3` (empty) or the group-version document after it.
    OpenApiV3(String),
    Resource {
        rt: Box<ResourceType>,
        namespace: Option<String>,
        name: Option<String>,
        sub: Option<String>,
    },
    Unknown,
}

pub(super) fn route(types: &[ResourceType], path: &str) -> Route {
    let segments: Vec<&str> = path
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    let (group, version, rest) = match segments.as_slice() {
        ["api"] => return Route::Api,
        ["apis"] => return Route::Apis,
        ["version"] => return Route::Version,
        ["healthz" | "readyz" | "livez", ..] => return Route::Health,
        ["metrics", name] => return Route::Metrics((*name).to_owned()),
        ["openapi", "v2"] => return Route::OpenApiV2,
        ["openapi", "v3", rest @ ..] => return Route::OpenApiV3(rest.join("/")),
        ["api", version] => return Route::GroupVersion(String::new(), (*version).to_owned()),
        ["apis", group, version] => {
            return Route::GroupVersion((*group).to_owned(), (*version).to_owned());
        }
        ["api", version, rest @ ..] => ("", *version, rest),
        ["apis", group, version, rest @ ..] => (*group, *version, rest),
        _ => return Route::Unknown,
    };
    let find = |plural: &str| {
        types
            .iter()
            .find(|t| t.group == group && t.version == version && t.plural == plural)
            .cloned()
    };
    let (namespace, rest) = match rest {
        ["namespaces", ns, plural, tail @ ..] if find(plural).is_some_and(|t| t.namespaced) => {
            (Some((*ns).to_owned()), [&[*plural][..], tail].concat())
        }
        other => (None, other.to_vec()),
    };
    let Some(rt) = rest.first().and_then(|plural| find(plural)) else {
        return Route::Unknown;
    };
    Route::Resource {
        rt: Box::new(rt),
        namespace,
        name: rest.get(1).map(|s| (*s).to_owned()),
        sub: rest.get(2).map(|s| (*s).to_owned()),
    }
}

pub(super) fn verb_of(method: &Method, route: &Route, watch: bool) -> Verb {
    let named = matches!(route, Route::Resource { name: Some(_), .. });
    // Streaming into a pod is creating something in it, whichever method the handshake uses.
    let streams = matches!(route, Route::Resource { sub: Some(sub), .. }
        if matches!(sub.as_str(), "exec" | "attach" | "portforward"));
    match (method.as_str(), named) {
        (_, _) if !matches!(route, Route::Resource { .. }) => Verb::Discovery,
        _ if streams => Verb::Create,
        ("GET", true) => Verb::Get,
        ("GET", false) if watch => Verb::Watch,
        ("GET", false) => Verb::List,
        ("POST", _) => Verb::Create,
        ("PUT", _) => Verb::Update,
        ("PATCH", _) => Verb::Patch,
        ("DELETE", true) => Verb::Delete,
        ("DELETE", false) => Verb::DeleteCollection,
        _ => Verb::Get,
    }
}

/// Authenticates the request and asks the authorizer whether its identity may do what it asks:
/// the identity, or the 401 or 403 the real server answers.
pub(super) fn admit(
    shared: &Shared,
    types: &[ResourceType],
    route: &Route,
    request: &ApiRequest,
    verb: Verb,
) -> Result<Identity, ApiError> {
    let store = lock(&shared.store);
    let identity = auth::authenticate(
        shared.token.as_deref(),
        &lock(&shared.tokens),
        &store,
        types,
        request.authorization.as_deref(),
    )?;
    let identity = impersonated(&store, types, identity, request)?;
    let attributes = attributes_of(route, request, verb);
    if auth::authorize(&store, types, &identity, &attributes).allowed {
        Ok(identity)
    } else {
        Err(auth::forbidden(&identity, &attributes))
    }
}

/// The request as the authorizer sees it: verb, group, resource, subresource, namespace and
/// name (from `metadata.name=` for a list or watch), or a path and the lower-case method.
pub(super) fn attributes_of(route: &Route, request: &ApiRequest, verb: Verb) -> Attributes {
    let Route::Resource {
        rt,
        namespace,
        name,
        sub,
    } = route
    else {
        return Attributes::NonResource {
            verb: request.method.as_str().to_lowercase(),
            path: request.path.clone(),
        };
    };
    let verb = match verb {
        Verb::Get | Verb::Discovery => "get",
        Verb::List => "list",
        Verb::Watch => "watch",
        Verb::Create => "create",
        Verb::Update => "update",
        Verb::Patch => "patch",
        Verb::Delete => "delete",
        Verb::DeleteCollection => "deletecollection",
    };
    let name = name.clone().unwrap_or_else(|| {
        FieldSelector::parse(request.param("fieldSelector").unwrap_or(""))
            .ok()
            .and_then(|f| f.name().map(str::to_owned))
            .unwrap_or_default()
    });
    Attributes::Resource {
        verb: verb.into(),
        group: rt.group.clone(),
        resource: rt.plural.clone(),
        subresource: sub.clone().unwrap_or_default(),
        namespace: namespace.clone().unwrap_or_default(),
        name,
    }
}

/// The identity a request acts as: its sender's, or the one its `Impersonate-*` headers name
/// when the sender may `impersonate` that user, each group and the uid (as the API server's
/// impersonation filter checks them). The impersonated user is in `system:authenticated`, and a
/// ServiceAccount in its groups, as the real filter adds them.
fn impersonated(
    store: &crate::store::Store,
    types: &[ResourceType],
    sender: Identity,
    request: &ApiRequest,
) -> Result<Identity, ApiError> {
    let Some(user) = &request.impersonate_user else {
        if request.impersonate_groups.is_empty() && request.impersonate_uid.is_none() {
            return Ok(sender);
        }
        return Err(ApiError::new(
            500,
            "InternalError",
            "Internal error occurred: requested impersonation of groups or uid without impersonating a user",
        ));
    };
    let may = |resource: &str, namespace: &str, name: &str| {
        let attributes = Attributes::Resource {
            verb: "impersonate".into(),
            group: if resource == "uids" {
                "authentication.k8s.io".into()
            } else {
                String::new()
            },
            resource: resource.into(),
            subresource: String::new(),
            namespace: namespace.into(),
            name: name.into(),
        };
        if auth::authorize(store, types, &sender, &attributes).allowed {
            Ok(())
        } else {
            Err(auth::forbidden(&sender, &attributes))
        }
    };
    let mut groups = request.impersonate_groups.clone();
    match user
        .strip_prefix("system:serviceaccount:")
        .and_then(|rest| rest.split_once(':'))
    {
        Some((namespace, name)) => {
            may("serviceaccounts", namespace, name)?;
            groups.push("system:serviceaccounts".into());
            groups.push(format!("system:serviceaccounts:{namespace}"));
        }
        None => may("users", "", user)?,
    }
    for group in &request.impersonate_groups {
        may("groups", "", group)?;
    }
    if let Some(uid) = &request.impersonate_uid {
        may("uids", "", uid)?;
    }
    if user != "system:anonymous" && !groups.iter().any(|g| g == "system:authenticated") {
        groups.push("system:authenticated".into());
    }
    Ok(Identity {
        name: user.clone(),
        uid: request.impersonate_uid.clone(),
        groups,
    })
}
