//! Revisions: what a deployment ran, and what we know about each version.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::migration::SchemaVersion;

/// A revision number as the platform numbers it (Kubernetes: `deployment.kubernetes.io/revision`).
///
/// Numbers are **not** contiguous and not stable: Kubernetes renumbers a revision that is rolled
/// back to (revision 2 becomes revision 4). Never compute a target as `current - 1`; compare
/// [`Fingerprint`]s to know whether two revisions run the same thing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RevisionId(pub u64);

impl fmt::Display for RevisionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A stable identity of what a revision runs (Kubernetes: the `pod-template-hash`).
///
/// Two revisions with the same fingerprint run the same pod template, whatever their numbers.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Fingerprint(pub String);

impl Fingerprint {
    /// A fingerprint from any string.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The fingerprint as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One entry of a deployment's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Revision {
    /// The revision's current number.
    pub id: RevisionId,
    /// Numbers this revision had before it was rolled back to and renumbered, oldest first
    /// (Kubernetes: `deployment.kubernetes.io/revision-history`).
    pub previous_ids: Vec<RevisionId>,
    /// What the revision runs.
    pub fingerprint: Fingerprint,
    /// Container images, in pod-template order.
    pub images: Vec<String>,
    /// Seconds since the Unix epoch at which the revision was created, where known.
    pub created_unix_seconds: Option<i64>,
    /// Whether deployguard (or a human) verified this revision healthy in production.
    pub verified: bool,
    /// The database schema version this revision needs, where it declares one.
    pub requires_schema: Option<SchemaVersion>,
}

impl Revision {
    /// A revision with a number, a fingerprint and images; everything else unknown.
    pub fn new(id: RevisionId, fingerprint: Fingerprint, images: Vec<String>) -> Self {
        Self {
            id,
            previous_ids: Vec::new(),
            fingerprint,
            images,
            created_unix_seconds: None,
            verified: false,
            requires_schema: None,
        }
    }

    /// Sets the verified marker.
    pub fn with_verified(mut self, verified: bool) -> Self {
        self.verified = verified;
        self
    }

    /// Sets the schema requirement.
    pub fn with_requires_schema(mut self, schema: Option<SchemaVersion>) -> Self {
        self.requires_schema = schema;
        self
    }

    /// Sets the numbers this revision had before renumbering.
    pub fn with_previous_ids(mut self, previous: Vec<RevisionId>) -> Self {
        self.previous_ids = previous;
        self
    }

    /// Whether `id` names this revision, now or before it was renumbered.
    ///
    /// This is what makes a rollback idempotent: after rolling back to revision 2 (renumbered to
    /// 4), asking again for revision 2 still finds the same revision.
    pub fn answers_to(&self, id: RevisionId) -> bool {
        self.id == id || self.previous_ids.contains(&id)
    }
}
