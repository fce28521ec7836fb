//! The Kubernetes backend of deployguard.
//!
//! - [`KubeDeployment`]: a [`DeploymentBackend`](deployguard_core::DeploymentBackend) for an
//!   apps/v1 Deployment with `kubectl rollout undo` semantics and conditional writes; failure
//!   diagnosis runs over what it observes (`deployguard_core::engine::diagnose`).
//! - [`PodReadinessProbe`]: ready fraction per revision.
//! - [`ServiceSelectorRouter`]: all-or-nothing blue/green by one Service selector key.
//! - [`JobMigrationInspector`]: the schema's state from migration Jobs and a ConfigMap.
//! - [`Fleet`]: many deployments read from one watch-backed cache per resource kind.
//! - [`rbac`]: the Role rules all of them need.

mod convert;
mod deployment;
mod error;
mod fleet;
mod migrations;
mod patch;
mod probe;
pub mod rbac;
mod router;

pub use deployment::KubeDeployment;
pub use fleet::{Fleet, FleetDeployment};
pub use migrations::JobMigrationInspector;
pub use probe::PodReadinessProbe;
pub use router::ServiceSelectorRouter;

/// The names of the annotations the Deployment controller and deployguard write.
pub mod annotations {
    /// The revision number the Deployment controller gives a ReplicaSet and its Deployment.
    pub const REVISION: &str = "deployment.kubernetes.io/revision";
    /// Earlier numbers of a ReplicaSet that was rolled back to, comma-separated, oldest first.
    pub const REVISION_HISTORY: &str = "deployment.kubernetes.io/revision-history";
    /// The label the Deployment controller puts on ReplicaSets and pods.
    pub const POD_TEMPLATE_HASH: &str = "pod-template-hash";
    /// deployguard's marker that a revision was verified healthy (on the ReplicaSet).
    pub const VERIFIED: &str = "deployguard.io/verified";
    /// The schema version a pod template declares it needs.
    pub const REQUIRES_SCHEMA: &str = "deployguard.io/requires-schema";
    /// The prefix of the guard's own markers on the Deployment.
    pub const MARKER_PREFIX: &str = deployguard_core::MARKER_PREFIX;
}
