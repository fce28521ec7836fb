//! Server-side `Table` responses, so `kubectl get` prints the columns a real server gives it.

use std::time::{Duration, SystemTime};

use serde_json::{Value, json};

use crate::clock::{human_duration, parse_rfc3339};
use crate::resources::ResourceType;

mod cluster;
mod workloads;

struct Column {
    name: &'static str,
    kind: &'static str,
    priority: u8,
}

const fn col(name: &'static str, kind: &'static str, priority: u8) -> Column {
    Column {
        name,
        kind,
        priority,
    }
}

fn columns(kind: &str) -> Vec<Column> {
    match kind {
        "Deployment" => vec![
            col("Name", "string", 0),
            col("Ready", "string", 0),
            col("Up-to-date", "integer", 0),
            col("Available", "integer", 0),
            col("Age", "string", 0),
            col("Containers", "string", 1),
            col("Images", "string", 1),
            col("Selector", "string", 1),
        ],
        "ReplicaSet" => vec![
            col("Name", "string", 0),
            col("Desired", "integer", 0),
            col("Current", "integer", 0),
            col("Ready", "integer", 0),
            col("Age", "string", 0),
            col("Containers", "string", 1),
            col("Images", "string", 1),
            col("Selector", "string", 1),
        ],
        "Pod" => vec![
            col("Name", "string", 0),
            col("Ready", "string", 0),
            col("Status", "string", 0),
            col("Restarts", "string", 0),
            col("Age", "string", 0),
            col("IP", "string", 1),
            col("Node", "string", 1),
            col("Nominated Node", "string", 1),
            col("Readiness Gates", "string", 1),
        ],
        "Service" => vec![
            col("Name", "string", 0),
            col("Type", "string", 0),
            col("Cluster-IP", "string", 0),
            col("External-IP", "string", 0),
            col("Port(s)", "string", 0),
            col("Age", "string", 0),
            col("Selector", "string", 1),
        ],
        "Endpoints" => vec![
            col("Name", "string", 0),
            col("Endpoints", "string", 0),
            col("Age", "string", 0),
        ],
        "Event" => vec![
            col("Last Seen", "string", 0),
            col("Type", "string", 0),
            col("Reason", "string", 0),
            col("Object", "string", 0),
            col("Subobject", "string", 1),
            col("Source", "string", 1),
            col("Message", "string", 0),
            col("First Seen", "string", 1),
            col("Count", "string", 1),
            col("Name", "string", 1),
        ],
        "ConfigMap" => vec![
            col("Name", "string", 0),
            col("Data", "string", 0),
            col("Age", "string", 0),
        ],
        "Namespace" => vec![
            col("Name", "string", 0),
            col("Status", "string", 0),
            col("Age", "string", 0),
        ],
        "Job" => vec![
            col("Name", "string", 0),
            col("Status", "string", 0),
            col("Completions", "string", 0),
            col("Duration", "string", 0),
            col("Age", "string", 0),
            col("Containers", "string", 1),
            col("Images", "string", 1),
            col("Selector", "string", 1),
        ],
        "EndpointSlice" => vec![
            col("Name", "string", 0),
            col("AddressType", "string", 0),
            col("Ports", "string", 0),
            col("Endpoints", "string", 0),
            col("Age", "string", 0),
        ],
        "Secret" => vec![
            col("Name", "string", 0),
            col("Type", "string", 0),
            col("Data", "string", 0),
            col("Age", "string", 0),
        ],
        "ServiceAccount" => vec![
            col("Name", "string", 0),
            col("Secrets", "integer", 0),
            col("Age", "string", 0),
        ],
        "Role" | "ClusterRole" => vec![col("Name", "string", 0), col("Created At", "date", 0)],
        "RoleBinding" | "ClusterRoleBinding" => vec![
            col("Name", "string", 0),
            col("Role", "string", 0),
            col("Age", "string", 0),
            col("Users", "string", 1),
            col("Groups", "string", 1),
            col("ServiceAccounts", "string", 1),
        ],
        other => workloads::columns(other)
            .or_else(|| cluster::columns(other))
            .unwrap_or_else(|| vec![col("Name", "string", 0), col("Age", "string", 0)]),
    }
}

fn str_at<'a>(obj: &'a Value, pointer: &str) -> &'a str {
    obj.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

fn int_at(obj: &Value, pointer: &str) -> i64 {
    obj.pointer(pointer).and_then(Value::as_i64).unwrap_or(0)
}

fn age(now: SystemTime, obj: &Value, pointer: &str) -> String {
    match parse_rfc3339(str_at(obj, pointer)) {
        Some(t) => human_duration(now.duration_since(t).unwrap_or(Duration::ZERO)),
        None => "<unknown>".into(),
    }
}

fn containers(obj: &Value, pointer: &str) -> (String, String) {
    let list = obj
        .pointer(pointer)
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let names: Vec<&str> = list
        .iter()
        .filter_map(|c| c.get("name").and_then(Value::as_str))
        .collect();
    let images: Vec<&str> = list
        .iter()
        .filter_map(|c| c.get("image").and_then(Value::as_str))
        .collect();
    (names.join(","), images.join(","))
}

fn selector(obj: &Value, pointer: &str) -> String {
    match obj.pointer(pointer).and_then(Value::as_object) {
        Some(map) if !map.is_empty() => map
            .iter()
            .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
            .collect::<Vec<_>>()
            .join(","),
        _ => "<none>".into(),
    }
}

/// The STATUS cell of a pod, computed as the real printer computes it.
pub(crate) fn pod_status(pod: &Value) -> String {
    if pod
        .pointer("/metadata/deletionTimestamp")
        .is_some_and(|v| !v.is_null())
    {
        return "Terminating".into();
    }
    let mut reason = str_at(pod, "/status/reason").to_owned();
    if reason.is_empty() {
        reason = str_at(pod, "/status/phase").to_owned();
    }
    let statuses = pod
        .pointer("/status/containerStatuses")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut has_running = false;
    for status in statuses.iter().rev() {
        if let Some(waiting) = status
            .pointer("/state/waiting/reason")
            .and_then(Value::as_str)
        {
            reason = waiting.to_owned();
        } else if let Some(terminated) = status.pointer("/state/terminated") {
            reason = match terminated.get("reason").and_then(Value::as_str) {
                Some(r) if !r.is_empty() => r.to_owned(),
                _ => match terminated.get("signal").and_then(Value::as_i64) {
                    Some(signal) if signal != 0 => format!("Signal:{signal}"),
                    _ => format!("ExitCode:{}", int_at(terminated, "/exitCode")),
                },
            };
        } else if status.pointer("/state/running").is_some()
            && status.get("ready") == Some(&json!(true))
        {
            has_running = true;
        }
    }
    if reason == "Completed" && has_running {
        reason = "Running".into();
    }
    reason
}

fn cells(kind: &str, obj: &Value, now: SystemTime) -> Vec<Value> {
    let name = json!(str_at(obj, "/metadata/name"));
    let created = age(now, obj, "/metadata/creationTimestamp");
    match kind {
        "Deployment" => {
            let (names, images) = containers(obj, "/spec/template/spec/containers");
            vec![
                name,
                json!(format!(
                    "{}/{}",
                    int_at(obj, "/status/readyReplicas"),
                    int_at(obj, "/spec/replicas")
                )),
                json!(int_at(obj, "/status/updatedReplicas")),
                json!(int_at(obj, "/status/availableReplicas")),
                json!(created),
                json!(names),
                json!(images),
                json!(selector(obj, "/spec/selector/matchLabels")),
            ]
        }
        "ReplicaSet" => {
            let (names, images) = containers(obj, "/spec/template/spec/containers");
            vec![
                name,
                json!(int_at(obj, "/spec/replicas")),
                json!(int_at(obj, "/status/replicas")),
                json!(int_at(obj, "/status/readyReplicas")),
                json!(created),
                json!(names),
                json!(images),
                json!(selector(obj, "/spec/selector/matchLabels")),
            ]
        }
        "Pod" => {
            let statuses = obj
                .pointer("/status/containerStatuses")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let total = obj
                .pointer("/spec/containers")
                .and_then(Value::as_array)
                .map_or(0, Vec::len);
            let ready = statuses
                .iter()
                .filter(|s| s.get("ready") == Some(&json!(true)))
                .count();
            let restarts: i64 = statuses.iter().map(|s| int_at(s, "/restartCount")).sum();
            let last = statuses
                .iter()
                .filter_map(|s| parse_rfc3339(str_at(s, "/lastState/terminated/finishedAt")))
                .max();
            let restarts = match last {
                Some(t) if restarts > 0 => format!(
                    "{restarts} ({} ago)",
                    human_duration(now.duration_since(t).unwrap_or(Duration::ZERO))
                ),
                _ => restarts.to_string(),
            };
            let or_none = |s: &str| {
                if s.is_empty() {
                    "<none>".to_owned()
                } else {
                    s.to_owned()
                }
            };
            vec![
                name,
                json!(format!("{ready}/{total}")),
                json!(pod_status(obj)),
                json!(restarts),
                json!(created),
                json!(or_none(str_at(obj, "/status/podIP"))),
                json!(or_none(str_at(obj, "/spec/nodeName"))),
                json!("<none>"),
                json!("<none>"),
            ]
        }
        "Service" => {
            let ports = obj
                .pointer("/spec/ports")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let ports: Vec<String> = ports
                .iter()
                .map(|p| {
                    let node_port = p
                        .get("nodePort")
                        .and_then(Value::as_i64)
                        .map(|n| format!(":{n}"))
                        .unwrap_or_default();
                    format!(
                        "{}{node_port}/{}",
                        int_at(p, "/port"),
                        p.get("protocol").and_then(Value::as_str).unwrap_or("TCP")
                    )
                })
                .collect();
            // A LoadBalancer nobody has provisioned is `<pending>`; the others have none.
            let ingress: Vec<&str> = obj
                .pointer("/status/loadBalancer/ingress")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|i| i.get("ip").or(i.get("hostname")).and_then(Value::as_str))
                .collect();
            let external = match (str_at(obj, "/spec/type"), ingress.is_empty()) {
                ("LoadBalancer", true) => "<pending>".to_owned(),
                (_, false) => ingress.join(","),
                _ => "<none>".to_owned(),
            };
            let cluster_ip = str_at(obj, "/spec/clusterIP");
            vec![
                name,
                json!(str_at(obj, "/spec/type")),
                json!(if cluster_ip.is_empty() {
                    "<none>"
                } else {
                    cluster_ip
                }),
                json!(external),
                json!(if ports.is_empty() {
                    "<none>".to_owned()
                } else {
                    ports.join(",")
                }),
                json!(created),
                json!(selector(obj, "/spec/selector")),
            ]
        }
        "Endpoints" => {
            let mut addresses = Vec::new();
            for subset in obj
                .get("subsets")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default()
            {
                let ports = subset
                    .get("ports")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                for address in subset
                    .get("addresses")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default()
                {
                    let ip = str_at(&address, "/ip").to_owned();
                    if ports.is_empty() {
                        addresses.push(ip.clone());
                    }
                    for port in &ports {
                        addresses.push(format!("{ip}:{}", int_at(port, "/port")));
                    }
                }
            }
            let shown = if addresses.is_empty() {
                "<none>".to_owned()
            } else if addresses.len() > 3 {
                format!(
                    "{} + {} more...",
                    addresses[..3].join(","),
                    addresses.len() - 3
                )
            } else {
                addresses.join(",")
            };
            vec![name, json!(shown), json!(created)]
        }
        "Event" => {
            let last_seen = if obj.pointer("/lastTimestamp").is_some_and(|v| !v.is_null()) {
                age(now, obj, "/lastTimestamp")
            } else {
                age(now, obj, "/eventTime")
            };
            let object = format!(
                "{}/{}",
                str_at(obj, "/involvedObject/kind").to_lowercase(),
                str_at(obj, "/involvedObject/name")
            );
            vec![
                json!(last_seen),
                json!(str_at(obj, "/type")),
                json!(str_at(obj, "/reason")),
                json!(object),
                json!(str_at(obj, "/involvedObject/fieldPath")),
                json!(str_at(obj, "/source/component")),
                json!(str_at(obj, "/message")),
                json!(age(now, obj, "/firstTimestamp")),
                json!(int_at(obj, "/count").to_string()),
                name,
            ]
        }
        "ConfigMap" => vec![
            name,
            json!(
                obj.get("data")
                    .and_then(Value::as_object)
                    .map_or(0, |d| d.len())
                    .to_string()
            ),
            json!(created),
        ],
        "Namespace" => vec![name, json!(str_at(obj, "/status/phase")), json!(created)],
        "Job" => {
            let (names, images) = containers(obj, "/spec/template/spec/containers");
            vec![
                name,
                json!(job_status(obj)),
                json!(format!(
                    "{}/{}",
                    int_at(obj, "/status/succeeded"),
                    obj.pointer("/spec/completions")
                        .and_then(Value::as_i64)
                        .unwrap_or(1)
                )),
                json!(job_duration(obj, now)),
                json!(created),
                json!(names),
                json!(images),
                json!(selector(obj, "/spec/selector/matchLabels")),
            ]
        }
        "EndpointSlice" => {
            let ports: Vec<String> = list_at(obj, "/ports")
                .iter()
                .map(|p| int_at(p, "/port").to_string())
                .collect();
            let addresses: Vec<String> = list_at(obj, "/endpoints")
                .iter()
                .flat_map(|e| list_at(e, "/addresses"))
                .filter_map(|a| a.as_str().map(str::to_owned))
                .collect();
            let shown = match addresses.len() {
                0 => "<unset>".to_owned(),
                1..=3 => addresses.join(","),
                n => format!("{} + {} more...", addresses[..3].join(","), n - 3),
            };
            vec![
                name,
                json!(str_at(obj, "/addressType")),
                json!(if ports.is_empty() {
                    "<unset>".to_owned()
                } else {
                    ports.join(",")
                }),
                json!(shown),
                json!(created),
            ]
        }
        "Secret" => vec![
            name,
            json!(str_at(obj, "/type")),
            json!(
                obj.get("data")
                    .and_then(Value::as_object)
                    .map_or(0, |d| d.len())
                    .to_string()
            ),
            json!(created),
        ],
        "ServiceAccount" => vec![name, json!(list_at(obj, "/secrets").len()), json!(created)],
        "Role" | "ClusterRole" => vec![name, json!(str_at(obj, "/metadata/creationTimestamp"))],
        "RoleBinding" | "ClusterRoleBinding" => {
            let subjects = |kind: &str| {
                list_at(obj, "/subjects")
                    .iter()
                    .filter(|s| str_at(s, "/kind") == kind)
                    .map(|s| match str_at(s, "/namespace") {
                        "" => str_at(s, "/name").to_owned(),
                        ns => format!("{ns}/{}", str_at(s, "/name")),
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            vec![
                name,
                json!(format!(
                    "{}/{}",
                    str_at(obj, "/roleRef/kind"),
                    str_at(obj, "/roleRef/name")
                )),
                json!(created),
                json!(subjects("User")),
                json!(subjects("Group")),
                json!(subjects("ServiceAccount")),
            ]
        }
        other => workloads::cells(other, obj, now)
            .or_else(|| cluster::cells(other, obj, now))
            .unwrap_or_else(|| vec![name, json!(created)]),
    }
}

fn list_at<'a>(obj: &'a Value, pointer: &str) -> &'a [Value] {
    obj.pointer(pointer)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

/// A Job's STATUS column as kubectl 1.33 prints it.
fn job_status(job: &Value) -> &'static str {
    let condition = |kind: &str| {
        list_at(job, "/status/conditions")
            .iter()
            .any(|c| str_at(c, "/type") == kind && str_at(c, "/status") == "True")
    };
    if condition("Complete") {
        "Complete"
    } else if condition("Failed") {
        "Failed"
    } else if condition("Suspended") {
        "Suspended"
    } else {
        "Running"
    }
}

/// How long a Job ran: to its completion, or until now while it runs.
fn job_duration(job: &Value, now: SystemTime) -> String {
    let Some(start) = parse_rfc3339(str_at(job, "/status/startTime")) else {
        return String::new();
    };
    let end = parse_rfc3339(str_at(job, "/status/completionTime")).unwrap_or(now);
    human_duration(end.duration_since(start).unwrap_or(Duration::ZERO))
}

/// A `meta.k8s.io/v1` Table of `objects`.
pub(crate) fn table(
    rt: &ResourceType,
    objects: &[Value],
    resource_version: u64,
    now: SystemTime,
    include_object: bool,
) -> Value {
    if !rt.printer_columns.is_empty() {
        return custom_table(rt, objects, resource_version, now, include_object);
    }
    let definitions: Vec<Value> = columns(&rt.kind)
        .iter()
        .map(|c| {
            let format = if c.name == "Name" { "name" } else { "" };
            json!({"name": c.name, "type": c.kind, "format": format, "description": "", "priority": c.priority})
        })
        .collect();
    let rows: Vec<Value> = objects
        .iter()
        .map(|obj| json!({"cells": cells(&rt.kind, obj, now), "object": row_object(obj, include_object)}))
        .collect();
    table_of(definitions, rows, resource_version)
}

/// The `meta.k8s.io/v1` Table of `definitions` and `rows` at `resource_version`.
fn table_of(definitions: Vec<Value>, rows: Vec<Value>, resource_version: u64) -> Value {
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": resource_version.to_string()},
        "columnDefinitions": definitions,
        "rows": rows,
    })
}

fn row_object(obj: &Value, include_object: bool) -> Value {
    if include_object {
        obj.clone()
    } else {
        json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": obj.get("metadata").cloned().unwrap_or(json!({}))})
    }
}

/// A Table of custom resources with their CRD's printer columns, as the API server renders
/// them: the name, then each column's JSONPath (lists as JSON, the creation time as an age).
fn custom_table(
    rt: &ResourceType,
    objects: &[Value],
    resource_version: u64,
    now: SystemTime,
    include_object: bool,
) -> Value {
    let mut definitions = vec![
        json!({"name": "Name", "type": "string", "format": "name", "description": "", "priority": 0}),
    ];
    for (name, _) in &rt.printer_columns {
        definitions.push(
            json!({"name": name, "type": "string", "format": "", "description": "", "priority": 0}),
        );
    }
    let rows: Vec<Value> = objects
        .iter()
        .map(|obj| {
            let mut cells = vec![json!(str_at(obj, "/metadata/name"))];
            for (_, path) in &rt.printer_columns {
                if path == ".metadata.creationTimestamp" {
                    cells.push(json!(age(now, obj, "/metadata/creationTimestamp")));
                    continue;
                }
                let found = json_path(obj, path);
                let text = |value: &Value| match value {
                    Value::String(text) => text.clone(),
                    other => other.to_string(),
                };
                let cell = match found.as_slice() {
                    [] | [Value::Null] => Value::Null,
                    [one] => json!(text(one)),
                    many => json!(many.iter().map(|v| text(v)).collect::<Vec<_>>().join(",")),
                };
                cells.push(cell);
            }
            json!({"cells": cells, "object": row_object(obj, include_object)})
        })
        .collect();
    table_of(definitions, rows, resource_version)
}

/// The values a printer column's JSONPath picks from `obj`: fields (`.status.phase`), indexes
/// (`[0]`), every item (`[*]`) and filters on a field's value (`[?(@.type=="Ready")]`), the
/// forms CRDs' `additionalPrinterColumns` use.
fn json_path<'a>(obj: &'a Value, path: &str) -> Vec<&'a Value> {
    let mut current = vec![obj];
    let mut rest = path.trim_start_matches('$');
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix('.') {
            let end = after.find(['.', '[']).unwrap_or(after.len());
            let field = &after[..end];
            current = current.into_iter().filter_map(|v| v.get(field)).collect();
            rest = &after[end..];
        } else if let Some(after) = rest.strip_prefix('[') {
            let Some(end) = after.find(']') else {
                return Vec::new();
            };
            // A filter's closing bracket follows its closing parenthesis.
            let end = if after.starts_with("?(") {
                after.find(")]").map_or(end, |e| e + 1)
            } else {
                end
            };
            let selector = &after[..end];
            current = current
                .into_iter()
                .flat_map(|v| select(v, selector))
                .collect();
            rest = &after[end + 1..];
        } else {
            return Vec::new();
        }
    }
    current
}

fn select<'a>(value: &'a Value, selector: &str) -> Vec<&'a Value> {
    let items = value.as_array().map(Vec::as_slice).unwrap_or_default();
    if selector == "*" {
        return items.iter().collect();
    }
    if let Ok(index) = selector.parse::<usize>() {
        return items.get(index).into_iter().collect();
    }
    let Some(filter) = selector
        .strip_prefix("?(@.")
        .and_then(|f| f.strip_suffix(')'))
    else {
        return Vec::new();
    };
    let Some((field, wanted)) = filter.split_once("==") else {
        return Vec::new();
    };
    let wanted = wanted.trim().trim_matches(['"', '\'']);
    items
        .iter()
        .filter(|item| {
            item.pointer(&format!("/{}", field.trim().replace('.', "/")))
                .and_then(Value::as_str)
                == Some(wanted)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printer_column_paths_pick_fields_items_and_filtered_items() {
        let gateway = json!({"spec": {"gatewayClassName": "sim"}, "status": {
            "addresses": [{"value": "10.0.0.1"}, {"value": "10.0.0.2"}],
            "conditions": [{"type": "Accepted", "status": "True"}, {"type": "Programmed", "status": "False"}]}});
        assert_eq!(
            json_path(&gateway, ".spec.gatewayClassName"),
            [&json!("sim")]
        );
        assert_eq!(
            json_path(&gateway, ".status.addresses[*].value"),
            [&json!("10.0.0.1"), &json!("10.0.0.2")]
        );
        assert_eq!(
            json_path(&gateway, ".status.addresses[1].value"),
            [&json!("10.0.0.2")]
        );
        assert_eq!(
            json_path(
                &gateway,
                ".status.conditions[?(@.type==\"Programmed\")].status"
            ),
            [&json!("False")]
        );
        assert!(json_path(&gateway, ".status.missing[*].x").is_empty());
    }

    #[test]
    fn pod_status_walks_container_states() {
        let pod = json!({"status": {"phase": "Pending", "containerStatuses": [
            {"name": "a", "ready": false, "state": {"waiting": {"reason": "ImagePullBackOff"}}}
        ]}});
        assert_eq!(pod_status(&pod), "ImagePullBackOff");
        let pod = json!({"status": {"phase": "Running", "containerStatuses": [
            {"name": "a", "ready": false, "state": {"terminated": {"exitCode": 137, "reason": "OOMKilled"}}}
        ]}});
        assert_eq!(pod_status(&pod), "OOMKilled");
        assert_eq!(
            pod_status(&json!({"status": {"phase": "Running"}})),
            "Running"
        );
    }
}
