//! Conditional writes: JSON patches whose first operation tests what was read, shared by the
//! Deployment backend and the Service-selector router.

use std::collections::BTreeMap;

use deployguard_core::{Error, ErrorKind, Result};
use serde_json::{Value, json};

/// What a conditional write tests before it changes anything.
#[derive(Debug, Clone, Copy)]
pub enum Precondition<'a> {
    /// `metadata.generation` is still this: spec and annotation changes conflict, the
    /// controllers' constant status writes do not (Deployments, ReplicaSets).
    Generation(i64),
    /// `metadata.resourceVersion` is still this: any change conflicts (Services).
    ResourceVersion(&'a str),
}

/// A JSON patch from `ops` whose first operation tests `precondition`: the API server applies
/// all of it or nothing, and answers 422 when the test fails.
pub fn conditional_patch(
    precondition: Precondition<'_>,
    ops: Vec<Value>,
) -> Result<json_patch::Patch> {
    let test = match precondition {
        Precondition::Generation(generation) => {
            json!({"op": "test", "path": "/metadata/generation", "value": generation})
        }
        Precondition::ResourceVersion(version) => {
            json!({"op": "test", "path": "/metadata/resourceVersion", "value": version})
        }
    };
    let mut all = vec![test];
    all.extend(ops);
    serde_json::from_value(Value::Array(all))
        .map_err(|e| Error::new(ErrorKind::Unexpected, format!("building a JSON patch: {e}")))
}

/// A JSON-pointer path of `parent` and one map key (`/` and `~` escaped, RFC 6901).
pub fn pointer(parent: &str, key: &str) -> String {
    format!("{parent}/{}", key.replace('~', "~0").replace('/', "~1"))
}

/// The JSON-pointer form of an annotation key.
fn annotation_path(key: &str) -> String {
    pointer("/metadata/annotations", key)
}

/// Operations setting (`Some`) or removing (`None`) annotation `key` on an object whose
/// annotations are `current`.
pub(crate) fn annotation_ops(
    current: Option<&BTreeMap<String, String>>,
    key: &str,
    value: Option<&str>,
) -> Vec<Value> {
    match (current, value) {
        (None, Some(value)) => {
            vec![json!({"op": "add", "path": "/metadata/annotations", "value": {key: value}})]
        }
        (Some(_), Some(value)) => {
            vec![json!({"op": "add", "path": annotation_path(key), "value": value})]
        }
        (Some(map), None) if map.contains_key(key) => {
            vec![json!({"op": "remove", "path": annotation_path(key)})]
        }
        _ => Vec::new(),
    }
}
