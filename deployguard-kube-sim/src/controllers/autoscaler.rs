//! The HorizontalPodAutoscaler controller (`autoscaling/v2`, CPU utilization targets), every 15
//! seconds of cluster time as the real one syncs. Pod CPU use is what the test says it is
//! ([`crate::FakeCluster::set_cpu_usage`]), else what an extension models
//! ([`crate::Extension::pod_cpu`]: the testkit's simulated traffic charges CPU per request
//! served); without either the cluster is one without a metrics server, and the autoscaler says
//! so (`<unknown>` targets, `ScalingActive` False,
//! `FailedGetResourceMetric`). With it: utilization is use over requests across the target's
//! ready pods; the desired count is `ceil(current × utilization / target)`, left alone within the
//! 10% tolerance, held within `minReplicas`..`maxReplicas`, raised at once and lowered only after
//! the five-minute scale-down stabilization window.

use std::time::Duration;

use serde_json::{Value, json};

use super::replicaset::pod_is_ready;
use super::scheduler::cpu_millis;
use super::util::{Ctx, i, name, namespace, s, time_at};
use crate::pointer::Pointer;
use crate::selectors::LabelSelector;

/// How often the controller looks.
const SYNC: Duration = Duration::from_secs(15);
/// How long after a scaling it may scale down.
const DOWN_WINDOW: Duration = Duration::from_secs(300);

/// Simulated CPU use: per namespace and label selector, millicores per pod.
pub(crate) type CpuUsage = Vec<(String, String, i64)>;

fn condition(kind: &str, status: &str, reason: &str, message: &str, since: &str) -> Value {
    json!({"type": kind, "status": status, "reason": reason, "message": message, "lastTransitionTime": since})
}

pub(super) fn reconcile(ctx: &mut Ctx<'_>) {
    let hpas = ctx.all("autoscaling", "HorizontalPodAutoscaler");
    if hpas.is_empty() {
        return;
    }
    ctx.wake_in(SYNC);
    let now = ctx.now();
    let now_text = ctx.now_text();
    for hpa in hpas {
        let ns = namespace(&hpa);
        let kind = s(&hpa, "/spec/scaleTargetRef/kind").to_owned();
        let target_name = s(&hpa, "/spec/scaleTargetRef/name").to_owned();
        let Some(target) = ctx.get("apps", &kind, &ns, &target_name) else {
            continue;
        };
        let current = i(&target, "/spec/replicas");
        let min = hpa
            .at("/spec/minReplicas")
            .and_then(Value::as_i64)
            .unwrap_or(1);
        let max = i(&hpa, "/spec/maxReplicas");
        // Outside its bounds, the target is brought within them before any metric is read (a
        // target at zero has autoscaling turned off).
        let bounded = if current > max {
            Some((max, "Current number of replicas above Spec.MaxReplicas"))
        } else if current < min && current != 0 {
            Some((min, "Current number of replicas below Spec.MinReplicas"))
        } else {
            None
        };
        if let Some((desired, reason)) = bounded {
            let mut scaled = target.clone();
            scaled["spec"]["replicas"] = json!(desired);
            if ctx.update("apps", &kind, scaled).is_ok() {
                ctx.event(
                    &hpa,
                    "Normal",
                    "SuccessfulRescale",
                    &format!("New size: {desired}; reason: {reason}"),
                    "horizontal-pod-autoscaler",
                    None,
                );
                let mut hpa = hpa;
                hpa["status"]["currentReplicas"] = json!(current);
                hpa["status"]["desiredReplicas"] = json!(desired);
                hpa["status"]["lastScaleTime"] = json!(now_text);
                let _ = ctx.update_status("autoscaling", "HorizontalPodAutoscaler", hpa);
            }
            continue;
        }
        let target_utilization = hpa
            .at("/spec/metrics")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .find(|m| s(m, "/resource/name") == "cpu")
            .and_then(|m| m.at("/resource/target/averageUtilization"))
            .and_then(Value::as_i64);
        let selector = target
            .at("/spec/selector")
            .and_then(|sel| LabelSelector::of_object(sel).ok())
            .unwrap_or_default();
        let pods: Vec<_> = ctx
            .in_namespace_shared("", "Pod", &ns)
            .into_iter()
            .filter(|p| {
                selector.matches(p.at("/metadata/labels").and_then(Value::as_object))
                    && pod_is_ready(p)
            })
            .collect();
        let use_of = |pod: &Value| {
            ctx.usage
                .iter()
                .filter(|(usage_ns, _, _)| *usage_ns == ns)
                .find(|(_, text, _)| {
                    LabelSelector::parse(text).is_ok_and(|sel| {
                        sel.matches(pod.at("/metadata/labels").and_then(Value::as_object))
                    })
                })
                .map(|(_, _, millis)| *millis)
                .or_else(|| {
                    let pod = s(pod, "/metadata/name");
                    ctx.extensions.iter().find_map(|e| e.pod_cpu(&ns, pod))
                })
        };
        let measured: Vec<(i64, i64)> = pods
            .iter()
            .filter_map(|p| {
                let requested: i64 = p
                    .at("/spec/containers")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .map(|c| cpu_millis(s(c, "/resources/requests/cpu")))
                    .sum();
                use_of(p).map(|used| (used, requested))
            })
            .collect();
        let previous = |kind: &str| {
            hpa.at("/status/conditions")
                .and_then(Value::as_array)
                .and_then(|cs| cs.iter().find(|c| s(c, "/type") == kind).cloned())
        };
        let since = |kind: &str, status: &str| match previous(kind) {
            Some(c) if s(&c, "/status") == status => s(&c, "/lastTransitionTime").to_owned(),
            _ => now_text.clone(),
        };
        let mut status = json!({"currentReplicas": current, "desiredReplicas": current});
        if let Some(last) = hpa.at("/status/lastScaleTime") {
            status["lastScaleTime"] = last.clone();
        }
        let (Some(target_utilization), false) = (target_utilization, measured.is_empty()) else {
            let message = "the HPA was unable to compute the replica count: failed to get cpu utilization: unable to get metrics for resource cpu: no metrics returned from resource metrics API";
            status["conditions"] = json!([
                condition(
                    "AbleToScale",
                    "True",
                    "SucceededGetScale",
                    "the HPA controller was able to get the target's current scale",
                    &since("AbleToScale", "True")
                ),
                condition(
                    "ScalingActive",
                    "False",
                    "FailedGetResourceMetric",
                    message,
                    &since("ScalingActive", "False")
                ),
            ]);
            if hpa.get("status") != Some(&status) {
                ctx.event(&hpa, "Warning", "FailedGetResourceMetric", "failed to get cpu utilization: unable to get metrics for resource cpu: no metrics returned from resource metrics API", "horizontal-pod-autoscaler", None);
                let mut hpa = hpa;
                hpa["status"] = status;
                let _ = ctx.update_status("autoscaling", "HorizontalPodAutoscaler", hpa);
            }
            continue;
        };
        let used: i64 = measured.iter().map(|(u, _)| u).sum();
        let requested: i64 = measured.iter().map(|(_, r)| r).sum();
        let utilization = if requested > 0 {
            (100 * used + requested / 2) / requested
        } else {
            0
        };
        let ratio = utilization as f64 / target_utilization as f64;
        let mut desired = if (ratio - 1.0).abs() <= 0.1 {
            current
        } else {
            (ratio * measured.len() as f64).ceil() as i64
        };
        let limited = if desired > max {
            desired = max;
            Some((
                "TooManyReplicas",
                "the desired replica count is more than the maximum replica count",
            ))
        } else if desired < min {
            desired = min;
            Some((
                "TooFewReplicas",
                "the desired replica count is less than the minimum replica count",
            ))
        } else {
            None
        };
        let last_scale = time_at(&hpa, "/status/lastScaleTime");
        let may_scale_down = last_scale.is_none_or(|t| t + DOWN_WINDOW <= now);
        if desired < current && !may_scale_down {
            desired = current;
        }
        if desired != current {
            let mut scaled = target.clone();
            scaled["spec"]["replicas"] = json!(desired);
            if ctx.update("apps", &kind, scaled).is_ok() {
                let direction = if desired > current { "above" } else { "below" };
                ctx.event(&hpa, "Normal", "SuccessfulRescale", &format!("New size: {desired}; reason: cpu resource utilization (percentage of request) {direction} target"), "horizontal-pod-autoscaler", None);
                status["lastScaleTime"] = json!(now_text);
            }
        }
        status["desiredReplicas"] = json!(desired);
        status["currentMetrics"] = json!([{"type": "Resource", "resource": {"name": "cpu",
            "current": {"averageUtilization": utilization, "averageValue": format!("{}m", used / measured.len() as i64)}}}]);
        let (limited_status, limited_reason, limited_message) = match limited {
            Some((reason, message)) => ("True", reason, message),
            None => (
                "False",
                "DesiredWithinRange",
                "the desired count is within the acceptable range",
            ),
        };
        status["conditions"] = json!([
            condition(
                "AbleToScale",
                "True",
                "ReadyForNewScale",
                "recommended size matches current size",
                &since("AbleToScale", "True")
            ),
            condition(
                "ScalingActive",
                "True",
                "ValidMetricFound",
                "the HPA was able to successfully calculate a replica count from cpu resource utilization (percentage of request)",
                &since("ScalingActive", "True")
            ),
            condition(
                "ScalingLimited",
                limited_status,
                limited_reason,
                limited_message,
                &since("ScalingLimited", limited_status)
            ),
        ]);
        if hpa.get("status") != Some(&status) {
            let mut hpa = hpa;
            hpa["status"] = status;
            if let Err(err) = ctx.update_status("autoscaling", "HorizontalPodAutoscaler", hpa) {
                tracing::warn!("updating autoscaler {}: {}", name(&target), err.message);
            }
        }
    }
}
