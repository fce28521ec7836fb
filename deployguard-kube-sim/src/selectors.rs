//! Label and field selectors, with the syntax and errors of the real API server.

use serde_json::Value;

/// One label requirement.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Requirement {
    Equals(String, String),
    NotEquals(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    NotExists(String),
}

/// A parsed label selector (`app=web,tier in (a,b),!canary`). Empty matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct LabelSelector(Vec<Requirement>);

impl LabelSelector {
    pub(crate) fn parse(text: &str) -> Result<Self, String> {
        let mut requirements = Vec::new();
        for term in split_top_level(text) {
            let term = term.trim();
            if term.is_empty() {
                continue;
            }
            requirements.push(parse_requirement(term)?);
        }
        Ok(Self(requirements))
    }

    /// A `LabelSelector` object (`matchLabels` and `matchExpressions`, as a Deployment's
    /// `spec.selector`), with the API server's complaint about an operator it does not know.
    pub(crate) fn of_object(selector: &Value) -> Result<Self, String> {
        let mut requirements = Vec::new();
        if let Some(labels) = selector.get("matchLabels").and_then(Value::as_object) {
            for (k, v) in labels {
                requirements.push(Requirement::Equals(
                    k.clone(),
                    v.as_str().unwrap_or_default().to_owned(),
                ));
            }
        }
        let expressions = selector.get("matchExpressions").and_then(Value::as_array);
        for (i, e) in expressions.into_iter().flatten().enumerate() {
            let key = e
                .get("key")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            let values: Vec<String> = e
                .get("values")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect();
            let operator = e
                .get("operator")
                .and_then(Value::as_str)
                .unwrap_or_default();
            requirements.push(match operator {
                "In" => Requirement::In(key, values),
                "NotIn" => Requirement::NotIn(key, values),
                "Exists" => Requirement::Exists(key),
                "DoesNotExist" => Requirement::NotExists(key),
                other => {
                    return Err(format!(
                        "matchExpressions[{i}].operator: Invalid value: \"{other}\": not a valid selector operator"
                    ));
                }
            });
        }
        Ok(Self(requirements))
    }

    /// Whether nothing is required (it selects everything).
    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub(crate) fn matches(&self, labels: Option<&serde_json::Map<String, Value>>) -> bool {
        let get = |key: &str| labels.and_then(|l| l.get(key)).and_then(Value::as_str);
        self.0.iter().all(|r| match r {
            Requirement::Equals(k, v) => get(k) == Some(v.as_str()),
            Requirement::NotEquals(k, v) => get(k) != Some(v.as_str()),
            Requirement::In(k, vs) => get(k).is_some_and(|x| vs.iter().any(|v| v == x)),
            Requirement::NotIn(k, vs) => get(k).is_none_or(|x| vs.iter().all(|v| v != x)),
            Requirement::Exists(k) => get(k).is_some(),
            Requirement::NotExists(k) => get(k).is_none(),
        })
    }
}

impl std::fmt::Display for LabelSelector {
    /// The selector as a list query writes it (`app=web,tier in (a,b),!canary`).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let terms: Vec<String> = self
            .0
            .iter()
            .map(|r| match r {
                Requirement::Equals(k, v) => format!("{k}={v}"),
                Requirement::NotEquals(k, v) => format!("{k}!={v}"),
                Requirement::In(k, vs) => format!("{k} in ({})", vs.join(",")),
                Requirement::NotIn(k, vs) => format!("{k} notin ({})", vs.join(",")),
                Requirement::Exists(k) => k.clone(),
                Requirement::NotExists(k) => format!("!{k}"),
            })
            .collect();
        f.write_str(&terms.join(","))
    }
}

/// Splits on commas outside parentheses.
fn split_top_level(text: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0, 0);
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts
}

fn valid_key(key: &str) -> Result<String, String> {
    let ok = !key.is_empty()
        && key.len() <= 316
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c));
    if ok {
        Ok(key.to_owned())
    } else {
        Err(format!(
            "unable to parse requirement: invalid label key \"{key}\""
        ))
    }
}

fn parse_requirement(term: &str) -> Result<Requirement, String> {
    if let Some(key) = term.strip_prefix('!') {
        return Ok(Requirement::NotExists(valid_key(key.trim())?));
    }
    for (op, not) in [(" notin ", true), (" in ", false)] {
        if let Some(pos) = term.find(op) {
            let key = valid_key(term[..pos].trim())?;
            let rest = term[pos + op.len()..].trim();
            let inner = rest
                .strip_prefix('(')
                .and_then(|r| r.strip_suffix(')'))
                .ok_or_else(|| {
                    format!("unable to parse requirement: found '{rest}', expected: '('")
                })?;
            let values = inner
                .split(',')
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
                .collect();
            return Ok(if not {
                Requirement::NotIn(key, values)
            } else {
                Requirement::In(key, values)
            });
        }
    }
    for (op, not) in [("!=", true), ("==", false), ("=", false)] {
        if let Some(pos) = term.find(op) {
            let key = valid_key(term[..pos].trim())?;
            let value = term[pos + op.len()..].trim().to_owned();
            return Ok(if not {
                Requirement::NotEquals(key, value)
            } else {
                Requirement::Equals(key, value)
            });
        }
    }
    Ok(Requirement::Exists(valid_key(term)?))
}

/// A parsed field selector: an AND of `path=value` / `path!=value` terms over the object's JSON.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct FieldSelector(Vec<(String, String, bool)>);

impl FieldSelector {
    pub(crate) fn parse(text: &str) -> Result<Self, String> {
        let mut terms = Vec::new();
        for term in text.split(',').map(str::trim).filter(|t| !t.is_empty()) {
            let (path, value, negated) = if let Some((p, v)) = term.split_once("!=") {
                (p, v, true)
            } else if let Some((p, v)) = term.split_once("==") {
                (p, v, false)
            } else if let Some((p, v)) = term.split_once('=') {
                (p, v, false)
            } else {
                return Err(format!(
                    "invalid selector: '{text}'; can't understand '{term}'"
                ));
            };
            terms.push((path.trim().to_owned(), value.trim().to_owned(), negated));
        }
        Ok(Self(terms))
    }

    /// Refuses a field the API server cannot select `rt` by (`field label not supported:
    /// spec.replicas`): every kind has `metadata.name` and `metadata.namespace`, some a few more.
    pub(crate) fn supported_by(&self, rt: &crate::resources::ResourceType) -> Result<(), String> {
        let extra: &[&str] = match (rt.group.as_str(), rt.kind.as_str()) {
            ("", "Pod") => &[
                "spec.nodeName",
                "spec.restartPolicy",
                "spec.schedulerName",
                "spec.serviceAccountName",
                "spec.hostNetwork",
                "status.phase",
                "status.podIP",
                "status.podIPs",
                "status.nominatedNodeName",
            ],
            ("", "Event") => &[
                "involvedObject.kind",
                "involvedObject.namespace",
                "involvedObject.name",
                "involvedObject.uid",
                "involvedObject.apiVersion",
                "involvedObject.resourceVersion",
                "involvedObject.fieldPath",
                "reason",
                "reportingComponent",
                "source",
                "type",
            ],
            ("events.k8s.io", "Event") => &[
                "regarding.kind",
                "regarding.namespace",
                "regarding.name",
                "regarding.uid",
                "regarding.apiVersion",
                "regarding.resourceVersion",
                "regarding.fieldPath",
                "reason",
                "reportingController",
                "type",
            ],
            ("", "Secret") => &["type"],
            ("", "Namespace") => &["status.phase"],
            ("", "Node") => &["spec.unschedulable"],
            ("", "ReplicationController") | ("apps", "ReplicaSet") => &["status.replicas"],
            ("batch", "Job") => &["status.successful"],
            ("certificates.k8s.io", "CertificateSigningRequest") => &["spec.signerName"],
            _ => &[],
        };
        match self.0.iter().find(|(path, _, _)| {
            !matches!(path.as_str(), "metadata.name" | "metadata.namespace")
                && !extra.contains(&path.as_str())
        }) {
            Some((path, _, _)) => Err(format!("field label not supported: {path}")),
            None => Ok(()),
        }
    }

    /// The name this selector pins, if it has a `metadata.name=` term (list and watch use it to
    /// skip work).
    pub(crate) fn name(&self) -> Option<&str> {
        self.0
            .iter()
            .find(|(p, _, n)| p == "metadata.name" && !n)
            .map(|(_, v, _)| v.as_str())
    }

    pub(crate) fn matches(&self, object: &Value) -> bool {
        self.0.iter().all(|(path, value, negated)| {
            let mut cursor = Some(object);
            for part in path.split('.') {
                cursor = cursor.and_then(|c| c.get(part));
            }
            let actual = match cursor {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Null) | None => String::new(),
                Some(other) => other.to_string(),
            };
            (actual == *value) != *negated
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn label_selector_syntax() {
        let labels = json!({"app": "myapp", "tier": "web", "pod-template-hash": "5d9c"});
        let labels = labels.as_object();
        let cases = [
            ("", true),
            ("app=myapp", true),
            ("app==myapp,tier=web", true),
            ("app!=myapp", false),
            ("tier in (web, api)", true),
            ("tier notin (web)", false),
            ("pod-template-hash", true),
            ("!canary", true),
            ("!app", false),
            ("app=app-deployment", false),
        ];
        for (selector, expected) in cases {
            assert_eq!(
                LabelSelector::parse(selector).unwrap().matches(labels),
                expected,
                "{selector}"
            );
        }
        assert!(LabelSelector::parse("a b").is_err());
    }

    #[test]
    fn field_selector_reads_paths() {
        let event = json!({"metadata": {"name": "e1"}, "involvedObject": {"name": "web", "kind": "Pod", "uid": "u1"}});
        let selector =
            FieldSelector::parse("involvedObject.name=web,involvedObject.kind=Pod").unwrap();
        assert!(selector.matches(&event));
        assert!(
            !FieldSelector::parse("involvedObject.uid=u2")
                .unwrap()
                .matches(&event)
        );
        assert!(
            FieldSelector::parse("metadata.name!=e2")
                .unwrap()
                .matches(&event)
        );
        assert_eq!(
            FieldSelector::parse("metadata.name=e1").unwrap().name(),
            Some("e1")
        );
    }
}
