//! The Kubernetes backend of deployguard.
//!
//! A guard on an apps/v1 Deployment, end to end: here on the testkit's simulated cluster, where
//! the seed incident (v2.4.0's pods never become ready, 15% of requests fail) is loaded; against
//! a real cluster the client comes from `kube::Client::try_default()` instead.
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//!
//! use deployguard_core::analysis::{AnalysisCheck, Threshold};
//! use deployguard_core::engine::{Guard, GuardOutcome, Strategy};
//! use deployguard_k8s::{JobMigrationInspector, KubeDeployment};
//! use deployguard_testkit::cluster::{FakeCluster, SimulatedTraffic, scenarios};
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let cluster = FakeCluster::with_controllers();
//! scenarios::load(&cluster, "seed-rolling-failure").await?;
//! let client = cluster.client(); // a kube::Client
//!
//! let deployment = KubeDeployment::new(client.clone(), "default", "app-deployment");
//! let errors = cluster.traffic_probe("default", "myapp-service", Duration::from_secs(10));
//! let guard = Guard::builder(Strategy::Rolling, Arc::new(deployment))
//!     .check(
//!         AnalysisCheck::builder("error-rate", &errors, "error_rate")
//!             .success(Threshold::at_most(0.01))
//!             .initial_delay(Duration::from_secs(10)) // let traffic reach the new version
//!             .interval(Duration::from_secs(10))
//!             .build()?,
//!     )
//!     .probe(Arc::new(errors))
//!     .migrations(Arc::new(JobMigrationInspector::new(client, "default")))
//!     .build()?;
//! let report = guard.run().await;
//! assert!(matches!(report.outcome, GuardOutcome::RolledBack { .. }), "{}", report.outcome);
//!
//! let image = cluster.deployment("default", "app-deployment")?.spec.unwrap().template.spec.unwrap()
//!     .containers[0].image.clone();
//! assert_eq!(image.as_deref(), Some("app:v2.3.1"));
//! # Ok(())
//! # }
//! ```
//!
//! What the crate holds:
//!
//! - [`KubeDeployment`]: a [`DeploymentBackend`](deployguard_core::DeploymentBackend) for an
//!   apps/v1 Deployment with `kubectl rollout undo` semantics and conditional writes; failure
//!   diagnosis runs over what it observes (`deployguard_core::engine::diagnose`).
//! - [`PodReadinessProbe`]: ready fraction per revision.
//! - [`ServiceSelectorRouter`]: all-or-nothing blue/green by one Service selector key.
//! - [`GatewayRouter`]: weighted `backendRefs` of one rule of a Gateway API `HTTPRoute`.
//! - [`JobMigrationInspector`]: the schema's state from migration Jobs and a ConfigMap.
//! - `Fleet` (feature `fleet`, which brings `kube::runtime`): many deployments read from one
//!   watch-backed cache per resource kind.
//! - [`LeaseLock`]: one actor per deployment, as a `coordination.k8s.io/v1` Lease.
//! - [`rbac`]: the Role rules all of them need.

/// The kube-rs and k8s-openapi this crate speaks: build clients and objects with these, and
/// the versions always match.
pub use {k8s_openapi, kube};

mod convert;
mod deployment;
mod error;
mod events;
#[cfg(feature = "fleet")]
mod fleet;
pub mod gateway;
mod lease;
mod migrations;
mod names;
mod patch;
mod patience;
mod probe;
pub mod rbac;
mod router;
pub mod transport;
mod writes;

pub use deployment::KubeDeployment;
pub use events::KubeEvents;
#[cfg(feature = "fleet")]
pub use fleet::{Fleet, FleetDeployment};
pub use gateway::GatewayRouter;
pub use lease::LeaseLock;
pub use migrations::JobMigrationInspector;
pub use probe::PodReadinessProbe;
pub use router::ServiceSelectorRouter;

/// Building blocks for backends that talk to the same API server (the Istio router is one):
/// kube errors as deployguard errors, names checked before any request, JSON patches whose first
/// operation tests what was read.
pub mod support {
    pub use crate::error::from_kube;
    pub use crate::names::{check_label, check_subdomain};
    pub use crate::patch::{Precondition, conditional_patch, pointer, refused_patch};
    pub use crate::router::ensure_ready_pods;
    pub use crate::writes::{FIELD_MANAGER, patch_params, post_params};
}

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
