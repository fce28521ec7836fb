//! The CronJob controller, on the cluster's clock: at each time the schedule names (in
//! `timeZone`, UTC by default) it creates a Job `<name>-<minutes since the epoch>` from the job
//! template, unless suspended, past `startingDeadlineSeconds`, or forbidden by
//! `concurrencyPolicy` (`Forbid` skips while one runs, `Replace` deletes the running one). It
//! keeps `successfulJobsHistoryLimit` and `failedJobsHistoryLimit` finished Jobs, and reports
//! `active`, `lastScheduleTime` and `lastSuccessfulTime`. A schedule or zone it cannot read is a
//! warning event, as the real controller records it.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use jiff::Timestamp;
use jiff::tz::TimeZone;
use serde_json::{Value, json};

use super::cron::Schedule;
use super::util::{Ctx, name, namespace, owned_by, owner_reference, s, time_at, uid};
use crate::clock::rfc3339;
use crate::pointer::Pointer;

/// Most missed start times the controller looks back over.
const MAX_MISSED: usize = 100;

fn finished(job: &Value) -> Option<&'static str> {
    job.at("/status/conditions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|c| s(c, "/status") == "True")
        .find_map(|c| match s(c, "/type") {
            "Complete" => Some("Complete"),
            "Failed" => Some("Failed"),
            _ => None,
        })
}

/// The schedule's times after `since` up to `now`, at most [`MAX_MISSED`] of the latest.
fn due_times(
    schedule: &Schedule,
    zone: &TimeZone,
    since: SystemTime,
    now: SystemTime,
) -> Vec<SystemTime> {
    let to_civil = |t: SystemTime| Timestamp::try_from(t).ok().map(|t| zone.to_datetime(t));
    let Some(mut cursor) = to_civil(since) else {
        return Vec::new();
    };
    let mut times = Vec::new();
    while let Some(next) = schedule.next(cursor) {
        let Some(at) = zone
            .to_ambiguous_timestamp(next)
            .compatible()
            .ok()
            .map(SystemTime::from)
        else {
            break;
        };
        if at > now {
            break;
        }
        times.push(at);
        if times.len() > MAX_MISSED {
            times.remove(0);
        }
        cursor = next;
    }
    times
}

fn next_time(schedule: &Schedule, zone: &TimeZone, now: SystemTime) -> Option<SystemTime> {
    let civil = zone.to_datetime(Timestamp::try_from(now).ok()?);
    let next = schedule.next(civil)?;
    zone.to_ambiguous_timestamp(next)
        .compatible()
        .ok()
        .map(SystemTime::from)
}

pub(super) fn reconcile(ctx: &mut Ctx<'_>) {
    let now = ctx.now();
    for cj in ctx.all("batch", "CronJob") {
        let ns = namespace(&cj);
        let cj_uid = uid(&cj);
        let schedule = match Schedule::parse(s(&cj, "/spec/schedule")) {
            Ok(schedule) => schedule,
            Err(err) => {
                let message = format!(
                    "unparseable schedule: {:?} : {err}",
                    s(&cj, "/spec/schedule")
                );
                ctx.event(
                    &cj,
                    "Warning",
                    "UnparseableSchedule",
                    &message,
                    "cronjob-controller",
                    None,
                );
                continue;
            }
        };
        let zone = match cj.at("/spec/timeZone").and_then(Value::as_str) {
            None => TimeZone::UTC,
            Some(name) => match TimeZone::get(name) {
                Ok(zone) => zone,
                Err(err) => {
                    let message = format!("invalid timeZone: {name:?}: {err}");
                    ctx.event(
                        &cj,
                        "Warning",
                        "UnknownTimeZone",
                        &message,
                        "cronjob-controller",
                        None,
                    );
                    continue;
                }
            },
        };
        let mut jobs: Vec<Arc<Value>> = ctx
            .dependents("batch", "Job", &cj_uid)
            .into_iter()
            .filter(|j| namespace(j) == ns && owned_by(j, &cj_uid))
            .collect();
        jobs.sort_by_key(|j| s(j, "/metadata/creationTimestamp").to_owned());
        let mut status = cj.get("status").cloned().unwrap_or(json!({}));

        // Finished Jobs: seen once, counted, and pruned to the history limits.
        for (outcome, limit_field, default) in [
            ("Complete", "/spec/successfulJobsHistoryLimit", 3),
            ("Failed", "/spec/failedJobsHistoryLimit", 1),
        ] {
            let done: Vec<&Arc<Value>> = jobs
                .iter()
                .filter(|j| finished(j) == Some(outcome))
                .collect();
            let limit = usize::try_from(
                cj.at(limit_field)
                    .and_then(Value::as_i64)
                    .unwrap_or(default),
            )
            .unwrap_or(0);
            for old in done.iter().take(done.len().saturating_sub(limit)) {
                if ctx.delete("batch", "Job", old).is_ok() {
                    ctx.event(
                        &cj,
                        "Normal",
                        "SuccessfulDelete",
                        &format!("Deleted job {}", name(old)),
                        "cronjob-controller",
                        None,
                    );
                }
            }
        }
        if let Some(last) = jobs
            .iter()
            .filter(|j| finished(j) == Some("Complete"))
            .filter_map(|j| time_at(j, "/status/completionTime"))
            .max()
        {
            status["lastSuccessfulTime"] = json!(rfc3339(last));
        }
        let mut active: Vec<Arc<Value>> = jobs
            .iter()
            .filter(|j| finished(j).is_none())
            .cloned()
            .collect();

        if cj.at("/spec/suspend") != Some(&json!(true)) {
            let since = time_at(&cj, "/status/lastScheduleTime")
                .or_else(|| time_at(&cj, "/metadata/creationTimestamp"))
                .unwrap_or(now);
            let due = due_times(&schedule, &zone, since, now);
            if let Some(&scheduled) = due.last() {
                let deadline = cj
                    .at("/spec/startingDeadlineSeconds")
                    .and_then(Value::as_u64)
                    .map(Duration::from_secs);
                let too_late = deadline.is_some_and(|d| scheduled + d < now);
                let policy = s(&cj, "/spec/concurrencyPolicy");
                if too_late {
                    ctx.event(
                        &cj,
                        "Warning",
                        "MissSchedule",
                        &format!(
                            "Missed scheduled time to start a job: {}",
                            rfc3339(scheduled)
                        ),
                        "cronjob-controller",
                        None,
                    );
                    status["lastScheduleTime"] = json!(rfc3339(scheduled));
                } else if policy == "Forbid" && !active.is_empty() {
                    // Waits for the running one; the time is tried again at the next pass.
                } else {
                    if policy == "Replace" {
                        for running in std::mem::take(&mut active) {
                            if ctx.delete("batch", "Job", &running).is_ok() {
                                ctx.event(
                                    &cj,
                                    "Normal",
                                    "SuccessfulDelete",
                                    &format!("Deleted job {}", name(&running)),
                                    "cronjob-controller",
                                    None,
                                );
                            }
                        }
                    }
                    let minutes = scheduled
                        .duration_since(SystemTime::UNIX_EPOCH)
                        .unwrap_or(Duration::ZERO)
                        .as_secs()
                        / 60;
                    let job_name = format!("{}-{minutes}", name(&cj));
                    if ctx.get("batch", "Job", &ns, &job_name).is_none() {
                        let mut metadata = cj
                            .at("/spec/jobTemplate/metadata")
                            .cloned()
                            .unwrap_or(json!({}));
                        metadata["name"] = json!(job_name);
                        metadata["namespace"] = json!(ns);
                        metadata["ownerReferences"] = json!([owner_reference(&cj)]);
                        metadata["annotations"]["batch.kubernetes.io/cronjob-scheduled-timestamp"] =
                            json!(rfc3339(scheduled));
                        let job = json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": metadata,
                            "spec": cj.at("/spec/jobTemplate/spec").cloned().unwrap_or(json!({}))});
                        match ctx.create("batch", "Job", &ns, job) {
                            Ok(created) => {
                                ctx.event(
                                    &cj,
                                    "Normal",
                                    "SuccessfulCreate",
                                    &format!("Created job {job_name}"),
                                    "cronjob-controller",
                                    None,
                                );
                                active.push(Arc::new(created));
                            }
                            Err(err) => tracing::warn!("creating job {job_name}: {}", err.message),
                        }
                    }
                    status["lastScheduleTime"] = json!(rfc3339(scheduled));
                }
            }
            if let Some(next) = next_time(&schedule, &zone, now) {
                ctx.wake_at(next);
            }
        }
        let refs: Vec<Value> = active
            .iter()
            .map(|j| json!({"kind": "Job", "namespace": ns, "name": name(j), "uid": uid(j), "apiVersion": "batch/v1", "resourceVersion": s(j, "/metadata/resourceVersion")}))
            .collect();
        if refs.is_empty() {
            if let Some(map) = status.as_object_mut() {
                map.remove("active");
            }
        } else {
            status["active"] = json!(refs);
        }
        if cj.get("status") != Some(&status) {
            let mut cj = cj;
            cj["status"] = status;
            let _ = ctx.update_status("batch", "CronJob", cj);
        }
    }
}
