//! Patch types: JSON patch (RFC 6902), JSON merge patch (RFC 7386), strategic merge patch with
//! the merge keys rollout tooling touches, and server-side apply as kube-rs sends it.

use serde_json::{Map, Value};

/// How a PATCH body is to be read, from its Content-Type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PatchType {
    Json,
    Merge,
    Strategic,
    Apply,
}

impl PatchType {
    pub(crate) fn from_content_type(content_type: &str) -> Option<Self> {
        let media = content_type.split(';').next().unwrap_or("").trim();
        match media {
            "application/json-patch+json" => Some(Self::Json),
            "application/merge-patch+json" => Some(Self::Merge),
            "application/strategic-merge-patch+json" => Some(Self::Strategic),
            "application/apply-patch+yaml" | "application/apply-patch+cbor" => Some(Self::Apply),
            _ => None,
        }
    }
}

/// Why a patch could not be applied: a malformed body (400) or one that does not apply (422).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PatchError {
    BadRequest(String),
    Unprocessable(String),
}

/// Applies `body` of `kind` to `original`.
pub(crate) fn apply_patch(
    original: &Value,
    kind: PatchType,
    body: &[u8],
) -> Result<Value, PatchError> {
    let patch: Value = serde_json::from_slice(body)
        .map_err(|e| PatchError::BadRequest(format!("error decoding patch: {e}")))?;
    let mut doc = original.clone();
    match kind {
        PatchType::Json => {
            let ops: json_patch::Patch = serde_json::from_value(patch)
                .map_err(|e| PatchError::BadRequest(format!("error decoding patch: {e}")))?;
            json_patch::patch(&mut doc, &ops)
                .map_err(|e| PatchError::Unprocessable(e.to_string()))?;
        }
        PatchType::Merge => {
            if !patch.is_object() {
                return Err(PatchError::BadRequest(
                    "error decoding patch: a merge patch must be a JSON object".into(),
                ));
            }
            json_patch::merge(&mut doc, &patch);
        }
        PatchType::Strategic | PatchType::Apply => {
            if !patch.is_object() {
                return Err(PatchError::BadRequest(
                    "error decoding patch: a strategic merge patch must be a JSON object".into(),
                ));
            }
            strategic_merge(&mut doc, &patch, &[]);
        }
    }
    Ok(doc)
}

/// How strategic merge patches treat one field of a built-in type (the Go struct tags
/// `patchStrategy` and `patchMergeKey` of the Kubernetes API).
#[derive(Debug)]
pub(crate) struct PatchStrategy {
    /// The OpenAPI definition that holds the field.
    pub(crate) definition: &'static str,
    pub(crate) field: &'static str,
    /// `merge`, `retainKeys` or both.
    pub(crate) strategy: &'static str,
    /// The key a list's items merge by.
    pub(crate) merge_key: Option<&'static str>,
}

/// The one table of strategies of the built-in lists and fields rollout tooling edits: strategic
/// merge patches here follow it, and `/openapi/v3` publishes it (k8s-openapi's schemas leave
/// these extensions out, and without them kubectl's client-side `apply` would treat a container
/// list as one value and resend it each time).
pub(crate) const PATCH_STRATEGIES: &[PatchStrategy] = &[
    PatchStrategy {
        definition: "io.k8s.api.core.v1.PodSpec",
        field: "containers",
        strategy: "merge",
        merge_key: Some("name"),
    },
    PatchStrategy {
        definition: "io.k8s.api.core.v1.PodSpec",
        field: "initContainers",
        strategy: "merge",
        merge_key: Some("name"),
    },
    PatchStrategy {
        definition: "io.k8s.api.core.v1.PodSpec",
        field: "ephemeralContainers",
        strategy: "merge",
        merge_key: Some("name"),
    },
    PatchStrategy {
        definition: "io.k8s.api.core.v1.PodSpec",
        field: "volumes",
        strategy: "merge,retainKeys",
        merge_key: Some("name"),
    },
    PatchStrategy {
        definition: "io.k8s.api.core.v1.PodSpec",
        field: "imagePullSecrets",
        strategy: "merge",
        merge_key: Some("name"),
    },
    PatchStrategy {
        definition: "io.k8s.api.core.v1.PodSpec",
        field: "hostAliases",
        strategy: "merge",
        merge_key: Some("ip"),
    },
    PatchStrategy {
        definition: "io.k8s.api.core.v1.PodSpec",
        field: "topologySpreadConstraints",
        strategy: "merge",
        merge_key: Some("topologyKey"),
    },
    PatchStrategy {
        definition: "io.k8s.api.core.v1.Container",
        field: "ports",
        strategy: "merge",
        merge_key: Some("containerPort"),
    },
    PatchStrategy {
        definition: "io.k8s.api.core.v1.Container",
        field: "env",
        strategy: "merge",
        merge_key: Some("name"),
    },
    PatchStrategy {
        definition: "io.k8s.api.core.v1.Container",
        field: "volumeMounts",
        strategy: "merge",
        merge_key: Some("mountPath"),
    },
    PatchStrategy {
        definition: "io.k8s.api.core.v1.Container",
        field: "volumeDevices",
        strategy: "merge",
        merge_key: Some("devicePath"),
    },
    PatchStrategy {
        definition: "io.k8s.api.core.v1.ServiceSpec",
        field: "ports",
        strategy: "merge",
        merge_key: Some("port"),
    },
    PatchStrategy {
        definition: "io.k8s.api.core.v1.PodStatus",
        field: "conditions",
        strategy: "merge",
        merge_key: Some("type"),
    },
    PatchStrategy {
        definition: "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
        field: "ownerReferences",
        strategy: "merge",
        merge_key: Some("uid"),
    },
    PatchStrategy {
        definition: "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
        field: "finalizers",
        strategy: "merge",
        merge_key: None,
    },
    PatchStrategy {
        definition: "io.k8s.api.apps.v1.DeploymentSpec",
        field: "strategy",
        strategy: "retainKeys",
        merge_key: None,
    },
];

/// The merge key of list `field` at `path`: the table's entry for the field, the container's
/// where the field sits in a container (`ports` merge by `containerPort` there, by `port` in a
/// Service).
pub(crate) fn merge_key(path: &[String], field: &str) -> Option<&'static str> {
    const CONTAINER: &str = "io.k8s.api.core.v1.Container";
    let in_container = path.iter().any(|p| p.ends_with("ontainers"));
    let mut keyed = PATCH_STRATEGIES
        .iter()
        .filter(|s| s.field == field && s.merge_key.is_some());
    keyed
        .clone()
        .find(|s| (s.definition == CONTAINER) == in_container)
        .or_else(|| keyed.next())
        .and_then(|s| s.merge_key)
}

/// Applies a strategic merge patch in place. `path` is the field path to `doc`.
pub(crate) fn strategic_merge(doc: &mut Value, patch: &Value, path: &[String]) {
    let Some(patch_map) = patch.as_object() else {
        *doc = patch.clone();
        return;
    };
    if patch_map.get("$patch").and_then(Value::as_str) == Some("replace") {
        let mut replaced = patch_map.clone();
        replaced.remove("$patch");
        *doc = Value::Object(replaced);
        return;
    }
    if !doc.is_object() {
        *doc = Value::Object(Map::new());
    }
    let Some(doc_map) = doc.as_object_mut() else {
        return;
    };
    for (key, value) in patch_map {
        if key.starts_with('$') {
            continue;
        }
        let mut child_path = path.to_vec();
        child_path.push(key.clone());
        match value {
            Value::Null => {
                doc_map.remove(key);
            }
            Value::Object(_) => {
                let entry = doc_map.entry(key.clone()).or_insert(Value::Null);
                strategic_merge(entry, value, &child_path);
            }
            Value::Array(items) => {
                let merged = match (merge_key(path, key), doc_map.get(key)) {
                    (Some(merge_key), Some(Value::Array(existing))) => {
                        merge_list(existing, items, merge_key, &child_path)
                    }
                    (Some(_), _) => items
                        .iter()
                        .filter(|i| i.get("$patch").is_none())
                        .cloned()
                        .collect(),
                    (None, _) => items.clone(),
                };
                doc_map.insert(key.clone(), Value::Array(merged));
            }
            other => {
                doc_map.insert(key.clone(), other.clone());
            }
        }
    }
    for (key, value) in patch_map {
        if let Some(list) = key.strip_prefix("$setElementOrder/") {
            if let (Some(Value::Array(order)), Some(merge_key)) =
                (doc_map.get(list).cloned(), merge_key(path, list))
            {
                let wanted: Vec<Value> = value.as_array().cloned().unwrap_or_default();
                doc_map.insert(
                    list.to_owned(),
                    Value::Array(reorder(order, &wanted, merge_key)),
                );
            }
        } else if let Some(list) = key.strip_prefix("$deleteFromPrimitiveList/") {
            if let (Some(Value::Array(items)), Some(remove)) =
                (doc_map.get_mut(list), value.as_array())
            {
                items.retain(|item| !remove.contains(item));
            }
        } else if key == "$retainKeys"
            && let Some(keep) = value.as_array()
        {
            let keep: Vec<&str> = keep.iter().filter_map(Value::as_str).collect();
            doc_map.retain(|k, _| keep.contains(&k.as_str()));
        }
    }
}

fn merge_list(existing: &[Value], patch: &[Value], merge_key: &str, path: &[String]) -> Vec<Value> {
    let mut result = existing.to_vec();
    for item in patch {
        let key = item.get(merge_key);
        let position = key.and_then(|k| result.iter().position(|e| e.get(merge_key) == Some(k)));
        match (item.get("$patch").and_then(Value::as_str), position) {
            (Some("delete"), Some(index)) => {
                result.remove(index);
            }
            (Some("delete"), None) => {}
            (Some("replace"), Some(index)) => {
                let mut replaced = item.clone();
                if let Some(map) = replaced.as_object_mut() {
                    map.remove("$patch");
                }
                result[index] = replaced;
            }
            (_, Some(index)) => strategic_merge(&mut result[index], item, path),
            (_, None) => {
                let mut added = Value::Null;
                strategic_merge(&mut added, item, path);
                result.push(added);
            }
        }
    }
    result
}

/// Orders `items` as `wanted` names them by merge key; items it does not name keep their
/// relative order after the named ones.
fn reorder(items: Vec<Value>, wanted: &[Value], merge_key: &str) -> Vec<Value> {
    let rank = |item: &Value| {
        wanted
            .iter()
            .position(|w| w.get(merge_key).is_some() && w.get(merge_key) == item.get(merge_key))
            .unwrap_or(usize::MAX)
    };
    let mut ranked: Vec<(usize, usize, Value)> = items
        .into_iter()
        .enumerate()
        .map(|(i, v)| (rank(&v), i, v))
        .collect();
    ranked.sort_by_key(|(r, i, _)| (*r, *i));
    ranked.into_iter().map(|(_, _, v)| v).collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn smp(doc: Value, patch: Value) -> Value {
        apply_patch(&doc, PatchType::Strategic, patch.to_string().as_bytes()).unwrap()
    }

    #[test]
    fn set_image_patch_merges_containers_by_name() {
        let doc = json!({"spec": {"template": {"spec": {"containers": [
            {"name": "web", "image": "nginx:1.3", "ports": [{"containerPort": 80}]},
            {"name": "sidecar", "image": "envoy:1"}
        ]}}}});
        let patch = json!({"spec": {"template": {"spec": {
            "$setElementOrder/containers": [{"name": "web"}, {"name": "sidecar"}],
            "containers": [{"image": "nginx:1.4", "name": "web"}]
        }}}});
        let out = smp(doc, patch);
        assert_eq!(
            out["spec"]["template"]["spec"]["containers"][0]["image"],
            "nginx:1.4"
        );
        assert_eq!(
            out["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"],
            80
        );
        assert_eq!(
            out["spec"]["template"]["spec"]["containers"][1]["name"],
            "sidecar"
        );
    }

    #[test]
    fn null_deletes_and_patch_directives() {
        let doc = json!({"spec": {"paused": true, "replicas": 3}, "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]});
        let out = smp(doc.clone(), json!({"spec": {"paused": null}}));
        assert_eq!(out["spec"], json!({"replicas": 3}));
        let out = smp(
            json!({"spec": {"template": {"spec": {"containers": [{"name": "a", "env": [{"name": "A", "value": "1"}, {"name": "B"}]}]}}}}),
            json!({"spec": {"template": {"spec": {"containers": [{"name": "a", "env": [{"name": "B", "$patch": "delete"}]}]}}}}),
        );
        assert_eq!(
            out["spec"]["template"]["spec"]["containers"][0]["env"],
            json!([{"name": "A", "value": "1"}])
        );
        let out = smp(
            json!({"spec": {"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}}}}),
            json!({"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}}),
        );
        assert_eq!(out["spec"]["strategy"], json!({"type": "Recreate"}));
    }

    #[test]
    fn service_ports_merge_by_port_and_json_patch_test_op_fails_with_422() {
        let out = smp(
            json!({"spec": {"ports": [{"port": 80, "name": "http"}]}}),
            json!({"spec": {"ports": [{"port": 443, "name": "https"}]}}),
        );
        assert_eq!(out["spec"]["ports"].as_array().unwrap().len(), 2);
        let ops = json!([{"op": "test", "path": "/spec/replicas", "value": 5}, {"op": "replace", "path": "/spec/replicas", "value": 1}]);
        let err = apply_patch(
            &json!({"spec": {"replicas": 3}}),
            PatchType::Json,
            ops.to_string().as_bytes(),
        )
        .unwrap_err();
        assert!(matches!(err, PatchError::Unprocessable(_)), "{err:?}");
        let err = apply_patch(&json!({}), PatchType::Merge, b"{not json").unwrap_err();
        assert!(matches!(err, PatchError::BadRequest(_)));
    }
}
