//! The Eviction API (`POST pods/NAME/eviction`), what `kubectl drain` uses: a pod is deleted
//! only if the PodDisruptionBudget that covers it allows a disruption, which the eviction then
//! spends (`disruptionsAllowed` down by one, the pod in `disruptedPods`) until the disruption
//! controller recounts. Refusals are worded and coded as the API server's: 429 when the budget
//! has no room, 500 when two budgets cover the pod.

use serde_json::{Value, json};

use crate::resources::ResourceType;
use crate::selectors::LabelSelector;
use crate::status::ApiError;
use crate::store::{Part, Store};

/// Checks the budgets covering the pod and spends one disruption; the caller then deletes it.
pub(crate) fn admit(
    store: &mut Store,
    pods: &ResourceType,
    budgets: &ResourceType,
    ns: &str,
    name: &str,
) -> Result<(), ApiError> {
    let pod = store.get(pods, ns, name)?;
    // Pods that are done or already going need no budget.
    let phase = pod
        .pointer("/status/phase")
        .and_then(Value::as_str)
        .unwrap_or("");
    if matches!(phase, "Succeeded" | "Failed" | "Pending")
        || pod.pointer("/metadata/deletionTimestamp").is_some()
    {
        return Ok(());
    }
    let labels = pod.pointer("/metadata/labels").and_then(Value::as_object);
    let covering: Vec<Value> = store
        .list(
            budgets,
            Some(ns),
            &LabelSelector::default(),
            &Default::default(),
        )
        .into_iter()
        .filter(|pdb| {
            pdb.pointer("/spec/selector")
                .and_then(|s| LabelSelector::of_object(s).ok())
                .is_some_and(|s| !s.is_empty() && s.matches(labels))
        })
        .collect();
    let budget = match covering.as_slice() {
        [] => return Ok(()),
        [one] => one.clone(),
        _ => {
            return Err(ApiError::new(
                500,
                "InternalError",
                "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.",
            ));
        }
    };
    let int = |pointer: &str| budget.pointer(pointer).and_then(Value::as_i64).unwrap_or(0);
    let budget_name = budget
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    let ready = crate::controllers::pod_ready(&pod);
    // An unready pod may go while the budget's healthy count holds (IfHealthyBudget).
    if !ready && int("/status/currentHealthy") >= int("/status/desiredHealthy") {
        return Ok(());
    }
    if int("/status/observedGeneration") < int("/metadata/generation")
        || int("/status/disruptionsAllowed") <= 0
    {
        let cause = format!(
            "The disruption budget {budget_name} needs {} healthy pods and has {} currently",
            int("/status/desiredHealthy"),
            int("/status/currentHealthy")
        );
        return Err(ApiError {
            details: json!({"causes": [{"reason": "DisruptionBudget", "message": cause}]}),
            ..ApiError::new(
                429,
                "TooManyRequests",
                "Cannot evict pod as it would violate the pod's disruption budget.",
            )
        });
    }
    let mut spent = budget.clone();
    spent["status"]["disruptionsAllowed"] = json!(int("/status/disruptionsAllowed") - 1);
    spent["status"]["disruptedPods"][name] = json!(crate::clock::rfc3339(store.clock.now()));
    store.update(budgets, ns, &budget_name, spent, Part::Status, false)?;
    Ok(())
}

/// The body of a successful eviction.
pub(crate) fn success() -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201})
}
