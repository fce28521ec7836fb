//! The one built-in kind served in two versions whose schemas differ: HorizontalPodAutoscaler,
//! stored as `autoscaling/v2` and served as `autoscaling/v1` too (what `kubectl autoscale` of
//! kubectl before 1.32 writes). Converted as the API server converts it: v1's
//! `targetCPUUtilizationPercentage` is v2's CPU `Utilization` metric (80% when unset), and v1's
//! status carries the current CPU utilization, with v2's conditions in the
//! `autoscaling.alpha.kubernetes.io/conditions` annotation.

use serde_json::{Value, json};

use crate::pointer::Pointer;
use crate::resources::ResourceType;

/// Whether `rt` is the v1 form of the autoscaler.
pub(crate) fn is_autoscaling_v1(rt: &ResourceType) -> bool {
    rt.group == "autoscaling" && rt.version == "v1" && rt.kind == "HorizontalPodAutoscaler"
}

const CONDITIONS_ANNOTATION: &str = "autoscaling.alpha.kubernetes.io/conditions";

/// The CPU utilization in the list of metrics at `list`, under `which` (`target`, `current`).
fn cpu_utilization(obj: &Value, list: &str, which: &str) -> Option<Value> {
    obj.at(list)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find(|m| m.at("/resource/name") == Some(&json!("cpu")))
        .and_then(|m| m.at(&format!("/resource/{which}/averageUtilization")))
        .cloned()
}

/// A stored (v2) autoscaler as v1 shows it.
pub(crate) fn to_v1(mut obj: Value) -> Value {
    let cpu_target = cpu_utilization(&obj, "/spec/metrics", "target");
    let cpu_current = cpu_utilization(&obj, "/status/currentMetrics", "current");
    if let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) {
        spec.remove("metrics");
        spec.remove("behavior");
        if let Some(target) = cpu_target {
            spec.insert("targetCPUUtilizationPercentage".into(), target);
        }
    }
    let conditions = obj.at("/status/conditions").cloned();
    if let Some(status) = obj.get_mut("status").and_then(Value::as_object_mut) {
        status.remove("currentMetrics");
        status.remove("conditions");
        if let Some(current) = cpu_current {
            status.insert("currentCPUUtilizationPercentage".into(), current);
        }
    }
    if let Some(conditions) = conditions {
        let annotations = obj["metadata"]
            .as_object_mut()
            .map(|m| m.entry("annotations").or_insert_with(|| json!({})));
        if let Some(Value::Object(annotations)) = annotations {
            annotations.insert(CONDITIONS_ANNOTATION.into(), json!(conditions.to_string()));
        }
    }
    obj["apiVersion"] = json!("autoscaling/v1");
    obj
}

/// A v1 autoscaler written by a client, as it is stored (v2).
pub(crate) fn to_v2(mut obj: Value) -> Value {
    let target = obj
        .at("/spec/targetCPUUtilizationPercentage")
        .cloned()
        .unwrap_or(json!(80));
    if let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) {
        spec.remove("targetCPUUtilizationPercentage");
        spec.insert(
            "metrics".into(),
            json!([{"type": "Resource", "resource": {"name": "cpu",
                "target": {"type": "Utilization", "averageUtilization": target}}}]),
        );
    }
    if let Some(status) = obj.get_mut("status").and_then(Value::as_object_mut) {
        status.remove("currentCPUUtilizationPercentage");
    }
    if let Some(Value::Object(annotations)) = obj.pointer_mut("/metadata/annotations") {
        annotations.remove(CONDITIONS_ANNOTATION);
        if annotations.is_empty()
            && let Some(metadata) = obj.get_mut("metadata").and_then(Value::as_object_mut)
        {
            metadata.remove("annotations");
        }
    }
    obj["apiVersion"] = json!("autoscaling/v2");
    obj
}

/// `obj` as `rt` serves it, converted when `rt` is a converted form.
pub(crate) fn served(rt: &ResourceType, obj: Value) -> Value {
    if is_autoscaling_v1(rt) && obj.get("kind") == Some(&json!("HorizontalPodAutoscaler")) {
        to_v1(obj)
    } else {
        obj
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_v1_autoscaler_round_trips_through_its_stored_form() {
        let v1 = json!({"apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "web"},
            "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                "minReplicas": 2, "maxReplicas": 5, "targetCPUUtilizationPercentage": 60}});
        let stored = to_v2(v1.clone());
        assert_eq!(
            stored.at("/spec/metrics/0/resource/target/averageUtilization"),
            Some(&json!(60))
        );
        assert_eq!(to_v1(stored), v1);
        let defaulted = to_v2(json!({"metadata": {"name": "web"}, "spec": {"maxReplicas": 3}}));
        assert_eq!(
            defaulted.at("/spec/metrics/0/resource/target/averageUtilization"),
            Some(&json!(80))
        );
    }
}
