//! Defaulting and validation the API server applies on write, where clients depend on it.
//!
//! Deployment and ReplicaSet pod templates are defaulted identically: kubectl and the
//! Deployment controller compare templates for equality, and a difference in defaulting would
//! make a rollback look like a new revision.

use serde_json::{Map, Value, json};

use super::resources::ResourceType;
use super::status::ApiError;

fn set_default(map: &mut Map<String, Value>, key: &str, value: Value) {
    map.entry(key.to_owned()).or_insert(value);
}

fn object<'a>(value: &'a mut Value, key: &str) -> Option<&'a mut Map<String, Value>> {
    let map = value.as_object_mut()?;
    map.entry(key.to_owned())
        .or_insert_with(|| json!({}))
        .as_object_mut()
}

/// Applies the defaults of `rt` to `obj`.
pub(crate) fn apply_defaults(rt: &ResourceType, obj: &mut Value) {
    match (rt.group.as_str(), rt.kind.as_str()) {
        ("apps", "Deployment") => {
            if let Some(spec) = object(obj, "spec") {
                set_default(spec, "replicas", json!(1));
                set_default(spec, "revisionHistoryLimit", json!(10));
                set_default(spec, "progressDeadlineSeconds", json!(600));
                let strategy = spec.entry("strategy").or_insert_with(|| json!({}));
                if let Some(strategy) = strategy.as_object_mut() {
                    set_default(strategy, "type", json!("RollingUpdate"));
                    if strategy.get("type") == Some(&json!("RollingUpdate")) {
                        let rolling = strategy.entry("rollingUpdate").or_insert_with(|| json!({}));
                        if let Some(rolling) = rolling.as_object_mut() {
                            set_default(rolling, "maxUnavailable", json!("25%"));
                            set_default(rolling, "maxSurge", json!("25%"));
                        }
                    }
                }
                if let Some(template) = spec.get_mut("template") {
                    default_pod_template(template);
                }
            }
        }
        ("apps", "ReplicaSet") => {
            if let Some(spec) = object(obj, "spec") {
                set_default(spec, "replicas", json!(1));
                if let Some(template) = spec.get_mut("template") {
                    default_pod_template(template);
                }
            }
        }
        ("batch", "Job") => {
            if let Some(spec) = object(obj, "spec") {
                set_default(spec, "backoffLimit", json!(6));
                set_default(spec, "completions", json!(1));
                set_default(spec, "parallelism", json!(1));
                if let Some(template) = spec.get_mut("template") {
                    default_pod_template(template);
                }
            }
        }
        ("", "Pod") => {
            if let Some(spec) = obj.get_mut("spec") {
                default_pod_spec(spec);
            }
        }
        ("", "Service") => {
            if let Some(spec) = object(obj, "spec") {
                set_default(spec, "type", json!("ClusterIP"));
                set_default(spec, "sessionAffinity", json!("None"));
                if let Some(Value::Array(ports)) = spec.get_mut("ports") {
                    for port in ports.iter_mut().filter_map(Value::as_object_mut) {
                        set_default(port, "protocol", json!("TCP"));
                        if let Some(number) = port.get("port").cloned() {
                            set_default(port, "targetPort", number);
                        }
                    }
                }
            }
        }
        _ => {}
    }
}

/// Pod-template defaults (`metadata.creationTimestamp: null` included, as the real API shows).
pub(crate) fn default_pod_template(template: &mut Value) {
    if let Some(metadata) = object(template, "metadata") {
        set_default(metadata, "creationTimestamp", Value::Null);
    }
    if let Some(spec) = template.get_mut("spec") {
        default_pod_spec(spec);
    }
}

fn default_pod_spec(spec: &mut Value) {
    let Some(spec) = spec.as_object_mut() else {
        return;
    };
    set_default(spec, "restartPolicy", json!("Always"));
    set_default(spec, "terminationGracePeriodSeconds", json!(30));
    set_default(spec, "dnsPolicy", json!("ClusterFirst"));
    set_default(spec, "securityContext", json!({}));
    set_default(spec, "schedulerName", json!("default-scheduler"));
    for list in ["containers", "initContainers"] {
        if let Some(Value::Array(containers)) = spec.get_mut(list) {
            for container in containers.iter_mut().filter_map(Value::as_object_mut) {
                set_default(
                    container,
                    "terminationMessagePath",
                    json!("/dev/termination-log"),
                );
                set_default(container, "terminationMessagePolicy", json!("File"));
                set_default(container, "resources", json!({}));
                let image = container.get("image").and_then(Value::as_str).unwrap_or("");
                let tag = image
                    .rsplit_once(':')
                    .map(|(_, t)| t)
                    .filter(|t| !t.contains('/'));
                let policy = if tag.is_none() || tag == Some("latest") {
                    "Always"
                } else {
                    "IfNotPresent"
                };
                set_default(container, "imagePullPolicy", json!(policy));
                if let Some(Value::Array(ports)) = container.get_mut("ports") {
                    for port in ports.iter_mut().filter_map(Value::as_object_mut) {
                        set_default(port, "protocol", json!("TCP"));
                    }
                }
            }
        }
    }
}

/// Validation clients depend on; the first problem found, as a 422.
pub(crate) fn validate(rt: &ResourceType, obj: &Value) -> Result<(), ApiError> {
    let name = obj
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("");
    if name.is_empty() {
        return Err(ApiError::invalid(
            rt,
            name,
            "metadata.name",
            "Required value: name or generateName is required",
        ));
    }
    let valid_name = name.len() <= 253
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric());
    if !valid_name {
        return Err(ApiError::invalid(
            rt,
            name,
            "metadata.name",
            &format!(
                "Invalid value: \"{name}\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character"
            ),
        ));
    }
    if matches!(rt.kind.as_str(), "Deployment" | "ReplicaSet") && rt.group == "apps" {
        let selector = obj
            .pointer("/spec/selector/matchLabels")
            .and_then(Value::as_object);
        let Some(selector) = selector else {
            return Err(ApiError::invalid(
                rt,
                name,
                "spec.selector",
                "Required value",
            ));
        };
        let labels = obj
            .pointer("/spec/template/metadata/labels")
            .and_then(Value::as_object);
        let matches = selector
            .iter()
            .all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v));
        if !matches {
            return Err(ApiError::invalid(
                rt,
                name,
                "spec.template.metadata.labels",
                &format!(
                    "Invalid value: {}: `selector` does not match template `labels`",
                    Value::Object(labels.cloned().unwrap_or_default())
                ),
            ));
        }
        if obj
            .pointer("/spec/replicas")
            .and_then(Value::as_i64)
            .is_some_and(|r| r < 0)
        {
            return Err(ApiError::invalid(
                rt,
                name,
                "spec.replicas",
                "Invalid value: must be greater than or equal to 0",
            ));
        }
    }
    Ok(())
}
