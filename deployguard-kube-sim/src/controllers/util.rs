//! What every controller shares: typed access to the store, object field helpers, events.

use crate::pointer::Pointer;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde_json::{Value, json};

use super::behaviour::Behaviours;
use crate::clock::{parse_rfc3339, rfc3339};
use crate::resources::ResourceType;
use crate::selectors::{FieldSelector, LabelSelector};
use crate::status::ApiError;
use crate::store::{Part, Store};

/// How long a controller whose create was refused waits before it tries again.
const CREATE_RETRY: Duration = Duration::from_secs(10);

/// A controller pass's view of the cluster.
pub(crate) struct Ctx<'a> {
    pub(crate) store: &'a mut Store,
    pub(crate) types: &'a [ResourceType],
    pub(crate) behaviours: &'a Behaviours,
    pub(crate) logs: &'a mut crate::logs::Logs,
    /// Simulated CPU use, for the autoscaler.
    pub(crate) usage: &'a super::autoscaler::CpuUsage,
    /// The extensions, which may model pods' CPU use.
    pub(crate) extensions: &'a [Arc<dyn crate::Extension>],
    /// The earliest time a controller wants to run again.
    pub(crate) wake: Option<SystemTime>,
}

pub(crate) fn s<'v>(obj: &'v Value, pointer: &str) -> &'v str {
    obj.at(pointer).and_then(Value::as_str).unwrap_or("")
}

pub(crate) fn i(obj: &Value, pointer: &str) -> i64 {
    obj.at(pointer).and_then(Value::as_i64).unwrap_or(0)
}

pub(crate) fn name(obj: &Value) -> String {
    s(obj, "/metadata/name").to_owned()
}

pub(crate) fn namespace(obj: &Value) -> String {
    s(obj, "/metadata/namespace").to_owned()
}

pub(crate) fn uid(obj: &Value) -> String {
    s(obj, "/metadata/uid").to_owned()
}

pub(crate) fn annotation(obj: &Value, key: &str) -> Option<String> {
    obj.at("/metadata/annotations")
        .and_then(|a| a.get(key))
        .and_then(Value::as_str)
        .map(str::to_owned)
}

pub(crate) fn set_annotation(obj: &mut Value, key: &str, value: &str) {
    if obj
        .at("/metadata/annotations")
        .is_none_or(|a| !a.is_object())
    {
        obj["metadata"]["annotations"] = json!({});
    }
    obj["metadata"]["annotations"][key] = json!(value);
}

pub(crate) fn owned_by(obj: &Value, owner_uid: &str) -> bool {
    obj.at("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .is_some_and(|refs| {
            refs.iter().any(|r| {
                r.get("uid").and_then(Value::as_str) == Some(owner_uid)
                    && r.get("controller") == Some(&json!(true))
            })
        })
}

pub(crate) fn owner_reference(owner: &Value) -> Value {
    json!({
        "apiVersion": owner["apiVersion"],
        "kind": owner["kind"],
        "name": owner["metadata"]["name"],
        "uid": owner["metadata"]["uid"],
        "controller": true,
        "blockOwnerDeletion": true,
    })
}

pub(crate) fn time_at(obj: &Value, pointer: &str) -> Option<SystemTime> {
    parse_rfc3339(s(obj, pointer))
}

impl Ctx<'_> {
    pub(crate) fn rt(&self, group: &str, kind: &str) -> ResourceType {
        self.types
            .iter()
            .find(|t| t.group == group && t.kind == kind)
            .cloned()
            .unwrap_or_else(|| {
                ResourceType::custom(group, "v1", kind, &format!("{}s", kind.to_lowercase()))
            })
    }

    pub(crate) fn now(&self) -> SystemTime {
        self.store.clock.now()
    }

    pub(crate) fn now_text(&self) -> String {
        rfc3339(self.now())
    }

    /// Asks for another pass at `at`.
    pub(crate) fn wake_at(&mut self, at: SystemTime) {
        self.wake = Some(self.wake.map_or(at, |w| w.min(at)));
    }

    /// A controller's pod create was refused (a quota, a LimitRange): its `FailedCreate`
    /// event, and another try in a while, as the controller's rate-limited queue retries.
    pub(crate) fn failed_create(&mut self, owner: &Value, component: &str, message: &str) {
        self.event(owner, "Warning", "FailedCreate", message, component, None);
        self.wake_in(CREATE_RETRY);
    }

    pub(crate) fn wake_in(&mut self, after: Duration) {
        let at = self.now() + after;
        self.wake_at(at);
    }

    pub(crate) fn all(&self, group: &str, kind: &str) -> Vec<Value> {
        let rt = self.rt(group, kind);
        self.store.list(
            &rt,
            None,
            &LabelSelector::default(),
            &FieldSelector::default(),
        )
    }

    /// Every object of a kind, shared with the store: copy one only to change it.
    pub(crate) fn all_shared(&self, group: &str, kind: &str) -> Vec<Arc<Value>> {
        self.store.list_shared(&self.rt(group, kind), None)
    }

    /// The objects of a kind in `ns`, shared with the store.
    pub(crate) fn in_namespace_shared(&self, group: &str, kind: &str, ns: &str) -> Vec<Arc<Value>> {
        self.store.list_shared(&self.rt(group, kind), Some(ns))
    }

    /// The objects of a kind that `owner_uid` owns (through the store's owner index).
    pub(crate) fn dependents(&self, group: &str, kind: &str, owner_uid: &str) -> Vec<Arc<Value>> {
        self.store.dependents_of(&self.rt(group, kind), owner_uid)
    }

    /// One object, if it exists.
    pub(crate) fn get(&self, group: &str, kind: &str, ns: &str, name: &str) -> Option<Value> {
        self.store.get(&self.rt(group, kind), ns, name).ok()
    }

    pub(crate) fn create(
        &mut self,
        group: &str,
        kind: &str,
        ns: &str,
        obj: Value,
    ) -> Result<Value, ApiError> {
        let rt = self.rt(group, kind);
        self.store.create(&rt, ns, obj, false)
    }

    pub(crate) fn update(
        &mut self,
        group: &str,
        kind: &str,
        obj: Value,
    ) -> Result<Value, ApiError> {
        self.write(group, kind, obj, Part::Main)
    }

    pub(crate) fn update_status(
        &mut self,
        group: &str,
        kind: &str,
        obj: Value,
    ) -> Result<Value, ApiError> {
        self.write(group, kind, obj, Part::Status)
    }

    fn write(
        &mut self,
        group: &str,
        kind: &str,
        obj: Value,
        part: Part,
    ) -> Result<Value, ApiError> {
        let rt = self.rt(group, kind);
        let (ns, name) = (namespace(&obj), name(&obj));
        self.store.update(&rt, &ns, &name, obj, part, false)
    }

    /// Marks `obj` for deletion with `grace` seconds, as a DELETE of the API does for a pod
    /// on a node (one not yet scheduled is removed at once).
    /// Deletes a pod as the API deletes it: gracefully, with its own grace period (the kubelet
    /// stops it and removes it); one not on a node goes at once.
    pub(crate) fn delete_pod(&mut self, pod: &Value) -> Result<Value, ApiError> {
        let rt = self.rt("", "Pod");
        if !crate::store::is_pod_on_a_node(&rt, pod) {
            return self.delete("", "Pod", pod);
        }
        let grace = crate::store::grace_period(pod);
        self.store
            .mark_deleting(&rt, &namespace(pod), &name(pod), grace, false)
    }

    pub(crate) fn delete(
        &mut self,
        group: &str,
        kind: &str,
        obj: &Value,
    ) -> Result<Value, ApiError> {
        let rt = self.rt(group, kind);
        self.store.delete(&rt, &namespace(obj), &name(obj), false)
    }

    /// Records an event about `involved`, aggregating repeats as the real event recorder does
    /// (same object, reason and message: count and lastTimestamp go up).
    pub(crate) fn event(
        &mut self,
        involved: &Value,
        kind: &str,
        reason: &str,
        message: &str,
        component: &str,
        field_path: Option<&str>,
    ) {
        let ns = namespace(involved);
        let now = self.now_text();
        let object_uid = uid(involved);
        // Events are named after the object they are about: only those are looked at, so
        // recording one costs the same however many events the namespace holds.
        let events = self.rt("", "Event");
        let prefix = format!("{}.", name(involved));
        let existing = self
            .store
            .named_with_prefix(&events, &ns, &prefix)
            .into_iter()
            .find(|e| {
                s(e, "/involvedObject/uid") == object_uid
                    && s(e, "/reason") == reason
                    && s(e, "/message") == message
            });
        if let Some(event) = existing {
            let mut event = Value::clone(&event);
            event["count"] = json!(i(&event, "/count") + 1);
            event["lastTimestamp"] = json!(now);
            let _ = self.update("", "Event", event);
            return;
        }
        // As the event recorder names them: the creation time's Unix nanoseconds in hex, so a
        // list (in name order) is in time order. The resourceVersion, which only grows, is
        // added so two events of one instant differ and keep their order.
        let nanos = self
            .now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        let suffix = format!("{:x}", nanos.wrapping_add(self.store.resource_version()));
        let mut involved_object = json!({
            "kind": involved["kind"],
            "namespace": ns,
            "name": involved["metadata"]["name"],
            "uid": object_uid,
            "apiVersion": involved["apiVersion"],
            "resourceVersion": involved["metadata"]["resourceVersion"],
        });
        if let Some(path) = field_path {
            involved_object["fieldPath"] = json!(path);
        }
        let event = json!({
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": format!("{}.{suffix}", name(involved)), "namespace": ns},
            "involvedObject": involved_object,
            "reason": reason,
            "message": message,
            "type": kind,
            "count": 1,
            "source": {"component": component},
            "reportingComponent": component,
            "reportingInstance": "",
            "firstTimestamp": now,
            "lastTimestamp": now,
        });
        let _ = self.create("", "Event", &ns, event);
    }
}
