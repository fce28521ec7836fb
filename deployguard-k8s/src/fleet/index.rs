//! A secondary index over one watch's objects — ReplicaSets and Pods by the uid of their
//! controller, Events by the uid of the object they are about — kept from the same watch events
//! the reflector's store is kept from, so a fleet member finds its own objects without scanning
//! (and cloning) everyone else's: a sweep over N deployments costs O(N), not O(N²).

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, RwLock};

use kube::runtime::watcher;

/// The index key of an object (its owner's or subject's uid), if it has one.
pub(crate) type KeyOf<K> = fn(&K) -> Option<String>;

#[derive(Debug, Default)]
struct Entries {
    /// key → names of the objects with that key.
    by_key: HashMap<String, BTreeSet<String>>,
    /// name → the key it is filed under, to refile or remove it.
    key_of_name: HashMap<String, String>,
}

impl Entries {
    fn insert(&mut self, name: String, key: Option<String>) {
        self.remove(&name);
        if let Some(key) = key {
            self.by_key
                .entry(key.clone())
                .or_default()
                .insert(name.clone());
            self.key_of_name.insert(name, key);
        }
    }

    fn remove(&mut self, name: &str) {
        if let Some(key) = self.key_of_name.remove(name)
            && let Some(names) = self.by_key.get_mut(&key)
        {
            names.remove(name);
            if names.is_empty() {
                self.by_key.remove(&key);
            }
        }
    }
}

/// The index, shared between the watch task that keeps it and the readers.
#[derive(Debug)]
pub(crate) struct Index<K> {
    key_of: KeyOf<K>,
    state: RwLock<State>,
    /// True once the first listing is indexed: the reflector's store is ready a moment before
    /// the index is (the index follows the events the store has applied).
    listed: tokio::sync::watch::Sender<bool>,
}

#[derive(Debug, Default)]
struct State {
    current: Entries,
    /// Built during a relist, swapped in when it is complete (as the reflector's store does).
    relisting: Option<Entries>,
}

impl<K: kube::Resource> Index<K> {
    pub(crate) fn new(key_of: KeyOf<K>) -> Arc<Self> {
        Arc::new(Self {
            key_of,
            state: RwLock::default(),
            listed: tokio::sync::watch::Sender::new(false),
        })
    }

    /// Waits until the first listing is indexed.
    pub(crate) async fn wait_until_listed(&self) {
        let mut listed = self.listed.subscribe();
        // The sender lives as long as `self`: the wait cannot fail.
        let _ = listed.wait_for(|done| *done).await;
    }

    /// Applies one watch event.
    pub(crate) fn apply(&self, event: &watcher::Event<K>) {
        let mut state = self
            .state
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let name = |obj: &K| obj.meta().name.clone().unwrap_or_default();
        match event {
            watcher::Event::Apply(obj) => state.current.insert(name(obj), (self.key_of)(obj)),
            watcher::Event::Delete(obj) => state.current.remove(&name(obj)),
            watcher::Event::Init => state.relisting = Some(Entries::default()),
            watcher::Event::InitApply(obj) => {
                let key = (self.key_of)(obj);
                state
                    .relisting
                    .get_or_insert_with(Entries::default)
                    .insert(name(obj), key);
            }
            watcher::Event::InitDone => {
                if let Some(fresh) = state.relisting.take() {
                    state.current = fresh;
                }
                self.listed.send_replace(true);
            }
        }
    }

    /// The names of the objects filed under `key`.
    pub(crate) fn names(&self, key: &str) -> Vec<String> {
        self.state
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .current
            .by_key
            .get(key)
            .map(|names| names.iter().cloned().collect())
            .unwrap_or_default()
    }
}

/// The uid of an object's controller (the owner reference with `controller: true`).
pub(crate) fn controller_uid<K: kube::Resource>(obj: &K) -> Option<String> {
    obj.meta()
        .owner_references
        .as_ref()?
        .iter()
        .find(|r| r.controller == Some(true))
        .map(|r| r.uid.clone())
}

/// The uid of the object an Event is about.
pub(crate) fn involved_uid(event: &k8s_openapi::api::core::v1::Event) -> Option<String> {
    event.involved_object.uid.clone()
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::apps::v1::ReplicaSet;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;

    use super::*;

    fn rs(name: &str, owner: &str) -> ReplicaSet {
        let mut rs = ReplicaSet::default();
        rs.metadata.name = Some(name.into());
        rs.metadata.owner_references = Some(vec![OwnerReference {
            uid: owner.into(),
            controller: Some(true),
            ..OwnerReference::default()
        }]);
        rs
    }

    #[test]
    fn objects_are_filed_by_owner_refiled_removed_and_replaced_on_relist() {
        let index = Index::new(controller_uid::<ReplicaSet>);
        index.apply(&watcher::Event::Apply(rs("a-1", "a")));
        index.apply(&watcher::Event::Apply(rs("a-2", "a")));
        index.apply(&watcher::Event::Apply(rs("b-1", "b")));
        assert_eq!(index.names("a"), ["a-1", "a-2"]);
        // Orphaned, then adopted by b.
        index.apply(&watcher::Event::Apply(rs("a-2", "b")));
        assert_eq!(index.names("a"), ["a-1"]);
        assert_eq!(index.names("b"), ["a-2", "b-1"]);
        index.apply(&watcher::Event::Delete(rs("a-1", "a")));
        assert!(index.names("a").is_empty());
        // A relist replaces the index only once it is complete.
        index.apply(&watcher::Event::Init);
        index.apply(&watcher::Event::InitApply(rs("c-1", "c")));
        assert_eq!(
            index.names("b"),
            ["a-2", "b-1"],
            "readers see the old state meanwhile"
        );
        index.apply(&watcher::Event::InitDone);
        assert!(index.names("b").is_empty());
        assert_eq!(index.names("c"), ["c-1"]);
    }
}
