//! The verbs on a resource: get, list, create, update, delete and their subresources (`status`,
//! `scale`, `pods/log`, token requests, reviews).

use super::*;

pub(super) fn list_kind(rt: &ResourceType) -> String {
    format!("{}List", rt.kind)
}

#[allow(clippy::too_many_arguments)]
pub(super) async fn resource(
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
                .and_then(|f| f.supported_by(rt).map(|()| f))
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
                &scale_of(rt, &lock(&shared.store).get(rt, &ns, &name)?),
                "application/json",
            ))
        }
        ("GET", Some(name), Some(sub)) if sub == "log" && rt.kind == "Pod" => {
            let (pod, now) = {
                let store = lock(&shared.store);
                (store.get(rt, &ns, &name)?, store.clock.now())
            };
            let query = crate::logs::Query::parse(&|p| request.param(p).map(str::to_owned), now)?;
            let key = (ns.clone(), name.clone());
            let body = if query.follow {
                crate::logs::follow(Arc::clone(shared), key, &pod, query)?
            } else {
                let logs = lock(&shared.logs).get(&key).cloned().unwrap_or_default();
                full(crate::logs::read(&pod, &logs, &query)?)
            };
            let mut response = Response::new(body);
            response
                .headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
            Ok(response)
        }
        ("GET" | "POST", Some(name), Some(sub))
            if (sub == "exec" || sub == "attach") && rt.kind == "Pod" && rt.group.is_empty() =>
        {
            crate::remote::open(shared, rt, &ns, &name, &sub, request)
        }
        ("POST", Some(name), Some(sub)) if sub == "eviction" && rt.kind == "Pod" => {
            let body: Value = decode_body(request)?;
            let grace_override = body
                .pointer("/deleteOptions/gracePeriodSeconds")
                .and_then(Value::as_u64);
            let budgets = types_all(shared)
                .iter()
                .find(|t| t.group == "policy" && t.kind == "PodDisruptionBudget")
                .cloned()
                .ok_or_else(|| ApiError::method_not_allowed("create", rt))?;
            let mut store = lock(&shared.store);
            crate::eviction::admit(&mut store, rt, &budgets, &ns, &name)?;
            let pod = store.get(rt, &ns, &name)?;
            let grace = grace_override.unwrap_or_else(|| crate::store::grace_period(&pod));
            if crate::store::is_pod_on_a_node(rt, &pod) && grace > 0 {
                store.mark_deleting(rt, &ns, &name, grace, request.dry_run())?;
            } else {
                store.delete(rt, &ns, &name, request.dry_run())?;
            }
            Ok(json_response(
                201,
                &crate::eviction::success(),
                "application/json",
            ))
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
            let served = crate::crd_types(rt, &obj)?;
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
            let mut created = store.create(rt, &ns, obj, request.dry_run())?;
            if rt.kind == "CustomResourceDefinition" && !request.dry_run() {
                // The API server accepts the names and establishes the type at once.
                let mut established = created.clone();
                established["status"] = crate::crd_status(&created, &now);
                let name = key_of(&created).1;
                created = store.update(
                    rt,
                    "",
                    &name,
                    established,
                    crate::store::Part::Status,
                    false,
                )?;
            }
            if !request.dry_run() {
                for served in served {
                    crate::register_type(shared, served);
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
                // `kubectl certificate approve|deny`: the approval conditions, in the status.
                Some("approval") if rt.kind == "CertificateSigningRequest" => Ok(json_response(
                    200,
                    &store.update(rt, &ns, &name, obj, Part::Status, request.dry_run())?,
                    "application/json",
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
                        (&ns, &name),
                        current,
                        replicas,
                        &request.manager(),
                        request.dry_run(),
                    )?;
                    Ok(json_response(
                        200,
                        &scale_of(rt, &updated),
                        "application/json",
                    ))
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
            let on_a_node = crate::store::is_pod_on_a_node(rt, &current);
            let grace = if on_a_node {
                options
                    .grace_period
                    .unwrap_or_else(|| crate::store::grace_period(&current))
            } else {
                0
            };
            let is_namespace = rt.group.is_empty() && rt.kind == "Namespace";
            if options.orphan && !request.dry_run() {
                orphan_dependents(&mut store, &types, &uid);
            }
            if options.foreground && !request.dry_run() && !on_a_node && store.has_dependents(&uid)
            {
                let marked = delete_in_foreground(&mut store, &types, rt, &ns, &name)?;
                return Ok(json_response(200, &marked, "application/json"));
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
                .and_then(|f| f.supported_by(rt).map(|()| f))
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

pub(super) fn types_all(shared: &Shared) -> Arc<Vec<ResourceType>> {
    Arc::clone(&lock(&shared.types))
}

pub(super) fn types_namespace(shared: &Shared) -> ResourceType {
    lock(&shared.types)
        .iter()
        .find(|t| t.kind == "Namespace")
        .cloned()
        .unwrap_or_else(|| ResourceType::custom("", "v1", "Namespace", "namespaces"))
}

pub(super) fn namespace_exists(
    store: &crate::store::Store,
    namespaces: &ResourceType,
    ns: &str,
) -> bool {
    store.get(namespaces, "", ns).is_ok()
}

pub(super) fn list(
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
pub(super) fn scale_of(rt: &ResourceType, obj: &Value) -> Value {
    let (spec_path, status_path, selector_path) = scale_paths(rt);
    let selector = match &selector_path {
        // A custom resource's selector is a string already, where its CRD says.
        Some(path) => obj
            .pointer(path)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned(),
        None => obj
            .pointer("/spec/selector")
            .and_then(|s| crate::selectors::LabelSelector::of_object(s).ok())
            .map(|s| s.to_string())
            .unwrap_or_default(),
    };
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
        "spec": {"replicas": obj.pointer(&spec_path).cloned().unwrap_or(json!(0))},
        "status": {"replicas": obj.pointer(&status_path).cloned().unwrap_or(json!(0)), "selector": selector},
    })
}

/// The scale subresource's pointers for `rt`: the CRD's, or the built-in kinds'.
fn scale_paths(rt: &ResourceType) -> (String, String, Option<String>) {
    rt.scale_paths
        .clone()
        .unwrap_or_else(|| ("/spec/replicas".into(), "/status/replicas".into(), None))
}

pub(super) fn set_replicas(
    store: &mut crate::store::Store,
    rt: &ResourceType,
    (ns, name): (&str, &str),
    mut current: Value,
    replicas: Value,
    manager: &str,
    dry_run: bool,
) -> Result<Value, ApiError> {
    let old = current.clone();
    if replicas.as_i64().is_none_or(|r| r < 0) {
        return Err(ApiError::invalid(
            rt,
            name,
            "spec.replicas",
            "Invalid value: must be greater than or equal to 0",
        ));
    }
    let (spec_path, _, _) = scale_paths(rt);
    let (parent, field) = spec_path.rsplit_once('/').unwrap_or(("", "replicas"));
    if current.pointer(parent).is_none() && parent == "/spec" {
        current["spec"] = json!({});
    }
    if let Some(parent) = current.pointer_mut(parent).and_then(Value::as_object_mut) {
        parent.insert(field.into(), replicas);
    }
    // The writer of the scale subresource owns `spec.replicas` from now on (an apply that
    // changes it then conflicts with "kubectl" "with subresource scale").
    let api_version = rt.api_version();
    let writer = super::patching::writer(store, manager, &api_version, "scale");
    managed::record_update(&old, &mut current, &writer);
    store.update(rt, ns, name, current, Part::Main, dry_run)
}
