//! Database schema state, as a [`MigrationInspector`](crate::MigrationInspector) reports it.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A schema version, as migration tools number them (sequence numbers or timestamps).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SchemaVersion(pub u64);

impl fmt::Display for SchemaVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// One applied migration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct AppliedMigration {
    /// The version this migration brings the schema to.
    pub version: SchemaVersion,
    /// A human name (`"add_orders_currency"`).
    pub name: String,
    /// Whether code written for the schema *before* this migration still works after it.
    /// `None` when unknown, which the gate treats as incompatible.
    pub backward_compatible: Option<bool>,
}

impl AppliedMigration {
    /// A migration with unknown compatibility.
    pub fn new(version: SchemaVersion, name: impl Into<String>) -> Self {
        Self {
            version,
            name: name.into(),
            backward_compatible: None,
        }
    }

    /// Declares whether older code keeps working after this migration.
    pub fn with_backward_compatible(mut self, compatible: bool) -> Self {
        self.backward_compatible = Some(compatible);
        self
    }
}

/// Whether a migration is running or broke.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum MigrationStatus {
    /// No migration running; the last one finished.
    Idle,
    /// A migration is running now.
    InProgress {
        /// What is running (a Job name, a migration name).
        what: String,
    },
    /// The last migration failed.
    Failed {
        /// Why, with the evidence (last log lines).
        reason: String,
    },
    /// The migration tool marked the schema dirty: a migration stopped halfway.
    Dirty {
        /// The version the tool was migrating to.
        version: SchemaVersion,
    },
}

impl fmt::Display for MigrationStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Idle => f.write_str("no migration running"),
            Self::InProgress { what } => write!(f, "migration {what} running"),
            Self::Failed { reason } => write!(f, "last migration failed: {reason}"),
            Self::Dirty { version } => {
                write!(f, "dirty: a migration to {version} stopped halfway")
            }
        }
    }
}

/// The database schema's state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct MigrationState {
    /// The schema version now, where known.
    pub current: Option<SchemaVersion>,
    /// Applied migrations, oldest first.
    pub applied: Vec<AppliedMigration>,
    /// Whether a migration runs or broke.
    pub status: MigrationStatus,
}

impl MigrationState {
    /// An idle schema at `current` with the given applied migrations.
    pub fn idle(current: Option<SchemaVersion>, applied: Vec<AppliedMigration>) -> Self {
        Self {
            current,
            applied,
            status: MigrationStatus::Idle,
        }
    }

    /// The same state with another status.
    pub fn with_status(mut self, status: MigrationStatus) -> Self {
        self.status = status;
        self
    }

    /// Migrations applied after `version`, oldest first: what a rollback to code that needs
    /// `version` would run against.
    pub fn applied_after(&self, version: SchemaVersion) -> impl Iterator<Item = &AppliedMigration> {
        self.applied.iter().filter(move |m| m.version > version)
    }
}
