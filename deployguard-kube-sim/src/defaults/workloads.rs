//! Defaults of the StatefulSet, DaemonSet, CronJob, HorizontalPodAutoscaler,
//! PersistentVolumeClaim and NetworkPolicy kinds, as the API server's defaulting (and the
//! DefaultStorageClass admission plugin, for claims) fills them in.

use serde_json::{Map, Value, json};

use super::{default_pod_template, object, set_default};

/// Applies the defaults of `kind` (group, kind); false when the kind is not one of these.
pub(super) fn apply(group: &str, kind: &str, obj: &mut Value) -> bool {
    match (group, kind) {
        ("apps", "StatefulSet") => {
            if let Some(spec) = object(obj, "spec") {
                set_default(spec, "replicas", json!(1));
                set_default(spec, "revisionHistoryLimit", json!(10));
                set_default(spec, "podManagementPolicy", json!("OrderedReady"));
                set_default(
                    spec,
                    "persistentVolumeClaimRetentionPolicy",
                    json!({"whenDeleted": "Retain", "whenScaled": "Retain"}),
                );
                update_strategy(spec, &[("partition", json!(0))]);
                if let Some(Value::Array(claims)) = spec.get_mut("volumeClaimTemplates") {
                    for claim in claims {
                        claim_defaults(claim);
                    }
                }
                if let Some(template) = spec.get_mut("template") {
                    default_pod_template(template);
                }
            }
        }
        ("apps", "DaemonSet") => {
            if let Some(spec) = object(obj, "spec") {
                set_default(spec, "revisionHistoryLimit", json!(10));
                update_strategy(
                    spec,
                    &[("maxUnavailable", json!(1)), ("maxSurge", json!(0))],
                );
                if let Some(template) = spec.get_mut("template") {
                    default_pod_template(template);
                }
            }
        }
        ("batch", "CronJob") => {
            if let Some(spec) = object(obj, "spec") {
                set_default(spec, "concurrencyPolicy", json!("Allow"));
                set_default(spec, "suspend", json!(false));
                set_default(spec, "successfulJobsHistoryLimit", json!(3));
                set_default(spec, "failedJobsHistoryLimit", json!(1));
                if let Some(job) = spec
                    .get_mut("jobTemplate")
                    .and_then(|t| t.get_mut("spec"))
                    .and_then(Value::as_object_mut)
                {
                    set_default(job, "backoffLimit", json!(6));
                    set_default(job, "completions", json!(1));
                    set_default(job, "parallelism", json!(1));
                    if let Some(template) = job.get_mut("template") {
                        default_pod_template(template);
                    }
                }
            }
        }
        ("autoscaling", "HorizontalPodAutoscaler") => {
            if let Some(spec) = object(obj, "spec") {
                set_default(spec, "minReplicas", json!(1));
            }
        }
        ("", "PersistentVolumeClaim") => claim_defaults(obj),
        ("networking.k8s.io", "NetworkPolicy") => {
            if let Some(spec) = object(obj, "spec") {
                let egress = spec.contains_key("egress");
                let types = if egress {
                    json!(["Ingress", "Egress"])
                } else {
                    json!(["Ingress"])
                };
                set_default(spec, "policyTypes", types);
            }
        }
        _ => return false,
    }
    true
}

/// `spec.updateStrategy`: `RollingUpdate` unless set, and then its `rollingUpdate` defaults.
fn update_strategy(spec: &mut Map<String, Value>, rolling_defaults: &[(&str, Value)]) {
    let strategy = spec
        .entry("updateStrategy")
        .or_insert_with(|| json!({"type": "RollingUpdate"}));
    let Some(strategy) = strategy.as_object_mut() else {
        return;
    };
    set_default(strategy, "type", json!("RollingUpdate"));
    if strategy.get("type") != Some(&json!("RollingUpdate")) {
        return;
    }
    let rolling = strategy.entry("rollingUpdate").or_insert_with(|| json!({}));
    if let Some(rolling) = rolling.as_object_mut() {
        for (field, value) in rolling_defaults {
            set_default(rolling, field, value.clone());
        }
    }
}

/// A claim's `volumeMode` and, from the DefaultStorageClass admission plugin, the default
/// class when it names none.
fn claim_defaults(claim: &mut Value) {
    if let Some(spec) = object(claim, "spec") {
        set_default(spec, "volumeMode", json!("Filesystem"));
        set_default(spec, "storageClassName", json!("standard"));
    }
}
