//! Defaulting and validation the API server applies on write, where clients depend on it.
//!
//! Deployment and ReplicaSet pod templates are defaulted identically: kubectl and the
//! Deployment controller compare templates for equality, and a difference in defaulting would
//! make a rollback look like a new revision.

use serde_json::{Map, Value, json};

use crate::resources::ResourceType;
use crate::status::ApiError;

mod pods;
mod workloads;

pub(crate) use pods::check_update;

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
        ("", "LimitRange") => crate::admission::default_limit_range(obj),
        ("", "Pod") => {
            if let Some(spec) = obj.get_mut("spec") {
                default_pod_spec(spec);
                requests_from_limits(spec);
                // What admission adds to a pod (the ServiceAccount and Priority plugins).
                if let Some(spec) = spec.as_object_mut() {
                    let account = spec
                        .get("serviceAccountName")
                        .cloned()
                        .unwrap_or_else(|| json!("default"));
                    set_default(spec, "serviceAccountName", account.clone());
                    set_default(spec, "serviceAccount", account);
                    set_default(spec, "enableServiceLinks", json!(true));
                    set_default(spec, "priority", json!(0));
                    set_default(spec, "preemptionPolicy", json!("PreemptLowerPriority"));
                }
            }
        }
        ("", "Secret") => {
            if let Some(map) = obj.as_object_mut() {
                set_default(map, "type", json!("Opaque"));
            }
        }
        ("", "Service") => {
            if let Some(spec) = object(obj, "spec") {
                set_default(spec, "type", json!("ClusterIP"));
                set_default(spec, "sessionAffinity", json!("None"));
                set_default(spec, "ipFamilies", json!(["IPv4"]));
                set_default(spec, "ipFamilyPolicy", json!("SingleStack"));
                set_default(spec, "internalTrafficPolicy", json!("Cluster"));
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
        (group, kind) => {
            workloads::apply(group, kind, obj);
        }
    }
}

/// A pod's containers request what they limit, where they state no request (a pod's default,
/// not a template's).
fn requests_from_limits(spec: &mut Value) {
    let Some(containers) = spec.get_mut("containers").and_then(Value::as_array_mut) else {
        return;
    };
    for container in containers {
        let Some(limits) = container
            .pointer("/resources/limits")
            .and_then(Value::as_object)
            .cloned()
        else {
            continue;
        };
        let resources = &mut container["resources"];
        if resources.get("requests").is_none_or(|r| !r.is_object()) {
            resources["requests"] = json!({});
        }
        for (resource, value) in limits {
            if resources["requests"].get(&resource).is_none() {
                resources["requests"][resource] = value;
            }
        }
    }
}

/// Defaults a new object gets once it has a uid: a Namespace is Active; a Job without `manualSelector` selects its pods by
/// `batch.kubernetes.io/controller-uid`, and its template carries that label, the job's name and
/// their legacy forms (`controller-uid`, `job-name`), so `kubectl logs job/NAME` finds its pod.
pub(crate) fn apply_creation_defaults(rt: &ResourceType, obj: &mut Value, uid: &str) {
    if (rt.group.as_str(), rt.kind.as_str()) == ("", "Namespace") {
        // The namespace lifecycle: a new namespace is Active, finalized by `kubernetes`.
        if let Some(spec) = object(obj, "spec") {
            set_default(spec, "finalizers", json!(["kubernetes"]));
        }
        if let Some(status) = object(obj, "status") {
            set_default(status, "phase", json!("Active"));
        }
        return;
    }
    if (rt.group.as_str(), rt.kind.as_str()) != ("batch", "Job")
        || obj.pointer("/spec/manualSelector") == Some(&Value::Bool(true))
    {
        return;
    }
    let name = obj
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    let Some(spec) = object(obj, "spec") else {
        return;
    };
    if !spec.contains_key("selector") {
        spec.insert(
            "selector".into(),
            json!({"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}),
        );
    }
    let Some(template) = spec.get_mut("template") else {
        return;
    };
    if let Some(labels) = object(template, "metadata").and_then(|m| {
        m.entry("labels")
            .or_insert_with(|| json!({}))
            .as_object_mut()
    }) {
        for (key, value) in [
            ("batch.kubernetes.io/controller-uid", uid),
            ("batch.kubernetes.io/job-name", name.as_str()),
            ("controller-uid", uid),
            ("job-name", name.as_str()),
        ] {
            set_default(labels, key, json!(value));
        }
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
                for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
                    if let Some(probe) = container.get_mut(probe).and_then(Value::as_object_mut) {
                        set_default(probe, "timeoutSeconds", json!(1));
                        set_default(probe, "periodSeconds", json!(10));
                        set_default(probe, "successThreshold", json!(1));
                        set_default(probe, "failureThreshold", json!(3));
                        if let Some(get) = probe.get_mut("httpGet").and_then(Value::as_object_mut) {
                            set_default(get, "scheme", json!("HTTP"));
                        }
                    }
                }
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
    let mut problems = Vec::new();
    check_labels(
        obj.pointer("/metadata/labels"),
        "metadata.labels",
        &mut problems,
    );
    if let Some(spec) = obj.get("spec") {
        if rt.group == "apps" && rt.kind == "Deployment" {
            check_strategy(spec, &mut problems);
        }
        if let Some(template) = spec.get("template") {
            check_labels(
                template.pointer("/metadata/labels"),
                "spec.template.metadata.labels",
                &mut problems,
            );
            if let Some(pod) = template.get("spec") {
                // A StatefulSet's containers may mount its claim templates by name.
                let mut pod = pod.clone();
                for claim in spec
                    .get("volumeClaimTemplates")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    let name = claim.pointer("/metadata/name").cloned().unwrap_or_default();
                    if let Some(volumes) = pod
                        .as_object_mut()
                        .map(|p| p.entry("volumes").or_insert_with(|| json!([])))
                        .and_then(Value::as_array_mut)
                    {
                        volumes.push(json!({"name": name}));
                    }
                }
                let pod = &pod;
                check_pod_spec(pod, "spec.template.spec", &mut problems);
                if rt.group == "batch" && rt.kind == "Job" {
                    pods::check_job_restart_policy(pod, "spec.template.spec", &mut problems);
                }
            }
        } else if rt.kind == "Pod" && rt.group.is_empty() {
            check_pod_spec(spec, "spec", &mut problems);
        } else if let Some(pod) = spec.pointer("/jobTemplate/spec/template/spec") {
            // A CronJob's jobs' pods.
            let at = "spec.jobTemplate.spec.template.spec";
            check_pod_spec(pod, at, &mut problems);
            pods::check_job_restart_policy(pod, at, &mut problems);
        }
    }
    if !problems.is_empty() {
        return Err(ApiError::invalid_all(rt, name, problems));
    }
    if matches!(rt.kind.as_str(), "Deployment" | "ReplicaSet") && rt.group == "apps" {
        let selector = obj
            .pointer("/spec/selector")
            .map(crate::selectors::LabelSelector::of_object)
            .transpose()
            .map_err(|why| ApiError::invalid(rt, name, "spec.selector", &why))?
            .filter(|s| !s.is_empty());
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
        let matches = selector.matches(labels);
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

/// A label key: an optional DNS-subdomain prefix and `/`, then a name of at most 63
/// alphanumerics, `-`, `_` or `.`, starting and ending alphanumeric.
fn check_labels(labels: Option<&Value>, field: &str, problems: &mut Vec<(String, String)>) {
    let Some(labels) = labels.and_then(Value::as_object) else {
        return;
    };
    for (key, value) in labels {
        let name = key.rsplit_once('/').map_or(key.as_str(), |(_, n)| n);
        let prefix_ok = key.rsplit_once('/').is_none_or(|(prefix, _)| {
            !prefix.is_empty()
                && prefix.len() <= 253
                && prefix
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
        });
        if !prefix_ok || !qualified_name_part(name) {
            problems.push((
                field.to_owned(),
                format!(
                    "Invalid value: \"{key}\": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
                ),
            ));
        }
        let text = value.as_str().unwrap_or("");
        if !text.is_empty() && !qualified_name_part(text) {
            problems.push((
                field.to_owned(),
                format!(
                    "Invalid value: \"{text}\": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
                ),
            ));
        }
    }
}

fn qualified_name_part(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric())
}

/// An int-or-percent: `Some(percent)` for a percentage, `None` for an integer (or nothing).
fn percent(value: &Value) -> Option<Result<i64, ()>> {
    let text = value.as_str()?;
    Some(
        text.strip_suffix('%')
            .and_then(|n| n.parse().ok())
            .ok_or(()),
    )
}

fn check_strategy(spec: &Value, problems: &mut Vec<(String, String)>) {
    let strategy = spec.get("strategy");
    let kind = strategy
        .and_then(|s| s.get("type"))
        .and_then(Value::as_str)
        .unwrap_or("RollingUpdate");
    let rolling = strategy.and_then(|s| s.get("rollingUpdate"));
    match kind {
        "Recreate" if rolling.is_some() => problems.push((
            "spec.strategy.rollingUpdate".into(),
            "Forbidden: may not be specified when strategy `type` is 'Recreate'".into(),
        )),
        "Recreate" | "RollingUpdate" => {}
        other => problems.push((
            "spec.strategy.type".into(),
            format!(
                "Unsupported value: \"{other}\": supported values: \"Recreate\", \"RollingUpdate\""
            ),
        )),
    }
    let Some(rolling) = rolling.filter(|_| kind == "RollingUpdate") else {
        return;
    };
    let mut zero = [false, false];
    for (i, field) in ["maxUnavailable", "maxSurge"].into_iter().enumerate() {
        let Some(value) = rolling.get(field) else {
            continue;
        };
        let path = format!("spec.strategy.rollingUpdate.{field}");
        match percent(value) {
            Some(Ok(p)) if p > 100 => problems.push((
                path,
                format!("Invalid value: \"{p}%\": must not be greater than 100%"),
            )),
            Some(Ok(p)) if p < 0 => problems.push((
                path,
                format!("Invalid value: \"{p}%\": must be greater than or equal to 0"),
            )),
            Some(Ok(p)) => zero[i] = p == 0,
            Some(Err(())) => problems.push((
                path,
                format!(
                    "Invalid value: {value}: a valid percent string must be a numeric string followed by an ending '%' (e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')"
                ),
            )),
            None => match value.as_i64() {
                Some(n) if n < 0 => problems.push((
                    path,
                    format!("Invalid value: {n}: must be greater than or equal to 0"),
                )),
                Some(n) => zero[i] = n == 0,
                None => {}
            },
        }
    }
    if zero == [true, true] {
        let shown = match rolling.get("maxUnavailable") {
            Some(Value::String(text)) => {
                format!("intstr.IntOrString{{Type:1, IntVal:0, StrVal:\"{text}\"}}")
            }
            _ => "intstr.IntOrString{Type:0, IntVal:0, StrVal:\"\"}".into(),
        };
        problems.push((
            "spec.strategy.rollingUpdate.maxUnavailable".into(),
            format!("Invalid value: {shown}: may not be 0 when `maxSurge` is 0"),
        ));
    }
}

fn check_pod_spec(spec: &Value, field: &str, problems: &mut Vec<(String, String)>) {
    pods::check_containers(spec, field, problems);
    let containers = spec.get("containers").and_then(Value::as_array);
    if containers.is_none_or(Vec::is_empty) {
        problems.push((format!("{field}.containers"), "Required value".into()));
    }
    for (i, container) in containers.into_iter().flatten().enumerate() {
        let at = format!("{field}.containers[{i}]");
        if container
            .get("name")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        {
            problems.push((format!("{at}.name"), "Required value".into()));
        }
        if container
            .get("image")
            .and_then(Value::as_str)
            .is_none_or(|i| i.trim().is_empty())
        {
            problems.push((format!("{at}.image"), "Required value".into()));
        }
        if let Some(policy) = container.get("imagePullPolicy").and_then(Value::as_str)
            && !matches!(policy, "Always" | "IfNotPresent" | "Never")
        {
            problems.push((
                format!("{at}.imagePullPolicy"),
                format!(
                    "Unsupported value: \"{policy}\": supported values: \"Always\", \"IfNotPresent\", \"Never\""
                ),
            ));
        }
    }
}
