//! The scheduler's filters, over the cluster's Node objects: a node must be Ready, not cordoned
//! (`spec.unschedulable`), carry no `NoSchedule`/`NoExecute` taint the pod does not tolerate,
//! match the pod's `nodeSelector` and required node affinity, and have the CPU the pod requests
//! left (allocatable less what the pods already bound to it request). Among the nodes that pass,
//! replicas of one owner are spread (the fewest of its pods, then the fewest pods), ties broken
//! by the pod's uid, so runs repeat. A pod no node takes gets the
//! scheduler's message, reasons counted per node as the real one counts them.
//!
//! Also the taint manager: a pod bound to a node with a `NoExecute` taint it does not tolerate is
//! deleted.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::Value;

use super::util::{Ctx, name, s};
use crate::pointer::Pointer;
pub(super) use crate::quantity::cpu_millis;

/// Where a pod goes.
pub(super) enum Placement {
    /// This node.
    On(String),
    /// Nowhere: the scheduler's `FailedScheduling` message.
    Nowhere(String),
}

/// A pass's view of the nodes and what is bound to them.
pub(super) struct Scheduler {
    nodes: Vec<Arc<Value>>,
    /// Millicores requested by the live pods bound to each node.
    used: BTreeMap<String, i64>,
    /// Live pods bound to each node, and of those, per owner uid: spreading replicas of one
    /// owner across nodes, as the default topology spread and least-allocated scoring do.
    pods: BTreeMap<String, usize>,
    owned: BTreeMap<(String, String), usize>,
}

/// The uid of the pod's controlling owner, if any.
fn owner_of(pod: &Value) -> String {
    pod.at("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .and_then(|refs| {
            refs.iter()
                .find(|r| r.get("controller") == Some(&Value::Bool(true)))
        })
        .map(|r| s(r, "/uid").to_owned())
        .unwrap_or_default()
}

impl Scheduler {
    pub(super) fn new(ctx: &Ctx<'_>, pods: &[Arc<Value>]) -> Self {
        let mut nodes = ctx.all_shared("", "Node");
        nodes.sort_by_key(|n| name(n));
        let mut used = BTreeMap::new();
        let mut counts = BTreeMap::new();
        let mut owned = BTreeMap::new();
        for pod in pods {
            let node = s(pod, "/spec/nodeName");
            if !node.is_empty() && !matches!(s(pod, "/status/phase"), "Succeeded" | "Failed") {
                *used.entry(node.to_owned()).or_insert(0) += requested_cpu(pod);
                *counts.entry(node.to_owned()).or_insert(0) += 1;
                *owned.entry((node.to_owned(), owner_of(pod))).or_insert(0) += 1;
            }
        }
        Self {
            nodes,
            used,
            pods: counts,
            owned,
        }
    }

    /// Picks a node for `pod` and counts its request there.
    pub(super) fn place(&mut self, pod: &Value, seed: u64) -> Placement {
        let cpu = requested_cpu(pod);
        let mut fits = Vec::new();
        // Per reason, how many nodes it ruled out; and how many were ruled out for lack of
        // resources (preemption could only help there).
        let mut reasons: BTreeMap<String, usize> = BTreeMap::new();
        let mut short_of_resources = 0;
        for node in &self.nodes {
            match self.filter(node, pod, cpu) {
                Ok(()) => fits.push(name(node)),
                Err((reason, resources)) => {
                    *reasons.entry(reason).or_insert(0) += 1;
                    short_of_resources += usize::from(resources);
                }
            }
        }
        if fits.is_empty() {
            let total = self.nodes.len();
            if total == 0 {
                return Placement::Nowhere("no nodes available to schedule pods".into());
            }
            // Sorted as strings, counts and all, as the scheduler sorts them.
            let mut listed: Vec<String> = reasons.iter().map(|(r, n)| format!("{n} {r}")).collect();
            listed.sort();
            let mut preemption = Vec::new();
            if short_of_resources > 0 {
                preemption.push(format!(
                    "{short_of_resources} No preemption victims found for incoming pod"
                ));
            }
            if total > short_of_resources {
                preemption.push(format!(
                    "{} Preemption is not helpful for scheduling",
                    total - short_of_resources
                ));
            }
            preemption.sort();
            return Placement::Nowhere(format!(
                "0/{total} nodes are available: {}. preemption: 0/{total} nodes are available: {}.",
                listed.join(", "),
                preemption.join(", ")
            ));
        }
        // The node with the fewest of this owner's pods, then the fewest pods; ties broken by
        // the pod's own seed, so runs repeat.
        let owner = owner_of(pod);
        let start = (seed % fits.len() as u64) as usize;
        let chosen = (0..fits.len())
            .map(|i| &fits[(start + i) % fits.len()])
            .min_by_key(|node| {
                (
                    self.owned
                        .get(&((*node).clone(), owner.clone()))
                        .copied()
                        .unwrap_or(0),
                    self.pods.get(*node).copied().unwrap_or(0),
                )
            })
            .cloned()
            .unwrap_or_else(|| fits[start].clone());
        *self.used.entry(chosen.clone()).or_insert(0) += cpu;
        *self.pods.entry(chosen.clone()).or_insert(0) += 1;
        *self.owned.entry((chosen.clone(), owner)).or_insert(0) += 1;
        Placement::On(chosen)
    }

    /// Why `node` cannot take `pod`, and whether for lack of resources.
    fn filter(&self, node: &Value, pod: &Value, cpu: i64) -> Result<(), (String, bool)> {
        let ready = node
            .at("/status/conditions")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .any(|c| s(c, "/type") == "Ready" && s(c, "/status") == "True");
        if !ready {
            return Err(("node(s) were not ready".into(), false));
        }
        if node.at("/spec/unschedulable") == Some(&Value::Bool(true))
            && !tolerates(
                pod,
                &serde_json::json!({"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}),
            )
        {
            return Err(("node(s) were unschedulable".into(), false));
        }
        if let Some(taint) = taints(node)
            .into_iter()
            .find(|t| matches!(s(t, "/effect"), "NoSchedule" | "NoExecute") && !tolerates(pod, t))
        {
            return Err((
                format!(
                    "node(s) had untolerated taint {{{}: {}}}",
                    s(taint, "/key"),
                    s(taint, "/value")
                ),
                false,
            ));
        }
        if !selected(node, pod) {
            return Err((
                "node(s) didn't match Pod's node affinity/selector".into(),
                false,
            ));
        }
        let allocatable = cpu_millis(s(node, "/status/allocatable/cpu"));
        let used = self.used.get(&name(node)).copied().unwrap_or(0);
        if cpu > 0 && used + cpu > allocatable {
            return Err(("Insufficient cpu".into(), true));
        }
        Ok(())
    }
}

pub(super) fn taints(node: &Value) -> Vec<&Value> {
    node.at("/spec/taints")
        .and_then(Value::as_array)
        .map(|t| t.iter().collect())
        .unwrap_or_default()
}

/// Whether one of the pod's tolerations matches `taint` (key, value by `Equal` or any by
/// `Exists`, effect or every effect when empty).
pub(super) fn tolerates(pod: &Value, taint: &Value) -> bool {
    pod.at("/spec/tolerations")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .any(|t| {
            let key_ok = match s(t, "/key") {
                "" => s(t, "/operator") == "Exists",
                key => key == s(taint, "/key"),
            };
            let value_ok = s(t, "/operator") == "Exists" || s(t, "/value") == s(taint, "/value");
            let effect_ok = s(t, "/effect").is_empty() || s(t, "/effect") == s(taint, "/effect");
            key_ok && value_ok && effect_ok
        })
}

/// The pod's `nodeSelector` and required node affinity (terms ORed, expressions ANDed; label
/// expressions and `metadata.name` fields).
pub(super) fn selected(node: &Value, pod: &Value) -> bool {
    let labels = node.at("/metadata/labels").and_then(Value::as_object);
    let label = |k: &str| labels.and_then(|l| l.get(k)).and_then(Value::as_str);
    let by_selector = pod
        .at("/spec/nodeSelector")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .all(|(k, v)| label(k) == v.as_str());
    if !by_selector {
        return false;
    }
    let Some(terms) = pod
        .at("/spec/affinity/nodeAffinity/requiredDuringSchedulingIgnoredDuringExecution/nodeSelectorTerms")
        .and_then(Value::as_array)
    else {
        return true;
    };
    let node_name = name(node);
    terms.iter().any(|term| {
        let expression_holds = |e: &Value, actual: Option<&str>| {
            let values: Vec<&str> = e
                .get("values")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            let number = |t: &str| t.parse::<i64>().ok();
            match s(e, "/operator") {
                "In" => actual.is_some_and(|a| values.contains(&a)),
                "NotIn" => actual.is_none_or(|a| !values.contains(&a)),
                "Exists" => actual.is_some(),
                "DoesNotExist" => actual.is_none(),
                "Gt" => matches!((actual.and_then(number), values.first().and_then(|v| number(v))), (Some(a), Some(b)) if a > b),
                "Lt" => matches!((actual.and_then(number), values.first().and_then(|v| number(v))), (Some(a), Some(b)) if a < b),
                _ => false,
            }
        };
        let expressions = term
            .get("matchExpressions")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .all(|e| expression_holds(e, label(s(e, "/key"))));
        let fields = term
            .get("matchFields")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .all(|e| {
                s(e, "/key") == "metadata.name" && expression_holds(e, Some(node_name.as_str()))
            });
        let empty = term.get("matchExpressions").is_none() && term.get("matchFields").is_none();
        !empty && expressions && fields
    })
}

/// Millicores a pod's containers request.
pub(super) fn requested_cpu(pod: &Value) -> i64 {
    pod.at("/spec/containers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|c| cpu_millis(s(c, "/resources/requests/cpu")))
        .sum()
}

/// The taint manager: pods on a node with a `NoExecute` taint they do not tolerate are deleted
/// (gracefully), with the event the real one records.
pub(super) fn evict_from_tainted_nodes(ctx: &mut Ctx<'_>) {
    let nodes = ctx.all_shared("", "Node");
    let tainted: Vec<&Arc<Value>> = nodes
        .iter()
        .filter(|n| taints(n).iter().any(|t| s(t, "/effect") == "NoExecute"))
        .collect();
    if tainted.is_empty() {
        return;
    }
    for pod in ctx.all_shared("", "Pod") {
        if pod.at("/metadata/deletionTimestamp").is_some() {
            continue;
        }
        let Some(node) = tainted
            .iter()
            .find(|n| name(n) == s(&pod, "/spec/nodeName"))
        else {
            continue;
        };
        let untolerated = taints(node)
            .into_iter()
            .any(|t| s(t, "/effect") == "NoExecute" && !tolerates(&pod, t));
        if untolerated && ctx.delete_pod(&pod).is_ok() {
            let message = format!(
                "Marking for deletion Pod {}/{}",
                s(&pod, "/metadata/namespace"),
                name(&pod)
            );
            ctx.event(
                &pod,
                "Normal",
                "TaintManagerEviction",
                &message,
                "taint-eviction-controller",
                None,
            );
        }
    }
}
