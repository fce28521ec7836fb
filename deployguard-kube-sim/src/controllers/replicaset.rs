//! The ReplicaSet controller: keeps `spec.replicas` pods, removes the least useful first, and
//! reports ready and available counts.

use crate::pointer::Pointer;
use std::time::Duration;

use std::sync::Arc;

use serde_json::{Value, json};

use super::util::{Ctx, i, name, namespace, owned_by, owner_reference, s, time_at, uid};

fn is_active(pod: &Value) -> bool {
    !matches!(s(pod, "/status/phase"), "Succeeded" | "Failed")
        && pod.at("/metadata/deletionTimestamp").is_none()
}

pub(crate) fn pod_is_ready(pod: &Value) -> bool {
    // A terminating pod is taken out of service at once, whatever its last probe said.
    pod.at("/metadata/deletionTimestamp").is_none()
        && ready_condition(pod).is_some_and(|c| s(&c, "/status") == "True")
}

fn ready_condition(pod: &Value) -> Option<Value> {
    pod.at("/status/conditions")
        .and_then(Value::as_array)
        .and_then(|cs| cs.iter().find(|c| s(c, "/type") == "Ready").cloned())
}

/// Scale-down order: unscheduled, pending, not ready, more restarts, newer — first.
fn victim_rank(pod: &Value) -> (u8, u8, u8, i64, std::cmp::Reverse<String>) {
    let scheduled = u8::from(!s(pod, "/spec/nodeName").is_empty());
    let phase = match s(pod, "/status/phase") {
        "Pending" => 0,
        "Unknown" => 1,
        _ => 2,
    };
    let restarts: i64 = pod
        .at("/status/containerStatuses")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|c| i(c, "/restartCount"))
        .sum();
    (
        scheduled,
        phase,
        u8::from(pod_is_ready(pod)),
        -restarts,
        std::cmp::Reverse(s(pod, "/metadata/creationTimestamp").to_owned()),
    )
}

/// Brings one ReplicaSet's pods and status up to date (a pass calls it for each ReplicaSet with
/// something to do: see `gate.rs`).
pub(crate) fn reconcile_one(ctx: &mut Ctx<'_>, rs: &Value) {
    // An owner being deleted makes nothing new: its dependents are going.
    if rs.pointer("/metadata/deletionTimestamp").is_some() {
        return;
    }
    let now = ctx.now();
    let ns = namespace(rs);
    let rs_uid = uid(rs);
    let mut pods: Vec<Arc<Value>> = ctx
        .dependents("", "Pod", &rs_uid)
        .into_iter()
        .filter(|p| namespace(p) == ns && owned_by(p, &rs_uid) && is_active(p))
        .collect();
    let want = usize::try_from(i(rs, "/spec/replicas")).unwrap_or(0);
    if pods.len() < want {
        for _ in pods.len()..want {
            let mut metadata = rs
                .at("/spec/template/metadata")
                .cloned()
                .unwrap_or(json!({}));
            metadata["generateName"] = json!(format!("{}-", name(rs)));
            metadata["namespace"] = json!(ns);
            metadata["ownerReferences"] = json!([owner_reference(rs)]);
            if let Some(map) = metadata.as_object_mut() {
                map.remove("creationTimestamp");
            }
            let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": rs.at("/spec/template/spec").cloned().unwrap_or(json!({}))});
            match ctx.create("", "Pod", &ns, pod) {
                Ok(created) => {
                    ctx.event(
                        rs,
                        "Normal",
                        "SuccessfulCreate",
                        &format!("Created pod: {}", name(&created)),
                        "replicaset-controller",
                        None,
                    );
                    pods.push(Arc::new(created));
                }
                Err(err) => {
                    let message = format!("Error creating: {}", err.message);
                    ctx.failed_create(rs, "replicaset-controller", &message);
                    break;
                }
            }
        }
    } else if pods.len() > want {
        pods.sort_by_key(|pod| victim_rank(pod));
        let doomed: Vec<Arc<Value>> = pods.drain(..pods.len() - want).collect();
        for pod in doomed {
            if ctx.delete_pod(&pod).is_ok() {
                ctx.event(
                    rs,
                    "Normal",
                    "SuccessfulDelete",
                    &format!("Deleted pod: {}", name(&pod)),
                    "replicaset-controller",
                    None,
                );
            }
        }
    }
    let min_ready = Duration::from_secs(u64::try_from(i(rs, "/spec/minReadySeconds")).unwrap_or(0));
    let ready: Vec<&Value> = pods
        .iter()
        .map(|p| &**p)
        .filter(|p| pod_is_ready(p))
        .collect();
    let mut available = 0;
    for pod in &ready {
        let since = ready_condition(pod)
            .and_then(|c| time_at(&c, "/lastTransitionTime"))
            .unwrap_or(now);
        if since + min_ready <= now {
            available += 1;
        } else {
            ctx.wake_at(since + min_ready);
        }
    }
    let labels = rs
        .at("/spec/template/metadata/labels")
        .cloned()
        .unwrap_or(json!({}));
    let fully_labeled = pods
        .iter()
        .filter(|p| {
            labels.as_object().is_some_and(|l| {
                l.iter()
                    .all(|(k, v)| p.at("/metadata/labels").and_then(|pl| pl.get(k)) == Some(v))
            })
        })
        .count();
    let status = json!({
        "replicas": pods.len(),
        "fullyLabeledReplicas": fully_labeled,
        "readyReplicas": ready.len(),
        "availableReplicas": available,
        "observedGeneration": i(rs, "/metadata/generation"),
    });
    // The real controller omits zero counts.
    let status = prune_zeros(status);
    if rs.get("status") != Some(&status) {
        let mut rs = Value::clone(rs);
        rs["status"] = status;
        let _ = ctx.update_status("apps", "ReplicaSet", rs);
    }
}

/// Drops zero-valued counts, as Go's `omitempty` does.
pub(crate) fn prune_zeros(mut status: Value) -> Value {
    if let Some(map) = status.as_object_mut() {
        map.retain(|k, v| k == "replicas" || k == "observedGeneration" || v != &json!(0));
    }
    status
}
