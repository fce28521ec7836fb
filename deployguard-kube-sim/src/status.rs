//! API errors as `Status` bodies, worded as the real API server words them.

use serde_json::{Value, json};

use crate::resources::ResourceType;

/// An API error: HTTP code, reason and message, plus details.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    /// HTTP status code.
    pub code: u16,
    /// `NotFound`, `Conflict`, `Invalid`, …
    pub reason: String,
    /// The message kubectl prints after `Error from server (<reason>): `.
    pub message: String,
    pub(crate) details: Value,
}

impl ApiError {
    /// An error with HTTP `code`, `reason` (`NotFound`, `Conflict`, …) and `message`, and no
    /// details.
    pub fn new(code: u16, reason: &str, message: impl Into<String>) -> Self {
        Self {
            code,
            reason: reason.into(),
            message: message.into(),
            details: Value::Null,
        }
    }

    fn named(code: u16, reason: &str, message: String, rt: &ResourceType, name: &str) -> Self {
        Self {
            details: json!({"name": name, "group": rt.group, "kind": rt.plural}),
            ..Self::new(code, reason, message)
        }
    }

    pub(crate) fn not_found(rt: &ResourceType, name: &str) -> Self {
        Self::named(
            404,
            "NotFound",
            format!("{} \"{name}\" not found", rt.qualified()),
            rt,
            name,
        )
    }

    pub(crate) fn already_exists(rt: &ResourceType, name: &str) -> Self {
        Self::named(
            409,
            "AlreadyExists",
            format!("{} \"{name}\" already exists", rt.qualified()),
            rt,
            name,
        )
    }

    pub(crate) fn conflict(rt: &ResourceType, name: &str) -> Self {
        Self::named(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {} \"{name}\": the object has been modified; please apply your changes to the latest version and try again",
                rt.qualified()
            ),
            rt,
            name,
        )
    }

    /// 422 Invalid: `Deployment.apps "web" is invalid: spec.selector: Required value`.
    pub(crate) fn invalid(rt: &ResourceType, name: &str, field: &str, problem: &str) -> Self {
        let kind = if rt.group.is_empty() {
            rt.kind.clone()
        } else {
            format!("{}.{}", rt.kind, rt.group)
        };
        Self {
            details: json!({"name": name, "group": rt.group, "kind": rt.kind,
                "causes": [{"reason": "FieldValueInvalid", "message": problem, "field": field}]}),
            ..Self::new(
                422,
                "Invalid",
                format!("{kind} \"{name}\" is invalid: {field}: {problem}"),
            )
        }
    }

    /// 422 Invalid with every problem found, worded as the server aggregates them: one is
    /// `field: problem`, several are `[field: problem, field: problem]`.
    pub(crate) fn invalid_all(
        rt: &ResourceType,
        name: &str,
        problems: Vec<(String, String)>,
    ) -> Self {
        if let [(field, problem)] = problems.as_slice() {
            return Self::invalid(rt, name, field, problem);
        }
        let kind = if rt.group.is_empty() {
            rt.kind.clone()
        } else {
            format!("{}.{}", rt.kind, rt.group)
        };
        let text: Vec<String> = problems.iter().map(|(f, p)| format!("{f}: {p}")).collect();
        let causes: Vec<Value> = problems
            .iter()
            .map(|(f, p)| json!({"reason": "FieldValueInvalid", "message": p, "field": f}))
            .collect();
        Self {
            details: json!({"name": name, "group": rt.group, "kind": rt.kind, "causes": causes}),
            ..Self::new(
                422,
                "Invalid",
                format!("{kind} \"{name}\" is invalid: [{}]", text.join(", ")),
            )
        }
    }

    /// A 400 `BadRequest` saying `message`.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", message)
    }

    pub(crate) fn expired(message: String) -> Self {
        Self::new(410, "Expired", message)
    }

    pub(crate) fn method_not_allowed(action: &str, rt: &ResourceType) -> Self {
        Self {
            details: json!({"group": rt.group, "kind": rt.plural}),
            ..Self::new(
                405,
                "MethodNotAllowed",
                format!(
                    "{action} is not supported on resources of kind \"{}\"",
                    rt.qualified()
                ),
            )
        }
    }

    /// The reason the API gives an injected status code.
    pub(crate) fn injected(code: u16, message: &str) -> Self {
        let reason = match code {
            400 => "BadRequest",
            401 => "Unauthorized",
            403 => "Forbidden",
            404 => "NotFound",
            409 => "Conflict",
            410 => "Expired",
            422 => "Invalid",
            429 => "TooManyRequests",
            500 => "InternalError",
            503 => "ServiceUnavailable",
            504 => "Timeout",
            _ => "Unknown",
        };
        Self::new(code, reason, message)
    }

    /// The `Status` body.
    pub(crate) fn to_status(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        if !self.details.is_null() {
            status["details"] = self.details.clone();
        }
        status
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}): {}", self.reason, self.code, self.message)
    }
}

impl std::error::Error for ApiError {}
