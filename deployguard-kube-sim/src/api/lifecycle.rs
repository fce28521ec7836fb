//! Deletion and what follows it: delete options, orphaning, namespace termination and the
//! garbage collection of owned objects.

use super::*;

/// What a DELETE asks for, from its query or its `DeleteOptions` body (kubectl sends the body).
pub(super) struct DeleteOptions {
    pub(super) grace_period: Option<u64>,
    /// `propagationPolicy: Orphan` (`kubectl delete --cascade=orphan`): dependents stay, with
    /// the owner's reference removed.
    pub(super) orphan: bool,
    /// `propagationPolicy: Foreground` (`kubectl delete --cascade=foreground`): the owner stays,
    /// with the `foregroundDeletion` finalizer, until its dependents are gone.
    pub(super) foreground: bool,
}

impl DeleteOptions {
    pub(super) fn of(request: &ApiRequest) -> Result<Self, ApiError> {
        let body: Value = if request.body.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&request.body)
                .map_err(|e| ApiError::bad_request(format!("error decoding DeleteOptions: {e}")))?
        };
        let policy = request
            .param("propagationPolicy")
            .map(str::to_owned)
            .or_else(|| {
                body.get("propagationPolicy")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            })
            .or_else(|| {
                (body.get("orphanDependents") == Some(&Value::Bool(true))).then(|| "Orphan".into())
            });
        if let Some(policy) = &policy
            && !matches!(policy.as_str(), "Orphan" | "Background" | "Foreground")
        {
            return Err(ApiError::bad_request(format!(
                "DeleteOptions.meta.k8s.io \"\" is invalid: propagationPolicy: Unsupported value: \"{policy}\": supported values: \"Foreground\", \"Background\", \"Orphan\", \"nil\""
            )));
        }
        let grace_period = request
            .param("gracePeriodSeconds")
            .and_then(|g| g.parse().ok())
            .or_else(|| body.get("gracePeriodSeconds").and_then(Value::as_u64));
        Ok(Self {
            grace_period,
            orphan: policy.as_deref() == Some("Orphan"),
            foreground: policy.as_deref() == Some("Foreground"),
        })
    }
}

/// The namespace and name of a stored object.
pub(super) fn key_of(obj: &Value) -> (String, String) {
    let text = |pointer: &str| {
        obj.pointer(pointer)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned()
    };
    (text("/metadata/namespace"), text("/metadata/name"))
}

/// Removes the references to `uid` from the objects it owned (orphan propagation).
pub(super) fn orphan_dependents(
    store: &mut crate::store::Store,
    types: &[ResourceType],
    uid: &str,
) {
    if uid.is_empty() {
        return;
    }
    let (everything, any) = (LabelSelector::default(), FieldSelector::default());
    for rt in types {
        for mut obj in store.list(rt, None, &everything, &any) {
            let Some(refs) = obj
                .pointer_mut("/metadata/ownerReferences")
                .and_then(Value::as_array_mut)
            else {
                continue;
            };
            let before = refs.len();
            refs.retain(|r| r.get("uid").and_then(Value::as_str) != Some(uid));
            if refs.len() == before {
                continue;
            }
            let (ns, name) = key_of(&obj);
            if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
                meta.remove("resourceVersion");
            }
            let _ = store.update(rt, &ns, &name, obj, Part::Main, false);
        }
    }
}

/// A namespace being deleted: `Terminating`, everything in it deleted (pods on nodes wait for
/// their kubelet), and the namespace itself removed once it is empty.
pub(super) fn terminate_namespace(
    shared: &Shared,
    types: &[ResourceType],
    name: &str,
) -> Result<Value, ApiError> {
    let namespaces = types_namespace(shared);
    let mut store = lock(&shared.store);
    let mut namespace = store.get(&namespaces, "", name)?;
    namespace["status"] = json!({"phase": "Terminating"});
    let namespace = store.update(&namespaces, "", name, namespace, Part::Status, false)?;
    let (everything, any) = (LabelSelector::default(), FieldSelector::default());
    for rt in types.iter().filter(|t| t.namespaced) {
        for obj in store.list(rt, Some(name), &everything, &any) {
            let object = obj
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned();
            if crate::store::is_pod_on_a_node(rt, &obj) {
                let grace = crate::store::grace_period(&obj);
                let _ = store.mark_deleting(rt, name, &object, grace, false);
            } else if obj
                .pointer("/metadata/finalizers")
                .and_then(Value::as_array)
                .is_some_and(|f| !f.is_empty())
            {
                let _ = store.mark_deleting(rt, name, &object, 0, false);
            } else {
                let _ = store.delete(rt, name, &object, false);
            }
        }
    }
    Ok(finish_namespace(&mut store, types, &namespaces, name).unwrap_or(namespace))
}

/// Removes a terminating namespace once nothing is left in it; returns it deleted, or `None`
/// while objects remain.
pub(crate) fn finish_namespace(
    store: &mut crate::store::Store,
    types: &[ResourceType],
    namespaces: &ResourceType,
    name: &str,
) -> Option<Value> {
    let (everything, any) = (LabelSelector::default(), FieldSelector::default());
    let empty = types
        .iter()
        .filter(|t| t.namespaced)
        .all(|rt| store.list(rt, Some(name), &everything, &any).is_empty());
    empty
        .then(|| store.delete(namespaces, "", name, false).ok())
        .flatten()
}

/// Deletes what `uid` owned, recursively (background cascading deletion).
pub(super) fn collect_garbage(store: &mut crate::store::Store, types: &[ResourceType], uid: &str) {
    if uid.is_empty() {
        return;
    }
    let everything = LabelSelector::default();
    let any = FieldSelector::default();
    for rt in types {
        for obj in store.list(rt, None, &everything, &any) {
            let owned = obj
                .pointer("/metadata/ownerReferences")
                .and_then(Value::as_array)
                .is_some_and(|refs| {
                    refs.iter()
                        .any(|r| r.get("uid").and_then(Value::as_str) == Some(uid))
                });
            if owned {
                let (ns, name) = key_of(&obj);
                // A pod on a node is deleted as the garbage collector deletes it, through the
                // API with its grace period: it terminates, and its kubelet removes it.
                if crate::store::is_pod_on_a_node(rt, &obj) {
                    let grace = crate::store::grace_period(&obj);
                    if grace > 0 {
                        let _ = store.mark_deleting(rt, &ns, &name, grace, false);
                        continue;
                    }
                }
                if let Ok(deleted) = store.delete(rt, &ns, &name, false) {
                    let child = deleted
                        .pointer("/metadata/uid")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_owned();
                    collect_garbage(store, types, &child);
                }
            }
        }
    }
}

/// Starts a foreground deletion of an object with dependents: it gets the `foregroundDeletion`
/// finalizer and its deletion time, its dependents are deleted, and the garbage collector
/// removes it once they are gone.
pub(super) fn delete_in_foreground(
    store: &mut crate::store::Store,
    types: &[ResourceType],
    rt: &ResourceType,
    ns: &str,
    name: &str,
) -> Result<Value, ApiError> {
    let mut current = store.get(rt, ns, name)?;
    let uid = current
        .pointer("/metadata/uid")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    let finalizers = current["metadata"]
        .as_object_mut()
        .map(|m| m.entry("finalizers").or_insert_with(|| json!([])));
    if let Some(Value::Array(list)) = finalizers
        && !list.iter().any(|f| f == "foregroundDeletion")
    {
        list.push(json!("foregroundDeletion"));
    }
    store.update(rt, ns, name, current, crate::store::Part::Main, false)?;
    let marked = store.mark_deleting(rt, ns, name, 0, false)?;
    store
        .foreground
        .push((rt.clone(), ns.to_owned(), name.to_owned()));
    // Foreground all the way down: a dependent with dependents of its own waits for them too.
    let dependents: Vec<(ResourceType, Value)> = types
        .iter()
        .flat_map(|t| {
            store
                .dependents_of(t, &uid)
                .into_iter()
                .map(|d| (t.clone(), Value::clone(&d)))
        })
        .collect();
    for (dependent_rt, dependent) in dependents {
        let (dependent_ns, dependent_name) = key_of(&dependent);
        let dependent_uid = dependent
            .pointer("/metadata/uid")
            .and_then(Value::as_str)
            .unwrap_or("");
        if dependent.pointer("/metadata/deletionTimestamp").is_some() {
            continue;
        }
        if store.has_dependents(dependent_uid) {
            delete_in_foreground(store, types, &dependent_rt, &dependent_ns, &dependent_name)?;
        } else if crate::store::is_pod_on_a_node(&dependent_rt, &dependent) {
            let grace = crate::store::grace_period(&dependent);
            store.mark_deleting(&dependent_rt, &dependent_ns, &dependent_name, grace, false)?;
        } else {
            store.delete(&dependent_rt, &dependent_ns, &dependent_name, false)?;
        }
    }
    Ok(marked)
}
