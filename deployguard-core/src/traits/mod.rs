//! The four traits a platform implements, and [`ActorLock`], the one-actor-per-deployment
//! lock a guard takes before it writes.

mod backend;
mod lock;
mod migrations;
mod probe;
mod router;

pub use backend::{
    BackendCapabilities, DeploymentBackend, DeploymentBackendExt, MARKER_PREFIX, RollbackOptions,
    RollbackOutcome, StatusSender, check_marker_key, not_complete, poll_until_complete,
};
pub use lock::{ActorLock, LockState};
pub use migrations::MigrationInspector;
pub use probe::{HealthProbe, ProbeRef};
pub use router::{TrafficRouter, TrafficRouterExt};

#[cfg(feature = "mock")]
pub use backend::MockDeploymentBackend;
#[cfg(feature = "mock")]
pub use lock::MockActorLock;
#[cfg(feature = "mock")]
pub use migrations::MockMigrationInspector;
#[cfg(feature = "mock")]
pub use probe::MockHealthProbe;
#[cfg(feature = "mock")]
pub use router::MockTrafficRouter;
