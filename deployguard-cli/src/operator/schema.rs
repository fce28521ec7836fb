//! The RolloutGuard CRD's schema, made from `GuardSpec`'s JSON Schema (schemars) by the rules of
//! a Kubernetes structural schema, so the API server refuses what it can (types, enums of each
//! kind, required fields, patterns of names and durations, bounds) before the operator reads it.
//!
//! JSON Schema says things a structural schema cannot, so the conversion gives a little up:
//! - `$ref`s are inlined; `Option<T>` (`anyOf: [T, null]`, `type: [T, "null"]`) is `nullable`.
//! - A tagged enum (`oneOf` of objects with a `kind`) becomes one object holding every variant's
//!   fields, `kind` an enum of them all, requiring what every variant requires. A field of
//!   another variant than the one named passes the server and is refused by the operator
//!   (`InvalidSpec`, naming the field).
//! - A value that is a string or an object (a canary step: `analysis` or `{setWeight: 20}`)
//!   keeps whatever it is (`x-kubernetes-preserve-unknown-fields`); the operator checks it.
//! - `default`s are left to the operator (the server would write them into the stored object),
//!   and `format`s Kubernetes does not know (`uint8`, `double`) are dropped.

use serde_json::{Map, Value, json};

/// Formats the API server knows (others are ignored by it at best; dropped here).
const KNOWN_FORMATS: &[&str] = &[
    "int32",
    "int64",
    "float",
    "double",
    "byte",
    "date",
    "date-time",
    "duration",
];

/// `schema` (a schemars root, `$defs` beside it) as a structural schema.
pub fn structural(schema: &Value) -> Value {
    let definitions = schema
        .get("$defs")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    convert(schema, &definitions)
}

fn convert(schema: &Value, definitions: &Map<String, Value>) -> Value {
    let Some(node) = schema.as_object() else {
        // `true` (anything) in a schema: keep what is there.
        return open();
    };
    let description = node.get("description").cloned();
    let mut converted = if let Some(target) = node
        .get("$ref")
        .and_then(Value::as_str)
        .and_then(|r| r.rsplit('/').next())
        .and_then(|name| definitions.get(name))
    {
        convert(target, definitions)
    } else if let Some(branches) = node.get("anyOf").and_then(Value::as_array) {
        let (nulls, others): (Vec<&Value>, Vec<&Value>) = branches
            .iter()
            .partition(|b| b.get("type") == Some(&json!("null")));
        match others.as_slice() {
            [only] => {
                let mut inner = convert(only, definitions);
                if !nulls.is_empty() {
                    inner["nullable"] = json!(true);
                }
                inner
            }
            _ => open(),
        }
    } else if let Some(branches) = node.get("oneOf").and_then(Value::as_array) {
        one_of(branches, definitions)
    } else {
        plain(node, definitions)
    };
    if let (Some(description), Some(object)) = (description, converted.as_object_mut()) {
        object.insert("description".into(), description);
    }
    converted
}

/// A node without junctors or references.
fn plain(node: &Map<String, Value>, definitions: &Map<String, Value>) -> Value {
    let mut out = Map::new();
    match node.get("type") {
        Some(Value::Array(types)) => {
            let named: Vec<&Value> = types.iter().filter(|t| *t != "null").collect();
            if let [only] = named.as_slice() {
                out.insert("type".into(), (*only).clone());
            }
            if named.len() < types.len() {
                out.insert("nullable".into(), json!(true));
            }
            if named.len() > 1 {
                return open();
            }
        }
        Some(single) => {
            out.insert("type".into(), single.clone());
        }
        None => {}
    }
    if let Some(constant) = node.get("const") {
        out.insert("enum".into(), json!([constant]));
        if !out.contains_key("type") {
            out.insert("type".into(), json!(json_type(constant)));
        }
    }
    for key in [
        "enum",
        "pattern",
        "minimum",
        "maximum",
        "minLength",
        "maxLength",
        "minItems",
        "maxItems",
        "required",
    ] {
        if let Some(value) = node.get(key) {
            out.insert(key.into(), value.clone());
        }
    }
    if let Some(format) = node.get("format").and_then(Value::as_str)
        && KNOWN_FORMATS.contains(&format)
    {
        out.insert("format".into(), json!(format));
    }
    if let Some(properties) = node.get("properties").and_then(Value::as_object) {
        let converted: Map<String, Value> = properties
            .iter()
            .map(|(name, schema)| (name.clone(), convert(schema, definitions)))
            .collect();
        out.insert("properties".into(), Value::Object(converted));
    } else if let Some(additional) = node.get("additionalProperties").filter(|a| a.is_object()) {
        out.insert(
            "additionalProperties".into(),
            convert(additional, definitions),
        );
    }
    if let Some(items) = node.get("items") {
        out.insert("items".into(), convert(items, definitions));
    }
    if !out.contains_key("type") {
        return open();
    }
    Value::Object(out)
}

/// A `oneOf`: strings (an enum of them), objects (every variant's fields in one object), or a
/// mix (kept as it is, for the operator to check).
fn one_of(branches: &[Value], definitions: &Map<String, Value>) -> Value {
    let converted: Vec<Value> = branches.iter().map(|b| convert(b, definitions)).collect();
    let types: Vec<Option<&str>> = converted
        .iter()
        .map(|c| c.get("type").and_then(Value::as_str))
        .collect();
    if types.iter().all(|t| *t == Some("string")) {
        let mut values = Vec::new();
        for branch in &converted {
            match branch.get("enum").and_then(Value::as_array) {
                Some(each) => values.extend(each.iter().cloned()),
                // A string variant that is not a constant: any string.
                None => return json!({"type": "string"}),
            }
        }
        return json!({"type": "string", "enum": values});
    }
    if types.iter().all(|t| *t == Some("object")) {
        let mut properties = Map::new();
        let mut required: Option<Vec<Value>> = None;
        for branch in converted {
            let theirs: Vec<Value> = branch
                .get("required")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            required = Some(match required {
                None => theirs,
                Some(ours) => ours.into_iter().filter(|r| theirs.contains(r)).collect(),
            });
            for (name, schema) in branch
                .get("properties")
                .and_then(Value::as_object)
                .into_iter()
                .flatten()
            {
                let both = match properties.remove(name) {
                    None => schema.clone(),
                    Some(ours) => merge(ours, schema),
                };
                properties.insert(name.clone(), both);
            }
        }
        let mut merged = json!({"type": "object", "properties": properties});
        if let Some(required) = required.filter(|r| !r.is_empty()) {
            merged["required"] = Value::Array(required);
        }
        return merged;
    }
    open()
}

/// One field two variants both have: the same schema, an enum of both (a `kind`), or, when
/// they disagree, whatever is there.
fn merge(ours: Value, theirs: &Value) -> Value {
    if &ours == theirs {
        return ours;
    }
    let same_type = ours.get("type") == theirs.get("type");
    match (
        ours.get("enum").and_then(Value::as_array),
        theirs.get("enum").and_then(Value::as_array),
    ) {
        (Some(a), Some(b)) if same_type => {
            let mut both = ours.clone();
            let mut values = a.clone();
            values.extend(b.iter().filter(|v| !a.contains(v)).cloned());
            both["enum"] = Value::Array(values);
            both.as_object_mut().map(|o| o.remove("description"));
            both
        }
        _ if same_type && ours.get("type") != Some(&json!("object")) => {
            // Same type, different words or bounds: the type alone.
            json!({"type": ours["type"]})
        }
        _ => open(),
    }
}

fn open() -> Value {
    json!({"x-kubernetes-preserve-unknown-fields": true})
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_f64() => "number",
        Value::Number(_) => "integer",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
        _ => "string",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Kubernetes' structural rules: every node has a type (or keeps unknown fields, or is an
    /// int-or-string), no references or junctors, `additionalProperties` never beside
    /// `properties`, no `default`s here.
    fn assert_structural(node: &Value, path: &str) {
        let object = node
            .as_object()
            .unwrap_or_else(|| panic!("{path}: not an object"));
        for forbidden in [
            "$ref", "oneOf", "anyOf", "allOf", "not", "const", "default", "$defs",
        ] {
            assert!(!object.contains_key(forbidden), "{path}: has {forbidden}");
        }
        let kept = object.get("x-kubernetes-preserve-unknown-fields") == Some(&json!(true));
        assert!(
            kept || object.get("type").is_some_and(Value::is_string),
            "{path}: no single type: {node}"
        );
        assert!(
            !(object.contains_key("properties") && object.contains_key("additionalProperties")),
            "{path}: properties beside additionalProperties"
        );
        for (name, field) in object
            .get("properties")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
        {
            assert_structural(field, &format!("{path}.{name}"));
        }
        if let Some(items) = object.get("items") {
            assert_structural(items, &format!("{path}[]"));
        }
        if let Some(additional) = object.get("additionalProperties") {
            assert_structural(additional, &format!("{path}{{}}"));
        }
    }

    #[test]
    fn the_guard_spec_schema_is_structural_and_keeps_what_the_server_can_check() {
        let schema = structural(&deployguard_core::spec::GuardSpec::json_schema());
        assert_structural(&schema, "spec");
        assert_eq!(schema["required"], json!(["target"]));
        assert_eq!(
            schema["properties"]["target"]["properties"]["deployment"]["type"],
            "string"
        );
        let strategy_kinds = &schema["properties"]["strategy"]["properties"]["kind"]["enum"];
        assert_eq!(
            strategy_kinds,
            &json!(["rolling", "recreate", "blueGreen", "canary"]),
            "{schema:#}"
        );
        let probe_kinds = &schema["properties"]["probes"]["items"]["properties"]["kind"]["enum"];
        assert!(
            probe_kinds
                .as_array()
                .is_some_and(|k| k.contains(&json!("prometheus")))
        );
        assert!(
            schema["properties"]["bake"]["pattern"].is_string(),
            "durations keep their pattern: {:#}",
            schema["properties"]["bake"]
        );
    }

    #[test]
    fn strings_or_objects_are_kept_whole_and_options_are_nullable() {
        let schema = json!({
            "type": "object",
            "properties": {
                "step": {"oneOf": [{"const": "analysis", "type": "string"},
                                   {"type": "object", "properties": {"setWeight": {"type": "integer", "format": "uint8"}}}]},
                "maybe": {"anyOf": [{"$ref": "#/$defs/Thing"}, {"type": "null"}]},
                "count": {"type": ["integer", "null"], "format": "uint64", "minimum": 0},
            },
            "$defs": {"Thing": {"type": "string", "enum": ["a", "b"]}},
        });
        let out = structural(&schema);
        assert_eq!(
            out["properties"]["step"],
            json!({"x-kubernetes-preserve-unknown-fields": true})
        );
        assert_eq!(
            out["properties"]["maybe"],
            json!({"type": "string", "enum": ["a", "b"], "nullable": true})
        );
        assert_eq!(
            out["properties"]["count"],
            json!({"type": "integer", "nullable": true, "minimum": 0})
        );
    }
}
