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

impl Precondition<'_> {
    /// Whether an object whose metadata now reads `generation` and `resource_version` still
    /// meets the precondition.
    pub fn holds(&self, generation: Option<i64>, resource_version: Option<&str>) -> bool {
        match self {
            Self::Generation(expected) => generation.unwrap_or(0) == *expected,
            Self::ResourceVersion(expected) => resource_version == Some(*expected),
        }
    }
}

/// The one rule for a conditional patch the API server refused (every writer follows it): a
/// 422 is either the patch's test failing — the object changed since it was read, a Conflict
/// that a fresh read and a retry resolve — or the patch itself refused, which no retry helps.
/// A fresh read tells which: `now` is the object's `(generation, resourceVersion)` after the
/// refusal, `None` if it could not be read (then the refusal is taken as a conflict, which the
/// caller's retry re-reads).
pub fn refused_patch(
    err: kube::Error,
    precondition: Precondition<'_>,
    now: Option<(Option<i64>, Option<String>)>,
    operation: &'static str,
    object: &str,
) -> Error {
    let changed = match &now {
        Some((generation, version)) => !precondition.holds(*generation, version.as_deref()),
        None => true,
    };
    let is_422 = matches!(&err, kube::Error::Api(status) if status.code == 422);
    if is_422 && changed {
        let since = match precondition {
            Precondition::Generation(g) => format!("generation {g}"),
            Precondition::ResourceVersion(v) => format!("resourceVersion {v}"),
        };
        tracing::debug!(
            target: "deployguard::k8s",
            object,
            operation,
            read = %since,
            "conditional write refused: changed since read, a conflict to re-read and retry"
        );
        Error::conflict(format!("{object} changed since it was read ({since})"))
            .with_operation(operation)
            .with_object(object.to_owned())
    } else {
        tracing::debug!(
            target: "deployguard::k8s",
            object,
            operation,
            "conditional write refused as invalid (the object had not changed)"
        );
        crate::error::from_kube(err, operation, object)
    }
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

#[cfg(test)]
mod refusal_tests {
    use super::*;

    fn refusal(code: u16) -> kube::Error {
        kube::Error::Api(
            kube::core::Status::failure("the server rejected our request", "Invalid")
                .with_code(code)
                .boxed(),
        )
    }

    /// Every writer's one 422 rule: changed since read is a conflict a retry resolves; an
    /// unchanged object means the patch itself was refused, which no retry helps.
    #[test]
    fn a_422_is_a_conflict_only_when_the_object_changed() {
        let read = Precondition::ResourceVersion("41");
        let changed = refused_patch(
            refusal(422),
            read,
            Some((Some(3), Some("42".into()))),
            "apply",
            "service/web",
        );
        assert_eq!(changed.kind(), ErrorKind::Conflict);
        assert!(changed.is_retryable());
        let unchanged = refused_patch(
            refusal(422),
            read,
            Some((Some(3), Some("41".into()))),
            "apply",
            "service/web",
        );
        assert_eq!(unchanged.kind(), ErrorKind::InvalidInput);
        assert!(!unchanged.is_retryable());
        // Generation preconditions ignore status writes (a new resourceVersion alone).
        let status_write = refused_patch(
            refusal(422),
            Precondition::Generation(3),
            Some((Some(3), Some("99".into()))),
            "rollback",
            "deployment/web",
        );
        assert_eq!(status_write.kind(), ErrorKind::InvalidInput);
        // Not a 422: the status decides, as everywhere.
        let unavailable = refused_patch(refusal(503), read, None, "apply", "service/web");
        assert_eq!(unavailable.kind(), ErrorKind::Unavailable);
    }
}
