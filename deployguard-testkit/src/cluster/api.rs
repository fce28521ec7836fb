//! The REST front: routes a request to discovery, the store, a subresource or a watch, and
//! answers as the real API server answers.

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderValue, Method, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, combinators::UnsyncBoxBody};
use serde_json::{Value, json};
use tokio::time::Instant;

use super::auth::{self, Attributes, Identity};
use super::discovery::{self, DiscoveryFormat};
use super::faults::{FaultAction, RequestRecord, Verb, firing};
use super::managed;
use super::patch::{PatchError, PatchType, apply_patch};
use super::resources::ResourceType;
use super::selectors::{FieldSelector, LabelSelector};
use super::status::ApiError;
use super::store::Part;
use super::table::table;
use super::{Shared, lock, watch};

/// The response body type of every answer.
pub(crate) type Body = UnsyncBoxBody<Bytes, Infallible>;

/// The version the simulated server reports.
pub(crate) const SERVER_MINOR: &str = "33";

/// A parsed request.
pub(crate) struct ApiRequest {
    pub(crate) method: Method,
    pub(crate) path: String,
    pub(crate) raw_query: String,
    pub(crate) query: Vec<(String, String)>,
    pub(crate) accept: String,
    pub(crate) content_type: String,
    pub(crate) authorization: Option<String>,
    pub(crate) user_agent: String,
    pub(crate) body: Bytes,
    /// Who sent it, once authenticated.
    pub(crate) identity: Identity,
}

impl ApiRequest {
    pub(crate) fn new(parts: &http::request::Parts, body: Bytes) -> Self {
        let header = |name: header::HeaderName| {
            parts
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned()
        };
        let raw_query = parts.uri.query().unwrap_or("").to_owned();
        Self {
            method: parts.method.clone(),
            path: parts.uri.path().to_owned(),
            query: parse_query(&raw_query),
            raw_query,
            accept: header(header::ACCEPT),
            content_type: header(header::CONTENT_TYPE),
            authorization: parts
                .headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
            user_agent: header(header::USER_AGENT),
            body,
            identity: Identity::admin(),
        }
    }

    pub(crate) fn param(&self, key: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    fn dry_run(&self) -> bool {
        self.param("dryRun") == Some("All")
    }

    /// The field manager a write is recorded under: `fieldManager`, else the client's
    /// User-Agent up to its first `/`, as the API server derives it.
    fn manager(&self) -> String {
        match self.param("fieldManager").filter(|m| !m.is_empty()) {
            Some(manager) => manager.to_owned(),
            None => match self.user_agent.split('/').next().filter(|p| !p.is_empty()) {
                Some(prefix) => prefix.to_owned(),
                None => "unknown".to_owned(),
            },
        }
    }
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match u8::from_str_radix(&text[i + 1..i + 3], 16) {
                Ok(b) => {
                    out.push(b);
                    i += 2;
                }
                Err(_) => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub(crate) fn parse_query(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| match pair.split_once('=') {
            Some((k, v)) => (percent_decode(k), percent_decode(v)),
            None => (percent_decode(pair), String::new()),
        })
        .collect()
}

pub(crate) fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).boxed_unsync()
}

pub(crate) fn json_response(status: u16, value: &Value, content_type: &str) -> Response<Body> {
    let mut response = Response::new(full(value.to_string()));
    *response.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    if let Ok(ct) = HeaderValue::from_str(content_type) {
        response.headers_mut().insert(header::CONTENT_TYPE, ct);
    }
    response
}

pub(crate) fn error_response(err: &ApiError) -> Response<Body> {
    json_response(err.code, &err.to_status(), "application/json")
}

/// Where a request goes.
enum Route {
    Api,
    Apis,
    GroupVersion(String, String),
    Version,
    Health,
    TrafficMetrics,
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

fn route(types: &[ResourceType], path: &str) -> Route {
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
        ["metrics", "traffic"] => return Route::TrafficMetrics,
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

fn verb_of(method: &Method, route: &Route, watch: bool) -> Verb {
    let named = matches!(route, Route::Resource { name: Some(_), .. });
    match (method.as_str(), named) {
        (_, _) if !matches!(route, Route::Resource { .. }) => Verb::Discovery,
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

/// The connection closed without an answer (an injected reset or lost response).
#[derive(Debug)]
pub(crate) struct ConnectionReset;

impl std::fmt::Display for ConnectionReset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection reset by the simulated API server (injected fault)")
    }
}

impl std::error::Error for ConnectionReset {}

/// Serves one request and records it in the request log; `Err` closes the connection without an
/// answer.
pub(crate) async fn handle(
    shared: Arc<Shared>,
    mut request: ApiRequest,
) -> Result<Response<Body>, ConnectionReset> {
    let started = Instant::now();
    let types = lock(&shared.types).clone();
    let route = route(&types, &request.path);
    let watch = matches!(request.param("watch"), Some("true" | "1"));
    let verb = verb_of(&request.method, &route, watch);
    let resource = match &route {
        Route::Resource { rt, .. } => Some(rt.plural.clone()),
        _ => None,
    };
    let actions = firing(&mut lock(&shared.faults), verb, resource.as_deref());
    let mut drop_watch = false;
    let mut injected = None;
    let (mut reset, mut lose_response) = (false, false);
    for action in actions {
        match action {
            FaultAction::Latency(delay) => tokio::time::sleep(delay).await,
            FaultAction::Reset => reset = true,
            FaultAction::LoseResponse => lose_response = true,
            FaultAction::HangThenStatus(delay, code) => {
                tokio::time::sleep(delay).await;
                injected = Some(ApiError::injected(
                    code,
                    &format!("injected fault: HTTP {code} after {}s", delay.as_secs()),
                ));
            }
            FaultAction::Status(code) => {
                injected = Some(ApiError::injected(
                    code,
                    &format!("injected fault: HTTP {code}"),
                ))
            }
            FaultAction::Conflict if verb.is_write() => {
                let (rt, name) = match &route {
                    Route::Resource { rt, name, .. } => {
                        ((**rt).clone(), name.clone().unwrap_or_default())
                    }
                    _ => (types[0].clone(), String::new()),
                };
                injected = Some(ApiError::conflict(&rt, &name));
            }
            FaultAction::DropWatch => drop_watch = true,
            FaultAction::Conflict => {}
        }
    }
    let response = if reset {
        error_response(&ApiError::injected(499, "connection reset"))
    } else if let Some(err) = injected {
        error_response(&err)
    } else {
        match admit(&shared, &types, &route, &request, verb) {
            Ok(identity) => {
                request.identity = identity;
                serve(&shared, &types, route, &request, watch, drop_watch).await
            }
            Err(err) => error_response(&err),
        }
    };
    if shared.log_requests {
        let query = if request.raw_query.is_empty() {
            String::new()
        } else {
            format!("?{}", request.raw_query)
        };
        eprintln!(
            "{} {}{} {}",
            request.method,
            request.path,
            query,
            response.status().as_u16()
        );
    }
    lock(&shared.requests).push(RequestRecord {
        method: request.method.to_string(),
        path: request.path.clone(),
        query: request.raw_query.clone(),
        verb,
        status: response.status().as_u16(),
        duration: started.elapsed(),
    });
    if reset || lose_response {
        return Err(ConnectionReset);
    }
    Ok(response)
}

/// Authenticates the request and asks the authorizer whether its identity may do what it asks:
/// the identity, or the 401 or 403 the real server answers.
fn admit(
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
    let attributes = attributes_of(route, request, verb);
    if auth::authorize(&store, types, &identity, &attributes).allowed {
        Ok(identity)
    } else {
        Err(auth::forbidden(&identity, &attributes))
    }
}

/// The request as the authorizer sees it: verb, group, resource, subresource, namespace and
/// name (from `metadata.name=` for a list or watch), or a path and the lower-case method.
fn attributes_of(route: &Route, request: &ApiRequest, verb: Verb) -> Attributes {
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

async fn serve(
    shared: &Arc<Shared>,
    types: &[ResourceType],
    route: Route,
    request: &ApiRequest,
    watch: bool,
    drop_watch: bool,
) -> Response<Body> {
    match route {
        Route::Api | Route::Apis => {
            let format = DiscoveryFormat::negotiate(&request.accept);
            let body = match (format, matches!(route, Route::Api)) {
                (DiscoveryFormat::Legacy, true) => {
                    discovery::api_versions(&lock(&shared.server_address))
                }
                (DiscoveryFormat::Legacy, false) => discovery::api_group_list(types),
                (format, core) => discovery::aggregated(types, core, format),
            };
            json_response(200, &body, format.content_type())
        }
        Route::GroupVersion(group, version) => {
            match discovery::api_resource_list(types, &group, &version) {
                Some(list) => json_response(200, &list, "application/json"),
                None => error_response(&ApiError::new(
                    404,
                    "NotFound",
                    "the server could not find the requested resource",
                )),
            }
        }
        Route::Version => json_response(
            200,
            &json!({
                "major": "1", "minor": SERVER_MINOR,
                "emulationMajor": "1", "emulationMinor": SERVER_MINOR,
                "minCompatibilityMajor": "1", "minCompatibilityMinor": format!("{}", SERVER_MINOR.parse::<u32>().unwrap_or(33) - 1),
                "gitVersion": format!("v1.{SERVER_MINOR}.0-deployguard"),
                "gitCommit": "0000000000000000000000000000000000000000", "gitTreeState": "clean",
                "buildDate": "2026-01-01T00:00:00Z", "goVersion": "go1.24.0", "compiler": "gc",
                "platform": "linux/amd64",
            }),
            "application/json",
        ),
        Route::Health => {
            let mut response = Response::new(full("ok"));
            response
                .headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
            response
        }
        Route::TrafficMetrics => {
            super::traffic::tick(shared);
            let text = lock(&shared.traffic).prometheus();
            let mut response = Response::new(full(text));
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4"),
            );
            response
        }
        Route::OpenApiV2 => {
            let mut response = Response::new(full(super::openapi::v2_protobuf()));
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(
                    "application/com.github.proto-openapi.spec.v2.v1.0+protobuf",
                ),
            );
            response
        }
        Route::OpenApiV3(path) => {
            let crds = stored_crds(shared, types);
            let document = if path.is_empty() {
                Some(super::openapi::v3_index(types, &crds))
            } else {
                super::openapi::v3_at(types, &crds, &path)
            };
            match document {
                Some(document) => json_response(200, &document, "application/json"),
                None => error_response(&ApiError::new(
                    404,
                    "NotFound",
                    "the server could not find the requested resource",
                )),
            }
        }
        Route::Unknown => error_response(&ApiError::new(
            404,
            "NotFound",
            "the server could not find the requested resource",
        )),
        Route::Resource {
            rt,
            namespace,
            name,
            sub,
        } => {
            let result = resource(
                shared, &rt, namespace, name, sub, request, watch, drop_watch,
            )
            .await;
            let mut response = result.unwrap_or_else(|err| error_response(&err));
            if rt.kind == "Endpoints" && rt.group.is_empty() {
                response.headers_mut().insert(
                    "warning",
                    HeaderValue::from_static("299 - \"v1 Endpoints is deprecated in v1.33+; use discovery.k8s.io/v1 EndpointSlice\""),
                );
            }
            response
        }
    }
}

pub(crate) fn wants_table(request: &ApiRequest) -> bool {
    request
        .accept
        .split(',')
        .next()
        .is_some_and(|first| first.contains("as=Table"))
}

fn list_kind(rt: &ResourceType) -> String {
    format!("{}List", rt.kind)
}

#[allow(clippy::too_many_arguments)]
async fn resource(
    shared: &Arc<Shared>,
    rt: &ResourceType,
    namespace: Option<String>,
    name: Option<String>,
    sub: Option<String>,
    request: &ApiRequest,
    watch: bool,
    drop_watch: bool,
) -> Result<Response<Body>, ApiError> {
    let ns = namespace.clone().unwrap_or_default();
    let method = request.method.as_str();
    match (method, name, sub) {
        ("GET", None, _) => {
            let labels = LabelSelector::parse(request.param("labelSelector").unwrap_or(""))
                .map_err(ApiError::bad_request)?;
            let fields = FieldSelector::parse(request.param("fieldSelector").unwrap_or(""))
                .map_err(ApiError::bad_request)?;
            if watch {
                return watch::serve(
                    Arc::clone(shared),
                    rt.clone(),
                    namespace,
                    labels,
                    fields,
                    request,
                    drop_watch,
                );
            }
            list(shared, rt, namespace.as_deref(), &labels, &fields, request)
        }
        ("GET", Some(name), None) => {
            let store = lock(&shared.store);
            let obj = store.get(rt, &ns, &name)?;
            if wants_table(request) {
                let now = store.clock.now();
                return Ok(json_response(
                    200,
                    &table(rt, &[obj], store.resource_version(), now, false),
                    "application/json",
                ));
            }
            Ok(json_response(200, &obj, "application/json"))
        }
        ("GET", Some(name), Some(sub)) if sub == "status" => Ok(json_response(
            200,
            &lock(&shared.store).get(rt, &ns, &name)?,
            "application/json",
        )),
        ("GET", Some(name), Some(sub)) if sub == "scale" && rt.subresources.contains(&sub) => {
            Ok(json_response(
                200,
                &scale_of(&lock(&shared.store).get(rt, &ns, &name)?),
                "application/json",
            ))
        }
        ("GET", Some(name), Some(sub)) if sub == "log" && rt.kind == "Pod" => {
            lock(&shared.store).get(rt, &ns, &name)?;
            let logs = lock(&shared.logs)
                .get(&(ns.clone(), name.clone()))
                .cloned()
                .unwrap_or_default();
            let lines: Vec<&str> = logs.lines().collect();
            let tail = request
                .param("tailLines")
                .and_then(|t| t.parse::<usize>().ok())
                .unwrap_or(lines.len());
            let mut text = lines[lines.len().saturating_sub(tail)..].join("\n");
            if !text.is_empty() {
                text.push('\n');
            }
            let mut response = Response::new(full(text));
            response
                .headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
            Ok(response)
        }
        ("POST", None, None) if rt.is_review() => {
            let body: Value = decode_body(request)?;
            check_type_meta(rt, &body)?;
            let types = types_all(shared);
            let answer = auth::review(&lock(&shared.store), &types, &request.identity, rt, &body)
                .ok_or_else(|| ApiError::method_not_allowed("create", rt))?;
            Ok(json_response(201, &answer, "application/json"))
        }
        ("POST", Some(name), Some(sub)) if sub == "token" && rt.kind == "ServiceAccount" => {
            let body: Value = decode_body(request)?;
            let store = lock(&shared.store);
            let account = store.get(rt, &ns, &name)?;
            let answer = auth::token_request(
                &mut lock(&shared.tokens),
                &account,
                &body,
                store.clock.now(),
            )?;
            Ok(json_response(201, &answer, "application/json"))
        }
        ("POST", None, None) => {
            let mut obj: Value = decode_body(request)?;
            check_type_meta(rt, &obj)?;
            let warnings = validate_fields(shared, rt, &mut obj, request)?;
            let mut store = lock(&shared.store);
            if rt.namespaced && !namespace_exists(&store, &types_namespace(shared), &ns) {
                return Err(ApiError::not_found(&types_namespace(shared), &ns));
            }
            if rt.namespaced
                && store
                    .get(&types_namespace(shared), "", &ns)
                    .is_ok_and(|n| n.pointer("/status/phase") == Some(&json!("Terminating")))
            {
                return Err(ApiError {
                    details: json!({"causes": [{"reason": "NamespaceTerminating", "message": format!("namespace {ns} is being terminated"), "field": "metadata.namespace"}]}),
                    ..ApiError::new(
                        403,
                        "Forbidden",
                        format!(
                            "{} \"{}\" is forbidden: unable to create new content in namespace {ns} because it is being terminated",
                            rt.qualified(),
                            obj.pointer("/metadata/name")
                                .and_then(Value::as_str)
                                .unwrap_or("")
                        ),
                    )
                });
            }
            let served = super::crd_types(rt, &obj)?;
            let now = store.clock.rfc3339();
            let manager = request.manager();
            let api_version = rt.api_version();
            managed::record_update(
                &Value::Null,
                &mut obj,
                &managed::Writer {
                    manager: &manager,
                    api_version: &api_version,
                    subresource: "",
                    now: now.clone(),
                },
            );
            let created = store.create(rt, &ns, obj, request.dry_run())?;
            if !request.dry_run() {
                for served in served {
                    super::register_type(shared, served);
                }
            }
            Ok(with_warnings(
                json_response(201, &created, "application/json"),
                &warnings,
            ))
        }
        ("PUT", Some(name), sub) => {
            let mut obj: Value = decode_body(request)?;
            if sub.is_none() {
                check_type_meta(rt, &obj)?;
            }
            let warnings = match sub.as_deref() {
                None | Some("status") => validate_fields(shared, rt, &mut obj, request)?,
                _ => Vec::new(),
            };
            let mut store = lock(&shared.store);
            if sub.is_none() {
                let current = store.get(rt, &ns, &name)?;
                let now = store.clock.rfc3339();
                let manager = request.manager();
                let api_version = rt.api_version();
                managed::record_update(
                    &current,
                    &mut obj,
                    &managed::Writer {
                        manager: &manager,
                        api_version: &api_version,
                        subresource: "",
                        now,
                    },
                );
            }
            match sub.as_deref() {
                None => Ok(with_warnings(
                    json_response(
                        200,
                        &store.update(rt, &ns, &name, obj, Part::Main, request.dry_run())?,
                        "application/json",
                    ),
                    &warnings,
                )),
                Some("status") => Ok(with_warnings(
                    json_response(
                        200,
                        &store.update(rt, &ns, &name, obj, Part::Status, request.dry_run())?,
                        "application/json",
                    ),
                    &warnings,
                )),
                Some("scale") => {
                    let current = store.get(rt, &ns, &name)?;
                    let rv = obj
                        .pointer("/metadata/resourceVersion")
                        .and_then(Value::as_str)
                        .unwrap_or("");
                    if !rv.is_empty()
                        && Some(rv)
                            != current
                                .pointer("/metadata/resourceVersion")
                                .and_then(Value::as_str)
                    {
                        return Err(ApiError::conflict(rt, &name));
                    }
                    let replicas = obj.pointer("/spec/replicas").cloned().unwrap_or(json!(0));
                    let updated = set_replicas(
                        &mut store,
                        rt,
                        &ns,
                        &name,
                        current,
                        replicas,
                        request.dry_run(),
                    )?;
                    Ok(json_response(200, &scale_of(&updated), "application/json"))
                }
                Some(other) => Err(ApiError::method_not_allowed(&format!("update {other}"), rt)),
            }
        }
        ("PATCH", Some(name), sub) => patch(shared, rt, &ns, &name, sub.as_deref(), request),
        ("DELETE", Some(name), None) => {
            let options = DeleteOptions::of(request)?;
            let types = types_all(shared);
            let mut store = lock(&shared.store);
            let current = store.get(rt, &ns, &name)?;
            let uid = current
                .pointer("/metadata/uid")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned();
            let has_finalizers = current
                .pointer("/metadata/finalizers")
                .and_then(Value::as_array)
                .is_some_and(|f| !f.is_empty());
            let on_a_node = super::store::is_pod_on_a_node(rt, &current);
            let grace = if on_a_node {
                options.grace_period.unwrap_or_else(|| {
                    current
                        .pointer("/spec/terminationGracePeriodSeconds")
                        .and_then(Value::as_u64)
                        .unwrap_or(30)
                })
            } else {
                0
            };
            let is_namespace = rt.group.is_empty() && rt.kind == "Namespace";
            if options.orphan && !request.dry_run() {
                orphan_dependents(&mut store, &types, &uid);
            }
            if has_finalizers || (on_a_node && grace > 0) || is_namespace {
                let marked = store.mark_deleting(rt, &ns, &name, grace, request.dry_run())?;
                if is_namespace && !request.dry_run() {
                    drop(store);
                    return Ok(json_response(
                        200,
                        &terminate_namespace(shared, &types, &name)?,
                        "application/json",
                    ));
                }
                return Ok(json_response(200, &marked, "application/json"));
            }
            let deleted = store.delete(rt, &ns, &name, request.dry_run())?;
            if !request.dry_run() && !options.orphan {
                collect_garbage(&mut store, &types, &uid);
            }
            Ok(json_response(200, &deleted, "application/json"))
        }
        ("DELETE", None, None) => {
            let labels = LabelSelector::parse(request.param("labelSelector").unwrap_or(""))
                .map_err(ApiError::bad_request)?;
            let fields = FieldSelector::parse(request.param("fieldSelector").unwrap_or(""))
                .map_err(ApiError::bad_request)?;
            let mut store = lock(&shared.store);
            let doomed = store.list(rt, namespace.as_deref(), &labels, &fields);
            let mut items = Vec::new();
            for obj in doomed {
                let (obj_ns, obj_name) = key_of(&obj);
                items.push(store.delete(rt, &obj_ns, &obj_name, request.dry_run())?);
            }
            let rv = store.resource_version();
            Ok(json_response(
                200,
                &json!({"kind": list_kind(rt), "apiVersion": rt.api_version(), "metadata": {"resourceVersion": rv.to_string()}, "items": items}),
                "application/json",
            ))
        }
        (method, _, sub) => Err(ApiError::method_not_allowed(
            format!("{} {}", method.to_lowercase(), sub.unwrap_or_default()).trim(),
            rt,
        )),
    }
}

fn types_all(shared: &Shared) -> Arc<Vec<ResourceType>> {
    Arc::clone(&lock(&shared.types))
}

fn types_namespace(shared: &Shared) -> ResourceType {
    lock(&shared.types)
        .iter()
        .find(|t| t.kind == "Namespace")
        .cloned()
        .unwrap_or_else(|| ResourceType::custom("", "v1", "Namespace", "namespaces"))
}

fn namespace_exists(store: &super::store::Store, namespaces: &ResourceType, ns: &str) -> bool {
    store.get(namespaces, "", ns).is_ok()
}

/// What a DELETE asks for, from its query or its `DeleteOptions` body (kubectl sends the body).
struct DeleteOptions {
    grace_period: Option<u64>,
    /// `propagationPolicy: Orphan` (`kubectl delete --cascade=orphan`): dependents stay, with
    /// the owner's reference removed.
    orphan: bool,
}

impl DeleteOptions {
    fn of(request: &ApiRequest) -> Result<Self, ApiError> {
        let body: Value = if request.body.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&request.body)
                .map_err(|e| ApiError::bad_request(format!("error decoding DeleteOptions: {e}")))?
        };
        let policy = request
            .param("propagationPolicy")
            .map(str::to_owned)
            .or_else(|| {
                body.get("propagationPolicy")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            })
            .or_else(|| {
                (body.get("orphanDependents") == Some(&Value::Bool(true))).then(|| "Orphan".into())
            });
        if let Some(policy) = &policy
            && !matches!(policy.as_str(), "Orphan" | "Background" | "Foreground")
        {
            return Err(ApiError::bad_request(format!(
                "DeleteOptions.meta.k8s.io \"\" is invalid: propagationPolicy: Unsupported value: \"{policy}\": supported values: \"Foreground\", \"Background\", \"Orphan\", \"nil\""
            )));
        }
        let grace_period = request
            .param("gracePeriodSeconds")
            .and_then(|g| g.parse().ok())
            .or_else(|| body.get("gracePeriodSeconds").and_then(Value::as_u64));
        Ok(Self {
            grace_period,
            orphan: policy.as_deref() == Some("Orphan"),
        })
    }
}

/// The namespace and name of a stored object.
fn key_of(obj: &Value) -> (String, String) {
    let text = |pointer: &str| {
        obj.pointer(pointer)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned()
    };
    (text("/metadata/namespace"), text("/metadata/name"))
}

/// Removes the references to `uid` from the objects it owned (orphan propagation).
fn orphan_dependents(store: &mut super::store::Store, types: &[ResourceType], uid: &str) {
    if uid.is_empty() {
        return;
    }
    let (everything, any) = (LabelSelector::default(), FieldSelector::default());
    for rt in types {
        for mut obj in store.list(rt, None, &everything, &any) {
            let Some(refs) = obj
                .pointer_mut("/metadata/ownerReferences")
                .and_then(Value::as_array_mut)
            else {
                continue;
            };
            let before = refs.len();
            refs.retain(|r| r.get("uid").and_then(Value::as_str) != Some(uid));
            if refs.len() == before {
                continue;
            }
            let (ns, name) = key_of(&obj);
            if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
                meta.remove("resourceVersion");
            }
            let _ = store.update(rt, &ns, &name, obj, Part::Main, false);
        }
    }
}

/// A namespace being deleted: `Terminating`, everything in it deleted (pods on nodes wait for
/// their kubelet), and the namespace itself removed once it is empty.
fn terminate_namespace(
    shared: &Shared,
    types: &[ResourceType],
    name: &str,
) -> Result<Value, ApiError> {
    let namespaces = types_namespace(shared);
    let mut store = lock(&shared.store);
    let mut namespace = store.get(&namespaces, "", name)?;
    namespace["status"] = json!({"phase": "Terminating"});
    let namespace = store.update(&namespaces, "", name, namespace, Part::Status, false)?;
    let (everything, any) = (LabelSelector::default(), FieldSelector::default());
    for rt in types.iter().filter(|t| t.namespaced) {
        for obj in store.list(rt, Some(name), &everything, &any) {
            let object = obj
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned();
            if super::store::is_pod_on_a_node(rt, &obj) {
                let grace = obj
                    .pointer("/spec/terminationGracePeriodSeconds")
                    .and_then(Value::as_u64)
                    .unwrap_or(30);
                let _ = store.mark_deleting(rt, name, &object, grace, false);
            } else if obj
                .pointer("/metadata/finalizers")
                .and_then(Value::as_array)
                .is_some_and(|f| !f.is_empty())
            {
                let _ = store.mark_deleting(rt, name, &object, 0, false);
            } else {
                let _ = store.delete(rt, name, &object, false);
            }
        }
    }
    Ok(finish_namespace(&mut store, types, &namespaces, name).unwrap_or(namespace))
}

/// Removes a terminating namespace once nothing is left in it; returns it deleted, or `None`
/// while objects remain.
pub(crate) fn finish_namespace(
    store: &mut super::store::Store,
    types: &[ResourceType],
    namespaces: &ResourceType,
    name: &str,
) -> Option<Value> {
    let (everything, any) = (LabelSelector::default(), FieldSelector::default());
    let empty = types
        .iter()
        .filter(|t| t.namespaced)
        .all(|rt| store.list(rt, Some(name), &everything, &any).is_empty());
    empty
        .then(|| store.delete(namespaces, "", name, false).ok())
        .flatten()
}

/// Deletes what `uid` owned, recursively (background cascading deletion).
fn collect_garbage(store: &mut super::store::Store, types: &[ResourceType], uid: &str) {
    if uid.is_empty() {
        return;
    }
    let everything = LabelSelector::default();
    let any = FieldSelector::default();
    for rt in types {
        for obj in store.list(rt, None, &everything, &any) {
            let owned = obj
                .pointer("/metadata/ownerReferences")
                .and_then(Value::as_array)
                .is_some_and(|refs| {
                    refs.iter()
                        .any(|r| r.get("uid").and_then(Value::as_str) == Some(uid))
                });
            if owned {
                let (ns, name) = key_of(&obj);
                if let Ok(deleted) = store.delete(rt, &ns, &name, false) {
                    let child = deleted
                        .pointer("/metadata/uid")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_owned();
                    collect_garbage(store, types, &child);
                }
            }
        }
    }
}

fn list(
    shared: &Shared,
    rt: &ResourceType,
    namespace: Option<&str>,
    labels: &LabelSelector,
    fields: &FieldSelector,
    request: &ApiRequest,
) -> Result<Response<Body>, ApiError> {
    let store = lock(&shared.store);
    let rv = store.resource_version();
    let requested: Option<u64> = match request.param("resourceVersion").filter(|v| !v.is_empty()) {
        Some(text) => Some(
            text.parse()
                .map_err(|_| ApiError::bad_request(format!("invalid resource version {text:?}")))?,
        ),
        None => None,
    };
    match (request.param("resourceVersionMatch"), requested) {
        (Some("Exact"), Some(at)) if request.param("continue").is_none() => {
            let items = store.list_at(rt, namespace, labels, fields, at)?;
            let metadata = json!({"resourceVersion": at.to_string()});
            if wants_table(request) {
                let mut table = table(rt, &items, at, store.clock.now(), false);
                table["metadata"] = metadata;
                return Ok(json_response(200, &table, "application/json"));
            }
            let body = json!({"kind": list_kind(rt), "apiVersion": rt.api_version(), "metadata": metadata, "items": items});
            return Ok(json_response(200, &body, "application/json"));
        }
        (Some(other), _) if !matches!(other, "Exact" | "NotOlderThan") => {
            return Err(ApiError::bad_request(format!(
                "resourceVersionMatch: Unsupported value: \"{other}\": supported values: \"Exact\", \"NotOlderThan\""
            )));
        }
        (_, Some(at)) if at > rv => return Err(store.too_large(at)),
        _ => {}
    }
    // Pagination: `continue` names the resourceVersion the listing began at and the last key
    // served, and the next page resumes after that key (a real server pins a snapshot; ours
    // lists what is there now, in the same stable order).
    let after = match request.param("continue") {
        Some(token) if !token.is_empty() => Some(
            token
                .split_once(':')
                .and_then(|(_, key)| key.split_once('/'))
                .map(|(ns, name)| (ns.to_owned(), name.to_owned()))
                .ok_or_else(|| {
                    ApiError::bad_request(format!("invalid continue token {token:?}"))
                })?,
        ),
        _ => None,
    };
    let limit = request
        .param("limit")
        .and_then(|l| l.parse::<usize>().ok())
        .filter(|l| *l > 0);
    let (items, remaining, last) = store.list_page(
        rt,
        namespace,
        labels,
        fields,
        after.as_ref(),
        limit.unwrap_or(usize::MAX),
    );
    let mut metadata = json!({"resourceVersion": rv.to_string()});
    if remaining > 0
        && let Some((ns, name)) = last
    {
        metadata["continue"] = json!(format!("{rv}:{ns}/{name}"));
        metadata["remainingItemCount"] = json!(remaining);
    }
    if wants_table(request) {
        let include_object = request.param("includeObject") == Some("Object");
        let mut table = table(rt, &items, rv, store.clock.now(), include_object);
        table["metadata"] = metadata;
        return Ok(json_response(200, &table, "application/json"));
    }
    let body = json!({"kind": list_kind(rt), "apiVersion": rt.api_version(), "metadata": metadata, "items": items});
    Ok(json_response(200, &body, "application/json"))
}

/// The `autoscaling/v1` Scale of an object with `spec.replicas`.
fn scale_of(obj: &Value) -> Value {
    let selector = obj
        .pointer("/spec/selector/matchLabels")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default();
    let meta = |field: &str| {
        obj.pointer(&format!("/metadata/{field}"))
            .cloned()
            .unwrap_or(Value::Null)
    };
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": meta("name"),
            "namespace": meta("namespace"),
            "uid": meta("uid"),
            "resourceVersion": meta("resourceVersion"),
            "creationTimestamp": meta("creationTimestamp"),
        },
        "spec": {"replicas": obj.pointer("/spec/replicas").cloned().unwrap_or(json!(0))},
        "status": {"replicas": obj.pointer("/status/replicas").cloned().unwrap_or(json!(0)), "selector": selector},
    })
}

fn set_replicas(
    store: &mut super::store::Store,
    rt: &ResourceType,
    ns: &str,
    name: &str,
    mut current: Value,
    replicas: Value,
    dry_run: bool,
) -> Result<Value, ApiError> {
    if replicas.as_i64().is_none_or(|r| r < 0) {
        return Err(ApiError::invalid(
            rt,
            name,
            "spec.replicas",
            "Invalid value: must be greater than or equal to 0",
        ));
    }
    if let Some(spec) = current.get_mut("spec").and_then(Value::as_object_mut) {
        spec.insert("replicas".into(), replicas);
    }
    store.update(rt, ns, name, current, Part::Main, dry_run)
}

fn patch(
    shared: &Shared,
    rt: &ResourceType,
    ns: &str,
    name: &str,
    sub: Option<&str>,
    request: &ApiRequest,
) -> Result<Response<Body>, ApiError> {
    check_size(request)?;
    let kind = PatchType::from_content_type(&request.content_type).ok_or_else(|| {
        ApiError::new(415, "UnsupportedMediaType", format!("the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json (got {:?})", request.content_type))
    })?;
    if kind == PatchType::Apply && request.param("fieldManager").is_none_or(str::is_empty) {
        return Err(ApiError {
            details: json!({"group": "meta.k8s.io", "kind": "PatchOptions", "causes": [{"reason": "FieldValueRequired", "message": "Required value: is required for apply patch", "field": "fieldManager"}]}),
            ..ApiError::new(
                422,
                "Invalid",
                "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch",
            )
        });
    }
    if kind != PatchType::Apply && request.param("force").is_some() {
        return Err(ApiError {
            details: json!({"group": "meta.k8s.io", "kind": "PatchOptions", "causes": [{"reason": "FieldValueForbidden", "message": "Forbidden: may not be specified for non-apply patch", "field": "force"}]}),
            ..ApiError::new(
                422,
                "Invalid",
                "PatchOptions.meta.k8s.io \"\" is invalid: force: Forbidden: may not be specified for non-apply patch",
            )
        });
    }
    let patch_error = |err: PatchError| match err {
        PatchError::BadRequest(message) => ApiError::bad_request(message),
        PatchError::Unprocessable(message) => ApiError::new(422, "UnprocessableEntity", message),
    };
    let crds = stored_crds(shared, &types_all(shared));
    let mut store = lock(&shared.store);
    let dry_run = request.dry_run();
    let manager = request.manager();
    let api_version = rt.api_version();
    let force = request.param("force") == Some("true");
    // An apply body may be YAML; the patch machinery reads JSON.
    let body = if kind == PatchType::Apply {
        Bytes::from(apply_configuration(&request.body)?.to_string())
    } else {
        request.body.clone()
    };
    let current = match store.get(rt, ns, name) {
        Ok(current) => current,
        // Server-side apply creates what does not exist.
        Err(err) if kind == PatchType::Apply && err.code == 404 && sub.is_none() => {
            let mut config = apply_configuration(&request.body)?;
            let warnings = checked_fields(rt, &crds, &mut config, request)?;
            let obj = managed::apply(
                &Value::Null,
                &config,
                config.clone(),
                &writer(&store, &manager, &api_version, ""),
                force,
            )?;
            let created = store.create(rt, ns, obj, dry_run)?;
            return Ok(with_warnings(
                json_response(201, &created, "application/json"),
                &warnings,
            ));
        }
        Err(err) => return Err(err),
    };
    match sub {
        None | Some("status") => {
            let patched = apply_patch(&current, kind, &body).map_err(patch_error)?;
            let part = if sub == Some("status") {
                Part::Status
            } else {
                Part::Main
            };
            // A resourceVersion the patch sets is a precondition; one it leaves alone is not.
            let mut candidate = patched;
            if candidate.pointer("/metadata/resourceVersion")
                == current.pointer("/metadata/resourceVersion")
                && let Some(meta) = candidate.get_mut("metadata").and_then(Value::as_object_mut)
            {
                meta.remove("resourceVersion");
            }
            let warnings = checked_fields(rt, &crds, &mut candidate, request)?;
            if sub.is_none() {
                let writer = writer(&store, &manager, &api_version, "");
                candidate = if kind == PatchType::Apply {
                    let config: Value = serde_json::from_slice(&body).unwrap_or_default();
                    managed::apply(&current, &config, candidate, &writer, force)?
                } else {
                    managed::record_update(&current, &mut candidate, &writer);
                    candidate
                };
            }
            let updated = store.update(rt, ns, name, candidate, part, dry_run)?;
            Ok(with_warnings(
                json_response(200, &updated, "application/json"),
                &warnings,
            ))
        }
        Some("scale") if rt.subresources.iter().any(|s| s == "scale") => {
            let scale = scale_of(&current);
            let patched = apply_patch(&scale, kind, &body).map_err(patch_error)?;
            let replicas = patched
                .pointer("/spec/replicas")
                .cloned()
                .unwrap_or(json!(0));
            let updated = set_replicas(&mut store, rt, ns, name, current, replicas, dry_run)?;
            Ok(json_response(200, &scale_of(&updated), "application/json"))
        }
        Some(other) => Err(ApiError::method_not_allowed(&format!("patch {other}"), rt)),
    }
}

fn writer<'a>(
    store: &super::store::Store,
    manager: &'a str,
    api_version: &'a str,
    subresource: &'a str,
) -> managed::Writer<'a> {
    managed::Writer {
        manager,
        api_version,
        subresource,
        now: store.clock.rfc3339(),
    }
}

/// A server-side apply body: JSON, or the YAML the content type names.
fn apply_configuration(body: &[u8]) -> Result<Value, ApiError> {
    if let Ok(value) = serde_json::from_slice::<Value>(body) {
        return Ok(value);
    }
    let text = std::str::from_utf8(body)
        .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))?;
    let value: Value = serde_saphyr::from_str(text)
        .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))?;
    if !value.is_object() {
        return Err(ApiError::bad_request(
            "error decoding YAML: an apply configuration must be a mapping",
        ));
    }
    Ok(value)
}

/// Collects an in-process request body.
pub(crate) async fn collect<B>(body: B) -> Result<Bytes, ApiError>
where
    B: http_body::Body,
    B::Error: std::fmt::Display,
{
    body.collect()
        .await
        .map(|c| c.to_bytes())
        .map_err(|e| ApiError::bad_request(format!("reading the body: {e}")))
}

/// The API server's limit on a request body (3 MiB).
const MAX_REQUEST_BODY_BYTES: usize = 3 * 1024 * 1024;

fn check_size(request: &ApiRequest) -> Result<(), ApiError> {
    if request.body.len() > MAX_REQUEST_BODY_BYTES {
        return Err(ApiError::new(
            413,
            "RequestEntityTooLarge",
            format!("Request entity too large: limit is {MAX_REQUEST_BODY_BYTES}"),
        ));
    }
    Ok(())
}

/// A body whose `apiVersion` or `kind` is not the URL's is refused before anything is written.
fn check_type_meta(rt: &ResourceType, obj: &Value) -> Result<(), ApiError> {
    let api_version = obj.get("apiVersion").and_then(Value::as_str).unwrap_or("");
    if !api_version.is_empty() && api_version != rt.api_version() {
        return Err(ApiError::bad_request(format!(
            "the API version in the data ({api_version}) does not match the expected API version ({})",
            rt.api_version()
        )));
    }
    let kind = obj.get("kind").and_then(Value::as_str).unwrap_or("");
    if !kind.is_empty() && kind != rt.kind {
        return Err(ApiError::bad_request(format!(
            "the kind in the data ({kind}) does not match the expected kind ({})",
            rt.kind
        )));
    }
    Ok(())
}

/// The object in a create or update body, as the content type says it is encoded.
fn decode_body(request: &ApiRequest) -> Result<Value, ApiError> {
    check_size(request)?;
    if request
        .content_type
        .starts_with(super::protobuf::CONTENT_TYPE)
    {
        return super::protobuf::decode(&request.body);
    }
    serde_json::from_slice(&request.body)
        .map_err(|e| ApiError::bad_request(format!("error decoding body: {e}")))
}

/// The CustomResourceDefinitions stored (their schemas describe the custom types).
pub(crate) fn stored_crds(shared: &Shared, types: &[ResourceType]) -> Vec<Value> {
    types
        .iter()
        .find(|t| t.kind == "CustomResourceDefinition")
        .map(|crd| {
            lock(&shared.store).list(
                crd,
                None,
                &LabelSelector::default(),
                &FieldSelector::default(),
            )
        })
        .unwrap_or_default()
}

/// Drops the fields the type's schema does not declare, as the request's `fieldValidation`
/// says: `Strict` refuses the object, `Warn` (the default) drops each with a warning, `Ignore`
/// drops them silently. Returns the warnings.
fn validate_fields(
    shared: &Shared,
    rt: &ResourceType,
    obj: &mut Value,
    request: &ApiRequest,
) -> Result<Vec<String>, ApiError> {
    let crds = stored_crds(shared, &types_all(shared));
    checked_fields(rt, &crds, obj, request)
}

fn checked_fields(
    rt: &ResourceType,
    crds: &[Value],
    obj: &mut Value,
    request: &ApiRequest,
) -> Result<Vec<String>, ApiError> {
    let directive = request.param("fieldValidation").unwrap_or("Warn");
    if !matches!(directive, "Strict" | "Warn" | "Ignore") {
        return Err(ApiError::bad_request(format!(
            "fieldValidation parameter unsupported: {directive}"
        )));
    }
    let empty = serde_json::Map::new();
    let Some(schema) = super::openapi::schema_of(rt, crds, &empty) else {
        return Ok(Vec::new());
    };
    let unknown = super::openapi::prune(obj, &schema);
    if unknown.is_empty() || directive == "Ignore" {
        return Ok(Vec::new());
    }
    let each: Vec<String> = unknown
        .iter()
        .map(|path| format!("unknown field \"{path}\""))
        .collect();
    if directive == "Strict" {
        return Err(ApiError::bad_request(format!(
            "{kind} in version \"{version}\" cannot be handled as a {kind}: strict decoding error: {fields}",
            kind = rt.kind,
            version = rt.version,
            fields = each.join(", "),
        )));
    }
    Ok(each)
}

/// Adds one `Warning` header per warning, as the API server does (kubectl prints each).
fn with_warnings(mut response: Response<Body>, warnings: &[String]) -> Response<Body> {
    for warning in warnings {
        let text = format!("299 - {}", serde_json::Value::String(warning.clone()));
        if let Ok(value) = HeaderValue::from_str(&text) {
            response.headers_mut().append("warning", value);
        }
    }
    response
}
