//! deployguard guards zero-downtime deployments: it watches a rollout, detects that it fails,
//! explains why, and recovers — rolls back to a known-good revision, puts traffic back on the
//! stable version, and refuses to roll back past an incompatible database migration.
//!
//! This crate holds the guard and its engine, the contracts every platform implements —
//! [`DeploymentBackend`], [`TrafficRouter`], [`HealthProbe`], [`MigrationInspector`] — the model
//! they speak, and the one [`Error`]. It depends on no platform SDK: Kubernetes lives in its own
//! crate (`deployguard-k8s`), and your own platform takes a few dozen lines.
//!
//! # Guarding a rollout
//!
//! A [`Guard`](engine::Guard) watches one rollout through a [`DeploymentBackend`], judges it with
//! [`AnalysisCheck`](analysis::AnalysisCheck)s over [`HealthProbe`]s, and promotes it or recovers
//! it. Here against the testkit's fakes: a new version whose error rate is 15% is rolled back to
//! the last verified one.
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//!
//! use deployguard_core::analysis::{AnalysisCheck, Threshold};
//! use deployguard_core::engine::{Guard, GuardOutcome, Strategy};
//! use deployguard_core::HealthProbe;
//! use deployguard_testkit::{Behaviour, FakeDeployment, ScriptedProbe};
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() -> deployguard_core::Result<()> {
//! let (backend, handle) = FakeDeployment::builder("web")
//!     .replicas(6)
//!     .verified_revision(["app:v2.3.1"], Behaviour::healthy())
//!     .revision(["app:v2.4.0"], Behaviour::failing_readiness())
//!     .build();
//! let (probe, _) = ScriptedProbe::new("http").value("error_rate", 0.15).build();
//! let probe: Arc<dyn HealthProbe> = Arc::new(probe);
//! let guard = Guard::builder(Strategy::Rolling, Arc::new(backend))
//!     .check(
//!         AnalysisCheck::builder("error-rate", &probe, "error_rate")
//!             .success(Threshold::at_most(0.01))
//!             .interval(Duration::from_secs(10))
//!             .build()?,
//!     )
//!     .probe(probe)
//!     .build()?;
//! match guard.run().await.outcome {
//!     GuardOutcome::RolledBack { reason, .. } => println!("rolled back: {reason}"),
//!     other => panic!("expected a rollback, got: {other}"),
//! }
//! assert_eq!(handle.current_images(), ["app:v2.3.1"]);
//! # Ok(())
//! # }
//! ```
//!
//! The engine's parts are public too: [`engine::Guard::assess`], [`engine::Guard::plan`] and
//! [`engine::Guard::execute`] for a recovery run by hand (an emergency command), and the pure
//! [`engine::decide`] and [`engine::plan_recovery`].
//!
//! # A custom backend
//!
//! A backend for an imaginary platform that keeps its releases in memory. Real backends make
//! every write conditional on what they read; this one holds a lock instead.
//!
//! ```
//! use std::collections::BTreeMap;
//! use std::sync::Mutex;
//!
//! use async_trait::async_trait;
//! use deployguard_core::{
//!     BackendCapabilities, DeploymentBackend, DeploymentBackendExt, Error, Fingerprint, Result,
//!     Revision, RevisionId, RollbackOptions, RollbackOutcome, RolloutSnapshot,
//! };
//!
//! /// Releases of one app on "Platform X"; the last one runs.
//! #[derive(Debug, Default)]
//! struct PlatformX {
//!     releases: Mutex<Vec<(RevisionId, String)>>,
//!     markers: Mutex<BTreeMap<String, String>>,
//! }
//!
//! #[async_trait]
//! impl DeploymentBackend for PlatformX {
//!     fn target(&self) -> String {
//!         "platform-x app shop".into()
//!     }
//!     fn name(&self) -> String {
//!         "shop".into()
//!     }
//!     fn capabilities(&self) -> BackendCapabilities {
//!         BackendCapabilities::full()
//!     }
//!     async fn observe(&self) -> Result<RolloutSnapshot> {
//!         let releases = self.releases.lock().unwrap();
//!         let mut snapshot = RolloutSnapshot::new(1);
//!         (snapshot.total, snapshot.updated, snapshot.ready, snapshot.available) = (1, 1, 1, 1);
//!         if let Some((id, image)) = releases.last() {
//!             snapshot.current_revision = Some(*id);
//!             snapshot.current_fingerprint = Some(Fingerprint::new(image.clone()));
//!         }
//!         Ok(snapshot)
//!     }
//!     async fn history(&self) -> Result<Vec<Revision>> {
//!         let releases = self.releases.lock().unwrap();
//!         Ok(releases
//!             .iter()
//!             .map(|(id, image)| Revision::new(*id, Fingerprint::new(image.clone()), vec![image.clone()]))
//!             .collect())
//!     }
//!     async fn rollback_to(&self, to: RevisionId, _: RollbackOptions) -> Result<RollbackOutcome> {
//!         let mut releases = self.releases.lock().unwrap();
//!         let image = releases
//!             .iter()
//!             .find(|(id, _)| *id == to)
//!             .map(|(_, image)| image.clone())
//!             .ok_or_else(|| Error::not_found(format!("release {to}")))?;
//!         let (from, current) = releases.last().cloned().expect("a found release");
//!         if current == image {
//!             return Ok(RollbackOutcome::AlreadyCurrent { revision: to });
//!         }
//!         releases.push((RevisionId(from.0 + 1), image));
//!         Ok(RollbackOutcome::RolledBack { from: Some(from), to })
//!     }
//!     async fn set_paused(&self, _: bool) -> Result<()> {
//!         Ok(())
//!     }
//!     async fn scale(&self, _: u32) -> Result<()> {
//!         Ok(())
//!     }
//!     async fn mark_verified(&self, _: RevisionId) -> Result<()> {
//!         Ok(())
//!     }
//!     async fn markers(&self) -> Result<BTreeMap<String, String>> {
//!         Ok(self.markers.lock().unwrap().clone())
//!     }
//!     async fn set_marker(&self, key: &str, value: Option<String>) -> Result<()> {
//!         deployguard_core::check_marker_key(key)?;
//!         let mut markers = self.markers.lock().unwrap();
//!         match value {
//!             Some(value) => markers.insert(key.to_owned(), value),
//!             None => markers.remove(key),
//!         };
//!         Ok(())
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<()> {
//! let backend = PlatformX::default();
//! backend.releases.lock().unwrap().extend([
//!     (RevisionId(1), "shop:1.0".to_owned()),
//!     (RevisionId(2), "shop:1.1".to_owned()),
//! ]);
//! let outcome = backend.rollback_to(RevisionId(1), RollbackOptions::default()).await?;
//! assert_eq!(outcome, RollbackOutcome::RolledBack { from: Some(RevisionId(2)), to: RevisionId(1) });
//! let current = backend.current_revision().await?.expect("a current revision");
//! assert_eq!(current.images, ["shop:1.0"]);
//! # Ok(())
//! # }
//! ```
//!
//! The testkit crate (`deployguard-testkit`) has fakes of all four traits and the conformance
//! suites every backend runs; see `examples/custom-backend.rs` for this backend passing them.
//!
//! # Features
//!
//! - `mock`: [mockall](https://docs.rs/mockall) `Mock*` types of the four traits.

#![warn(clippy::unwrap_used, clippy::expect_used)]

pub mod analysis;
pub mod engine;
mod error;
pub mod model;
#[cfg(feature = "spec")]
pub mod spec;
mod traits;

pub use error::{Error, ErrorKind, Result};
pub use model::{
    AppliedMigration, Condition, Diagnosis, EventRecord, FailureMode, Fingerprint, Measurement,
    MigrationState, MigrationStatus, Observations, Patience, PodState, Revision, RevisionId,
    RolloutSnapshot, RouteVersion, Routed, RouterCapabilities, RoutingMode, Sample, SchemaVersion,
    TrafficSplit, Verification,
};
pub use traits::*;
