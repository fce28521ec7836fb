//! What the server refuses or prunes before it writes: a body whose type is not the URL's,
//! fields the type's schema does not declare, and a custom resource's values its CRD's schema
//! refuses.

use super::*;

/// A body whose `apiVersion` or `kind` is not the URL's is refused before anything is written.
pub(super) fn check_type_meta(rt: &ResourceType, obj: &Value) -> Result<(), ApiError> {
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
pub(super) fn validate_fields(
    shared: &Shared,
    rt: &ResourceType,
    obj: &mut Value,
    request: &ApiRequest,
) -> Result<Vec<String>, ApiError> {
    let crds = stored_crds(shared, &types_all(shared));
    checked_fields(rt, &crds, obj, request)
}

pub(super) fn checked_fields(
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
    let Some(schema) = crate::openapi::schema_of(rt, crds, &empty) else {
        return Ok(Vec::new());
    };
    // (A CRD's schema fields hold any JSON: its Go types are not checked here.)
    if !schema.definitions.is_empty()
        && rt.group != "apiextensions.k8s.io"
        && let Some(problem) = crate::openapi::type_error(obj, &schema)
    {
        // A built-in kind is decoded into Go structs: a value of the wrong JSON type fails
        // the decoding, before any validation.
        return Err(ApiError::bad_request(format!(
            "{kind} in version \"{version}\" cannot be handled as a {kind}: {problem}",
            kind = rt.kind,
            version = rt.version,
        )));
    }
    let unknown = crate::openapi::prune(obj, &schema);
    if schema.definitions.is_empty() {
        // A custom resource: its values are checked against the CRD's structural schema.
        let problems = crate::structural::violations(obj, &schema.root);
        if !problems.is_empty() {
            let name = obj
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or("");
            return Err(ApiError::invalid_all(rt, name, problems));
        }
    }
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

/// What the server does to a custom resource before it stores it, for writes that do not come
/// through the API (`FakeCluster::create` and `replace`): unknown fields pruned, the CRD's
/// defaults filled in, its schema's rules checked.
pub(crate) fn admit_custom(
    shared: &Shared,
    rt: &ResourceType,
    obj: &mut Value,
) -> Result<(), ApiError> {
    let empty = serde_json::Map::new();
    // A built-in kind (most of what scenarios create) needs no look at the stored CRDs.
    if crate::openapi::schema_of(rt, &[], &empty).is_some() {
        return Ok(());
    }
    let crds = stored_crds(shared, &types_all(shared));
    let Some(schema) = crate::openapi::schema_of(rt, &crds, &empty) else {
        return Ok(());
    };
    if !schema.definitions.is_empty() {
        return Ok(());
    }
    crate::openapi::prune(obj, &schema);
    let problems = crate::structural::violations(obj, &schema.root);
    if problems.is_empty() {
        return Ok(());
    }
    let name = obj
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("");
    Err(ApiError::invalid_all(rt, name, problems))
}
