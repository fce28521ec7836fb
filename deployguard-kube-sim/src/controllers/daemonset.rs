//! The DaemonSet controller: one pod on every node the template's selector, affinity and
//! tolerations admit (pods pinned by node affinity on `metadata.name`, tolerating cordons and
//! node trouble as the real controller adds), removed from nodes that no longer qualify. A
//! rolling update replaces old pods node by node, never leaving more than `maxUnavailable` nodes
//! without a ready pod — or, with `maxSurge`, starts the new pod beside the old one on that many
//! nodes at a time and removes the old one once the new one is ready; `OnDelete` waits for someone to delete them. Status carries the counts
//! `kubectl rollout status daemonset` reads.

use std::sync::Arc;

use serde_json::{Value, json};

use super::deployment::surge_and_unavailable;
use super::replicaset::pod_is_ready;
use super::revisions::{REVISION_LABEL, prune_revisions, sync_revision, template_of};
use super::scheduler::{selected, taints, tolerates};
use super::util::{Ctx, i, name, namespace, owned_by, owner_reference, s, uid};
use crate::pointer::Pointer;

/// What the DaemonSet controller adds to every pod's tolerations.
fn default_tolerations() -> Vec<Value> {
    let mut tolerations: Vec<Value> = ["not-ready", "unreachable"]
        .iter()
        .map(|t| json!({"key": format!("node.kubernetes.io/{t}"), "operator": "Exists", "effect": "NoExecute"}))
        .collect();
    tolerations.extend(
        ["disk-pressure", "memory-pressure", "pid-pressure", "unschedulable"]
            .iter()
            .map(|t| json!({"key": format!("node.kubernetes.io/{t}"), "operator": "Exists", "effect": "NoSchedule"})),
    );
    tolerations
}

/// The node a daemon pod is for: its node, or the one its affinity pins.
fn node_of(pod: &Value) -> String {
    match s(pod, "/spec/nodeName") {
        "" => pod
            .at("/spec/affinity/nodeAffinity/requiredDuringSchedulingIgnoredDuringExecution/nodeSelectorTerms/0/matchFields/0/values/0")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned(),
        node => node.to_owned(),
    }
}

pub(crate) fn reconcile_one(ctx: &mut Ctx<'_>, ds: &Value) {
    // An owner being deleted makes nothing new: its dependents are going.
    if ds.pointer("/metadata/deletionTimestamp").is_some() {
        return;
    }
    let ns = namespace(ds);
    let ds_uid = uid(ds);
    let Some(update_revision) = sync_revision(ctx, ds, "DaemonSet") else {
        return;
    };
    let hash = update_revision
        .strip_prefix(&format!("{}-", name(ds)))
        .unwrap_or(&update_revision)
        .to_owned();
    let template = template_of(ctx, &ns, &update_revision)
        .unwrap_or_else(|| ds.at("/spec/template").cloned().unwrap_or(json!({})));
    // A pod as the template would make it, to ask which nodes admit it.
    let mut probe = json!({"spec": template.get("spec").cloned().unwrap_or(json!({}))});
    let mut tolerations = probe["spec"]["tolerations"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    tolerations.extend(default_tolerations());
    probe["spec"]["tolerations"] = json!(tolerations);
    let nodes: Vec<Arc<Value>> = ctx
        .all_shared("", "Node")
        .into_iter()
        .filter(|node| {
            selected(node, &probe)
                && taints(node)
                    .into_iter()
                    .filter(|t| matches!(s(t, "/effect"), "NoSchedule" | "NoExecute"))
                    .all(|t| tolerates(&probe, t))
        })
        .collect();
    let node_names: Vec<String> = nodes.iter().map(|n| name(n)).collect();
    let pods: Vec<Arc<Value>> = ctx
        .dependents("", "Pod", &ds_uid)
        .into_iter()
        .filter(|p| namespace(p) == ns && owned_by(p, &ds_uid))
        .filter(|p| !matches!(s(p, "/status/phase"), "Succeeded" | "Failed"))
        .collect();
    let live = |p: &&Arc<Value>| p.at("/metadata/deletionTimestamp").is_none();
    let is_new = |p: &Value| {
        p.at(&format!("/metadata/labels/{REVISION_LABEL}"))
            .and_then(Value::as_str)
            == Some(hash.as_str())
    };

    // Nodes without a pod get one; pods on nodes that no longer qualify go.
    for node in &node_names {
        if !pods.iter().any(|p| node_of(p) == *node) {
            create_pod(ctx, ds, &template, &tolerations, node, &hash);
        }
    }
    for pod in pods.iter().filter(live) {
        if !node_names.contains(&node_of(pod)) {
            delete_pod(ctx, ds, pod);
        }
    }

    // Roll: old pods go, node by node, while few enough nodes lack a ready pod.
    let desired = i64::try_from(node_names.len()).unwrap_or(0);
    let (max_surge, max_unavailable) = surge_and_unavailable_of(ds, desired);
    let rolling = s(ds, "/spec/updateStrategy/type") != "OnDelete";
    if rolling && max_surge > 0 {
        // Surge: a new pod beside the old one on up to `maxSurge` nodes at a time; the old one
        // goes once the new one is ready.
        let on = |node: &str, new: bool| -> Vec<&Arc<Value>> {
            pods.iter()
                .filter(live)
                .filter(|p| node_of(p) == node && is_new(p) == new)
                .collect()
        };
        let mut in_flight = node_names
            .iter()
            .filter(|n| {
                !on(n, false).is_empty()
                    && !on(n, true).is_empty()
                    && !on(n, true).iter().any(|p| pod_is_ready(p))
            })
            .count();
        for node in &node_names {
            let (old, new) = (on(node, false), on(node, true));
            if old.is_empty() {
                continue;
            }
            if new.iter().any(|p| pod_is_ready(p)) {
                for pod in old {
                    delete_pod(ctx, ds, pod);
                }
            } else if new.is_empty() && in_flight < usize::try_from(max_surge).unwrap_or(0) {
                create_pod(ctx, ds, &template, &tolerations, node, &hash);
                in_flight += 1;
            }
        }
    } else if rolling {
        let unavailable = node_names
            .iter()
            .filter(|node| {
                !pods
                    .iter()
                    .filter(live)
                    .any(|p| node_of(p) == **node && pod_is_ready(p))
            })
            .count();
        let mut room = usize::try_from(max_unavailable)
            .unwrap_or(1)
            .saturating_sub(unavailable);
        // Old pods that are not ready go first: they cost no availability.
        let mut old: Vec<&Arc<Value>> = pods
            .iter()
            .filter(live)
            .filter(|p| !is_new(p) && node_names.contains(&node_of(p)))
            .collect();
        old.sort_by_key(|p| pod_is_ready(p));
        for pod in old {
            if !pod_is_ready(pod) {
                delete_pod(ctx, ds, pod);
            } else if room > 0 {
                delete_pod(ctx, ds, pod);
                room -= 1;
            }
        }
    }

    // Status.
    let on_nodes: Vec<&Arc<Value>> = pods
        .iter()
        .filter(live)
        .filter(|p| node_names.contains(&node_of(p)))
        .collect();
    let ready = on_nodes.iter().filter(|p| pod_is_ready(p)).count();
    let updated = on_nodes.iter().filter(|p| is_new(p)).count();
    let misscheduled = pods
        .iter()
        .filter(live)
        .filter(|p| !node_names.contains(&node_of(p)))
        .count();
    let mut status = json!({
        "desiredNumberScheduled": desired,
        "currentNumberScheduled": on_nodes.len(),
        "numberMisscheduled": misscheduled,
        "numberReady": ready,
        "observedGeneration": i(ds, "/metadata/generation"),
    });
    if updated > 0 {
        status["updatedNumberScheduled"] = json!(updated);
    }
    if ready > 0 {
        status["numberAvailable"] = json!(ready);
    }
    let unavailable = usize::try_from(desired).unwrap_or(0).saturating_sub(ready);
    if unavailable > 0 {
        status["numberUnavailable"] = json!(unavailable);
    }
    if ds.get("status") != Some(&status) {
        let mut ds = ds.clone();
        ds["status"] = status;
        let _ = ctx.update_status("apps", "DaemonSet", ds);
    }
    let in_use: Vec<String> = pods
        .iter()
        .filter_map(|p| {
            p.at(&format!("/metadata/labels/{REVISION_LABEL}"))
                .and_then(Value::as_str)
                .map(|h| format!("{}-{h}", name(ds)))
        })
        .collect();
    prune_revisions(ctx, ds, &in_use);
}

/// `maxUnavailable` resolved against the number of nodes (at least 1).
fn surge_and_unavailable_of(ds: &Value, desired: i64) -> (i64, i64) {
    // The Deployment's resolution reads `spec.strategy.rollingUpdate`; a DaemonSet's lives in
    // `spec.updateStrategy.rollingUpdate`.
    let shaped = json!({"spec": {"strategy": {"type": "RollingUpdate",
        "rollingUpdate": ds.at("/spec/updateStrategy/rollingUpdate").cloned().unwrap_or(json!({"maxUnavailable": 1, "maxSurge": 0}))}}});
    let (surge, unavailable) = surge_and_unavailable(&shaped, desired);
    if surge > 0 {
        (surge, unavailable)
    } else {
        (surge, unavailable.max(1))
    }
}

fn create_pod(
    ctx: &mut Ctx<'_>,
    ds: &Value,
    template: &Value,
    tolerations: &[Value],
    node: &str,
    hash: &str,
) {
    let ns = namespace(ds);
    let mut metadata = template.get("metadata").cloned().unwrap_or(json!({}));
    metadata["generateName"] = json!(format!("{}-", name(ds)));
    metadata["namespace"] = json!(ns);
    metadata["ownerReferences"] = json!([owner_reference(ds)]);
    metadata["labels"][REVISION_LABEL] = json!(hash);
    metadata["labels"]["pod-template-generation"] =
        json!(i(ds, "/metadata/generation").to_string());
    if let Some(map) = metadata.as_object_mut() {
        map.remove("creationTimestamp");
    }
    let mut spec = template.get("spec").cloned().unwrap_or(json!({}));
    spec["tolerations"] = json!(tolerations);
    spec["affinity"]["nodeAffinity"] = json!({"requiredDuringSchedulingIgnoredDuringExecution":
        {"nodeSelectorTerms": [{"matchFields": [{"key": "metadata.name", "operator": "In", "values": [node]}]}]}});
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec});
    match ctx.create("", "Pod", &ns, pod) {
        Ok(created) => ctx.event(
            ds,
            "Normal",
            "SuccessfulCreate",
            &format!("Created pod: {}", name(&created)),
            "daemonset-controller",
            None,
        ),
        Err(err) => {
            let message = format!("Error creating: {}", err.message);
            ctx.failed_create(ds, "daemonset-controller", &message);
        }
    }
}

fn delete_pod(ctx: &mut Ctx<'_>, ds: &Value, pod: &Value) {
    if ctx.delete_pod(pod).is_ok() {
        ctx.event(
            ds,
            "Normal",
            "SuccessfulDelete",
            &format!("Deleted pod: {}", name(pod)),
            "daemonset-controller",
            None,
        );
    }
}
