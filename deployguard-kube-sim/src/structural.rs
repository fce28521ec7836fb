//! A custom resource defaulted and checked against its CRD's structural schema, as the API
//! server does after pruning: `default`s filled in where a field is absent, then `type`,
//! `nullable`, `enum`, `required`, `pattern`, `minLength`/`maxLength`, `minimum`/`maximum`,
//! `minItems`/`maxItems` and `x-kubernetes-int-or-string` checked. Each problem is worded as
//! the server words it (`spec.replicas: Invalid value: "string": spec.replicas in body must be
//! of type integer: "string"`), every one found, so the 422 lists them all.
//!
//! Not checked: CEL rules (`x-kubernetes-validations`), `format`, `oneOf`/`anyOf`/`allOf`/`not`
//! junctors, and `uniqueItems` (which a structural schema may not set).

use serde_json::{Map, Value};

/// Every problem of `value` against `schema`, as (field path, problem), after filling in the
/// schema's defaults. Null fields a schema does not call `nullable` are dropped first, as the
/// server drops them.
pub(crate) fn violations(value: &mut Value, schema: &Value) -> Vec<(String, String)> {
    let mut found = Vec::new();
    check(value, schema, "", &mut found);
    found
}

fn check(value: &mut Value, schema: &Value, path: &str, found: &mut Vec<(String, String)>) {
    let Some(schema) = schema.as_object() else {
        return;
    };
    if value.is_null() {
        if !flag(schema, "nullable") && !path.is_empty() {
            found.push((
                path.to_owned(),
                "Invalid value: \"null\": ".to_owned() + &type_problem(path, schema, value),
            ));
        }
        return;
    }
    if flag(schema, "x-kubernetes-int-or-string") {
        if !(value.is_string() || value.is_i64() || value.is_u64()) {
            found.push((
                path.to_owned(),
                format!(
                    "Invalid value: \"{}\": {path} in body must be of type integer,string: \"{}\"",
                    type_name(value),
                    type_name(value)
                ),
            ));
        }
        return;
    }
    if let Some(expected) = schema.get("type").and_then(Value::as_str)
        && !is_type(value, expected)
    {
        found.push((
            path.to_owned(),
            format!(
                "Invalid value: \"{}\": {}",
                type_name(value),
                type_problem(path, schema, value)
            ),
        ));
        return;
    }
    if let Some(allowed) = schema.get("enum").and_then(Value::as_array)
        && !allowed.contains(value)
    {
        let supported: Vec<String> = allowed.iter().map(Value::to_string).collect();
        found.push((
            path.to_owned(),
            format!(
                "Unsupported value: {value}: supported values: {}",
                supported.join(", ")
            ),
        ));
    }
    match value {
        Value::String(text) => string_rules(text, schema, path, found),
        Value::Number(number) => {
            number_rules(number.as_f64().unwrap_or(0.0), value, schema, path, found)
        }
        Value::Array(items) => {
            let count = items.len() as u64;
            if let Some(max) = schema.get("maxItems").and_then(Value::as_u64)
                && count > max
            {
                found.push((
                    path.to_owned(),
                    format!("Too many: {count}: must have at most {max} items"),
                ));
            }
            if let Some(min) = schema.get("minItems").and_then(Value::as_u64)
                && count < min
            {
                found.push((
                    path.to_owned(),
                    format!(
                        "Invalid value: {count}: {path} in body should have at least {min} items"
                    ),
                ));
            }
            if let Some(item_schema) = schema.get("items") {
                for (index, item) in items.iter_mut().enumerate() {
                    check(item, item_schema, &format!("{path}[{index}]"), found);
                }
            }
        }
        Value::Object(fields) => object_rules(fields, schema, path, found),
        _ => {}
    }
}

fn object_rules(
    fields: &mut Map<String, Value>,
    schema: &Map<String, Value>,
    path: &str,
    found: &mut Vec<(String, String)>,
) {
    let properties = schema.get("properties").and_then(Value::as_object);
    let additional = schema.get("additionalProperties").filter(|a| a.is_object());
    // A null the schema does not allow is dropped, not refused (the server's pruning of nulls).
    fields.retain(|key, field| {
        let field_schema = properties.and_then(|p| p.get(key)).or(additional);
        !(field.is_null()
            && field_schema.is_some_and(|s| s.get("nullable") != Some(&Value::Bool(true))))
    });
    // Defaults, as the server applies them to what it stores (before `required` is checked).
    for (key, field_schema) in properties.into_iter().flatten() {
        if let Some(default) = field_schema.get("default")
            && !fields.contains_key(key)
        {
            fields.insert(key.clone(), default.clone());
        }
    }
    for required in schema
        .get("required")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
    {
        if !fields.contains_key(required) {
            found.push((join(path, required), "Required value".to_owned()));
        }
    }
    for (key, field) in fields.iter_mut() {
        if let Some(field_schema) = properties.and_then(|p| p.get(key)).or(additional) {
            check(field, field_schema, &join(path, key), found);
        }
    }
}

fn string_rules(
    text: &str,
    schema: &Map<String, Value>,
    path: &str,
    found: &mut Vec<(String, String)>,
) {
    let length = text.chars().count() as u64;
    if let Some(max) = schema.get("maxLength").and_then(Value::as_u64)
        && length > max
    {
        found.push((
            path.to_owned(),
            format!("Too long: may not be more than {max} bytes"),
        ));
    }
    if let Some(min) = schema.get("minLength").and_then(Value::as_u64)
        && length < min
    {
        found.push((
            path.to_owned(),
            format!(
                "Invalid value: \"{text}\": {path} in body should be at least {min} chars long"
            ),
        ));
    }
    if let Some(pattern) = schema.get("pattern").and_then(Value::as_str)
        && let Ok(regex) = regex::Regex::new(pattern)
        && !regex.is_match(text)
    {
        found.push((
            path.to_owned(),
            format!("Invalid value: \"{text}\": {path} in body should match '{pattern}'"),
        ));
    }
}

fn number_rules(
    number: f64,
    value: &Value,
    schema: &Map<String, Value>,
    path: &str,
    found: &mut Vec<(String, String)>,
) {
    if let Some(min) = schema.get("minimum").and_then(Value::as_f64) {
        let exclusive = flag(schema, "exclusiveMinimum");
        if number < min || (exclusive && number == min) {
            let than = if exclusive {
                "greater than"
            } else {
                "greater than or equal to"
            };
            found.push((
                path.to_owned(),
                format!(
                    "Invalid value: {value}: {path} in body should be {than} {}",
                    schema["minimum"]
                ),
            ));
        }
    }
    if let Some(max) = schema.get("maximum").and_then(Value::as_f64) {
        let exclusive = flag(schema, "exclusiveMaximum");
        if number > max || (exclusive && number == max) {
            let than = if exclusive {
                "less than"
            } else {
                "less than or equal to"
            };
            found.push((
                path.to_owned(),
                format!(
                    "Invalid value: {value}: {path} in body should be {than} {}",
                    schema["maximum"]
                ),
            ));
        }
    }
}

fn type_problem(path: &str, schema: &Map<String, Value>, value: &Value) -> String {
    let expected = schema
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("object");
    format!(
        "{path} in body must be of type {expected}: \"{}\"",
        type_name(value)
    )
}

fn is_type(value: &Value, expected: &str) -> bool {
    match expected {
        "object" => value.is_object(),
        "array" => value.is_array(),
        "string" => value.is_string(),
        "boolean" => value.is_boolean(),
        "integer" => value.is_i64() || value.is_u64(),
        "number" => value.is_number(),
        _ => true,
    }
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_f64() => "number",
        Value::Number(_) => "integer",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn flag(schema: &Map<String, Value>, name: &str) -> bool {
    schema.get(name) == Some(&Value::Bool(true))
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}
