//! The Deployment controller: ReplicaSets per template, revisions and their renumbering,
//! rolling-update and recreate math, status and conditions, history cleanup.

use crate::pointer::Pointer;
use std::time::Duration;

use std::sync::Arc;

use serde_json::{Map, Value, json};

use super::replicaset::prune_zeros;
use super::util::{
    Ctx, annotation, i, name, namespace, owned_by, owner_reference, s, set_annotation, time_at, uid,
};

/// The revision annotation.
pub const REVISION: &str = "deployment.kubernetes.io/revision";
/// Earlier revision numbers of a rolled-back-to ReplicaSet.
pub const REVISION_HISTORY: &str = "deployment.kubernetes.io/revision-history";
const DESIRED: &str = "deployment.kubernetes.io/desired-replicas";
const MAX: &str = "deployment.kubernetes.io/max-replicas";
const HASH_LABEL: &str = "pod-template-hash";

/// Deployment annotations never copied to ReplicaSets (kubectl's skip list).
const SKIP: [&str; 6] = [
    "kubectl.kubernetes.io/last-applied-configuration",
    REVISION,
    REVISION_HISTORY,
    DESIRED,
    MAX,
    "deprecated.deployment.rollback.to",
];

const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// A template without the pod-template-hash label: what "equal templates" compares.
pub(crate) fn without_hash(template: &Value) -> Value {
    let mut template = template.clone();
    if let Some(labels) = template
        .pointer_mut("/metadata/labels")
        .and_then(Value::as_object_mut)
    {
        labels.remove(HASH_LABEL);
    }
    template
}

/// The pod-template-hash: FNV-1a over the template, encoded as the API server encodes it.
pub(crate) fn template_hash(template: &Value, collisions: i64) -> String {
    let mut text = without_hash(template).to_string();
    if collisions > 0 {
        text.push_str(&collisions.to_string());
    }
    let sum = text.bytes().fold(0x811c_9dc5u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    });
    sum.to_string()
        .bytes()
        .map(|b| ALPHABET[usize::from(b) % ALPHABET.len()] as char)
        .collect()
}

fn revision(obj: &Value) -> i64 {
    annotation(obj, REVISION)
        .and_then(|r| r.parse().ok())
        .unwrap_or(0)
}

/// Resolves an int-or-percent against `total`, rounding up or down.
fn scaled(value: Option<&Value>, total: i64, round_up: bool, default: &str) -> i64 {
    let text = match value {
        Some(Value::Number(n)) => return n.as_i64().unwrap_or(0),
        Some(Value::String(t)) => t.clone(),
        _ => default.to_owned(),
    };
    match text.strip_suffix('%').and_then(|p| p.parse::<i64>().ok()) {
        Some(percent) if round_up => (percent * total + 99) / 100,
        Some(percent) => percent * total / 100,
        None => text.parse().unwrap_or(0),
    }
}

/// (maxSurge, maxUnavailable) for `replicas`, with the both-zero rule.
pub(crate) fn surge_and_unavailable(deployment: &Value, replicas: i64) -> (i64, i64) {
    let rolling = deployment.at("/spec/strategy/rollingUpdate");
    let surge = scaled(
        rolling.and_then(|r| r.get("maxSurge")),
        replicas,
        true,
        "25%",
    );
    let mut unavailable = scaled(
        rolling.and_then(|r| r.get("maxUnavailable")),
        replicas,
        false,
        "25%",
    );
    if surge == 0 && unavailable == 0 {
        unavailable = 1;
    }
    (surge, unavailable.min(replicas))
}

struct Scaling<'c, 'a> {
    ctx: &'c mut Ctx<'a>,
    deployment: Value,
}

impl Scaling<'_, '_> {
    /// Scales `rs` to `to`, with the ScalingReplicaSet event; returns the updated RS.
    fn scale(&mut self, rs: &Value, to: i64, max_total: i64) -> Value {
        let from = i(rs, "/spec/replicas");
        let mut updated = rs.clone();
        updated["spec"]["replicas"] = json!(to);
        set_annotation(
            &mut updated,
            DESIRED,
            &i(&self.deployment, "/spec/replicas").to_string(),
        );
        set_annotation(&mut updated, MAX, &max_total.to_string());
        match self.ctx.update("apps", "ReplicaSet", updated) {
            Ok(updated) => {
                if from != to {
                    let direction = if to > from { "up" } else { "down" };
                    let message = format!(
                        "Scaled {direction} replica set {} to {to} from {from}",
                        name(rs)
                    );
                    self.ctx.event(
                        &self.deployment,
                        "Normal",
                        "ScalingReplicaSet",
                        &message,
                        "deployment-controller",
                        None,
                    );
                }
                updated
            }
            Err(_) => rs.clone(),
        }
    }
}

/// Brings one deployment's ReplicaSets and status up to date (a pass calls it for each
/// deployment with something to do: see `gate.rs`).
pub(crate) fn reconcile_one(ctx: &mut Ctx<'_>, deployment: &Value) {
    // An owner being deleted makes nothing new: its dependents are going.
    if deployment.pointer("/metadata/deletionTimestamp").is_some() {
        return;
    }
    let ns = namespace(deployment);
    let d_uid = uid(deployment);
    let replicas = i(deployment, "/spec/replicas");
    let template = deployment
        .at("/spec/template")
        .cloned()
        .unwrap_or(json!({}));
    let mut owned: Vec<Value> = ctx
        .dependents("apps", "ReplicaSet", &d_uid)
        .into_iter()
        .map(Arc::unwrap_or_clone)
        .filter(|rs| namespace(rs) == ns && owned_by(rs, &d_uid))
        .collect();
    owned.sort_by_key(|rs| (s(rs, "/metadata/creationTimestamp").to_owned(), name(rs)));
    let new_index = owned
        .iter()
        .position(|rs| without_hash(&rs["spec"]["template"]) == without_hash(&template));
    let paused = deployment.at("/spec/paused") == Some(&json!(true));
    let recreate = s(deployment, "/spec/strategy/type") == "Recreate";
    let (surge, unavailable) = surge_and_unavailable(deployment, replicas);
    let max_total = replicas + if recreate { 0 } else { surge };
    let max_old_revision = owned
        .iter()
        .enumerate()
        .filter(|(idx, _)| Some(*idx) != new_index)
        .map(|(_, rs)| revision(rs))
        .max()
        .unwrap_or(0);
    let mut created_new = None;
    let mut scaling = Scaling {
        ctx,
        deployment: deployment.clone(),
    };

    // Find or create the new ReplicaSet, and give it its revision.
    let mut new_rs = new_index.map(|idx| owned[idx].clone());
    if let Some(rs) = &new_rs {
        let current = revision(rs);
        if current <= max_old_revision || current == 0 {
            let mut renumbered = rs.clone();
            if current > 0 {
                let history = annotation(rs, REVISION_HISTORY)
                    .map_or(current.to_string(), |h| format!("{h},{current}"));
                set_annotation(&mut renumbered, REVISION_HISTORY, &history);
            }
            set_annotation(
                &mut renumbered,
                REVISION,
                &(max_old_revision + 1).to_string(),
            );
            if let Ok(updated) = scaling.ctx.update("apps", "ReplicaSet", renumbered) {
                new_rs = Some(updated);
            }
        }
    } else if !paused {
        let old_active: i64 = owned.iter().map(|rs| i(rs, "/spec/replicas")).sum();
        let old_pods = running_pods(scaling.ctx, &owned);
        if recreate && old_pods > 0 {
            scaling.ctx.wake_in(Duration::from_secs(1));
        }
        let initial = if recreate {
            if old_active > 0 || old_pods > 0 {
                None
            } else {
                Some(replicas)
            }
        } else {
            Some((max_total - old_active).clamp(0, replicas))
        };
        if let Some(initial) = initial {
            created_new = Some(create_rs(
                scaling.ctx,
                deployment,
                &template,
                initial,
                max_old_revision + 1,
                max_total,
            ));
            new_rs = created_new.clone().flatten();
        }
    }
    let new_name = new_rs.as_ref().map(name);
    let mut olds: Vec<Value> = owned
        .into_iter()
        .filter(|rs| Some(name(rs)) != new_name)
        .collect();

    if !paused {
        if recreate {
            for rs in olds.iter_mut().filter(|rs| i(rs, "/spec/replicas") > 0) {
                *rs = scaling.scale(rs, 0, max_total);
            }
            // Recreate waits until every old pod is gone, terminating ones included (a pod's
            // removal touches no ReplicaSet: look again in a second).
            let old_pods = running_pods(scaling.ctx, &olds);
            if old_pods > 0 {
                scaling.ctx.wake_in(Duration::from_secs(1));
            }
            if old_pods == 0
                && let Some(rs) = new_rs.clone()
                && i(&rs, "/spec/replicas") != replicas
            {
                new_rs = Some(scaling.scale(&rs, replicas, max_total));
            }
        } else if let Some(rs) = new_rs.clone() {
            // Scale up the new ReplicaSet if the surge allows; otherwise scale old ones down.
            let total: i64 =
                olds.iter().map(|o| i(o, "/spec/replicas")).sum::<i64>() + i(&rs, "/spec/replicas");
            let new_replicas = i(&rs, "/spec/replicas");
            let target = if new_replicas > replicas {
                replicas
            } else if total >= max_total {
                new_replicas
            } else {
                new_replicas + (max_total - total).min(replicas - new_replicas)
            };
            if target != new_replicas {
                new_rs = Some(scaling.scale(&rs, target, max_total));
            } else {
                scale_down_old(
                    &mut scaling,
                    &mut olds,
                    &rs,
                    replicas,
                    unavailable,
                    max_total,
                );
            }
        }
    }

    let ctx = scaling.ctx;
    let complete = status(
        ctx,
        deployment,
        new_rs.as_ref(),
        &olds,
        created_new.is_some(),
        paused,
        unavailable,
    );
    // History cleanup once complete (and while paused).
    if complete || paused {
        cleanup(ctx, deployment, &olds);
    }
}

fn create_rs(
    ctx: &mut Ctx<'_>,
    deployment: &Value,
    template: &Value,
    replicas: i64,
    revision: i64,
    max_total: i64,
) -> Option<Value> {
    let ns = namespace(deployment);
    let collisions = i(deployment, "/status/collisionCount");
    let hash = template_hash(template, collisions);
    let mut template = template.clone();
    template["metadata"]["labels"][HASH_LABEL] = json!(hash);
    let mut selector = deployment
        .at("/spec/selector")
        .cloned()
        .unwrap_or(json!({}));
    selector["matchLabels"][HASH_LABEL] = json!(hash);
    let mut annotations = Map::new();
    if let Some(existing) = deployment
        .at("/metadata/annotations")
        .and_then(Value::as_object)
    {
        for (k, v) in existing.iter().filter(|(k, _)| !SKIP.contains(&k.as_str())) {
            annotations.insert(k.clone(), v.clone());
        }
    }
    annotations.insert(REVISION.into(), json!(revision.to_string()));
    annotations.insert(
        DESIRED.into(),
        json!(i(deployment, "/spec/replicas").to_string()),
    );
    annotations.insert(MAX.into(), json!(max_total.to_string()));
    let rs_name = format!("{}-{hash}", name(deployment));
    let rs = json!({
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {
            "name": rs_name,
            "namespace": ns,
            "labels": template["metadata"]["labels"],
            "annotations": annotations,
            "ownerReferences": [owner_reference(deployment)],
        },
        "spec": {
            "replicas": replicas,
            "minReadySeconds": i(deployment, "/spec/minReadySeconds"),
            "selector": selector,
            "template": template,
        }
    });
    match ctx.create("apps", "ReplicaSet", &ns, rs) {
        Ok(created) => {
            if replicas > 0 {
                let message = format!("Scaled up replica set {rs_name} to {replicas}");
                ctx.event(
                    deployment,
                    "Normal",
                    "ScalingReplicaSet",
                    &message,
                    "deployment-controller",
                    None,
                );
            }
            Some(created)
        }
        Err(_) => None,
    }
}

/// `reconcileOldReplicaSets`: first unhealthy old pods, then down to the availability floor.
fn scale_down_old(
    scaling: &mut Scaling<'_, '_>,
    olds: &mut [Value],
    new_rs: &Value,
    replicas: i64,
    unavailable: i64,
    max_total: i64,
) {
    let old_total: i64 = olds.iter().map(|o| i(o, "/spec/replicas")).sum();
    if old_total == 0 {
        return;
    }
    let all_total = old_total + i(new_rs, "/spec/replicas");
    let min_available = replicas - unavailable;
    let new_unavailable = i(new_rs, "/spec/replicas") - i(new_rs, "/status/availableReplicas");
    let mut budget = all_total - min_available - new_unavailable;
    if budget <= 0 {
        return;
    }
    olds.sort_by_key(|rs| (s(rs, "/metadata/creationTimestamp").to_owned(), name(rs)));
    // (a) Unhealthy replicas first.
    let mut cleaned = 0;
    for rs in olds.iter_mut() {
        if budget - cleaned <= 0 {
            break;
        }
        let spec = i(rs, "/spec/replicas");
        let unhealthy = spec - i(rs, "/status/availableReplicas");
        if spec == 0 || unhealthy <= 0 {
            continue;
        }
        let down = unhealthy.min(budget - cleaned);
        *rs = scaling.scale(rs, spec - down, max_total);
        cleaned += down;
    }
    budget -= cleaned;
    // (b) Then down to the availability floor.
    let available: i64 = olds
        .iter()
        .map(|o| i(o, "/status/availableReplicas"))
        .sum::<i64>()
        + i(new_rs, "/status/availableReplicas");
    let mut excess = (available - min_available).min(budget.max(0));
    if excess <= 0 {
        return;
    }
    for rs in olds.iter_mut() {
        let spec = i(rs, "/spec/replicas");
        if excess <= 0 || spec == 0 {
            continue;
        }
        let down = spec.min(excess);
        *rs = scaling.scale(rs, spec - down, max_total);
        excess -= down;
    }
}

fn condition(
    kind: &str,
    status: &str,
    reason: &str,
    message: &str,
    now: &str,
    previous: Option<&Value>,
    progressed: bool,
) -> Value {
    let same_status = previous.is_some_and(|p| s(p, "/status") == status);
    let transition = if same_status {
        previous.map_or(now.to_owned(), |p| s(p, "/lastTransitionTime").to_owned())
    } else {
        now.to_owned()
    };
    let unchanged =
        previous.is_some_and(|p| s(p, "/status") == status && s(p, "/reason") == reason);
    let update = if unchanged && !progressed {
        previous.map_or(now.to_owned(), |p| s(p, "/lastUpdateTime").to_owned())
    } else {
        now.to_owned()
    };
    json!({"type": kind, "status": status, "lastUpdateTime": update, "lastTransitionTime": transition, "reason": reason, "message": message})
}

/// Writes the deployment's status and revision; returns whether the rollout is complete.
fn status(
    ctx: &mut Ctx<'_>,
    deployment: &Value,
    new_rs: Option<&Value>,
    olds: &[Value],
    created: bool,
    paused: bool,
    unavailable: i64,
) -> bool {
    let deployment = deployment.clone();
    let replicas = i(&deployment, "/spec/replicas");
    let all: Vec<&Value> = new_rs.into_iter().chain(olds.iter()).collect();
    let sum = |pointer: &str| all.iter().map(|rs| i(rs, pointer)).sum::<i64>();
    let total = sum("/status/replicas");
    let updated = new_rs.map_or(0, |rs| i(rs, "/status/replicas"));
    let ready = sum("/status/readyReplicas");
    let available = sum("/status/availableReplicas");
    let spec_total = sum("/spec/replicas");
    let old_status = deployment.get("status").cloned().unwrap_or(json!({}));
    let now = ctx.now_text();
    let previous = |kind: &str| {
        old_status
            .get("conditions")
            .and_then(Value::as_array)
            .and_then(|cs| cs.iter().find(|c| s(c, "/type") == kind).cloned())
    };
    let rs_name = new_rs.map(name).unwrap_or_default();
    let complete =
        updated == replicas && total == replicas && available == replicas && new_rs.is_some();
    let available_condition = if available >= replicas - unavailable {
        condition(
            "Available",
            "True",
            "MinimumReplicasAvailable",
            "Deployment has minimum availability.",
            &now,
            previous("Available").as_ref(),
            false,
        )
    } else {
        condition(
            "Available",
            "False",
            "MinimumReplicasUnavailable",
            "Deployment does not have minimum availability.",
            &now,
            previous("Available").as_ref(),
            false,
        )
    };
    let prev_progressing = previous("Progressing");
    let progressed = i(&old_status, "/updatedReplicas") < updated
        || i(&old_status, "/readyReplicas") < ready
        || i(&old_status, "/availableReplicas") < available
        || i(&old_status, "/replicas") > total;
    let deadline = Duration::from_secs(
        u64::try_from(i(&deployment, "/spec/progressDeadlineSeconds")).unwrap_or(600),
    );
    let progressing = if paused {
        condition(
            "Progressing",
            "Unknown",
            "DeploymentPaused",
            "Deployment is paused",
            &now,
            prev_progressing.as_ref(),
            false,
        )
    } else if prev_progressing
        .as_ref()
        .is_some_and(|p| s(p, "/reason") == "DeploymentPaused")
    {
        condition(
            "Progressing",
            "Unknown",
            "DeploymentResumed",
            "Deployment is resumed",
            &now,
            prev_progressing.as_ref(),
            true,
        )
    } else if complete {
        condition(
            "Progressing",
            "True",
            "NewReplicaSetAvailable",
            &format!("ReplicaSet \"{rs_name}\" has successfully progressed."),
            &now,
            prev_progressing.as_ref(),
            false,
        )
    } else if created {
        condition(
            "Progressing",
            "True",
            "NewReplicaSetCreated",
            &format!("Created new replica set \"{rs_name}\""),
            &now,
            None,
            true,
        )
    } else if prev_progressing.is_none() && new_rs.is_some() {
        condition(
            "Progressing",
            "True",
            "FoundNewReplicaSet",
            &format!("Found new replica set \"{rs_name}\""),
            &now,
            None,
            true,
        )
    } else if progressed
        || prev_progressing
            .as_ref()
            .is_some_and(|p| s(p, "/reason") == "NewReplicaSetAvailable")
    {
        condition(
            "Progressing",
            "True",
            "ReplicaSetUpdated",
            &format!("ReplicaSet \"{rs_name}\" is progressing."),
            &now,
            prev_progressing.as_ref(),
            true,
        )
    } else {
        let last_update = prev_progressing
            .as_ref()
            .and_then(|p| time_at(p, "/lastUpdateTime"))
            .unwrap_or_else(|| ctx.now());
        if ctx.now() > last_update + deadline
            || prev_progressing
                .as_ref()
                .is_some_and(|p| s(p, "/reason") == "ProgressDeadlineExceeded")
        {
            condition(
                "Progressing",
                "False",
                "ProgressDeadlineExceeded",
                &format!("ReplicaSet \"{rs_name}\" has timed out progressing."),
                &now,
                prev_progressing.as_ref(),
                false,
            )
        } else {
            ctx.wake_at(last_update + deadline + Duration::from_secs(1));
            prev_progressing.clone().unwrap_or_else(|| {
                condition(
                    "Progressing",
                    "True",
                    "ReplicaSetUpdated",
                    &format!("ReplicaSet \"{rs_name}\" is progressing."),
                    &now,
                    None,
                    true,
                )
            })
        }
    };
    if !paused && !complete && s(&progressing, "/reason") != "ProgressDeadlineExceeded" {
        let last = time_at(&progressing, "/lastUpdateTime").unwrap_or_else(|| ctx.now());
        ctx.wake_at(last + deadline + Duration::from_secs(1));
    }
    // Conditions are replaced per type; order is that of the last change.
    let mut conditions = vec![available_condition, progressing];
    if let Some(old) = old_status.get("conditions").and_then(Value::as_array) {
        let order: Vec<String> = old.iter().map(|c| s(c, "/type").to_owned()).collect();
        conditions.sort_by_key(|c| {
            order
                .iter()
                .position(|t| t == s(c, "/type"))
                .unwrap_or(usize::MAX)
        });
    }
    let mut status = json!({
        "observedGeneration": i(&deployment, "/metadata/generation"),
        "replicas": total,
        "updatedReplicas": updated,
        "readyReplicas": ready,
        "availableReplicas": available,
        "unavailableReplicas": (spec_total - available).max(0),
        "conditions": conditions,
    });
    if let Some(collisions) = deployment.at("/status/collisionCount") {
        status["collisionCount"] = collisions.clone();
    }
    let mut status = prune_zeros(status);
    if status.get("replicas") == Some(&json!(0))
        && let Some(map) = status.as_object_mut()
    {
        map.remove("replicas");
    }
    let mut next = deployment.clone();
    next["status"] = status;
    if let Some(rs) = new_rs {
        set_annotation(&mut next, REVISION, &revision(rs).to_string());
    }
    if next != deployment {
        let _ = ctx.update_status("apps", "Deployment", next);
    }
    complete
}

/// Deletes old ReplicaSets beyond `revisionHistoryLimit`, oldest revision first, once they
/// have no pods.
fn cleanup(ctx: &mut Ctx<'_>, deployment: &Value, olds: &[Value]) {
    let limit = deployment
        .at("/spec/revisionHistoryLimit")
        .and_then(Value::as_i64)
        .unwrap_or(10);
    let mut removable: Vec<&Value> = olds
        .iter()
        .filter(|rs| i(rs, "/spec/replicas") == 0 && i(rs, "/status/replicas") == 0)
        .collect();
    let excess = usize::try_from(i64::try_from(olds.len()).unwrap_or(0) - limit).unwrap_or(0);
    removable.sort_by_key(|rs| revision(rs));
    for rs in removable.into_iter().take(excess) {
        let _ = ctx.delete("apps", "ReplicaSet", rs);
    }
}

/// The pods of `replica_sets` that have not finished: running, starting or terminating (what
/// a Recreate rollout waits out).
fn running_pods(ctx: &Ctx<'_>, replica_sets: &[Value]) -> i64 {
    replica_sets
        .iter()
        .flat_map(|rs| ctx.dependents("", "Pod", &uid(rs)))
        .filter(|pod| !matches!(s(pod, "/status/phase"), "Succeeded" | "Failed"))
        .count() as i64
}
