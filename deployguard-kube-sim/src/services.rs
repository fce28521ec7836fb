//! What the API server allocates for a Service when it is written: a ClusterIP from the service
//! CIDR (10.96.0.0/12; 10.96.0.1 is the `kubernetes` Service's), unique, and for NodePort and
//! LoadBalancer Services a node port per port from 30000-32767, unique; what a client asks for
//! is checked against both. On update what was allocated is kept when the new object leaves it
//! out (as `kubectl replace` does), and a ClusterIP may not change.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::resources::ResourceType;
use crate::status::ApiError;

const NODE_PORTS: std::ops::RangeInclusive<i64> = 30000..=32767;

fn in_cidr(ip: &str) -> bool {
    let octets: Vec<u8> = ip.split('.').filter_map(|o| o.parse().ok()).collect();
    matches!(octets.as_slice(), [10, second, _, _] if (96..112).contains(second))
}

fn cluster_ip(service: &Value) -> &str {
    service
        .pointer("/spec/clusterIP")
        .and_then(Value::as_str)
        .unwrap_or("")
}

fn node_ports(service: &Value) -> Vec<i64> {
    service
        .pointer("/spec/ports")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|p| p.get("nodePort").and_then(Value::as_i64))
        .collect()
}

/// Allocates (or checks) `service`'s ClusterIP and node ports against `others`, every other
/// Service of the cluster (not this one); `old` is the stored Service on an update.
pub(crate) fn allocate(
    rt: &ResourceType,
    service: &mut Value,
    old: Option<&Value>,
    others: &[std::sync::Arc<Value>],
) -> Result<(), ApiError> {
    let name = service
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    let invalid = |field: &str, problem: String| ApiError::invalid(rt, &name, field, &problem);
    let kind = service
        .pointer("/spec/type")
        .and_then(Value::as_str)
        .unwrap_or("ClusterIP")
        .to_owned();
    let Some(spec) = service.get_mut("spec").and_then(Value::as_object_mut) else {
        return Ok(());
    };
    // What the old object had, kept where the new one says nothing.
    if let Some(old) = old {
        let before = cluster_ip(old).to_owned();
        match spec.get("clusterIP").and_then(Value::as_str) {
            None | Some("") if !before.is_empty() => {
                spec.insert("clusterIP".into(), json!(before));
                spec.insert("clusterIPs".into(), json!([before]));
            }
            Some(now) if !before.is_empty() && now != before => {
                return Err(invalid(
                    "spec.clusterIPs[0]",
                    format!("Invalid value: \"{now}\": may not change once set"),
                ));
            }
            _ => {}
        }
        let old_ports = old
            .pointer("/spec/ports")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for port in spec
            .get_mut("ports")
            .and_then(Value::as_array_mut)
            .into_iter()
            .flatten()
        {
            if port.get("nodePort").is_none()
                && let Some(kept) = old_ports
                    .iter()
                    .find(|p| p.get("port") == port.get("port"))
                    .and_then(|p| p.get("nodePort"))
            {
                port["nodePort"] = kept.clone();
            }
        }
    }
    let others: Vec<&Value> = others.iter().map(AsRef::as_ref).collect();
    if kind != "ExternalName" {
        let taken: BTreeSet<&str> = others.iter().map(|o| cluster_ip(o)).collect();
        match spec.get("clusterIP").and_then(Value::as_str) {
            Some("None") => {}
            Some(ip) if !ip.is_empty() => {
                let unchanged = old.is_some_and(|o| cluster_ip(o) == ip);
                if !unchanged && !in_cidr(ip) {
                    return Err(invalid(
                        "spec.clusterIPs",
                        format!(
                            "Invalid value: []string{{\"{ip}\"}}: failed to allocate IP {ip}: the provided IP ({ip}) is not in the valid range. The range of valid IPs is 10.96.0.0/12"
                        ),
                    ));
                }
                if !unchanged && taken.contains(ip) {
                    return Err(invalid(
                        "spec.clusterIPs",
                        format!(
                            "Invalid value: []string{{\"{ip}\"}}: failed to allocate IP {ip}: provided IP is already allocated"
                        ),
                    ));
                }
                spec.insert("clusterIPs".into(), json!([ip]));
            }
            _ => {
                let free = (10..=4094u32)
                    .map(|n| format!("10.96.{}.{}", n / 256, n % 256))
                    .find(|ip| {
                        !taken.contains(ip.as_str()) && !ip.ends_with(".0") && !ip.ends_with(".255")
                    });
                let Some(ip) = free else {
                    return Err(invalid(
                        "spec.clusterIPs",
                        "Internal error: failed to allocate a serviceIP: range is full".into(),
                    ));
                };
                spec.insert("clusterIP".into(), json!(ip));
                spec.insert("clusterIPs".into(), json!([ip]));
            }
        }
    }
    if kind == "NodePort" || kind == "LoadBalancer" {
        let mut taken: BTreeSet<i64> = others.iter().flat_map(|o| node_ports(o)).collect();
        let before = old.map(node_ports).unwrap_or_default();
        let ports = spec.get_mut("ports").and_then(Value::as_array_mut);
        for (index, port) in ports.into_iter().flatten().enumerate() {
            match port.get("nodePort").and_then(Value::as_i64) {
                Some(asked) => {
                    if !NODE_PORTS.contains(&asked) {
                        return Err(invalid(
                            &format!("spec.ports[{index}].nodePort"),
                            format!(
                                "Invalid value: {asked}: provided port is not in the valid range. The range of valid ports is 30000-32767"
                            ),
                        ));
                    }
                    if taken.contains(&asked) && !before.contains(&asked) {
                        return Err(invalid(
                            &format!("spec.ports[{index}].nodePort"),
                            format!("Invalid value: {asked}: provided port is already allocated"),
                        ));
                    }
                    taken.insert(asked);
                }
                None => {
                    // A spread-out, deterministic pick: what a first free port after a hash of
                    // the service's name and port gives.
                    let seed = name
                        .bytes()
                        .fold(index as i64 * 7919, |h, b| (h * 31 + i64::from(b)) % 2768);
                    let free = (0..2768)
                        .map(|k| 30000 + (seed + k) % 2768)
                        .find(|p| !taken.contains(p));
                    let Some(free) = free else {
                        return Err(invalid(
                            &format!("spec.ports[{index}].nodePort"),
                            "Internal error: failed to allocate a nodePort: range is full".into(),
                        ));
                    };
                    taken.insert(free);
                    port["nodePort"] = json!(free);
                }
            }
        }
    }
    Ok(())
}
