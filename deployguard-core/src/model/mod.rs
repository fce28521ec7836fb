//! The domain model the four traits speak.

mod failure;
mod measurement;
mod migration;
mod revision;
mod snapshot;
mod traffic;

pub use failure::{Diagnosis, FailureMode};
pub use measurement::{Measurement, Observations, Sample, VERSION_LABEL};
pub use migration::{AppliedMigration, MigrationState, MigrationStatus, SchemaVersion};
pub use revision::{Fingerprint, Revision, RevisionId};
pub use snapshot::{Condition, EventRecord, Patience, PodState, RolloutSnapshot};
pub use traffic::{
    RouteVersion, Routed, RouterCapabilities, RoutingMode, TrafficSplit, Verification,
};
