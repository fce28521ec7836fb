//! PATCH in its four types, server-side apply among them, with field ownership.

use super::*;

pub(super) fn patch(
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
            let scale = scale_of(rt, &current);
            let patched = apply_patch(&scale, kind, &body).map_err(patch_error)?;
            let replicas = patched
                .pointer("/spec/replicas")
                .cloned()
                .unwrap_or(json!(0));
            let updated = set_replicas(
                &mut store,
                rt,
                (ns, name),
                current,
                replicas,
                &manager,
                dry_run,
            )?;
            Ok(json_response(
                200,
                &scale_of(rt, &updated),
                "application/json",
            ))
        }
        Some(other) => Err(ApiError::method_not_allowed(&format!("patch {other}"), rt)),
    }
}

pub(super) fn writer<'a>(
    store: &crate::store::Store,
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
pub(super) fn apply_configuration(body: &[u8]) -> Result<Value, ApiError> {
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
