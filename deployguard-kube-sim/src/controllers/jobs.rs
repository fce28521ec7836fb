//! The Job controller: runs pods to completion, retries failures up to `backoffLimit`.

use crate::pointer::Pointer;
use std::sync::Arc;

use serde_json::{Value, json};

use super::replicaset::prune_zeros;
use super::util::{Ctx, i, name, namespace, owned_by, owner_reference, s, uid};

pub(crate) fn reconcile(ctx: &mut Ctx<'_>) {
    for job in ctx.all("batch", "Job") {
        if job.pointer("/metadata/deletionTimestamp").is_some() {
            continue;
        }
        let conditions = job
            .at("/status/conditions")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        if conditions
            .iter()
            .any(|c| matches!(s(c, "/type"), "Complete" | "Failed") && s(c, "/status") == "True")
        {
            continue;
        }
        let ns = namespace(&job);
        let job_uid = uid(&job);
        let pods: Vec<Value> = ctx
            .dependents("", "Pod", &job_uid)
            .into_iter()
            .map(Arc::unwrap_or_clone)
            .filter(|p| namespace(p) == ns && owned_by(p, &job_uid))
            .collect();
        let succeeded = pods
            .iter()
            .filter(|p| s(p, "/status/phase") == "Succeeded")
            .count() as i64;
        let failed = pods
            .iter()
            .filter(|p| s(p, "/status/phase") == "Failed")
            .count() as i64;
        let active = pods
            .iter()
            .filter(|p| !matches!(s(p, "/status/phase"), "Succeeded" | "Failed"))
            .count() as i64;
        let completions = job
            .at("/spec/completions")
            .and_then(Value::as_i64)
            .unwrap_or(1);
        let backoff_limit = job
            .at("/spec/backoffLimit")
            .and_then(Value::as_i64)
            .unwrap_or(6);
        let now = ctx.now_text();
        let mut status = json!({
            "startTime": job.at("/status/startTime").cloned().unwrap_or(json!(now)),
            "active": active, "succeeded": succeeded, "failed": failed,
            "ready": 0,
        });
        if succeeded >= completions {
            status["completionTime"] = json!(now);
            status["conditions"] = json!([{"type": "Complete", "status": "True", "lastProbeTime": now, "lastTransitionTime": now}]);
            ctx.event(
                &job,
                "Normal",
                "Completed",
                "Job completed",
                "job-controller",
                None,
            );
        } else if failed > backoff_limit {
            status["conditions"] = json!([{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded", "message": "Job has reached the specified backoff limit", "lastProbeTime": now, "lastTransitionTime": now}]);
            ctx.event(
                &job,
                "Warning",
                "BackoffLimitExceeded",
                "Job has reached the specified backoff limit",
                "job-controller",
                None,
            );
        } else if active == 0 {
            let mut metadata = job
                .at("/spec/template/metadata")
                .cloned()
                .unwrap_or(json!({}));
            metadata["generateName"] = json!(format!("{}-", name(&job)));
            metadata["namespace"] = json!(ns);
            metadata["ownerReferences"] = json!([owner_reference(&job)]);
            metadata["labels"]["job-name"] = json!(name(&job));
            if let Some(map) = metadata.as_object_mut() {
                map.remove("creationTimestamp");
            }
            let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": job.at("/spec/template/spec").cloned().unwrap_or(json!({}))});
            match ctx.create("", "Pod", &ns, pod) {
                Ok(created) => {
                    ctx.event(
                        &job,
                        "Normal",
                        "SuccessfulCreate",
                        &format!("Created pod: {}", name(&created)),
                        "job-controller",
                        None,
                    );
                    status["active"] = json!(1);
                }
                Err(err) => {
                    let message = format!("Error creating: {}", err.message);
                    ctx.failed_create(&job, "job-controller", &message);
                }
            }
        }
        let status = prune_zeros(status);
        if job.get("status") != Some(&status) && i(&job, "/metadata/generation") >= 0 {
            let mut job = job;
            job["status"] = status;
            let _ = ctx.update_status("batch", "Job", job);
        }
    }
}
