//! The resource quota controller: each ResourceQuota's `status.hard` (its spec's) and
//! `status.used` — pods, CPU and memory requested and limited by them, and the count of each
//! object kind it names (`services`, `configmaps`, `secrets`, `persistentvolumeclaims`,
//! `count/<resource>`). Usage is reported, not enforced: a create over quota is not refused.

use serde_json::{Map, Value, json};

use super::scheduler::cpu_millis;
use super::util::{Ctx, namespace, s};
use crate::pointer::Pointer;

/// Bytes in a memory quantity (`512Mi`, `1G`, `1000`).
fn bytes(text: &str) -> u64 {
    let units = [
        ("Ki", 1u64 << 10),
        ("Mi", 1 << 20),
        ("Gi", 1 << 30),
        ("Ti", 1 << 40),
        ("k", 1_000),
        ("M", 1_000_000),
        ("G", 1_000_000_000),
    ];
    for (suffix, factor) in units {
        if let Some(n) = text.strip_suffix(suffix) {
            return n.parse::<u64>().unwrap_or(0) * factor;
        }
    }
    text.parse().unwrap_or(0)
}

fn cpu_text(millis: i64) -> String {
    if millis % 1000 == 0 {
        (millis / 1000).to_string()
    } else {
        format!("{millis}m")
    }
}

fn memory_text(bytes: u64) -> String {
    for (suffix, factor) in [("Gi", 1u64 << 30), ("Mi", 1 << 20), ("Ki", 1 << 10)] {
        if bytes >= factor && bytes.is_multiple_of(factor) {
            return format!("{}{suffix}", bytes / factor);
        }
    }
    bytes.to_string()
}

pub(super) fn reconcile(ctx: &mut Ctx<'_>) {
    for quota in ctx.all("", "ResourceQuota") {
        let ns = namespace(&quota);
        let hard = quota
            .at("/spec/hard")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        let pods: Vec<_> = ctx
            .in_namespace_shared("", "Pod", &ns)
            .into_iter()
            .filter(|p| !matches!(s(p, "/status/phase"), "Succeeded" | "Failed"))
            .collect();
        let containers = || {
            pods.iter().flat_map(|p| {
                p.at("/spec/containers")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default()
            })
        };
        let mut used = Map::new();
        for resource in hard.keys() {
            let value = match resource.as_str() {
                "pods" | "count/pods" => pods.len().to_string(),
                "requests.cpu" | "cpu" => cpu_text(
                    containers()
                        .map(|c| cpu_millis(s(&c, "/resources/requests/cpu")))
                        .sum(),
                ),
                "limits.cpu" => cpu_text(
                    containers()
                        .map(|c| cpu_millis(s(&c, "/resources/limits/cpu")))
                        .sum(),
                ),
                "requests.memory" | "memory" => memory_text(
                    containers()
                        .map(|c| bytes(s(&c, "/resources/requests/memory")))
                        .sum(),
                ),
                "limits.memory" => memory_text(
                    containers()
                        .map(|c| bytes(s(&c, "/resources/limits/memory")))
                        .sum(),
                ),
                other => {
                    let plural = other.strip_prefix("count/").unwrap_or(other);
                    let (plural, group) = plural.split_once('.').unwrap_or((plural, ""));
                    let kind = ctx
                        .types
                        .iter()
                        .find(|t| t.plural == plural && t.group == group)
                        .map(|t| t.kind.clone());
                    match kind {
                        Some(kind) => ctx.in_namespace_shared(group, &kind, &ns).len().to_string(),
                        None => "0".to_owned(),
                    }
                }
            };
            used.insert(resource.clone(), json!(value));
        }
        let status = json!({"hard": hard, "used": used});
        if quota.get("status") != Some(&status) {
            let mut quota = quota;
            quota["status"] = status;
            let _ = ctx.update_status("", "ResourceQuota", quota);
        }
    }
}
