//! Columns of the workload kinds beyond Deployments and ReplicaSets: StatefulSets, DaemonSets,
//! CronJobs, ControllerRevisions, HorizontalPodAutoscalers and PodDisruptionBudgets, as the
//! API server's printers define them.

use std::time::SystemTime;

use serde_json::{Value, json};

use super::{Column, age, col, containers, int_at, list_at, str_at};

pub(super) fn columns(kind: &str) -> Option<Vec<Column>> {
    Some(match kind {
        "StatefulSet" => vec![
            col("Name", "string", 0),
            col("Ready", "string", 0),
            col("Age", "string", 0),
            col("Containers", "string", 1),
            col("Images", "string", 1),
        ],
        "DaemonSet" => vec![
            col("Name", "string", 0),
            col("Desired", "integer", 0),
            col("Current", "integer", 0),
            col("Ready", "integer", 0),
            col("Up-to-date", "integer", 0),
            col("Available", "integer", 0),
            col("Node Selector", "string", 0),
            col("Age", "string", 0),
            col("Containers", "string", 1),
            col("Images", "string", 1),
            col("Selector", "string", 1),
        ],
        "CronJob" => vec![
            col("Name", "string", 0),
            col("Schedule", "string", 0),
            col("Timezone", "string", 0),
            col("Suspend", "boolean", 0),
            col("Active", "integer", 0),
            col("Last Schedule", "string", 0),
            col("Age", "string", 0),
            col("Containers", "string", 1),
            col("Images", "string", 1),
            col("Selector", "string", 1),
        ],
        "ControllerRevision" => vec![
            col("Name", "string", 0),
            col("Controller", "string", 0),
            col("Revision", "string", 0),
            col("Age", "string", 0),
        ],
        "HorizontalPodAutoscaler" => vec![
            col("Name", "string", 0),
            col("Reference", "string", 0),
            col("Targets", "string", 0),
            col("MinPods", "string", 0),
            col("MaxPods", "string", 0),
            col("Replicas", "string", 0),
            col("Age", "string", 0),
        ],
        "PodDisruptionBudget" => vec![
            col("Name", "string", 0),
            col("Min Available", "string", 0),
            col("Max Unavailable", "string", 0),
            col("Allowed Disruptions", "integer", 0),
            col("Age", "string", 0),
        ],
        _ => return None,
    })
}

pub(super) fn cells(kind: &str, obj: &Value, now: SystemTime) -> Option<Vec<Value>> {
    let name = json!(str_at(obj, "/metadata/name"));
    let created = json!(age(now, obj, "/metadata/creationTimestamp"));
    Some(match kind {
        "StatefulSet" => {
            let (names, images) = containers(obj, "/spec/template/spec/containers");
            vec![
                name,
                json!(format!(
                    "{}/{}",
                    int_at(obj, "/status/readyReplicas"),
                    obj.pointer("/spec/replicas")
                        .and_then(Value::as_i64)
                        .unwrap_or(1)
                )),
                created,
                json!(names),
                json!(images),
            ]
        }
        "DaemonSet" => {
            let (names, images) = containers(obj, "/spec/template/spec/containers");
            vec![
                name,
                json!(int_at(obj, "/status/desiredNumberScheduled")),
                json!(int_at(obj, "/status/currentNumberScheduled")),
                json!(int_at(obj, "/status/numberReady")),
                json!(int_at(obj, "/status/updatedNumberScheduled")),
                json!(int_at(obj, "/status/numberAvailable")),
                json!(super::selector(obj, "/spec/template/spec/nodeSelector")),
                created,
                json!(names),
                json!(images),
                json!(label_selector(obj.pointer("/spec/selector"))),
            ]
        }
        "CronJob" => {
            let (names, images) =
                containers(obj, "/spec/jobTemplate/spec/template/spec/containers");
            let suspend = match obj.pointer("/spec/suspend").and_then(Value::as_bool) {
                Some(true) => "True",
                Some(false) => "False",
                None => "<unset>",
            };
            vec![
                name,
                json!(str_at(obj, "/spec/schedule")),
                json!(match str_at(obj, "/spec/timeZone") {
                    "" => "<none>",
                    zone => zone,
                }),
                json!(suspend),
                json!(list_at(obj, "/status/active").len()),
                json!(if str_at(obj, "/status/lastScheduleTime").is_empty() {
                    "<none>".to_owned()
                } else {
                    age(now, obj, "/status/lastScheduleTime")
                }),
                created,
                json!(names),
                json!(images),
                json!(label_selector(
                    obj.pointer("/spec/jobTemplate/spec/selector")
                )),
            ]
        }
        "ControllerRevision" => {
            let controller = list_at(obj, "/metadata/ownerReferences")
                .iter()
                .find(|r| r.get("controller") == Some(&json!(true)))
                .map_or_else(
                    || "<none>".to_owned(),
                    |r| {
                        let group = str_at(r, "/apiVersion")
                            .rsplit_once('/')
                            .map_or("", |(g, _)| g);
                        let kind = str_at(r, "/kind").to_lowercase();
                        let kind = if group.is_empty() {
                            kind
                        } else {
                            format!("{kind}.{group}")
                        };
                        format!("{kind}/{}", str_at(r, "/name"))
                    },
                );
            vec![
                name,
                json!(controller),
                json!(int_at(obj, "/revision")),
                created,
            ]
        }
        "HorizontalPodAutoscaler" => vec![
            name,
            json!(format!(
                "{}/{}",
                str_at(obj, "/spec/scaleTargetRef/kind"),
                str_at(obj, "/spec/scaleTargetRef/name")
            )),
            json!(hpa_targets(obj)),
            json!(
                obj.pointer("/spec/minReplicas")
                    .and_then(Value::as_i64)
                    .map_or_else(|| "<unset>".to_owned(), |n| n.to_string())
            ),
            json!(int_at(obj, "/spec/maxReplicas").to_string()),
            json!(int_at(obj, "/status/currentReplicas").to_string()),
            created,
        ],
        "PodDisruptionBudget" => {
            let bound = |field: &str| match obj.pointer(&format!("/spec/{field}")) {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Number(n)) => n.to_string(),
                _ => "N/A".to_owned(),
            };
            vec![
                name,
                json!(bound("minAvailable")),
                json!(bound("maxUnavailable")),
                json!(int_at(obj, "/status/disruptionsAllowed")),
                created,
            ]
        }
        _ => return None,
    })
}

/// A label selector as `metav1.FormatLabelSelector` prints it: `app=web,tier in (a,b)`, or
/// `<none>` when it selects everything.
pub(super) fn label_selector(selector: Option<&Value>) -> String {
    let Some(selector) = selector else {
        return "<none>".into();
    };
    let mut parts: Vec<String> = selector
        .get("matchLabels")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
        .collect();
    for expression in list_at(selector, "/matchExpressions") {
        let key = str_at(expression, "/key");
        let values: Vec<&str> = list_at(expression, "/values")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        parts.push(match str_at(expression, "/operator") {
            "In" => format!("{key} in ({})", values.join(",")),
            "NotIn" => format!("{key} notin ({})", values.join(",")),
            "Exists" => key.to_owned(),
            "DoesNotExist" => format!("!{key}"),
            other => format!("{key} {other}"),
        });
    }
    if parts.is_empty() {
        "<none>".into()
    } else {
        parts.join(",")
    }
}

/// An HPA's TARGETS: each metric as `cpu: 45%/80%`, `<unknown>` before the first reading.
fn hpa_targets(hpa: &Value) -> String {
    let metrics = list_at(hpa, "/spec/metrics");
    if metrics.is_empty() {
        return "<none>".into();
    }
    let current = list_at(hpa, "/status/currentMetrics");
    let parts: Vec<String> = metrics
        .iter()
        .map(|metric| {
            let resource = str_at(metric, "/resource/name");
            let target = metric.pointer("/resource/target").unwrap_or(&Value::Null);
            let now = current
                .iter()
                .find(|c| str_at(c, "/resource/name") == resource)
                .and_then(|c| c.pointer("/resource/current"));
            match str_at(target, "/type") {
                "Utilization" => format!(
                    "{resource}: {}/{}%",
                    now.and_then(|c| c.get("averageUtilization"))
                        .and_then(Value::as_i64)
                        .map_or_else(|| "<unknown>".to_owned(), |u| format!("{u}%")),
                    int_at(target, "/averageUtilization")
                ),
                _ => format!(
                    "{resource}: {}/{}",
                    now.and_then(|c| c.get("averageValue"))
                        .and_then(Value::as_str)
                        .unwrap_or("<unknown>"),
                    str_at(target, "/averageValue")
                ),
            }
        })
        .collect();
    parts.join(", ")
}
