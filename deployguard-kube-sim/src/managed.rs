//! Field ownership as server-side apply keeps it: `metadata.managedFields`, one entry per
//! manager and operation, each a set of field paths (`fieldsV1`). An apply that would change a
//! field another manager owns is a conflict unless forced; an apply owns exactly the fields of its
//! configuration, and fields it owned before and dropped (and nobody else owns) are removed; any
//! other write takes over the fields it changes.
//!
//! Lists whose items have a merge key (containers by name, ports by port, …) are keyed per item
//! (`k:{"name":"app"}`); other lists are owned whole, as atomic lists are.

use std::collections::BTreeSet;

use serde_json::{Map, Value, json};

use crate::patch::merge_key;
use crate::status::ApiError;

/// One step of a field path, in `fieldsV1` notation: `f:name` or `k:{"name":"app"}`.
type Step = String;
/// The leaf paths a manager owns.
pub(crate) type FieldSet = BTreeSet<Vec<Step>>;

/// Metadata the server owns: never part of anyone's field set.
const SERVER_METADATA: &[&str] = &[
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "managedFields",
    "selfLink",
];

/// The leaf paths set in `value` (an object's configuration).
pub(crate) fn fields_of(value: &Value) -> FieldSet {
    let mut set = FieldSet::new();
    let Some(map) = value.as_object() else {
        return set;
    };
    for (key, child) in map {
        if matches!(key.as_str(), "apiVersion" | "kind" | "status") {
            continue;
        }
        if key == "metadata" {
            if let Some(meta) = child.as_object() {
                for (field, inner) in meta {
                    if !SERVER_METADATA.contains(&field.as_str()) {
                        collect(
                            inner,
                            &mut vec![step(key), step(field)],
                            &[key.clone(), field.clone()],
                            &mut set,
                        );
                    }
                }
            }
            continue;
        }
        collect(
            child,
            &mut vec![step(key)],
            std::slice::from_ref(key),
            &mut set,
        );
    }
    set
}

fn step(field: &str) -> Step {
    format!("f:{field}")
}

/// Adds the leaves under `value` at `path` (`names` is the same path as plain field names, for
/// merge-key lookups).
fn collect(value: &Value, path: &mut Vec<Step>, names: &[String], set: &mut FieldSet) {
    match value {
        Value::Object(map) if !map.is_empty() => {
            for (key, child) in map {
                path.push(step(key));
                let mut child_names = names.to_vec();
                child_names.push(key.clone());
                collect(child, path, &child_names, set);
                path.pop();
            }
        }
        Value::Array(items) if !items.is_empty() => {
            let (parent, field) = names.split_at(names.len().saturating_sub(1));
            let key = field.first().and_then(|f| merge_key(parent, f));
            match key {
                Some(key) if items.iter().all(|i| i.get(key).is_some()) => {
                    for item in items {
                        path.push(item_step(key, &item[key]));
                        collect(item, path, names, set);
                        path.pop();
                    }
                }
                _ => {
                    set.insert(path.clone());
                }
            }
        }
        _ => {
            set.insert(path.clone());
        }
    }
}

fn item_step(key: &str, value: &Value) -> Step {
    format!("k:{}", json!({ key: value }))
}

/// The value at `path` in `obj`, if any.
fn value_at<'a>(obj: &'a Value, path: &[Step]) -> Option<&'a Value> {
    let mut here = obj;
    for step in path {
        here = if let Some(field) = step.strip_prefix("f:") {
            here.get(field)?
        } else {
            let wanted: Value = serde_json::from_str(step.strip_prefix("k:")?).ok()?;
            let (key, value) = wanted.as_object()?.iter().next()?;
            here.as_array()?
                .iter()
                .find(|i| i.get(key) == Some(value))?
        };
    }
    Some(here)
}

/// Removes the field or list item at `path` from `obj`.
fn remove_at(obj: &mut Value, path: &[Step]) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut here = obj;
    for step in parents {
        let next = if let Some(field) = step.strip_prefix("f:") {
            here.get_mut(field)
        } else {
            let Some(wanted) = step
                .strip_prefix("k:")
                .and_then(|s| serde_json::from_str::<Value>(s).ok())
            else {
                return;
            };
            let Some((key, value)) = wanted.as_object().and_then(|o| o.iter().next()) else {
                return;
            };
            here.as_array_mut()
                .and_then(|items| items.iter_mut().find(|i| i.get(key) == Some(value)))
        };
        match next {
            Some(next) => here = next,
            None => return,
        }
    }
    if let Some(field) = last.strip_prefix("f:") {
        if let Some(map) = here.as_object_mut() {
            map.remove(field);
        }
    } else if let Some(wanted) = last
        .strip_prefix("k:")
        .and_then(|s| serde_json::from_str::<Value>(s).ok())
        && let Some((key, value)) = wanted.as_object().and_then(|o| o.iter().next())
        && let Some(items) = here.as_array_mut()
    {
        items.retain(|i| i.get(key) != Some(value));
    }
}

/// The leaves of `new` whose values differ from `old`'s (added or changed).
pub(crate) fn changed(old: &Value, new: &Value) -> FieldSet {
    fields_of(new)
        .into_iter()
        .filter(|path| value_at(old, path) != value_at(new, path))
        .collect()
}

/// `.spec.template.spec.containers[name="app"].image`, as the server prints a path.
fn printed(path: &[Step]) -> String {
    let mut text = String::new();
    for step in path {
        if let Some(field) = step.strip_prefix("f:") {
            text.push('.');
            text.push_str(field);
        } else if let Some(key) = step
            .strip_prefix("k:")
            .and_then(|s| serde_json::from_str::<Value>(s).ok())
            && let Some((name, value)) = key.as_object().and_then(|o| o.iter().next())
        {
            text.push_str(&format!("[{name}={value}]"));
        }
    }
    text
}

/// `fieldsV1` of a set: nested maps of steps, `{}` at leaves.
fn to_fields_v1(set: &FieldSet) -> Value {
    fn insert(node: &mut Map<String, Value>, path: &[Step]) {
        if let Some((step, rest)) = path.split_first()
            && let Value::Object(child) = node.entry(step.clone()).or_insert_with(|| json!({}))
        {
            insert(child, rest);
        }
    }
    let mut root = Map::new();
    for path in set {
        insert(&mut root, path);
    }
    Value::Object(root)
}

fn from_fields_v1(value: &Value) -> FieldSet {
    fn walk(value: &Value, path: &mut Vec<Step>, set: &mut FieldSet) {
        match value.as_object() {
            Some(map) if !map.is_empty() => {
                for (step, child) in map {
                    if step == "." {
                        set.insert(path.clone());
                        continue;
                    }
                    path.push(step.clone());
                    walk(child, path, set);
                    path.pop();
                }
            }
            _ => {
                set.insert(path.clone());
            }
        }
    }
    let mut set = FieldSet::new();
    walk(value, &mut Vec::new(), &mut set);
    set
}

/// One `managedFields` entry.
#[derive(Debug, Clone)]
struct Entry {
    manager: String,
    operation: String,
    api_version: String,
    time: String,
    subresource: String,
    fields: FieldSet,
}

impl Entry {
    fn parse(value: &Value) -> Self {
        let text = |key: &str| {
            value
                .get(key)
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned()
        };
        Self {
            manager: text("manager"),
            operation: text("operation"),
            api_version: text("apiVersion"),
            time: text("time"),
            subresource: text("subresource"),
            fields: value
                .get("fieldsV1")
                .map(from_fields_v1)
                .unwrap_or_default(),
        }
    }

    fn to_value(&self) -> Value {
        let mut entry = json!({"manager": self.manager, "operation": self.operation,
            "apiVersion": self.api_version, "time": self.time, "fieldsType": "FieldsV1",
            "fieldsV1": to_fields_v1(&self.fields)});
        if !self.subresource.is_empty() {
            entry["subresource"] = json!(self.subresource);
        }
        entry
    }

    /// How a conflict names the manager: an applier by name, an updater with its version.
    fn described(&self) -> String {
        let mut text = format!("{:?}", self.manager);
        if !self.subresource.is_empty() {
            text.push_str(&format!(" with subresource {:?}", self.subresource));
        }
        if self.operation == "Update" {
            text.push_str(&format!(" using {}", self.api_version));
        }
        text
    }
}

fn entries(obj: &Value) -> Vec<Entry> {
    obj.pointer("/metadata/managedFields")
        .and_then(Value::as_array)
        .map(|items| items.iter().map(Entry::parse).collect())
        .unwrap_or_default()
}

fn set_entries(obj: &mut Value, entries: &[Entry]) {
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        let kept: Vec<Value> = entries
            .iter()
            .filter(|e| !e.fields.is_empty())
            .map(Entry::to_value)
            .collect();
        if kept.is_empty() {
            meta.remove("managedFields");
        } else {
            meta.insert("managedFields".into(), Value::Array(kept));
        }
    }
}

/// Who writes, and how.
#[derive(Debug, Clone)]
pub(crate) struct Writer<'a> {
    pub(crate) manager: &'a str,
    pub(crate) api_version: &'a str,
    pub(crate) subresource: &'a str,
    pub(crate) now: String,
}

/// Records a non-apply write (create, update, patch) of `new` over `old` (`Value::Null` for a
/// create): the writer owns what it changed, and nobody else does any more. A write that changes
/// nothing leaves the entries as they were.
pub(crate) fn record_update(old: &Value, new: &mut Value, writer: &Writer<'_>) {
    // A write that sets managedFields itself (kubectl moving a client-side apply's fields to
    // its server-side apply manager) has them as written.
    let requested = new.pointer("/metadata/managedFields");
    if requested
        .and_then(Value::as_array)
        .is_some_and(|m| !m.is_empty())
        && requested != old.pointer("/metadata/managedFields")
    {
        return;
    }
    let mut list = entries(old);
    let taken = changed(old, new);
    if taken.is_empty() {
        set_entries(new, &list);
        return;
    }
    for entry in &mut list {
        entry.fields.retain(|f| !taken.contains(f));
    }
    match list.iter_mut().find(|e| {
        e.manager == writer.manager
            && e.operation == "Update"
            && e.subresource == writer.subresource
    }) {
        Some(entry) => {
            entry.fields.extend(taken);
            entry.time = writer.now.clone();
            entry.api_version = writer.api_version.to_owned();
        }
        None => list.push(Entry {
            manager: writer.manager.to_owned(),
            operation: "Update".into(),
            api_version: writer.api_version.to_owned(),
            time: writer.now.clone(),
            subresource: writer.subresource.to_owned(),
            fields: taken,
        }),
    }
    set_entries(new, &list);
}

/// Server-side apply of `config` by `writer` onto `live` (`Value::Null` when it does not exist
/// yet), given `merged` (the configuration merged onto the live object): the object to store,
/// or the 409 naming every conflict when another manager owns a field the configuration would
/// change and `force` is off.
pub(crate) fn apply(
    live: &Value,
    config: &Value,
    mut merged: Value,
    writer: &Writer<'_>,
    force: bool,
) -> Result<Value, ApiError> {
    let mut list = entries(live);
    let applied = fields_of(config);
    let mut conflicts: Vec<(String, String)> = Vec::new();
    for entry in &list {
        if entry.manager == writer.manager && entry.operation == "Apply" {
            continue;
        }
        for path in entry.fields.intersection(&applied) {
            if value_at(live, path) != value_at(config, path) {
                conflicts.push((entry.described(), printed(path)));
            }
        }
    }
    if !conflicts.is_empty() && !force {
        return Err(conflict_error(&conflicts));
    }
    // Fields this manager applied before and dropped now, which nobody else owns, go.
    let previous = list
        .iter()
        .find(|e| e.manager == writer.manager && e.operation == "Apply")
        .map(|e| e.fields.clone())
        .unwrap_or_default();
    let owned_elsewhere = |prefix: &[Step]| {
        list.iter().any(|e| {
            !(e.manager == writer.manager && e.operation == "Apply")
                && e.fields.iter().any(|f| f.starts_with(prefix))
        })
    };
    let dropped: Vec<&Vec<Step>> = previous.difference(&applied).collect();
    // A list item (`k:{…}`) the configuration no longer has at all goes whole — its key with
    // it — unless another manager owns something in it; removing its leaves one by one would
    // leave a husk without its key.
    let mut gone_items: Vec<Vec<Step>> = Vec::new();
    for path in &dropped {
        for (at, step) in path.iter().enumerate() {
            if !step.starts_with("k:") {
                continue;
            }
            let item = &path[..=at];
            let still_applied = applied.iter().any(|f| f.starts_with(item));
            if !still_applied
                && !owned_elsewhere(item)
                && !gone_items.iter().any(|g| item.starts_with(g))
            {
                gone_items.push(item.to_vec());
            }
        }
    }
    for item in &gone_items {
        remove_at(&mut merged, item);
    }
    for path in dropped {
        if gone_items.iter().any(|g| path.starts_with(g)) {
            continue;
        }
        if !owned_elsewhere(path) {
            remove_at(&mut merged, path);
        }
    }
    if force {
        for entry in &mut list {
            if !(entry.manager == writer.manager && entry.operation == "Apply") {
                entry
                    .fields
                    .retain(|f| !applied.contains(f) || value_at(live, f) == value_at(config, f));
            }
        }
    }
    let unchanged = previous == applied && strip(&merged) == strip(live);
    match list
        .iter_mut()
        .find(|e| e.manager == writer.manager && e.operation == "Apply")
    {
        Some(entry) => {
            if !unchanged {
                entry.time = writer.now.clone();
            }
            entry.fields = applied;
            entry.api_version = writer.api_version.to_owned();
        }
        None => list.push(Entry {
            manager: writer.manager.to_owned(),
            operation: "Apply".into(),
            api_version: writer.api_version.to_owned(),
            time: writer.now.clone(),
            subresource: writer.subresource.to_owned(),
            fields: applied,
        }),
    }
    set_entries(&mut merged, &list);
    Ok(merged)
}

/// The object without what a write does not set itself (its managers, the resourceVersion a
/// patch may have dropped as no precondition), for telling a no-op apply from a change.
fn strip(obj: &Value) -> Value {
    let mut copy = obj.clone();
    if let Some(meta) = copy.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("managedFields");
        meta.remove("resourceVersion");
    }
    copy
}

/// The 409 server-side apply answers, worded as the API server words it.
fn conflict_error(conflicts: &[(String, String)]) -> ApiError {
    let message = if let [(manager, path)] = conflicts {
        format!("Apply failed with 1 conflict: conflict with {manager}: {path}")
    } else {
        let mut managers: Vec<&String> = conflicts.iter().map(|(m, _)| m).collect();
        managers.sort();
        managers.dedup();
        let mut lines = Vec::new();
        for manager in managers {
            lines.push(format!("conflicts with {manager}:"));
            for (_, path) in conflicts.iter().filter(|(m, _)| m == manager) {
                lines.push(format!("- {path}"));
            }
        }
        format!(
            "Apply failed with {} conflicts: {}",
            conflicts.len(),
            lines.join("\n")
        )
    };
    let causes: Vec<Value> = conflicts
        .iter()
        .map(|(manager, path)| {
            let name = manager.split(" with ").next().unwrap_or(manager);
            let name = name.split(" using ").next().unwrap_or(name);
            json!({"reason": "FieldManagerConflict", "message": format!("conflict with {name}"), "field": path})
        })
        .collect();
    ApiError {
        details: json!({"causes": causes}),
        ..ApiError::new(409, "Conflict", message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn writer(manager: &str) -> Writer<'_> {
        Writer {
            manager,
            api_version: "apps/v1",
            subresource: "",
            now: "2026-01-01T00:00:00Z".into(),
        }
    }

    fn deployment(replicas: u64, image: &str) -> Value {
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "labels": {"app": "web"}},
            "spec": {"replicas": replicas, "template": {"spec": {"containers": [{"name": "app", "image": image}]}}}})
    }

    #[test]
    fn a_configuration_owns_its_leaves_with_containers_keyed_by_name() {
        let paths: Vec<String> = fields_of(&deployment(2, "a"))
            .iter()
            .map(|p| printed(p))
            .collect();
        assert_eq!(
            paths,
            [
                ".metadata.labels.app",
                ".spec.replicas",
                ".spec.template.spec.containers[name=\"app\"].image",
                ".spec.template.spec.containers[name=\"app\"].name",
            ]
        );
        let set = fields_of(&deployment(2, "a"));
        assert_eq!(from_fields_v1(&to_fields_v1(&set)), set);
    }

    #[test]
    fn apply_conflicts_only_where_another_manager_owns_a_value_it_would_change() {
        let live = apply(
            &Value::Null,
            &deployment(2, "a"),
            deployment(2, "a"),
            &writer("kubectl"),
            false,
        )
        .unwrap();
        let mut patched = live.clone();
        patched["spec"]["replicas"] = json!(5);
        record_update(&live, &mut patched, &writer("kubectl-patch"));
        let err = apply(
            &patched,
            &deployment(2, "a"),
            deployment(2, "a"),
            &writer("kubectl"),
            false,
        )
        .unwrap_err();
        assert_eq!(
            err.message,
            "Apply failed with 1 conflict: conflict with \"kubectl-patch\" using apps/v1: .spec.replicas"
        );
        // The same value as the other manager's is shared, not a conflict.
        apply(
            &patched,
            &deployment(5, "a"),
            deployment(5, "a"),
            &writer("kubectl"),
            false,
        )
        .unwrap();
        // Forced, the field changes hands.
        let forced = apply(
            &patched,
            &deployment(2, "a"),
            deployment(2, "a"),
            &writer("kubectl"),
            true,
        )
        .unwrap();
        let list = entries(&forced);
        assert_eq!(list.len(), 1, "{list:?}");
        assert_eq!(list[0].manager, "kubectl");
    }

    #[test]
    fn a_repeated_apply_keeps_its_entry_time_so_nothing_is_written() {
        let mut live = apply(
            &Value::Null,
            &deployment(2, "a"),
            deployment(2, "a"),
            &writer("kubectl"),
            false,
        )
        .unwrap();
        live["metadata"]["resourceVersion"] = json!("5");
        let mut merged = live.clone();
        // The patch path drops a resourceVersion the patch did not set.
        merged["metadata"]
            .as_object_mut()
            .unwrap()
            .remove("resourceVersion");
        let later = Writer {
            now: "2026-01-01T00:05:00Z".into(),
            ..writer("kubectl")
        };
        let again = apply(&live, &deployment(2, "a"), merged, &later, false).unwrap();
        assert_eq!(
            again["metadata"]["managedFields"],
            live["metadata"]["managedFields"]
        );
    }

    #[test]
    fn fields_dropped_from_the_configuration_are_removed_unless_someone_else_owns_them() {
        let live = apply(
            &Value::Null,
            &deployment(2, "a"),
            deployment(2, "a"),
            &writer("kubectl"),
            false,
        )
        .unwrap();
        let mut smaller = deployment(2, "a");
        smaller["metadata"]
            .as_object_mut()
            .unwrap()
            .remove("labels");
        let merged = live.clone();
        let after = apply(&live, &smaller, merged, &writer("kubectl"), false).unwrap();
        assert!(after.pointer("/metadata/labels/app").is_none(), "{after}");
    }
}
