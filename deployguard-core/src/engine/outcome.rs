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
    },
    /// The rollout failed and was recovered.
    RolledBack {
        /// What failed.
        failing: Fingerprint,
        /// What runs now, when the recovery rolled back.
        restored: Option<Fingerprint>,
        /// Why.
        reason: String,
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
            } => write!(f, "promoted {fingerprint}"),
            Self::Promoted { fingerprint: None } => f.write_str("promoted"),
            Self::RolledBack {
                failing,
                restored: Some(restored),
                reason,
            } => {
                write!(f, "rolled back from {failing} to {restored}: {reason}")
            }
            Self::RolledBack {
                failing,
                restored: None,
                reason,
            } => {
                write!(f, "recovered from {failing}: {reason}")
            }
            Self::Paused { reason } => write!(f, "paused: {reason}"),
            Self::Failed { reason, .. } => write!(f, "failed: {reason}"),
        }
    }
}

/// What a guard run produced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
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
