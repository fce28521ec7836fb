//! Endpoints and EndpointSlices of Services with a selector, from ready and not-ready pods.

use crate::pointer::Pointer;
use std::sync::Arc;

use serde_json::{Value, json};

use super::replicaset::pod_is_ready;
use super::util::{Ctx, i, name, namespace, owner_reference, s, uid};

fn selects(selector: &Value, pod: &Value) -> bool {
    selector.as_object().is_some_and(|sel| {
        !sel.is_empty()
            && sel
                .iter()
                .all(|(k, v)| pod.at("/metadata/labels").and_then(|l| l.get(k)) == Some(v))
    })
}

/// The port a Service port targets on `pod`: a number, or a named container port.
fn target_port(port: &Value, pod: &Value) -> Option<i64> {
    match port.get("targetPort").or_else(|| port.get("port")) {
        Some(Value::Number(n)) => n.as_i64(),
        Some(Value::String(named)) => pod
            .at("/spec/containers")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .flat_map(|c| {
                c.get("ports")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default()
            })
            .find(|p| s(p, "/name") == named)
            .and_then(|p| p.get("containerPort").and_then(Value::as_i64)),
        _ => None,
    }
}

pub(crate) fn reconcile(ctx: &mut Ctx<'_>) {
    for service in ctx.all("", "Service") {
        let Some(selector) = service.at("/spec/selector").cloned() else {
            continue;
        };
        let ns = namespace(&service);
        let svc_name = name(&service);
        let pods: Vec<Arc<Value>> = ctx
            .in_namespace_shared("", "Pod", &ns)
            .into_iter()
            .filter(|p| {
                selects(&selector, p)
                    && !s(p, "/status/podIP").is_empty()
                    && !matches!(s(p, "/status/phase"), "Succeeded" | "Failed")
            })
            .collect();
        let ports: Vec<Value> = service
            .at("/spec/ports")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let address = |pod: &Value| {
            json!({"ip": s(pod, "/status/podIP"), "nodeName": s(pod, "/spec/nodeName"),
                "targetRef": {"kind": "Pod", "name": name(pod), "namespace": ns, "uid": uid(pod)}})
        };
        let endpoint_ports: Vec<Value> = ports
            .iter()
            .filter_map(|p| {
                let target = pods.first().and_then(|pod| target_port(p, pod)).or_else(|| p.get("port").and_then(Value::as_i64))?;
                let mut port = json!({"port": target, "protocol": p.get("protocol").cloned().unwrap_or(json!("TCP"))});
                if let Some(n) = p.get("name") {
                    port["name"] = n.clone();
                }
                Some(port)
            })
            .collect();
        let (ready, not_ready): (Vec<&Value>, Vec<&Value>) =
            pods.iter().map(|p| &**p).partition(|p| pod_is_ready(p));
        let mut subset = json!({"ports": endpoint_ports});
        if !ready.is_empty() {
            subset["addresses"] = json!(ready.iter().map(|p| address(p)).collect::<Vec<_>>());
        }
        if !not_ready.is_empty() {
            subset["notReadyAddresses"] =
                json!(not_ready.iter().map(|p| address(p)).collect::<Vec<_>>());
        }
        let subsets = if pods.is_empty() {
            json!([])
        } else {
            json!([subset])
        };
        let endpoints = json!({
            "apiVersion": "v1", "kind": "Endpoints",
            "metadata": {"name": svc_name, "namespace": ns, "labels": service.at("/metadata/labels").cloned().unwrap_or(json!({}))},
            "subsets": subsets,
        });
        upsert(ctx, "", "Endpoints", &ns, &svc_name, endpoints);

        let slice_name = format!(
            "{svc_name}-{}",
            &uid(&service).replace('-', "")[..5.min(uid(&service).len())]
        );
        let endpoints: Vec<Value> = pods
            .iter()
            .map(|p| {
                let ready = pod_is_ready(p);
                let terminating = p.at("/metadata/deletionTimestamp").is_some();
                json!({"addresses": [s(p, "/status/podIP")], "conditions": {"ready": ready, "serving": ready, "terminating": terminating},
                    "nodeName": s(p, "/spec/nodeName"), "targetRef": {"kind": "Pod", "name": name(p), "namespace": ns, "uid": uid(p)}})
            })
            .collect();
        let slice_ports: Vec<Value> = ports
            .iter()
            .map(|p| json!({"name": p.get("name").cloned().unwrap_or(json!("")), "port": pods.first().and_then(|pod| target_port(p, pod)).unwrap_or(i(p, "/port")), "protocol": p.get("protocol").cloned().unwrap_or(json!("TCP"))}))
            .collect();
        let slice = json!({
            "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": slice_name, "namespace": ns,
                "labels": {"kubernetes.io/service-name": svc_name, "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io"},
                "ownerReferences": [owner_reference(&service)]},
            "addressType": "IPv4",
            "endpoints": endpoints,
            "ports": slice_ports,
        });
        upsert(
            ctx,
            "discovery.k8s.io",
            "EndpointSlice",
            &ns,
            &slice_name,
            slice,
        );
    }
}

/// Creates or updates `desired` (the store skips no-op updates).
fn upsert(ctx: &mut Ctx<'_>, group: &str, kind: &str, ns: &str, object_name: &str, desired: Value) {
    match ctx.get(group, kind, ns, object_name) {
        Some(existing) => {
            let mut next = existing.clone();
            for (key, value) in desired.as_object().into_iter().flatten() {
                if key != "metadata" {
                    next[key] = value.clone();
                }
            }
            if next != existing {
                let _ = ctx.update(group, kind, next);
            }
        }
        None => {
            let _ = ctx.create(group, kind, ns, desired);
        }
    }
}
