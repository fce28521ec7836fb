//! Which controllers a pass runs, and on what. A controller runs again only when something it
//! reads has changed since its last run (a kind it reads, or the image behaviours the kubelet
//! follows) or the time it asked to be woken at has come, as an informer-driven controller does
//! nothing until an event or a requeue: a pass on a simulated second where only traffic moved
//! costs nothing. Every controller's output is a function of what it reads and of the clock, and
//! every clock-driven change asks for a wake, so a skipped run could only have repeated the last
//! one.
//!
//! The Deployment and ReplicaSet controllers, whose every object is reconciled from itself and
//! what it owns, go further, as a work queue does: they reconcile only the objects a change since
//! their last run was about (an owned object's change is its owner's) or whose own wake has come.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::SystemTime;

use serde_json::Value;

use super::util::Ctx;
use crate::pointer::Pointer;
use crate::store::{Change, Store};

/// What a controller reads, by store key (`group/plural`).
pub(super) enum Reads {
    Kinds(&'static [&'static str]),
    /// Any object of any kind (the namespace controller waits for a namespace to empty).
    Everything,
}

/// One controller, as a pass runs it.
pub(super) struct Controller {
    pub(super) reads: Reads,
    /// Whether it follows the image behaviours (the kubelet).
    pub(super) follows_images: bool,
    pub(super) run: Run,
}

/// How a controller is run.
pub(super) enum Run {
    /// Over everything it reads.
    Whole(fn(&mut Ctx<'_>)),
    /// Object by object: objects of `kind` (group, kind) are reconciled by `one`, each when a
    /// change was about it or about an object it owns (of `owned`: group, kind), or when its
    /// wake has come.
    ByObject {
        kind: (&'static str, &'static str),
        owned: &'static str,
        one: fn(&mut Ctx<'_>, &Value),
    },
}

/// An object's store key: namespace and name.
type Key = (String, String);

fn key_of(object: &Value) -> Key {
    let field = |f: &str| {
        object
            .at(f)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    (field("/metadata/namespace"), field("/metadata/name"))
}

/// What a controller's last run saw: the store's resourceVersion, the behaviours' version and
/// the wake it asked for (and, run object by object, each object's).
#[derive(Debug, Default, Clone)]
pub(crate) struct Gate {
    ran: bool,
    seen: u64,
    behaviours: u64,
    wake: Option<SystemTime>,
    wakes: HashMap<Key, SystemTime>,
}

impl Gate {
    /// Whether `controller` has something to do.
    pub(super) fn due(
        &self,
        controller: &Controller,
        store: &Store,
        now: SystemTime,
        behaviours: u64,
    ) -> bool {
        !self.ran
            || self.wake.is_some_and(|at| at <= now)
            || (controller.follows_images && behaviours != self.behaviours)
            || match controller.reads {
                Reads::Everything => store.resource_version() > self.seen,
                Reads::Kinds(kinds) => kinds.iter().any(|k| store.last_change_of(k) > self.seen),
            }
    }

    /// Runs `controller` (when [`due`](Self::due)). Its own writes count as changes for its
    /// next run: it may have more to do once they are made, as a requeue would have it.
    pub(super) fn run(&mut self, controller: &Controller, ctx: &mut Ctx<'_>, behaviours: u64) {
        let since = self.ran.then_some(self.seen);
        self.ran = true;
        self.seen = ctx.store.resource_version();
        self.behaviours = behaviours;
        match controller.run {
            Run::Whole(run) => {
                ctx.wake = None;
                run(ctx);
                self.wake = ctx.wake;
            }
            Run::ByObject { kind, owned, one } => {
                let rt = ctx.rt(kind.0, kind.1);
                let keys = since
                    .and_then(|rv| ctx.store.changes_after(rv))
                    .and_then(|changes| changed_keys(&changes, &rt.store_key(), owned, kind.1))
                    .map(|mut keys| {
                        let now = ctx.now();
                        keys.extend(
                            self.wakes
                                .iter()
                                .filter(|(_, at)| **at <= now)
                                .map(|(key, _)| key.clone()),
                        );
                        keys
                    });
                // A deleted object's wake goes with it.
                let objects: Vec<(Key, Option<Arc<Value>>)> = match keys {
                    Some(keys) => keys
                        .into_iter()
                        .map(|key| {
                            let object = ctx.store.get_shared(&rt, &key.0, &key.1);
                            (key, object)
                        })
                        .collect(),
                    None => {
                        self.wakes.clear();
                        let all = ctx.store.list_shared(&rt, None);
                        all.into_iter().map(|o| (key_of(&o), Some(o))).collect()
                    }
                };
                for (key, object) in objects {
                    let Some(object) = object else {
                        self.wakes.remove(&key);
                        continue;
                    };
                    ctx.wake = None;
                    one(ctx, &object);
                    match ctx.wake {
                        Some(at) => self.wakes.insert(key, at),
                        None => self.wakes.remove(&key),
                    };
                }
                self.wake = self.wakes.values().min().copied();
            }
        }
    }

    pub(super) fn wake(&self) -> Option<SystemTime> {
        self.wake
    }
}

/// The objects the changes were about: changed themselves, or named by an owner reference
/// of an object of kind `owned` that changed, before or after the change. `None` when a
/// change could matter to every object (a namespace's).
fn changed_keys(
    changes: &[Arc<Change>],
    store_key: &str,
    owned: &str,
    kind: &str,
) -> Option<BTreeSet<Key>> {
    let mut keys = BTreeSet::new();
    for change in changes {
        if change.resource == store_key {
            let name = change.object.at("/metadata/name").and_then(Value::as_str);
            keys.insert((
                change.namespace.clone(),
                name.unwrap_or_default().to_owned(),
            ));
        } else if change.resource == owned {
            let versions = std::iter::once(&change.object).chain(change.previous.as_ref());
            for version in versions {
                let owners = version
                    .at("/metadata/ownerReferences")
                    .and_then(Value::as_array);
                for owner in owners.into_iter().flatten() {
                    if owner.get("kind").and_then(Value::as_str) == Some(kind) {
                        let name = owner.get("name").and_then(Value::as_str);
                        keys.insert((
                            change.namespace.clone(),
                            name.unwrap_or_default().to_owned(),
                        ));
                    }
                }
            }
        } else if change.resource == "/namespaces" {
            return None;
        }
    }
    Some(keys)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::store::ChangeKind;

    fn change(resource: &str, object: Value, previous: Option<Value>) -> Arc<Change> {
        Arc::new(Change {
            rv: 1,
            resource: resource.into(),
            namespace: "shop".into(),
            kind: ChangeKind::Modified,
            object: Arc::new(object),
            previous: previous.map(Arc::new),
            at: tokio::time::Instant::now(),
        })
    }

    fn owned_by(kind: &str, owner: &str) -> Value {
        json!({"metadata": {"name": "x", "ownerReferences": [{"kind": kind, "name": owner}]}})
    }

    #[test]
    fn a_change_is_about_the_object_or_its_owner_before_and_after_and_a_namespace_is_about_all() {
        let key = |name: &str| ("shop".to_owned(), name.to_owned());
        let changes = [
            change(
                "apps/replicasets",
                json!({"metadata": {"name": "web-1"}}),
                None,
            ),
            // A pod moved from web-2 to web-3: both are told.
            change(
                "/pods",
                owned_by("ReplicaSet", "web-3"),
                Some(owned_by("ReplicaSet", "web-2")),
            ),
            // Owned by something else, or of a kind nobody here reads.
            change("/pods", owned_by("Job", "migrate"), None),
            change(
                "/configmaps",
                json!({"metadata": {"name": "settings"}}),
                None,
            ),
        ];
        let keys = changed_keys(&changes, "apps/replicasets", "/pods", "ReplicaSet");
        assert_eq!(
            keys,
            Some(
                [key("web-1"), key("web-2"), key("web-3")]
                    .into_iter()
                    .collect()
            )
        );
        let namespace = change("/namespaces", json!({"metadata": {"name": "shop"}}), None);
        assert_eq!(
            changed_keys(&[namespace], "apps/replicasets", "/pods", "ReplicaSet"),
            None
        );
    }
}
