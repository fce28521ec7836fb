//! The admission plugins a new object passes through after it is read and before it is stored,
//! as the API server's `LimitRanger` and `ResourceQuota` plugins do — for every create, the
//! controllers' as well as the clients' (a ReplicaSet over quota records `FailedCreate`).
//!
//! - **LimitRanger**: a pod's containers get the `default` limits and `defaultRequest` requests of
//!   the namespace's `Container` LimitRanges where they set none (the pod's
//!   `kubernetes.io/limit-ranger` annotation says which), then each container (`Container`) and
//!   the pod's sum (`Pod`) is held to their `min` and `max`.
//! - **ResourceQuota**: a create that would take a namespace's usage of anything a ResourceQuota
//!   names past its `hard` limit is refused, naming the quota, what was requested, used and
//!   allowed; a pod under a quota of compute resources must state them.
//!
//! Usage is what the namespace holds now (pods that finished count for nothing), so it never
//! waits on the quota controller's `status.used`.

use std::sync::Arc;

use serde_json::{Map, Value, json};

use crate::pointer::Pointer;
use crate::quantity::{amount, bytes, cpu_millis, cpu_text, memory_text};
use crate::resources::ResourceType;
use crate::status::ApiError;

/// What a quota resource counts in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unit {
    Millicores,
    Bytes,
    Objects,
}

impl Unit {
    pub(crate) fn text(self, amount: i64) -> String {
        match self {
            Self::Millicores => cpu_text(amount),
            Self::Bytes => memory_text(amount),
            Self::Objects => amount.to_string(),
        }
    }

    fn read(self, text: &str) -> i64 {
        match self {
            Self::Millicores => cpu_millis(text),
            Self::Bytes => bytes(text),
            Self::Objects => amount(text).map_or(0, |n| n.round() as i64),
        }
    }
}

/// The store key (`group/plural`) of the kind a quota resource counts, and its unit; `None` for
/// a resource the simulation does not count.
pub(crate) fn counted(resource: &str) -> Option<(String, Unit)> {
    let pods = || "/pods".to_owned();
    Some(match resource {
        "pods" | "count/pods" => (pods(), Unit::Objects),
        "cpu" | "requests.cpu" | "limits.cpu" => (pods(), Unit::Millicores),
        "memory" | "requests.memory" | "limits.memory" => (pods(), Unit::Bytes),
        "requests.storage" => ("/persistentvolumeclaims".to_owned(), Unit::Bytes),
        "services.loadbalancers" | "services.nodeports" => ("/services".to_owned(), Unit::Objects),
        "persistentvolumeclaims"
        | "services"
        | "configmaps"
        | "secrets"
        | "replicationcontrollers"
        | "resourcequotas" => (format!("/{resource}"), Unit::Objects),
        other => {
            let counted = other.strip_prefix("count/")?;
            let (plural, group) = counted.split_once('.').unwrap_or((counted, ""));
            (format!("{group}/{plural}"), Unit::Objects)
        }
    })
}

/// What `obj` (of the kind `resource` counts) charges to it, and whether it states everything
/// the charge needs (a pod's every container its `requests.cpu`, for one).
pub(crate) fn charge(resource: &str, obj: &Value) -> (i64, bool) {
    let text = |pointer: &str| obj.at(pointer).and_then(Value::as_str).unwrap_or_default();
    if obj.get("kind").and_then(Value::as_str) == Some("Pod")
        && matches!(text("/status/phase"), "Succeeded" | "Failed")
    {
        return (0, true);
    }
    let containers = || {
        obj.at("/spec/containers")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
    };
    let per_container = |field: &str, unit: Unit| {
        let values: Vec<Option<i64>> = containers()
            .map(|c| {
                c.at(&format!("/resources/{field}"))
                    .map(|v| unit.read(v.as_str().unwrap_or_default()))
            })
            .collect();
        (
            values.iter().flatten().sum(),
            values.iter().all(Option::is_some),
        )
    };
    match resource {
        "cpu" | "requests.cpu" => per_container("requests/cpu", Unit::Millicores),
        "limits.cpu" => per_container("limits/cpu", Unit::Millicores),
        "memory" | "requests.memory" => per_container("requests/memory", Unit::Bytes),
        "limits.memory" => per_container("limits/memory", Unit::Bytes),
        "requests.storage" => (bytes(text("/spec/resources/requests/storage")), true),
        "services.loadbalancers" => (i64::from(text("/spec/type") == "LoadBalancer"), true),
        "services.nodeports" => {
            let exposed = matches!(text("/spec/type"), "NodePort" | "LoadBalancer");
            let ports = obj
                .at("/spec/ports")
                .and_then(Value::as_array)
                .map_or(0, Vec::len);
            (if exposed { ports as i64 } else { 0 }, true)
        }
        _ => (1, true),
    }
}

/// The namespace's usage of `resource`: what each of `objects` charges it.
pub(crate) fn usage(resource: &str, objects: &[Arc<Value>]) -> i64 {
    objects.iter().map(|o| charge(resource, o).0).sum()
}

fn forbidden(rt: &ResourceType, obj: &Value, why: &str) -> ApiError {
    let name = obj
        .at("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let mut error = ApiError::new(
        403,
        "Forbidden",
        format!("{} \"{name}\" is forbidden: {why}", rt.qualified()),
    );
    error.details = json!({"name": name, "group": rt.group, "kind": rt.plural});
    error
}

/// `name=value` pairs in name order, as the quota plugin prints a resource list.
fn pairs(list: &[(String, String)]) -> String {
    let mut list = list.to_vec();
    list.sort();
    list.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// Refuses `obj`, a new object of `rt`, when it would take usage past a quota of `quotas` (the
/// namespace's ResourceQuotas); `objects_of` lists the namespace's objects by store key.
pub(crate) fn check_quotas(
    rt: &ResourceType,
    obj: &Value,
    quotas: &[Arc<Value>],
    objects_of: impl Fn(&str) -> Vec<Arc<Value>>,
) -> Result<(), ApiError> {
    let key = rt.store_key();
    let mut quotas: Vec<&Arc<Value>> = quotas.iter().collect();
    quotas.sort_by_key(|q| {
        q.at("/metadata/name")
            .and_then(Value::as_str)
            .map(str::to_owned)
    });
    for quota in quotas {
        let quota_name = quota
            .at("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let Some(hard) = quota.at("/spec/hard").and_then(Value::as_object) else {
            continue;
        };
        let mut unstated = Vec::new();
        let (mut requested, mut used, mut limited) = (Vec::new(), Vec::new(), Vec::new());
        for (resource, limit) in hard {
            let Some((counted_key, unit)) = counted(resource) else {
                continue;
            };
            if counted_key != key {
                continue;
            }
            let (charge, stated) = charge(resource, obj);
            if !stated {
                unstated.push(resource.clone());
                continue;
            }
            let now = usage(resource, &objects_of(&key));
            let limit_text = limit
                .as_str()
                .map_or_else(|| limit.to_string(), str::to_owned);
            if charge > 0 && now + charge > unit.read(&limit_text) {
                requested.push((resource.clone(), unit.text(charge)));
                used.push((resource.clone(), unit.text(now)));
                limited.push((resource.clone(), limit_text));
            }
        }
        if !unstated.is_empty() {
            unstated.sort();
            let why = format!(
                "failed quota: {quota_name}: must specify {}",
                unstated.join(",")
            );
            return Err(forbidden(rt, obj, &why));
        }
        if !requested.is_empty() {
            let why = format!(
                "exceeded quota: {quota_name}, requested: {}, used: {}, limited: {}",
                pairs(&requested),
                pairs(&used),
                pairs(&limited)
            );
            return Err(forbidden(rt, obj, &why));
        }
    }
    Ok(())
}

/// The items of `ranges` (LimitRanges) of type `kind` (`Container`, `Pod`).
fn items<'a>(ranges: &'a [Arc<Value>], kind: &'a str) -> impl Iterator<Item = &'a Value> {
    ranges
        .iter()
        .filter_map(|r| r.at("/spec/limits").and_then(Value::as_array))
        .flatten()
        .filter(move |item| item.get("type").and_then(Value::as_str) == Some(kind))
}

/// Gives a new pod's containers the defaults of `ranges` (the namespace's LimitRanges) for the
/// requests and limits they leave out, and says so in the pod's annotation.
pub(crate) fn default_resources(ranges: &[Arc<Value>], pod: &mut Value) {
    let mut said = Vec::new();
    for list in ["initContainers", "containers"] {
        let what = if list == "containers" {
            "container"
        } else {
            "init container"
        };
        let Some(containers) = pod
            .pointer_mut(&format!("/spec/{list}"))
            .and_then(Value::as_array_mut)
        else {
            continue;
        };
        for container in containers {
            let name = container
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            for (field, default) in [("requests", "defaultRequest"), ("limits", "default")] {
                let mut set = Vec::new();
                for item in items(ranges, "Container") {
                    let Some(defaults) = item.get(default).and_then(Value::as_object) else {
                        continue;
                    };
                    for (resource, value) in defaults {
                        let resources = &mut container["resources"];
                        if resources.get(field).is_none_or(|v| !v.is_object()) {
                            resources[field] = json!({});
                        }
                        if resources[field].get(resource).is_none() {
                            resources[field][resource] = value.clone();
                            set.push(resource.clone());
                        }
                    }
                }
                if !set.is_empty() {
                    set.sort();
                    let singular = &field[..field.len() - 1];
                    said.push(format!("{} {singular} for {what} {name}", set.join(", ")));
                }
            }
        }
    }
    if !said.is_empty() {
        if pod
            .at("/metadata/annotations")
            .is_none_or(|a| !a.is_object())
        {
            pod["metadata"]["annotations"] = Value::Object(Map::new());
        }
        pod["metadata"]["annotations"]["kubernetes.io/limit-ranger"] =
            json!(format!("LimitRanger plugin set: {}", said.join("; ")));
    }
}

/// Holds a new pod to the `min` and `max` of `ranges`, per container and for the pod's sum.
pub(crate) fn check_limits(
    rt: &ResourceType,
    ranges: &[Arc<Value>],
    pod: &Value,
) -> Result<(), ApiError> {
    let mut problems = Vec::new();
    let containers: Vec<&Value> = pod
        .at("/spec/containers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .collect();
    let unit_of = |resource: &str| {
        if resource == "cpu" {
            Unit::Millicores
        } else {
            Unit::Bytes
        }
    };
    let value = |c: &Value, field: &str, resource: &str| {
        c.at(&format!("/resources/{field}/{resource}"))
            .and_then(Value::as_str)
            .map(|t| unit_of(resource).read(t))
    };
    for (kind, per) in [("Container", "Container"), ("Pod", "Pod")] {
        for item in items(ranges, kind) {
            for (bound, field, word) in [("min", "requests", "request"), ("max", "limits", "limit")]
            {
                let Some(bounds) = item.get(bound).and_then(Value::as_object) else {
                    continue;
                };
                for (resource, limit) in bounds {
                    let unit = unit_of(resource);
                    let limit_text = limit.as_str().unwrap_or_default();
                    let limit = unit.read(limit_text);
                    let stated: Vec<Option<i64>> = if kind == "Container" {
                        containers
                            .iter()
                            .map(|c| value(c, field, resource))
                            .collect()
                    } else {
                        let all: Option<Vec<i64>> = containers
                            .iter()
                            .map(|c| value(c, field, resource))
                            .collect();
                        vec![all.map(|v| v.iter().sum())]
                    };
                    let adjective = if bound == "min" { "minimum" } else { "maximum" };
                    for stated in stated {
                        match stated {
                            None => problems.push(format!(
                                "{adjective} {resource} usage per {per} is {limit_text}.  No {word} is specified"
                            )),
                            Some(v) if (bound == "min" && v < limit) || (bound == "max" && v > limit) => {
                                problems.push(format!(
                                    "{adjective} {resource} usage per {per} is {limit_text}, but {word} is {}",
                                    unit.text(v)
                                ))
                            }
                            Some(_) => {}
                        }
                    }
                }
            }
        }
    }
    match problems.as_slice() {
        [] => Ok(()),
        [one] => Err(forbidden(rt, pod, one)),
        many => Err(forbidden(rt, pod, &format!("[{}]", many.join(", ")))),
    }
}

/// A LimitRange's defaults, as the API server fills them in: a `Container` item's `default`
/// limit is its `max` where unset, its `defaultRequest` the `default`, else the `min`.
pub(crate) fn default_limit_range(range: &mut Value) {
    let Some(items) = range
        .pointer_mut("/spec/limits")
        .and_then(Value::as_array_mut)
    else {
        return;
    };
    for item in items {
        if item.get("type").and_then(Value::as_str) != Some("Container") {
            continue;
        }
        let copy = |item: &mut Value, from: &str, to: &str| {
            let Some(source) = item.get(from).and_then(Value::as_object).cloned() else {
                return;
            };
            if item.get(to).is_none_or(|v| !v.is_object()) {
                item[to] = json!({});
            }
            for (resource, value) in source {
                if item[to].get(&resource).is_none() {
                    item[to][resource] = value;
                }
            }
        };
        copy(item, "max", "default");
        copy(item, "default", "defaultRequest");
        copy(item, "min", "defaultRequest");
    }
}
