//! The StatefulSet controller: pods with stable names (`web-0`, `web-1`, …) and claims
//! (`data-web-0`), created in ordinal order, each only once those before it are Running and Ready
//! (`OrderedReady`; all at once with `Parallel`), removed from the highest ordinal down. Every
//! template is a ControllerRevision (`web-<hash>`, numbered); a rolling update replaces pods from
//! the highest ordinal down to `partition`, one at a time, each once every pod is Ready; `OnDelete`
//! replaces only pods someone deleted. Status carries the current and update revisions that
//! `kubectl rollout status|history|undo` read.

use std::sync::Arc;

use serde_json::{Value, json};

use super::replicaset::{pod_is_ready, prune_zeros};
use super::revisions::{REVISION_LABEL, prune_revisions, sync_revision, template_of};
use super::util::{Ctx, i, name, namespace, owned_by, owner_reference, s, uid};
use crate::pointer::Pointer;

fn ordinal(sts: &Value, pod: &Value) -> Option<i64> {
    name(pod)
        .strip_prefix(&format!("{}-", name(sts)))?
        .parse()
        .ok()
}

pub(crate) fn reconcile_one(ctx: &mut Ctx<'_>, sts: &Value) {
    // An owner being deleted makes nothing new: its dependents are going.
    if sts.pointer("/metadata/deletionTimestamp").is_some() {
        return;
    }
    let ns = namespace(sts);
    let sts_uid = uid(sts);
    let Some(update_revision) = sync_revision(ctx, sts, "StatefulSet") else {
        return;
    };
    let current_revision = match s(sts, "/status/currentRevision") {
        "" => update_revision.clone(),
        current => current.to_owned(),
    };
    let replicas = sts
        .at("/spec/replicas")
        .and_then(Value::as_i64)
        .unwrap_or(1);
    let parallel = s(sts, "/spec/podManagementPolicy") == "Parallel";
    let on_delete = s(sts, "/spec/updateStrategy/type") == "OnDelete";
    let partition = i(sts, "/spec/updateStrategy/rollingUpdate/partition");
    let mut pods: Vec<Arc<Value>> = ctx
        .dependents("", "Pod", &sts_uid)
        .into_iter()
        .filter(|p| namespace(p) == ns && owned_by(p, &sts_uid))
        .collect();
    pods.sort_by_key(|p| ordinal(sts, p).unwrap_or(i64::MAX));
    let revision_of = |pod: &Value| {
        pod.at(&format!("/metadata/labels/{REVISION_LABEL}"))
            .and_then(Value::as_str)
            .map(|hash| format!("{}-{hash}", name(sts)))
            .unwrap_or_default()
    };
    let healthy = |pod: &Value| {
        pod.at("/metadata/deletionTimestamp").is_none()
            && s(pod, "/status/phase") == "Running"
            && pod_is_ready(pod)
    };

    // Create what is missing, in order.
    let mut acted = false;
    for ordinal_wanted in 0..replicas {
        let existing = pods
            .iter()
            .find(|p| ordinal(sts, p) == Some(ordinal_wanted));
        match existing {
            Some(pod) if matches!(s(pod, "/status/phase"), "Failed" | "Succeeded") => {
                // A pod that ended is replaced, as the real controller does.
                if pod.at("/metadata/deletionTimestamp").is_none() {
                    let _ = ctx.delete("", "Pod", pod);
                }
                acted = true;
            }
            Some(pod) => {
                if !parallel && !healthy(pod) {
                    acted = true;
                    break;
                }
            }
            None => {
                let revision = if on_delete || ordinal_wanted >= partition {
                    update_revision.clone()
                } else {
                    current_revision.clone()
                };
                let template = template_of(ctx, &ns, &revision)
                    .unwrap_or_else(|| sts.at("/spec/template").cloned().unwrap_or(json!({})));
                create_pod(ctx, sts, &template, ordinal_wanted, &revision);
                acted = true;
                if !parallel {
                    break;
                }
            }
        }
    }

    // Remove what is beyond `replicas`, highest first, one at a time unless Parallel.
    if !acted {
        let surplus: Vec<&Arc<Value>> = pods
            .iter()
            .rev()
            .filter(|p| ordinal(sts, p).is_none_or(|o| o >= replicas))
            .collect();
        for pod in surplus {
            if pod.at("/metadata/deletionTimestamp").is_none() {
                delete_pod(ctx, sts, pod);
            }
            acted = true;
            if !parallel {
                break;
            }
        }
    }

    // Roll: the highest-ordinal pod not at the update revision, once all are healthy.
    if !acted
        && !on_delete
        && pods.iter().all(|p| healthy(p))
        && let Some(stale) = pods.iter().rev().find(|p| {
            ordinal(sts, p).is_some_and(|o| o >= partition && o < replicas)
                && revision_of(p) != update_revision
        })
    {
        delete_pod(ctx, sts, stale);
    }

    // Status.
    let live: Vec<&Arc<Value>> = pods
        .iter()
        .filter(|p| p.at("/metadata/deletionTimestamp").is_none())
        .collect();
    let ready = live.iter().filter(|p| pod_is_ready(p)).count();
    let updated = live
        .iter()
        .filter(|p| revision_of(p) == update_revision)
        .count();
    let current = live
        .iter()
        .filter(|p| revision_of(p) == current_revision)
        .count();
    let all_updated = i64::try_from(updated).unwrap_or(0) == replicas && ready == live.len();
    let current_revision = if all_updated {
        update_revision.clone()
    } else {
        current_revision
    };
    let current = if all_updated { updated } else { current };
    let status = prune_zeros(json!({
        "observedGeneration": i(sts, "/metadata/generation"),
        "replicas": live.len(),
        "readyReplicas": ready,
        "currentReplicas": current,
        "updatedReplicas": updated,
        "availableReplicas": ready,
        "currentRevision": current_revision,
        "updateRevision": update_revision,
        "collisionCount": 0,
    }));
    let mut status = status;
    status["collisionCount"] = json!(0);
    if sts.get("status") != Some(&status) {
        let mut sts = sts.clone();
        sts["status"] = status;
        let _ = ctx.update_status("apps", "StatefulSet", sts);
    }
    let in_use: Vec<String> = pods.iter().map(|p| revision_of(p)).collect();
    prune_revisions(ctx, sts, &in_use);
}

fn create_pod(ctx: &mut Ctx<'_>, sts: &Value, template: &Value, ordinal: i64, revision: &str) {
    let ns = namespace(sts);
    let pod_name = format!("{}-{ordinal}", name(sts));
    let mut metadata = template.get("metadata").cloned().unwrap_or(json!({}));
    metadata["name"] = json!(pod_name);
    metadata["namespace"] = json!(ns);
    metadata["ownerReferences"] = json!([owner_reference(sts)]);
    let hash = revision
        .strip_prefix(&format!("{}-", name(sts)))
        .unwrap_or(revision);
    metadata["labels"][REVISION_LABEL] = json!(hash);
    metadata["labels"]["statefulset.kubernetes.io/pod-name"] = json!(pod_name);
    metadata["labels"]["apps.kubernetes.io/pod-index"] = json!(ordinal.to_string());
    if let Some(map) = metadata.as_object_mut() {
        map.remove("creationTimestamp");
    }
    let mut spec = template.get("spec").cloned().unwrap_or(json!({}));
    spec["hostname"] = json!(pod_name);
    if let Some(service) = sts.at("/spec/serviceName").and_then(Value::as_str) {
        spec["subdomain"] = json!(service);
    }
    // Each volume claim template is a claim of this ordinal's own, mounted by its name.
    for claim in sts
        .at("/spec/volumeClaimTemplates")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
    {
        let template_name = s(&claim, "/metadata/name").to_owned();
        let claim_name = format!("{template_name}-{pod_name}");
        if ctx
            .get("", "PersistentVolumeClaim", &ns, &claim_name)
            .is_none()
        {
            let mut labels = sts
                .at("/spec/selector/matchLabels")
                .cloned()
                .unwrap_or(json!({}));
            if let Some(own) = claim.at("/metadata/labels").and_then(Value::as_object) {
                for (k, v) in own {
                    labels[k] = v.clone();
                }
            }
            let pvc = json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                "metadata": {"name": claim_name, "namespace": ns, "labels": labels},
                "spec": claim.get("spec").cloned().unwrap_or(json!({}))});
            match ctx.create("", "PersistentVolumeClaim", &ns, pvc) {
                Ok(_) => ctx.event(
                    sts,
                    "Normal",
                    "SuccessfulCreate",
                    &format!(
                        "create Claim {claim_name} Pod {pod_name} in StatefulSet {} success",
                        name(sts)
                    ),
                    "statefulset-controller",
                    None,
                ),
                Err(err) => tracing::warn!("creating claim {claim_name}: {}", err.message),
            }
        }
        let volumes = spec["volumes"].as_array().cloned().unwrap_or_default();
        let mut volumes: Vec<Value> = volumes
            .into_iter()
            .filter(|v| s(v, "/name") != template_name)
            .collect();
        volumes.push(
            json!({"name": template_name, "persistentVolumeClaim": {"claimName": claim_name}}),
        );
        spec["volumes"] = json!(volumes);
    }
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec});
    match ctx.create("", "Pod", &ns, pod) {
        Ok(_) => ctx.event(
            sts,
            "Normal",
            "SuccessfulCreate",
            &format!(
                "create Pod {pod_name} in StatefulSet {} successful",
                name(sts)
            ),
            "statefulset-controller",
            None,
        ),
        Err(err) => {
            let message = format!(
                "create Pod {pod_name} in StatefulSet {} failed error: {}",
                name(sts),
                err.message
            );
            ctx.failed_create(sts, "statefulset-controller", &message);
        }
    }
}

fn delete_pod(ctx: &mut Ctx<'_>, sts: &Value, pod: &Value) {
    if ctx.delete_pod(pod).is_ok() {
        ctx.event(
            sts,
            "Normal",
            "SuccessfulDelete",
            &format!(
                "delete Pod {} in StatefulSet {} successful",
                name(pod),
                name(sts)
            ),
            "statefulset-controller",
            None,
        );
    }
}
