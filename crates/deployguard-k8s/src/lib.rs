//! The Kubernetes backend of deployguard.
//!
//! This crate will hold `KubeDeployment` (a [`DeploymentBackend`](deployguard_core::DeploymentBackend)
//! for apps/v1 Deployments), pod-readiness probing and failure diagnosis, the Service-selector
//! router, the migration-Job inspector and the RBAC rules they need. Today it holds the names of
//! the annotations those pieces share, so that every crate and test spells them the same way.

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
    pub const MARKER_PREFIX: &str = "deployguard.io/";
}
