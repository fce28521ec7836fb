//! How a guard run ends: [`GuardOutcome`] and the [`GuardReport`] around it.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::plan::Plan;
use super::report::Report;
use crate::error::ErrorKind;
use crate::model::Fingerprint;

/// How a guard ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
#[non_exhaustive]
pub enum GuardOutcome {
    /// The rollout passed and the candidate was marked verified.
    Promoted {
        /// What was promoted.
        fingerprint: Option<Fingerprint>,
        /// Its image, as people name the version (`app:v2.4.0`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        image: Option<String>,
    },
    /// The rollout failed and was recovered.
    RolledBack {
        /// What failed.
        failing: Fingerprint,
        /// What runs now, when the recovery rolled back.
        restored: Option<Fingerprint>,
        /// Why.
        reason: String,
        /// The failing version's image, where known.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        failing_image: Option<String>,
        /// The restored version's image, where known.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        restored_image: Option<String>,
    },
    /// Waiting for a human (inconclusive analysis, a manual gate, a blocked migration gate).
    Paused {
        /// Why.
        reason: String,
    },
    /// The guard could not finish (deadline, an error that retrying did not fix).
    Failed {
        /// What kind of error stopped it (a deadline is [`ErrorKind::Timeout`]).
        kind: ErrorKind,
        /// Why.
        reason: String,
    },
}

impl fmt::Display for GuardOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Promoted {
                fingerprint: Some(fingerprint),
                image,
            } => write!(f, "promoted {}", named(fingerprint, image.as_deref())),
            Self::Promoted {
                fingerprint: None,
                image: Some(image),
            } => write!(f, "promoted {image}"),
            Self::Promoted { .. } => f.write_str("promoted"),
            Self::RolledBack {
                failing,
                restored: Some(restored),
                reason,
                failing_image,
                restored_image,
            } => write!(
                f,
                "rolled back {} to {}: {reason}",
                named(failing, failing_image.as_deref()),
                named(restored, restored_image.as_deref())
            ),
            Self::RolledBack {
                failing,
                restored: None,
                reason,
                failing_image,
                ..
            } => write!(
                f,
                "recovered from {}: {reason}",
                named(failing, failing_image.as_deref())
            ),
            Self::Paused { reason } => write!(f, "paused: {reason}"),
            Self::Failed { reason, .. } => write!(f, "failed: {reason}"),
        }
    }
}

/// A version as people name it: its image, with the pod-template hash beside it
/// (`app:v2.4.0 (86dc4c94cb)`); the hash alone when the image is unknown.
pub(crate) fn named(fingerprint: &Fingerprint, image: Option<&str>) -> String {
    match image {
        Some(image) if image != fingerprint.as_str() => format!("{image} ({fingerprint})"),
        _ => fingerprint.to_string(),
    }
}

impl GuardOutcome {
    /// A rollback of `failing` to `restored` (each with its image, where known).
    pub(crate) fn rolled_back(
        failing: (Fingerprint, Option<String>),
        restored: Option<(Fingerprint, Option<String>)>,
        reason: String,
    ) -> Self {
        let (restored, restored_image) = match restored {
            Some((fp, image)) => (Some(fp), image),
            None => (None, None),
        };
        Self::RolledBack {
            failing: failing.0,
            failing_image: failing.1,
            restored,
            restored_image,
            reason,
        }
    }
}

/// What a guard run produced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
#[must_use = "a guard's report says whether it promoted, rolled back, paused or failed"]
pub struct GuardReport {
    /// How it ended. In a dry run: how it would have ended, with nothing written.
    pub outcome: GuardOutcome,
    /// Whether this was a dry run.
    pub dry_run: bool,
    /// The recovery plan, if one was made.
    pub plan: Option<Plan>,
    /// How executing it went, if it was executed.
    pub execution: Option<Report>,
}
