//! What the fleet's caches keep of each object: what a snapshot and a history are made from, and
//! nothing else. At 10,000 deployments the caches hold 30,000 objects; a pod's spec (containers,
//! volumes, probes) and every object's `managedFields` and last-applied annotation are most of
//! their size and none of a snapshot's.

use std::borrow::Cow;

use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::core::v1::{Pod, PodStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::Deserialize;

/// The annotation `kubectl apply` keeps the whole last-applied object in.
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// A Pod as the fleet keeps it: metadata and status, no spec (pod states are read from the
/// status; the pod is found through its owner reference). Deserialized as such from the watch,
/// so a spec is never even allocated.
#[derive(Clone, Debug, Deserialize)]
pub(crate) struct PodView {
    pub(crate) metadata: ObjectMeta,
    #[serde(default)]
    pub(crate) status: Option<PodStatus>,
}

impl PodView {
    /// The pod, for the conversions shared with [`KubeDeployment`](crate::KubeDeployment).
    pub(crate) fn to_pod(&self) -> Pod {
        Pod {
            metadata: self.metadata.clone(),
            spec: None,
            status: self.status.clone(),
        }
    }
}

impl kube::Resource for PodView {
    type DynamicType = ();
    type Scope = NamespaceResourceScope;

    fn kind(_: &()) -> Cow<'_, str> {
        Cow::Borrowed("Pod")
    }
    fn group(_: &()) -> Cow<'_, str> {
        Cow::Borrowed("")
    }
    fn version(_: &()) -> Cow<'_, str> {
        Cow::Borrowed("v1")
    }
    fn api_version(_: &()) -> Cow<'_, str> {
        Cow::Borrowed("v1")
    }
    fn plural(_: &()) -> Cow<'_, str> {
        Cow::Borrowed("pods")
    }
    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

/// Drops from an object's metadata what no snapshot reads: field ownership and the
/// last-applied copy of the object.
pub(crate) fn trim_metadata(meta: &mut ObjectMeta) {
    meta.managed_fields = None;
    if let Some(annotations) = meta.annotations.as_mut() {
        annotations.remove(LAST_APPLIED);
    }
}
