//! What the fleet's caches keep of each object: what a snapshot and a history are made from, and
//! nothing else. At 10,000 deployments the caches hold 30,000 objects; pod templates and specs
//! (containers, volumes, probes), every object's `managedFields` and last-applied annotation are
//! most of their size and almost none of a snapshot's.
//!
//! Each view is deserialized as such from the watch, so what it drops is never kept, and is
//! turned back into the Kubernetes type (with only the kept fields set) for the one member being
//! observed, so the conversions stay those [`KubeDeployment`](crate::KubeDeployment) uses.

use std::borrow::Cow;
use std::hash::{Hash, Hasher};

use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec, DeploymentStatus};
use k8s_openapi::api::apps::v1::{ReplicaSet, ReplicaSetSpec};
use k8s_openapi::api::core::v1::{Container, Pod, PodSpec, PodStatus, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::{Deserialize, Deserializer};

use crate::annotations::REQUIRES_SCHEMA;
use crate::convert::{annotation, without_hash};

/// The annotation `kubectl apply` keeps the whole last-applied object in.
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// A pod template as the fleet keeps it: a digest of the whole template (without the
/// pod-template-hash label), which tells the deployment's current ReplicaSet from the others as
/// comparing the templates would, and what a revision shows of it (images, required schema).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct TemplateSummary {
    /// 64 bits compared only among one deployment's own ReplicaSets (a dozen at most): a
    /// collision is as likely as a cosmic ray.
    digest: u64,
    images: Vec<String>,
    requires_schema: Option<String>,
}

impl TemplateSummary {
    pub(crate) fn of(template: &PodTemplateSpec) -> Self {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        serde_json::to_vec(&without_hash(template))
            .unwrap_or_default()
            .hash(&mut hasher);
        Self {
            digest: hasher.finish(),
            images: template
                .spec
                .as_ref()
                .map(|s| {
                    s.containers
                        .iter()
                        .filter_map(|c| c.image.clone())
                        .collect()
                })
                .unwrap_or_default(),
            requires_schema: template
                .metadata
                .as_ref()
                .and_then(|m| annotation(m, REQUIRES_SCHEMA)),
        }
    }

    /// A template with only what the summary kept: what a revision is read from.
    fn to_template(&self) -> PodTemplateSpec {
        PodTemplateSpec {
            metadata: self.requires_schema.as_ref().map(|schema| ObjectMeta {
                annotations: Some([(REQUIRES_SCHEMA.to_owned(), schema.clone())].into()),
                ..ObjectMeta::default()
            }),
            spec: Some(PodSpec {
                containers: self
                    .images
                    .iter()
                    .map(|image| Container {
                        image: Some(image.clone()),
                        ..Container::default()
                    })
                    .collect(),
                ..PodSpec::default()
            }),
        }
    }
}

impl<'de> Deserialize<'de> for TemplateSummary {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        PodTemplateSpec::deserialize(deserializer).map(|t| Self::of(&t))
    }
}

/// A Deployment as the fleet keeps it.
#[derive(Clone, Debug, Deserialize)]
pub(crate) struct DeploymentView {
    pub(crate) metadata: ObjectMeta,
    #[serde(default)]
    pub(crate) spec: DeploymentSpecView,
    #[serde(default)]
    pub(crate) status: Option<DeploymentStatus>,
}

#[derive(Clone, Debug, Default, Deserialize)]
pub(crate) struct DeploymentSpecView {
    #[serde(default)]
    pub(crate) replicas: Option<i32>,
    #[serde(default)]
    pub(crate) paused: Option<bool>,
    #[serde(default)]
    pub(crate) template: TemplateSummary,
}

impl DeploymentView {
    /// The deployment, for the conversions shared with the direct backend (its template holds
    /// only what the summary kept).
    pub(crate) fn to_deployment(&self) -> Deployment {
        Deployment {
            metadata: self.metadata.clone(),
            spec: Some(DeploymentSpec {
                replicas: self.spec.replicas,
                paused: self.spec.paused,
                template: self.spec.template.to_template(),
                ..DeploymentSpec::default()
            }),
            status: self.status.clone(),
        }
    }

    pub(crate) fn paused(&self) -> bool {
        self.spec.paused.unwrap_or(false)
    }

    /// Whether `rs` runs this deployment's template.
    pub(crate) fn is_current(&self, rs: &ReplicaSetView) -> bool {
        rs.spec.template.digest == self.spec.template.digest
    }
}

/// A ReplicaSet as the fleet keeps it: its metadata (revision, markers, owner, hash label) and
/// its template's summary; its status is the deployment's to sum up.
#[derive(Clone, Debug, Deserialize)]
pub(crate) struct ReplicaSetView {
    pub(crate) metadata: ObjectMeta,
    #[serde(default)]
    pub(crate) spec: ReplicaSetSpecView,
}

#[derive(Clone, Debug, Default, Deserialize)]
pub(crate) struct ReplicaSetSpecView {
    #[serde(default)]
    pub(crate) template: TemplateSummary,
}

impl ReplicaSetView {
    pub(crate) fn to_replica_set(&self) -> ReplicaSet {
        ReplicaSet {
            metadata: self.metadata.clone(),
            spec: Some(ReplicaSetSpec {
                template: Some(self.spec.template.to_template()),
                ..ReplicaSetSpec::default()
            }),
            status: None,
        }
    }
}

/// A Pod as the fleet keeps it: metadata and status, no spec (pod states are read from the
/// status; the pod is found through its owner reference).
#[derive(Clone, Debug, Deserialize)]
pub(crate) struct PodView {
    pub(crate) metadata: ObjectMeta,
    #[serde(default)]
    pub(crate) status: Option<PodStatus>,
}

impl PodView {
    pub(crate) fn to_pod(&self) -> Pod {
        Pod {
            metadata: self.metadata.clone(),
            spec: None,
            status: self.status.clone(),
        }
    }
}

/// `kube::Resource` for a view: the API coordinates of the type it views.
macro_rules! view_of {
    ($view:ty, $kind:literal, $group:literal, $version:literal, $plural:literal) => {
        impl kube::Resource for $view {
            type DynamicType = ();
            type Scope = NamespaceResourceScope;

            fn kind(_: &()) -> Cow<'_, str> {
                Cow::Borrowed($kind)
            }
            fn group(_: &()) -> Cow<'_, str> {
                Cow::Borrowed($group)
            }
            fn version(_: &()) -> Cow<'_, str> {
                Cow::Borrowed($version)
            }
            fn api_version(_: &()) -> Cow<'_, str> {
                if $group.is_empty() {
                    Cow::Borrowed($version)
                } else {
                    Cow::Owned(format!("{}/{}", $group, $version))
                }
            }
            fn plural(_: &()) -> Cow<'_, str> {
                Cow::Borrowed($plural)
            }
            fn meta(&self) -> &ObjectMeta {
                &self.metadata
            }
            fn meta_mut(&mut self) -> &mut ObjectMeta {
                &mut self.metadata
            }
        }
    };
}

view_of!(DeploymentView, "Deployment", "apps", "v1", "deployments");
view_of!(ReplicaSetView, "ReplicaSet", "apps", "v1", "replicasets");
view_of!(PodView, "Pod", "", "v1", "pods");

/// Drops from an object's metadata what no snapshot reads: field ownership and the
/// last-applied copy of the object.
pub(crate) fn trim_metadata(meta: &mut ObjectMeta) {
    meta.managed_fields = None;
    if let Some(annotations) = meta.annotations.as_mut() {
        annotations.remove(LAST_APPLIED);
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::convert::{current_of, to_revision};

    fn template(image: &str, hash: &str) -> serde_json::Value {
        json!({"metadata": {"labels": {"app": "web", "pod-template-hash": hash},
                "annotations": {REQUIRES_SCHEMA: "7"}},
            "spec": {"containers": [{"name": "web", "image": image, "ports": [{"containerPort": 80}]}]}})
    }

    fn rs(name: &str, image: &str, hash: &str) -> serde_json::Value {
        json!({"metadata": {"name": name, "labels": {"pod-template-hash": hash},
                "annotations": {"deployment.kubernetes.io/revision": "3"}},
            "spec": {"replicas": 2, "selector": {}, "template": template(image, hash)}})
    }

    #[test]
    fn a_view_finds_the_current_replica_set_and_reads_its_revision_as_the_full_object_does() {
        let deployment = json!({"metadata": {"name": "web"},
            "spec": {"replicas": 2, "selector": {}, "template": template("web:2", "ignored")}});
        let sets = [rs("web-a", "web:1", "a"), rs("web-b", "web:2", "b")];

        let full: Deployment = serde_json::from_value(deployment.clone()).unwrap();
        let full_sets: Vec<ReplicaSet> = sets
            .iter()
            .map(|s| serde_json::from_value(s.clone()).unwrap())
            .collect();
        let view: DeploymentView = serde_json::from_value(deployment).unwrap();
        let views: Vec<ReplicaSetView> = sets
            .iter()
            .map(|s| serde_json::from_value(s.clone()).unwrap())
            .collect();

        let current = current_of(&full, &full_sets).and_then(|rs| rs.metadata.name.clone());
        let current_view = views.iter().find(|rs| view.is_current(rs));
        assert_eq!(current.as_deref(), Some("web-b"));
        assert_eq!(
            current_view.and_then(|rs| rs.metadata.name.clone()),
            current
        );
        for (full, view) in full_sets.iter().zip(&views) {
            assert_eq!(to_revision(full), to_revision(&view.to_replica_set()));
        }
        assert_eq!(view.spec.replicas, Some(2));
    }
}
