//! The object store: objects as JSON, one global resourceVersion counter, a bounded change
//! history that watches resume from, and the write semantics of the real API server.

use crate::pointer::Pointer;
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::Arc;

use serde_json::{Value, json};
use tokio::sync::broadcast;

use crate::clock::Clock;
use crate::defaults::{apply_defaults, validate};
use crate::resources::ResourceType;
use crate::selectors::{FieldSelector, LabelSelector};
use crate::status::ApiError;

/// What happened to an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    /// Created.
    Added,
    /// Updated.
    Modified,
    /// Deleted.
    Deleted,
}

impl ChangeKind {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Added => "ADDED",
            Self::Modified => "MODIFIED",
            Self::Deleted => "DELETED",
        }
    }
}

/// One change, as watches see it.
#[derive(Debug, Clone)]
pub struct Change {
    /// The resourceVersion the change produced.
    pub rv: u64,
    /// The resource's store key (`apps/deployments`).
    pub resource: String,
    /// The object's namespace (empty for cluster-scoped objects).
    pub namespace: String,
    /// What happened.
    pub kind: ChangeKind,
    /// The object after the change (before it, for deletions), shared with the store.
    pub object: Arc<Value>,
    /// The object before the change (`None` for a creation): lists at an earlier
    /// resourceVersion are rebuilt from it.
    pub(crate) previous: Option<Arc<Value>>,
    /// When the change was made (the history forgets what is older than [`HISTORY_WINDOW`]).
    pub(crate) at: tokio::time::Instant,
}

/// Which part of an object a write may change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Part {
    /// Everything but status.
    Main,
    /// Status (and, as the Deployment controller relies on, annotations).
    Status,
}

/// One kind's objects. Shared with the change history: a write stores one copy, which the
/// history and watches hold too.
type Objects = BTreeMap<(String, String), Arc<Value>>;

/// How many changes watches can resume from, at most.
const HISTORY: usize = 50_000;

/// How long a change stays in the history, as etcd's compaction every five minutes keeps it:
/// a watch or an exact list from before is answered 410 Expired (clients relist; watchers that
/// take bookmarks keep a recent resourceVersion).
pub(crate) const HISTORY_WINDOW: std::time::Duration = std::time::Duration::from_secs(300);

#[derive(Debug)]
pub(crate) struct Store {
    rv: u64,
    uids: u64,
    names: u64,
    objects: HashMap<String, Objects>,
    /// Who owns what: owner uid → (store key, namespace, name) of each dependent, so a
    /// controller finds an owner's ReplicaSets or pods without scanning the namespace.
    dependents: HashMap<String, BTreeSet<(String, String, String)>>,
    history: VecDeque<Arc<Change>>,
    /// The resourceVersion of the last change to each kind, by store key: what tells a
    /// controller whether anything it reads has changed.
    last_change: HashMap<String, u64>,
    /// Changes at or below this resourceVersion are gone from the history.
    compacted: u64,
    pub(crate) changes: broadcast::Sender<Arc<Change>>,
    pub(crate) clock: Clock,
    /// Objects deleted in the foreground, waiting for their dependents to go: (type, namespace,
    /// name). The garbage collector removes their `foregroundDeletion` finalizer then.
    pub(crate) foreground: Vec<(ResourceType, String, String)>,
}

/// The uids an object's owner references name.
fn owner_uids(obj: Option<&Arc<Value>>) -> impl Iterator<Item = &str> {
    obj.and_then(|o| o.at("/metadata/ownerReferences"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|r| r.get("uid").and_then(Value::as_str))
}

fn meta(obj: &Value, field: &str) -> Option<String> {
    obj.get("metadata")?.get(field)?.as_str().map(str::to_owned)
}

fn set_meta(obj: &mut Value, field: &str, value: Value) {
    if let Some(map) = obj.as_object_mut() {
        let metadata = map.entry("metadata").or_insert_with(|| json!({}));
        if let Some(metadata) = metadata.as_object_mut() {
            metadata.insert(field.to_owned(), value);
        }
    }
}

/// Where an object is stored: cluster-scoped objects have no namespace.
fn object_key(rt: &ResourceType, namespace: &str, name: &str) -> (String, String) {
    let namespace = if rt.namespaced { namespace } else { "" };
    (namespace.to_owned(), name.to_owned())
}

/// The generateName suffix alphabet of the API server.
const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

impl Store {
    pub(crate) fn new(clock: Clock) -> Self {
        let (changes, _) = broadcast::channel(16_384);
        Self {
            rv: 1,
            uids: 0,
            names: 0,
            objects: HashMap::new(),
            dependents: HashMap::new(),
            history: VecDeque::new(),
            last_change: HashMap::new(),
            compacted: 0,
            changes,
            clock,
            foreground: Vec::new(),
        }
    }

    pub(crate) fn resource_version(&self) -> u64 {
        self.rv
    }

    /// Every change after `rv`, oldest first; `None` when the history no longer reaches back
    /// that far (a controller then looks at everything).
    pub(crate) fn changes_after(&self, rv: u64) -> Option<Vec<Arc<Change>>> {
        if rv < self.compacted {
            return None;
        }
        let mut changes: Vec<Arc<Change>> = self
            .history
            .iter()
            .rev()
            .take_while(|c| c.rv > rv)
            .cloned()
            .collect();
        changes.reverse();
        Some(changes)
    }

    /// The resourceVersion of the last change to objects under `store_key` (`group/plural`),
    /// 0 if none.
    pub(crate) fn last_change_of(&self, store_key: &str) -> u64 {
        self.last_change.get(store_key).copied().unwrap_or(0)
    }

    fn next_uid(&mut self) -> String {
        self.uids += 1;
        format!(
            "6b1e0000-{:04x}-4000-8000-{:012x}",
            (self.uids >> 48) & 0xffff,
            self.uids & 0xffff_ffff_ffff
        )
    }

    /// Five characters for a generated name, deterministic per store.
    fn name_suffix(&mut self) -> String {
        self.names += 1;
        let mut n = self.names.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 20;
        (0..5)
            .map(|_| {
                let c = ALPHABET[(n % 27) as usize] as char;
                n /= 27;
                c
            })
            .collect()
    }

    fn record(
        &mut self,
        rt: &ResourceType,
        namespace: &str,
        kind: ChangeKind,
        object: Arc<Value>,
        previous: Option<Arc<Value>>,
    ) {
        let now = tokio::time::Instant::now();
        let resource = rt.store_key();
        match self.last_change.get_mut(&resource) {
            Some(rv) => *rv = self.rv,
            None => {
                self.last_change.insert(resource.clone(), self.rv);
            }
        }
        let change = Arc::new(Change {
            rv: self.rv,
            resource,
            namespace: namespace.to_owned(),
            kind,
            object,
            previous,
            at: now,
        });
        self.history.push_back(Arc::clone(&change));
        while self.history.len() > HISTORY
            || self
                .history
                .front()
                .is_some_and(|c| now.duration_since(c.at) > HISTORY_WINDOW)
        {
            if let Some(old) = self.history.pop_front() {
                self.compacted = old.rv;
            }
        }
        // No receivers is fine: nobody watches.
        let _ = self.changes.send(change);
    }

    /// Makes a change visible: a new resourceVersion, the stored object (removed for a
    /// deletion, already gone from the map), and the change for watches.
    fn commit(
        &mut self,
        rt: &ResourceType,
        namespace: &str,
        key: (String, String),
        mut obj: Value,
        kind: ChangeKind,
    ) -> Value {
        self.rv += 1;
        set_meta(&mut obj, "resourceVersion", json!(self.rv.to_string()));
        let entry = (rt.store_key(), key.0.clone(), key.1.clone());
        let shared = Arc::new(obj);
        let previous = if kind == ChangeKind::Deleted {
            Some(Arc::clone(&shared))
        } else {
            self.objects
                .entry(rt.store_key())
                .or_default()
                .insert(key, Arc::clone(&shared))
        };
        for owner in owner_uids(previous.as_ref()) {
            if let Some(set) = self.dependents.get_mut(owner) {
                set.remove(&entry);
                if set.is_empty() {
                    self.dependents.remove(owner);
                }
            }
        }
        if kind != ChangeKind::Deleted {
            for owner in owner_uids(Some(&shared)) {
                self.dependents
                    .entry(owner.to_owned())
                    .or_default()
                    .insert(entry.clone());
            }
        }
        self.record(rt, namespace, kind, Arc::clone(&shared), previous);
        Value::clone(&shared)
    }

    /// The objects of `rt` whose owner references name `owner_uid`, in (namespace, name)
    /// order, found through the owner index.
    /// Whether anything still names `owner_uid` as an owner.
    pub(crate) fn has_dependents(&self, owner_uid: &str) -> bool {
        self.dependents
            .get(owner_uid)
            .is_some_and(|d| !d.is_empty())
    }

    pub(crate) fn dependents_of(&self, rt: &ResourceType, owner_uid: &str) -> Vec<Arc<Value>> {
        let store_key = rt.store_key();
        let Some(objects) = self.objects.get(&store_key) else {
            return Vec::new();
        };
        self.dependents
            .get(owner_uid)
            .into_iter()
            .flatten()
            .filter(|(kind, _, _)| *kind == store_key)
            .filter_map(|(_, ns, name)| objects.get(&(ns.clone(), name.clone())))
            .map(|obj| shared_as(rt, obj))
            .collect()
    }

    /// Forgets the change history: watches from any earlier resourceVersion get 410 Expired.
    pub(crate) fn compact(&mut self) {
        self.history.clear();
        self.compacted = self.rv;
    }

    /// 504 for a resourceVersion the store has not reached, as the real server words it.
    pub(crate) fn too_large(&self, rv: u64) -> ApiError {
        ApiError {
            details: json!({"causes": [{"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}], "retryAfterSeconds": 1}),
            ..ApiError::new(
                504,
                "Timeout",
                format!("Too large resource version: {rv}, current: {}", self.rv),
            )
        }
    }

    /// The objects of `rt` as they were at resourceVersion `rv` (a list with
    /// `resourceVersionMatch=Exact`): 410 once compacted away, 504 for a future one.
    pub(crate) fn list_at(
        &self,
        rt: &ResourceType,
        namespace: Option<&str>,
        labels: &LabelSelector,
        fields: &FieldSelector,
        rv: u64,
    ) -> Result<Vec<Value>, ApiError> {
        if rv > self.rv {
            return Err(self.too_large(rv));
        }
        if rv < self.compacted {
            return Err(ApiError::expired(
                "The resourceVersion for the provided list is too old.".into(),
            ));
        }
        let resource = rt.store_key();
        let mut state = self.objects.get(&resource).cloned().unwrap_or_default();
        for change in self
            .history
            .iter()
            .rev()
            .take_while(|c| c.rv > rv)
            .filter(|c| c.resource == resource)
        {
            let name = meta(&change.object, "name").unwrap_or_default();
            let key = object_key(rt, &change.namespace, &name);
            match (&change.kind, &change.previous) {
                (ChangeKind::Added, _) | (_, None) => {
                    state.remove(&key);
                }
                (_, Some(previous)) => {
                    state.insert(key, Arc::clone(previous));
                }
            }
        }
        Ok(state
            .into_values()
            .filter(|obj| {
                namespace.is_none_or(|ns| meta(obj, "namespace").as_deref() == Some(ns))
                    && labels.matches(obj.at("/metadata/labels").and_then(Value::as_object))
                    && fields.matches(obj)
            })
            .map(|obj| served_as(rt, Arc::unwrap_or_clone(obj)))
            .collect())
    }

    /// Changes after `rv` for `resource`, or 410 if they are gone.
    pub(crate) fn changes_since(
        &self,
        resource: &str,
        rv: u64,
    ) -> Result<Vec<Arc<Change>>, ApiError> {
        if rv < self.compacted {
            return Err(ApiError::expired(format!(
                "too old resource version: {rv} ({})",
                self.compacted + 1
            )));
        }
        Ok(self
            .history
            .iter()
            .filter(|c| c.rv > rv && c.resource == resource)
            .cloned()
            .collect())
    }

    pub(crate) fn get(
        &self,
        rt: &ResourceType,
        namespace: &str,
        name: &str,
    ) -> Result<Value, ApiError> {
        self.objects
            .get(&rt.store_key())
            .and_then(|objects| objects.get(&(namespace.to_owned(), name.to_owned())))
            .map(|obj| served_as(rt, Value::clone(obj)))
            .ok_or_else(|| ApiError::not_found(rt, name))
    }

    /// One object, shared with the store (for reading only).
    pub(crate) fn get_shared(
        &self,
        rt: &ResourceType,
        namespace: &str,
        name: &str,
    ) -> Option<Arc<Value>> {
        self.objects
            .get(&rt.store_key())
            .and_then(|objects| objects.get(&(namespace.to_owned(), name.to_owned())))
            .cloned()
    }

    /// The objects in `namespace` whose names start with `prefix`, found by range in the
    /// name-ordered map (no scan, no copies of the others).
    pub(crate) fn named_with_prefix(
        &self,
        rt: &ResourceType,
        namespace: &str,
        prefix: &str,
    ) -> Vec<Arc<Value>> {
        let Some(objects) = self.objects.get(&rt.store_key()) else {
            return Vec::new();
        };
        let start = (namespace.to_owned(), prefix.to_owned());
        objects
            .range(start..)
            .take_while(|((ns, name), _)| ns == namespace && name.starts_with(prefix))
            .map(|(_, obj)| shared_as(rt, obj))
            .collect()
    }

    pub(crate) fn list(
        &self,
        rt: &ResourceType,
        namespace: Option<&str>,
        labels: &LabelSelector,
        fields: &FieldSelector,
    ) -> Vec<Value> {
        self.list_page(rt, namespace, labels, fields, None, usize::MAX)
            .0
    }

    /// The objects of namespace `namespace` stored under `key` (`group/plural`).
    pub(crate) fn objects_in(&self, key: &str, namespace: &str) -> Vec<Arc<Value>> {
        self.objects
            .get(key)
            .map(|objects| {
                objects
                    .range((namespace.to_owned(), String::new())..)
                    .take_while(|((ns, _), _)| ns == namespace)
                    .map(|(_, obj)| Arc::clone(obj))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Every object of a kind (in `namespace`, when given), shared with the store: what a
    /// controller pass reads, without a deep copy of objects it only looks at.
    pub(crate) fn list_shared(
        &self,
        rt: &ResourceType,
        namespace: Option<&str>,
    ) -> Vec<Arc<Value>> {
        let Some(objects) = self.objects.get(&rt.store_key()) else {
            return Vec::new();
        };
        objects
            .iter()
            .filter(|((ns, _), _)| namespace.is_none_or(|want| want == ns))
            .map(|(_, obj)| shared_as(rt, obj))
            .collect()
    }

    /// One page of a listing, in stable (namespace, name) order, starting after the key `after`
    /// (the last key of the previous page): the page, how many matching objects follow it, and
    /// the page's last key. Only the page is copied, and a page costs the same wherever it starts.
    pub(crate) fn list_page(
        &self,
        rt: &ResourceType,
        namespace: Option<&str>,
        labels: &LabelSelector,
        fields: &FieldSelector,
        after: Option<&(String, String)>,
        limit: usize,
    ) -> (Vec<Value>, usize, Option<(String, String)>) {
        use std::ops::Bound;
        let Some(objects) = self.objects.get(&rt.store_key()) else {
            return (Vec::new(), 0, None);
        };
        let in_namespace = namespace.map(|ns| (ns.to_owned(), String::new()));
        let lower = match (after, &in_namespace) {
            (Some(key), Some(first)) if key < first => Bound::Included(first),
            (Some(key), _) => Bound::Excluded(key),
            (None, Some(first)) => Bound::Included(first),
            (None, None) => Bound::Unbounded,
        };
        let matching = objects
            .range::<(String, String), _>((lower, Bound::Unbounded))
            .take_while(|((ns, _), _)| namespace.is_none_or(|want| want == ns))
            .filter(|((_, name), _)| fields.name().is_none_or(|n| n == name))
            .filter(|(_, obj)| {
                labels.matches(obj.at("/metadata/labels").and_then(Value::as_object))
                    && fields.matches(obj)
            });
        let mut page = Vec::new();
        let mut last = None;
        let mut remaining = 0;
        for (key, obj) in matching {
            if page.len() < limit {
                page.push(served_as(rt, Value::clone(obj)));
                last = Some(key.clone());
            } else {
                remaining += 1;
            }
        }
        (page, remaining, last)
    }

    pub(crate) fn create(
        &mut self,
        rt: &ResourceType,
        namespace: &str,
        mut obj: Value,
        dry_run: bool,
    ) -> Result<Value, ApiError> {
        if !obj.is_object() {
            return Err(ApiError::bad_request(
                "the body of the request was in an unknown format",
            ));
        }
        if meta(&obj, "name").is_none_or(|n| n.is_empty())
            && let Some(prefix) = meta(&obj, "generateName")
        {
            let mut base = prefix;
            base.truncate(58);
            let name = format!("{base}{}", self.name_suffix());
            set_meta(&mut obj, "name", json!(name));
        }
        let name = meta(&obj, "name").unwrap_or_default();
        if let Some(map) = obj.as_object_mut() {
            map.insert("apiVersion".into(), json!(rt.api_version()));
            map.insert("kind".into(), json!(rt.kind));
        }
        if rt.namespaced {
            set_meta(&mut obj, "namespace", json!(namespace));
        }
        apply_defaults(rt, &mut obj);
        let is_pod = rt.group.is_empty() && rt.kind == "Pod";
        let limit_ranges = if is_pod {
            self.objects_in("/limitranges", namespace)
        } else {
            Vec::new()
        };
        crate::admission::default_resources(&limit_ranges, &mut obj);
        validate(rt, &obj)?;
        if rt.group.is_empty() && rt.kind == "Service" {
            crate::services::allocate(rt, &mut obj, None, &self.list_shared(rt, None))?;
        }
        crate::admission::check_limits(rt, &limit_ranges, &obj)?;
        if rt.namespaced {
            let quotas = self.objects_in("/resourcequotas", namespace);
            if !quotas.is_empty() {
                crate::admission::check_quotas(rt, &obj, &quotas, |key| {
                    self.objects_in(key, namespace)
                })?;
            }
        }
        let key = object_key(rt, namespace, &name);
        if self
            .objects
            .get(&rt.store_key())
            .is_some_and(|o| o.contains_key(&key))
        {
            return Err(ApiError::already_exists(rt, &name));
        }
        if let Some(map) = obj.as_object_mut() {
            // A new object's status is the server's, never the client's (except for kinds with
            // no status subresource, such as events).
            if rt.subresources.iter().any(|s| s == "status") && map.contains_key("spec") {
                map.remove("status");
            }
        }
        let uid = self.next_uid();
        set_meta(&mut obj, "uid", json!(uid));
        crate::defaults::apply_creation_defaults(rt, &mut obj, &uid);
        set_meta(&mut obj, "creationTimestamp", json!(self.clock.rfc3339()));
        if rt.has_generation() {
            set_meta(&mut obj, "generation", json!(1));
        }
        if dry_run {
            set_meta(&mut obj, "resourceVersion", json!(self.rv.to_string()));
            return Ok(obj);
        }
        Ok(self.commit(rt, namespace, key, obj, ChangeKind::Added))
    }

    /// Replaces an object (PUT, or the result of a PATCH). A `resourceVersion` in `obj` must
    /// match the stored one; a write that changes nothing changes no resourceVersion.
    pub(crate) fn update(
        &mut self,
        rt: &ResourceType,
        namespace: &str,
        name: &str,
        mut obj: Value,
        part: Part,
        dry_run: bool,
    ) -> Result<Value, ApiError> {
        let old = self.get(rt, namespace, name)?;
        if let Some(rv) = meta(&obj, "resourceVersion")
            && !rv.is_empty()
            && Some(&rv) != meta(&old, "resourceVersion").as_ref()
        {
            return Err(ApiError::conflict(rt, name));
        }
        if let Some(body_name) = meta(&obj, "name")
            && body_name != name
        {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({body_name}) does not match the name on the URL ({name})"
            )));
        }
        let Some(map) = obj.as_object_mut() else {
            return Err(ApiError::bad_request(
                "the body of the request was in an unknown format",
            ));
        };
        map.insert("apiVersion".into(), json!(rt.api_version()));
        map.insert("kind".into(), json!(rt.kind));
        // Server-owned metadata comes from the stored object.
        for field in [
            "uid",
            "creationTimestamp",
            "generation",
            "namespace",
            "name",
            "resourceVersion",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
        ] {
            match old.at(&format!("/metadata/{field}")) {
                Some(value) => set_meta(&mut obj, field, value.clone()),
                None => {
                    if let Some(m) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
                        m.remove(field);
                    }
                }
            }
        }
        let has_status = rt.subresources.iter().any(|s| s == "status");
        match part {
            Part::Main if has_status => {
                if let Some(map) = obj.as_object_mut() {
                    match old.get("status") {
                        Some(status) => map.insert("status".into(), status.clone()),
                        None => map.remove("status"),
                    };
                }
            }
            Part::Status => {
                // Spec and labels come from the stored object; status and annotations from the
                // request.
                let annotations = obj.at("/metadata/annotations").cloned();
                let status = obj.get("status").cloned();
                let mut merged = old.clone();
                if let Some(map) = merged.as_object_mut() {
                    match status {
                        Some(status) => map.insert("status".into(), status),
                        None => map.remove("status"),
                    };
                }
                if let Some(annotations) = annotations {
                    set_meta(&mut merged, "annotations", annotations);
                }
                obj = merged;
            }
            Part::Main => {}
        }
        apply_defaults(rt, &mut obj);
        validate(rt, &obj)?;
        if part == Part::Main {
            crate::defaults::check_update(rt, &old, &obj)?;
        }
        if rt.group.is_empty() && rt.kind == "Service" && part == Part::Main {
            let others: Vec<Arc<Value>> = self
                .list_shared(rt, None)
                .into_iter()
                .filter(|o| {
                    o.at("/metadata/name").and_then(Value::as_str) != Some(name)
                        || o.at("/metadata/namespace").and_then(Value::as_str) != Some(namespace)
                })
                .collect();
            crate::services::allocate(rt, &mut obj, Some(&old), &others)?;
        }
        if rt.kind == "Deployment" && old.at("/spec/selector") != obj.at("/spec/selector") {
            return Err(ApiError::invalid(
                rt,
                name,
                "spec.selector",
                "Invalid value: field is immutable",
            ));
        }
        if obj == old {
            return Ok(old);
        }
        if part == Part::Main && rt.has_generation() {
            let spec_changed = old.get("spec") != obj.get("spec");
            let annotations_changed = rt.kind == "Deployment"
                && old.at("/metadata/annotations") != obj.at("/metadata/annotations");
            if spec_changed || annotations_changed {
                let generation = old
                    .at("/metadata/generation")
                    .and_then(Value::as_i64)
                    .unwrap_or(0);
                set_meta(&mut obj, "generation", json!(generation + 1));
            }
        }
        if dry_run {
            return Ok(obj);
        }
        let key = object_key(rt, namespace, name);
        // The last finalizer of an object being deleted is gone: the deletion completes (a pod
        // on a node waits for its kubelet, a namespace for its contents to go).
        if meta(&obj, "deletionTimestamp").is_some()
            && obj
                .at("/metadata/finalizers")
                .and_then(Value::as_array)
                .is_none_or(Vec::is_empty)
            && !is_pod_on_a_node(rt, &obj)
            && !(rt.group.is_empty() && rt.kind == "Namespace")
        {
            self.objects
                .get_mut(&rt.store_key())
                .and_then(|objects| objects.remove(&key));
            return Ok(self.commit(rt, namespace, key, obj, ChangeKind::Deleted));
        }
        Ok(self.commit(rt, namespace, key, obj, ChangeKind::Modified))
    }

    /// Starts a graceful deletion: `deletionTimestamp` is when the grace period ends, and the
    /// object stays until its finalizers are gone (and, for a pod on a node, its kubelet has
    /// stopped it). Returns the object as it now is; a second call changes nothing.
    pub(crate) fn mark_deleting(
        &mut self,
        rt: &ResourceType,
        namespace: &str,
        name: &str,
        grace: u64,
        dry_run: bool,
    ) -> Result<Value, ApiError> {
        let mut obj = self.get(rt, namespace, name)?;
        if meta(&obj, "deletionTimestamp").is_some() {
            return Ok(obj);
        }
        let at = self.clock.now() + std::time::Duration::from_secs(grace);
        set_meta(
            &mut obj,
            "deletionTimestamp",
            json!(crate::clock::rfc3339(at)),
        );
        set_meta(&mut obj, "deletionGracePeriodSeconds", json!(grace));
        if dry_run {
            return Ok(obj);
        }
        let key = object_key(rt, namespace, name);
        Ok(self.commit(rt, namespace, key, obj, ChangeKind::Modified))
    }

    pub(crate) fn delete(
        &mut self,
        rt: &ResourceType,
        namespace: &str,
        name: &str,
        dry_run: bool,
    ) -> Result<Value, ApiError> {
        let key = object_key(rt, namespace, name);
        let Some(objects) = self.objects.get_mut(&rt.store_key()) else {
            return Err(ApiError::not_found(rt, name));
        };
        let Some(obj) = (if dry_run {
            objects.get(&key).cloned()
        } else {
            objects.remove(&key)
        })
        .map(Arc::unwrap_or_clone) else {
            return Err(ApiError::not_found(rt, name));
        };
        if dry_run {
            return Ok(obj);
        }
        Ok(self.commit(rt, namespace, key, obj, ChangeKind::Deleted))
    }
}

/// The grace period a pod is deleted with when the deleter names none: its own
/// `terminationGracePeriodSeconds`, 30 seconds by default.
pub(crate) fn grace_period(pod: &Value) -> u64 {
    pod.at("/spec/terminationGracePeriodSeconds")
        .and_then(Value::as_u64)
        .unwrap_or(30)
}

/// A pod a node runs: its deletion is finished by the kubelet, after its grace period.
pub(crate) fn is_pod_on_a_node(rt: &ResourceType, obj: &Value) -> bool {
    rt.group.is_empty()
        && rt.kind == "Pod"
        && obj
            .at("/spec/nodeName")
            .and_then(Value::as_str)
            .is_some_and(|n| !n.is_empty())
}

/// `obj` as the version `rt` serves it: every version of a kind is stored once (as the storage
/// version of a CRD is), and its `apiVersion` is the one the reader asked for. The schemas the
/// simulation serves in several versions are identical, so nothing else converts.
/// `obj` shared as is when it already carries `rt`'s apiVersion, else a copy that does.
fn shared_as(rt: &ResourceType, obj: &Arc<Value>) -> Arc<Value> {
    if obj.get("apiVersion").and_then(Value::as_str) == Some(rt.api_version().as_str()) {
        Arc::clone(obj)
    } else {
        Arc::new(served_as(rt, Value::clone(obj)))
    }
}

pub(crate) fn served_as(rt: &ResourceType, mut obj: Value) -> Value {
    if crate::conversion::is_autoscaling_v1(rt) {
        return crate::conversion::served(rt, obj);
    }
    let wanted = rt.api_version();
    if obj.get("apiVersion").and_then(Value::as_str) != Some(wanted.as_str())
        && let Some(map) = obj.as_object_mut()
    {
        map.insert("apiVersion".into(), Value::String(wanted));
    }
    obj
}
