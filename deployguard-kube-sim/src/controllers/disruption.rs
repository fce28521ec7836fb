//! The disruption controller: each PodDisruptionBudget's counts — pods expected (the scale of
//! the controllers owning the pods it selects, or the pods themselves for an integer
//! `minAvailable`), healthy (ready), the healthy it needs, and the disruptions that leaves — and
//! its `DisruptionAllowed` condition, which the Eviction API and `kubectl drain` rely on.
//! Evictions it has not yet seen the result of (`disruptedPods`) stay spent for two minutes, as
//! the real controller keeps them.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::{Value, json};

use super::replicaset::pod_is_ready;
use super::util::{Ctx, i, name, namespace, s};
use crate::pointer::Pointer;
use crate::selectors::LabelSelector;

/// An int-or-percent against `total`, percentages rounded up.
fn resolve(value: &Value, total: i64) -> i64 {
    match value {
        Value::Number(n) => n.as_i64().unwrap_or(0),
        Value::String(text) => text
            .strip_suffix('%')
            .and_then(|p| p.parse::<i64>().ok())
            .map_or(0, |p| (total * p + 99) / 100),
        _ => 0,
    }
}

pub(super) fn reconcile(ctx: &mut Ctx<'_>) {
    let now = ctx.now();
    for pdb in ctx.all("policy", "PodDisruptionBudget") {
        let ns = namespace(&pdb);
        let Some(selector) = pdb
            .at("/spec/selector")
            .and_then(|sel| LabelSelector::of_object(sel).ok())
        else {
            continue;
        };
        let pods: Vec<_> = ctx
            .in_namespace_shared("", "Pod", &ns)
            .into_iter()
            .filter(|p| {
                !matches!(s(p, "/status/phase"), "Succeeded" | "Failed")
                    && p.at("/metadata/deletionTimestamp").is_none()
                    && selector.matches(p.at("/metadata/labels").and_then(Value::as_object))
            })
            .collect();
        let healthy = pods.iter().filter(|p| pod_is_ready(p)).count() as i64;
        let integer_min = matches!(pdb.at("/spec/minAvailable"), Some(Value::Number(_)));
        let expected = if integer_min {
            pods.len() as i64
        } else {
            // The scale of each controller owning a selected pod.
            let owners: BTreeSet<(String, String)> = pods
                .iter()
                .filter_map(|p| {
                    p.at("/metadata/ownerReferences")
                        .and_then(Value::as_array)
                        .and_then(|o| o.iter().find(|r| r.get("controller") == Some(&json!(true))))
                        .map(|r| (s(r, "/kind").to_owned(), s(r, "/name").to_owned()))
                })
                .collect();
            let unowned = pods
                .iter()
                .filter(|p| p.at("/metadata/ownerReferences").is_none())
                .count() as i64;
            unowned
                + owners
                    .iter()
                    .map(|(kind, owner)| {
                        let group = if kind == "ReplicaSet" || kind == "StatefulSet" {
                            "apps"
                        } else {
                            "batch"
                        };
                        ctx.get(group, kind, &ns, owner)
                            .map_or(0, |o| i(&o, "/spec/replicas"))
                    })
                    .sum::<i64>()
        };
        let desired = match (pdb.at("/spec/minAvailable"), pdb.at("/spec/maxUnavailable")) {
            (Some(min), _) => resolve(min, expected),
            (None, Some(max)) => (expected - resolve(max, expected)).max(0),
            (None, None) => expected,
        };
        // Evictions not yet reflected in the pods count against the budget for a while.
        let mut disrupted = serde_json::Map::new();
        for (pod, at) in pdb
            .at("/status/disruptedPods")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
        {
            let still_there = pods.iter().any(|p| name(p) == *pod);
            let fresh = at
                .as_str()
                .and_then(crate::clock::parse_rfc3339)
                .is_some_and(|t| t + Duration::from_secs(120) > now);
            if still_there && fresh {
                disrupted.insert(pod.clone(), at.clone());
            }
        }
        let allowed = (healthy - desired - disrupted.len() as i64).max(0);
        let previous = pdb
            .at("/status/conditions/0")
            .cloned()
            .unwrap_or(Value::Null);
        let condition_status = if allowed > 0 { "True" } else { "False" };
        let since = if s(&previous, "/status") == condition_status {
            s(&previous, "/lastTransitionTime").to_owned()
        } else {
            ctx.now_text()
        };
        let generation = i(&pdb, "/metadata/generation");
        let mut status = json!({
            "observedGeneration": generation,
            "disruptionsAllowed": allowed,
            "currentHealthy": healthy,
            "desiredHealthy": desired,
            "expectedPods": expected,
            "conditions": [{"type": "DisruptionAllowed", "status": condition_status,
                "reason": if allowed > 0 { "SufficientPods" } else { "InsufficientPods" },
                "message": "", "observedGeneration": generation, "lastTransitionTime": since}],
        });
        if !disrupted.is_empty() {
            status["disruptedPods"] = Value::Object(disrupted);
            ctx.wake_in(Duration::from_secs(120));
        }
        if pdb.get("status") != Some(&status) {
            let mut pdb = pdb;
            pdb["status"] = status;
            let _ = ctx.update_status("policy", "PodDisruptionBudget", pdb);
        }
    }
}
