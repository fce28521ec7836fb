//! Typed access to the simulated cluster's objects: k8s-openapi types in, k8s-openapi types out,
//! so a test never indexes raw JSON.

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{Event, Pod, Service};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::{ApiError, FakeCluster};

/// How often [`FakeCluster::edit`] re-reads after a conflict before it gives up.
const EDIT_ATTEMPTS: usize = 20;

impl FakeCluster {
    /// Reads one object as its k8s-openapi type (`namespace` is ignored for cluster-scoped
    /// kinds).
    ///
    /// ```
    /// use deployguard_kube_sim::{FakeCluster, k8s_openapi::api::core::v1::Namespace};
    ///
    /// let cluster = FakeCluster::new();
    /// let default: Namespace = cluster.object("", "default").unwrap();
    /// assert_eq!(default.metadata.name.as_deref(), Some("default"));
    /// ```
    pub fn object<K>(&self, namespace: &str, name: &str) -> Result<K, ApiError>
    where
        K: k8s_openapi::Resource + DeserializeOwned,
    {
        let value = self.get(K::API_VERSION, K::KIND, namespace, name)?;
        decode(value)
    }

    /// Every object of a kind in `namespace` (all namespaces when empty), as its k8s-openapi
    /// type, in the order the API lists them.
    pub fn objects<K>(&self, namespace: &str) -> Result<Vec<K>, ApiError>
    where
        K: k8s_openapi::Resource + DeserializeOwned,
    {
        self.list(K::API_VERSION, K::KIND, namespace)
            .into_iter()
            .map(decode)
            .collect()
    }

    /// Creates an object from its k8s-openapi value.
    pub fn create_object<K>(&self, object: &K) -> Result<K, ApiError>
    where
        K: k8s_openapi::Resource + Serialize + DeserializeOwned,
    {
        decode(self.create(encode(object)?)?)
    }

    /// Read-modify-write of one object, read again and retried when a controller wrote it in
    /// between (a 409 Conflict), as `kubectl edit` does. Returns what was written.
    pub fn edit<K>(
        &self,
        namespace: &str,
        name: &str,
        mut change: impl FnMut(&mut K),
    ) -> Result<K, ApiError>
    where
        K: k8s_openapi::Resource + Serialize + DeserializeOwned,
    {
        let mut last = None;
        for _ in 0..EDIT_ATTEMPTS {
            let mut object: K = self.object(namespace, name)?;
            change(&mut object);
            match self.replace(encode(&object)?) {
                Ok(written) => return decode(written),
                Err(err) if err.code == 409 => last = Some(err),
                Err(err) => return Err(err),
            }
        }
        Err(last.unwrap_or_else(|| ApiError::bad_request("no attempt was made")))
    }

    /// The Deployment `namespace/name`.
    pub fn deployment(&self, namespace: &str, name: &str) -> Result<Deployment, ApiError> {
        self.object(namespace, name)
    }

    /// The ReplicaSets in `namespace`.
    pub fn replica_sets(&self, namespace: &str) -> Result<Vec<ReplicaSet>, ApiError> {
        self.objects(namespace)
    }

    /// The Pods in `namespace`.
    pub fn pods(&self, namespace: &str) -> Result<Vec<Pod>, ApiError> {
        self.objects(namespace)
    }

    /// The Service `namespace/name`.
    pub fn service(&self, namespace: &str, name: &str) -> Result<Service, ApiError> {
        self.object(namespace, name)
    }

    /// The Events in `namespace`.
    pub fn events(&self, namespace: &str) -> Result<Vec<Event>, ApiError> {
        self.objects(namespace)
    }
}

fn decode<K: DeserializeOwned>(value: serde_json::Value) -> Result<K, ApiError> {
    serde_json::from_value(value)
        .map_err(|err| ApiError::bad_request(format!("the object does not decode: {err}")))
}

fn encode<K: k8s_openapi::Resource + Serialize>(object: &K) -> Result<serde_json::Value, ApiError> {
    let mut value = serde_json::to_value(object)
        .map_err(|err| ApiError::bad_request(format!("the object does not encode: {err}")))?;
    // k8s-openapi serializes apiVersion and kind itself; make sure they are there for routing.
    value["apiVersion"] = K::API_VERSION.into();
    value["kind"] = K::KIND.into();
    Ok(value)
}
