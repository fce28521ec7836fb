//! Columns of the cluster, storage, networking and policy kinds: Nodes, volumes and their
//! claims, StorageClasses, Ingresses, NetworkPolicies, ResourceQuotas, LimitRanges and
//! CertificateSigningRequests, as the API server's printers define them.

use std::time::SystemTime;

use serde_json::{Value, json};

use super::{Column, age, col, list_at, str_at};
use crate::clock::human_duration;

pub(super) fn columns(kind: &str) -> Option<Vec<Column>> {
    Some(match kind {
        "Node" => vec![
            col("Name", "string", 0),
            col("Status", "string", 0),
            col("Roles", "string", 0),
            col("Age", "string", 0),
            col("Version", "string", 0),
            col("Internal-IP", "string", 1),
            col("External-IP", "string", 1),
            col("OS-Image", "string", 1),
            col("Kernel-Version", "string", 1),
            col("Container-Runtime", "string", 1),
        ],
        "PersistentVolumeClaim" => vec![
            col("Name", "string", 0),
            col("Status", "string", 0),
            col("Volume", "string", 0),
            col("Capacity", "string", 0),
            col("Access Modes", "string", 0),
            col("StorageClass", "string", 0),
            col("VolumeAttributesClass", "string", 0),
            col("Age", "string", 0),
            col("VolumeMode", "string", 1),
        ],
        "PersistentVolume" => vec![
            col("Name", "string", 0),
            col("Capacity", "string", 0),
            col("Access Modes", "string", 0),
            col("Reclaim Policy", "string", 0),
            col("Status", "string", 0),
            col("Claim", "string", 0),
            col("StorageClass", "string", 0),
            col("VolumeAttributesClass", "string", 0),
            col("Reason", "string", 0),
            col("Age", "string", 0),
            col("VolumeMode", "string", 1),
        ],
        "StorageClass" => vec![
            col("Name", "string", 0),
            col("Provisioner", "string", 0),
            col("ReclaimPolicy", "string", 0),
            col("VolumeBindingMode", "string", 0),
            col("AllowVolumeExpansion", "string", 0),
            col("Age", "string", 0),
        ],
        "Ingress" => vec![
            col("Name", "string", 0),
            col("Class", "string", 0),
            col("Hosts", "string", 0),
            col("Address", "string", 0),
            col("Ports", "string", 0),
            col("Age", "string", 0),
        ],
        "IngressClass" => vec![
            col("Name", "string", 0),
            col("Controller", "string", 0),
            col("Parameters", "string", 0),
            col("Age", "string", 0),
        ],
        "NetworkPolicy" => vec![
            col("Name", "string", 0),
            col("Pod-Selector", "string", 0),
            col("Age", "string", 0),
        ],
        "ResourceQuota" => vec![
            col("Name", "string", 0),
            col("Request", "string", 0),
            col("Limit", "string", 0),
            col("Age", "string", 0),
        ],
        "LimitRange" => vec![col("Name", "string", 0), col("Created At", "date", 0)],
        "CertificateSigningRequest" => vec![
            col("Name", "string", 0),
            col("Age", "string", 0),
            col("SignerName", "string", 0),
            col("Requestor", "string", 0),
            col("RequestedDuration", "string", 0),
            col("Condition", "string", 0),
        ],
        _ => return None,
    })
}

pub(super) fn cells(kind: &str, obj: &Value, now: SystemTime) -> Option<Vec<Value>> {
    let name = json!(str_at(obj, "/metadata/name"));
    let created = json!(age(now, obj, "/metadata/creationTimestamp"));
    let or = |text: &str, default: &str| {
        if text.is_empty() {
            default.to_owned()
        } else {
            text.to_owned()
        }
    };
    Some(match kind {
        "Node" => {
            let address = |kind: &str| {
                list_at(obj, "/status/addresses")
                    .iter()
                    .find(|a| str_at(a, "/type") == kind)
                    .map_or_else(|| "<none>".to_owned(), |a| str_at(a, "/address").to_owned())
            };
            vec![
                name,
                json!(node_status(obj)),
                json!(node_roles(obj)),
                created,
                json!(str_at(obj, "/status/nodeInfo/kubeletVersion")),
                json!(address("InternalIP")),
                json!(address("ExternalIP")),
                json!(str_at(obj, "/status/nodeInfo/osImage")),
                json!(str_at(obj, "/status/nodeInfo/kernelVersion")),
                json!(str_at(obj, "/status/nodeInfo/containerRuntimeVersion")),
            ]
        }
        "PersistentVolumeClaim" => {
            let bound = str_at(obj, "/status/phase") == "Bound";
            vec![
                name,
                json!(str_at(obj, "/status/phase")),
                json!(str_at(obj, "/spec/volumeName")),
                json!(if bound {
                    str_at(obj, "/status/capacity/storage")
                } else {
                    ""
                }),
                json!(if bound {
                    access_modes(list_at(obj, "/status/accessModes"))
                } else {
                    String::new()
                }),
                json!(str_at(obj, "/spec/storageClassName")),
                json!(or(
                    str_at(obj, "/spec/volumeAttributesClassName"),
                    "<unset>"
                )),
                created,
                json!(or(str_at(obj, "/spec/volumeMode"), "<unset>")),
            ]
        }
        "PersistentVolume" => {
            let claim = match str_at(obj, "/spec/claimRef/name") {
                "" => String::new(),
                claim => format!("{}/{claim}", str_at(obj, "/spec/claimRef/namespace")),
            };
            vec![
                name,
                json!(str_at(obj, "/spec/capacity/storage")),
                json!(access_modes(list_at(obj, "/spec/accessModes"))),
                json!(str_at(obj, "/spec/persistentVolumeReclaimPolicy")),
                json!(str_at(obj, "/status/phase")),
                json!(claim),
                json!(str_at(obj, "/spec/storageClassName")),
                json!(or(
                    str_at(obj, "/spec/volumeAttributesClassName"),
                    "<unset>"
                )),
                json!(str_at(obj, "/status/reason")),
                created,
                json!(or(str_at(obj, "/spec/volumeMode"), "<unset>")),
            ]
        }
        "StorageClass" => {
            let default = str_at(
                obj,
                "/metadata/annotations/storageclass.kubernetes.io~1is-default-class",
            ) == "true";
            vec![
                json!(if default {
                    format!("{} (default)", str_at(obj, "/metadata/name"))
                } else {
                    str_at(obj, "/metadata/name").to_owned()
                }),
                json!(str_at(obj, "/provisioner")),
                json!(or(str_at(obj, "/reclaimPolicy"), "Delete")),
                json!(or(str_at(obj, "/volumeBindingMode"), "Immediate")),
                json!(
                    obj.get("allowVolumeExpansion")
                        .and_then(Value::as_bool)
                        .unwrap_or(false)
                        .to_string()
                ),
                created,
            ]
        }
        "Ingress" => {
            let hosts: Vec<&str> = list_at(obj, "/spec/rules")
                .iter()
                .map(|r| str_at(r, "/host"))
                .filter(|h| !h.is_empty())
                .collect();
            let addresses: Vec<&str> = list_at(obj, "/status/loadBalancer/ingress")
                .iter()
                .map(|i| match str_at(i, "/ip") {
                    "" => str_at(i, "/hostname"),
                    ip => ip,
                })
                .collect();
            vec![
                name,
                json!(or(str_at(obj, "/spec/ingressClassName"), "<none>")),
                json!(if hosts.is_empty() {
                    "*".to_owned()
                } else {
                    hosts.join(",")
                }),
                json!(addresses.join(",")),
                json!(if list_at(obj, "/spec/tls").is_empty() {
                    "80"
                } else {
                    "80, 443"
                }),
                created,
            ]
        }
        "IngressClass" => vec![
            name,
            json!(str_at(obj, "/spec/controller")),
            json!(match str_at(obj, "/spec/parameters/name") {
                "" => "<none>".to_owned(),
                parameters => format!("{}/{parameters}", str_at(obj, "/spec/parameters/kind")),
            }),
            created,
        ],
        "NetworkPolicy" => vec![
            name,
            json!(super::workloads::label_selector(
                obj.pointer("/spec/podSelector")
            )),
            created,
        ],
        "ResourceQuota" => {
            let (request, limit) = quota_columns(obj);
            vec![name, json!(request), json!(limit), created]
        }
        "LimitRange" => vec![name, json!(str_at(obj, "/metadata/creationTimestamp"))],
        "CertificateSigningRequest" => {
            let conditions: Vec<&str> = list_at(obj, "/status/conditions")
                .iter()
                .map(|c| str_at(c, "/type"))
                .collect();
            let mut condition = if conditions.is_empty() {
                "Pending".to_owned()
            } else {
                conditions.join(",")
            };
            if !str_at(obj, "/status/certificate").is_empty() {
                condition.push_str(",Issued");
            }
            vec![
                name,
                created,
                json!(str_at(obj, "/spec/signerName")),
                json!(str_at(obj, "/spec/username")),
                json!(
                    obj.pointer("/spec/expirationSeconds")
                        .and_then(Value::as_u64)
                        .map_or_else(
                            || "<none>".to_owned(),
                            |s| human_duration(std::time::Duration::from_secs(s))
                        )
                ),
                json!(condition),
            ]
        }
        _ => return None,
    })
}

/// `Ready`, `NotReady` or `Unknown` from the Ready condition, `,SchedulingDisabled` when cordoned.
pub(crate) fn node_status(node: &Value) -> String {
    let ready = list_at(node, "/status/conditions")
        .iter()
        .find(|c| str_at(c, "/type") == "Ready")
        .map_or("Unknown", |c| match str_at(c, "/status") {
            "True" => "Ready",
            "False" => "NotReady",
            _ => "Unknown",
        });
    if node.pointer("/spec/unschedulable") == Some(&json!(true)) {
        format!("{ready},SchedulingDisabled")
    } else {
        ready.to_owned()
    }
}

fn node_roles(node: &Value) -> String {
    let mut roles: Vec<String> = node
        .pointer("/metadata/labels")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| {
            if let Some(role) = k.strip_prefix("node-role.kubernetes.io/") {
                Some(role.to_owned())
            } else if k == "kubernetes.io/role" {
                v.as_str().map(str::to_owned)
            } else {
                None
            }
        })
        .filter(|r| !r.is_empty())
        .collect();
    roles.sort();
    if roles.is_empty() {
        "<none>".into()
    } else {
        roles.join(",")
    }
}

fn access_modes(modes: &[Value]) -> String {
    modes
        .iter()
        .filter_map(Value::as_str)
        .map(|m| match m {
            "ReadWriteOnce" => "RWO",
            "ReadOnlyMany" => "ROX",
            "ReadWriteMany" => "RWX",
            "ReadWriteOncePod" => "RWOP",
            other => other,
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// A quota's REQUEST and LIMIT columns: `name: used/hard` for each resource it counts, sorted,
/// those named `limits.*` under LIMIT.
fn quota_columns(quota: &Value) -> (String, String) {
    let hard = quota
        .pointer("/status/hard")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let mut request = Vec::new();
    let mut limit = Vec::new();
    for (resource, amount) in &hard {
        let used = quota
            .pointer(&format!("/status/used/{}", resource.replace('/', "~1")))
            .and_then(Value::as_str)
            .unwrap_or("0");
        let entry = format!("{resource}: {used}/{}", amount.as_str().unwrap_or(""));
        if resource.starts_with("limits.") {
            limit.push(entry);
        } else {
            request.push(entry);
        }
    }
    (request.join(", "), limit.join(", "))
}
