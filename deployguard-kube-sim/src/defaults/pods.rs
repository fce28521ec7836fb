//! The pod-spec checks the API server makes on every pod and pod template, worded as it words
//! them: container names (DNS labels, unique), ports in range, environment variable names,
//! volume mounts of volumes that exist, requests no greater than limits; the restart policies a
//! Job allows; and the fields of Jobs and StatefulSets that cannot change after creation.

use serde_json::Value;

use crate::quantity::amount;
use crate::resources::ResourceType;
use crate::status::ApiError;

fn dns_label(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric())
}

fn env_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

fn quantity_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Whether a pod's spec changed only where a running pod may change: its containers' images,
/// `activeDeadlineSeconds`, `terminationGracePeriodSeconds`, tolerations added to the end, and
/// the node it is bound to when it had none (what the scheduler writes).
fn pod_update_allowed(old: &Value, new: &Value) -> bool {
    let old_spec = old.get("spec").cloned().unwrap_or(Value::Null);
    let mut masked = new.get("spec").cloned().unwrap_or(Value::Null);
    let Some(map) = masked.as_object_mut() else {
        return old_spec == masked;
    };
    for list in ["containers", "initContainers"] {
        let olds = old_spec.get(list).and_then(Value::as_array);
        if let (Some(olds), Some(Value::Array(news))) = (olds, map.get_mut(list))
            && olds.len() == news.len()
        {
            for (old_container, new_container) in olds.iter().zip(news) {
                if let Some(image) = old_container.get("image") {
                    new_container["image"] = image.clone();
                }
            }
        }
    }
    for field in ["activeDeadlineSeconds", "terminationGracePeriodSeconds"] {
        match old_spec.get(field) {
            Some(value) => map.insert(field.to_owned(), value.clone()),
            None => map.remove(field),
        };
    }
    let old_tolerations = old_spec
        .get("tolerations")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if let Some(Value::Array(tolerations)) = map.get("tolerations")
        && tolerations.starts_with(&old_tolerations)
    {
        match old_spec.get("tolerations") {
            Some(value) => map.insert("tolerations".to_owned(), value.clone()),
            None => map.remove("tolerations"),
        };
    }
    if old_spec
        .get("nodeName")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty)
    {
        match old_spec.get("nodeName") {
            Some(value) => map.insert("nodeName".to_owned(), value.clone()),
            None => map.remove("nodeName"),
        };
    }
    old_spec == masked
}

/// The checks beyond the required fields, added to `problems` as (field, message).
pub(super) fn check_containers(spec: &Value, field: &str, problems: &mut Vec<(String, String)>) {
    let volumes: Vec<&str> = spec
        .get("volumes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|v| v.get("name").and_then(Value::as_str))
        .collect();
    let mut seen: Vec<&str> = Vec::new();
    let containers = spec.get("containers").and_then(Value::as_array);
    for (i, container) in containers.into_iter().flatten().enumerate() {
        let at = format!("{field}.containers[{i}]");
        if let Some(name) = container.get("name").and_then(Value::as_str)
            && !name.is_empty()
        {
            if !dns_label(name) {
                problems.push((
                    format!("{at}.name"),
                    format!(
                        "Invalid value: \"{name}\": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
                    ),
                ));
            } else if seen.contains(&name) {
                problems.push((format!("{at}.name"), format!("Duplicate value: \"{name}\"")));
            }
            seen.push(name);
        }
        for (j, port) in container
            .get("ports")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            if let Some(number) = port.get("containerPort").and_then(Value::as_i64)
                && !(1..=65535).contains(&number)
            {
                problems.push((
                    format!("{at}.ports[{j}].containerPort"),
                    format!("Invalid value: {number}: must be between 1 and 65535, inclusive"),
                ));
            }
        }
        for (j, var) in container
            .get("env")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            let name = var.get("name").and_then(Value::as_str).unwrap_or("");
            if name.is_empty() {
                problems.push((format!("{at}.env[{j}].name"), "Required value".into()));
            } else if !env_name(name) {
                problems.push((
                    format!("{at}.env[{j}].name"),
                    format!(
                        "Invalid value: \"{name}\": a valid environment variable name must consist of alphabetic characters, digits, '_', '-', or '.', and must not start with a digit (e.g. 'my.env-name',  or 'MY_ENV.NAME',  or 'MyEnvName1', regex used for validation is '[-._a-zA-Z][-._a-zA-Z0-9]*')"
                    ),
                ));
            }
        }
        for (j, mount) in container
            .get("volumeMounts")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            let name = mount.get("name").and_then(Value::as_str).unwrap_or("");
            if !volumes.contains(&name) {
                problems.push((
                    format!("{at}.volumeMounts[{j}].name"),
                    format!("Not found: \"{name}\""),
                ));
            }
        }
        let limits = container
            .pointer("/resources/limits")
            .and_then(Value::as_object);
        for (resource, request) in container
            .pointer("/resources/requests")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
        {
            let Some(limit) = limits.and_then(|l| l.get(resource)) else {
                continue;
            };
            let (request_text, limit_text) = (quantity_text(request), quantity_text(limit));
            if let (Some(r), Some(l)) = (amount(&request_text), amount(&limit_text))
                && r > l
            {
                problems.push((
                    format!("{at}.resources.requests[{resource}]"),
                    format!(
                        "Invalid value: \"{request_text}\": must be less than or equal to {resource} limit of {limit_text}"
                    ),
                ));
            }
        }
    }
}

/// A Job's pods may only be restarted on failure or never.
pub(super) fn check_job_restart_policy(
    template_spec: &Value,
    field: &str,
    problems: &mut Vec<(String, String)>,
) {
    let policy = template_spec
        .get("restartPolicy")
        .and_then(Value::as_str)
        .unwrap_or("Always");
    if !matches!(policy, "OnFailure" | "Never") {
        problems.push((
            format!("{field}.restartPolicy"),
            format!("Unsupported value: \"{policy}\": supported values: \"OnFailure\", \"Never\""),
        ));
    }
}

/// Fields an update may not change.
pub(crate) fn check_update(rt: &ResourceType, old: &Value, new: &Value) -> Result<(), ApiError> {
    let name = new
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("");
    let changed = |pointer: &str| old.pointer(pointer) != new.pointer(pointer);
    match (rt.group.as_str(), rt.kind.as_str()) {
        ("batch", "Job") => {
            for field in ["selector", "template"] {
                // A suspended Job's template may change (its scheduling directives), as may the
                // labels the server itself added.
                if changed(&format!("/spec/{field}")) {
                    return Err(ApiError::invalid(
                        rt,
                        name,
                        &format!("spec.{field}"),
                        "Invalid value: field is immutable",
                    ));
                }
            }
        }
        ("apps", "StatefulSet") => {
            let mut old_spec = old.get("spec").cloned().unwrap_or(Value::Null);
            let mut new_spec = new.get("spec").cloned().unwrap_or(Value::Null);
            for spec in [&mut old_spec, &mut new_spec] {
                if let Some(map) = spec.as_object_mut() {
                    for mutable in [
                        "replicas",
                        "ordinals",
                        "template",
                        "updateStrategy",
                        "persistentVolumeClaimRetentionPolicy",
                        "minReadySeconds",
                        "revisionHistoryLimit",
                    ] {
                        map.remove(mutable);
                    }
                }
            }
            if old_spec != new_spec {
                return Err(ApiError::invalid(
                    rt,
                    name,
                    "spec",
                    "Forbidden: updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'revisionHistoryLimit', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden",
                ));
            }
        }
        ("", "Pod") if !pod_update_allowed(old, new) => {
            return Err(ApiError::invalid(
                rt,
                name,
                "spec",
                "Forbidden: pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)",
            ));
        }
        ("apps", "DaemonSet") if changed("/spec/selector") => {
            return Err(ApiError::invalid(
                rt,
                name,
                "spec.selector",
                "Invalid value: field is immutable",
            ));
        }
        _ => {}
    }
    Ok(())
}
