//! The guard's markers on the platform: everything a restarted guard needs, and nothing kept
//! only in memory.

use serde::{Deserialize, Serialize};

use super::decide::Phase;
use crate::model::{Fingerprint, Revision, RevisionId, TrafficSplit};

/// The rollout being guarded, its phase and the split before it started.
pub const ROLLOUT: &str = "deployguard.io/rollout";
/// A recovery in progress or finished.
pub const RECOVERY: &str = "deployguard.io/recovery";
/// A human asked to promote.
pub const PROMOTE: &str = "deployguard.io/promote";

/// The content of the [`ROLLOUT`] marker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Rollout {
    pub(crate) fingerprint: Fingerprint,
    pub(crate) phase: Phase,
    pub(crate) original_split: Option<TrafficSplit>,
}

/// The content of the [`RECOVERY`] marker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct RecoveryMarker {
    pub(crate) state: RecoveryState,
    pub(crate) failing: Fingerprint,
    pub(crate) target: Option<RevisionId>,
    pub(crate) restored: Option<Fingerprint>,
    pub(crate) reason: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum RecoveryState {
    InProgress,
    Done,
    /// A step failed for good; `reason` says which and why. A later run resumes it.
    Failed,
    /// Recovery was refused (a migration gate, a paused deployment); `reason` says why. A later
    /// run assesses anew.
    Refused,
}

impl RecoveryMarker {
    pub(crate) fn in_progress(
        failing: Fingerprint,
        target: Option<RevisionId>,
        reason: String,
    ) -> Self {
        Self {
            state: RecoveryState::InProgress,
            failing,
            target,
            restored: None,
            reason,
        }
    }

    pub(crate) fn refused(failing: Fingerprint, reason: String) -> Self {
        Self {
            state: RecoveryState::Refused,
            failing,
            target: None,
            restored: None,
            reason,
        }
    }

    pub(crate) fn failed(failing: Fingerprint, target: Option<RevisionId>, reason: String) -> Self {
        Self {
            state: RecoveryState::Failed,
            failing,
            target,
            restored: None,
            reason,
        }
    }

    /// What this marker means for a deployment that runs `current` now, with `history`.
    ///
    /// A recovery in progress (or failed) is resumed only while what runs is what failed or
    /// what the recovery restores; anything else means the deployment moved on (a human rolled
    /// forward, a newer release) and the marker is stale.
    pub(crate) fn classify(
        &self,
        current: Option<&Fingerprint>,
        history: &[Revision],
    ) -> EarlierRecovery {
        let target_fingerprint = self.target.and_then(|target| {
            history
                .iter()
                .find(|r| r.answers_to(target))
                .map(|r| r.fingerprint.clone())
        });
        let runs_failing = current == Some(&self.failing);
        let runs_target = current.is_some() && current == target_fingerprint.as_ref();
        match self.state {
            RecoveryState::InProgress | RecoveryState::Failed if runs_failing || runs_target => {
                EarlierRecovery::InProgress {
                    failing: self.failing.clone(),
                    target: self.target,
                    reason: self.reason.clone(),
                    failed_before: (self.state == RecoveryState::Failed)
                        .then(|| self.reason.clone()),
                }
            }
            RecoveryState::InProgress | RecoveryState::Failed => EarlierRecovery::Stale {
                failing: self.failing.clone(),
                runs_now: current.cloned(),
            },
            RecoveryState::Done | RecoveryState::Refused if runs_failing => EarlierRecovery::None,
            RecoveryState::Refused => EarlierRecovery::Stale {
                failing: self.failing.clone(),
                runs_now: current.cloned(),
            },
            RecoveryState::Done => EarlierRecovery::Finished {
                failing: self.failing.clone(),
                restored: self.restored.clone(),
            },
        }
    }

    pub(crate) fn done(failing: Fingerprint, restored: Option<Fingerprint>) -> Self {
        Self {
            state: RecoveryState::Done,
            failing,
            target: None,
            restored,
            reason: String::new(),
        }
    }
}

/// What the recovery marker on the platform says, against what runs now: the state every run
/// (a guard, the emergency command, a rerun of either) starts from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
#[non_exhaustive]
pub enum EarlierRecovery {
    /// No recovery is recorded for what runs now.
    None,
    /// A recovery was started (or failed) and not finished: it is finished towards the same
    /// target, never recomputed (after a rollback, "the revision before the current one" is the
    /// failing one again).
    InProgress {
        /// What was failing.
        failing: Fingerprint,
        /// Where its rollback goes, as numbered when it was recorded.
        target: Option<RevisionId>,
        /// Why it was started.
        reason: String,
        /// Why the last attempt failed, when it did.
        failed_before: Option<String>,
    },
    /// A recovery finished; what runs is not what failed.
    Finished {
        /// What was failing.
        failing: Fingerprint,
        /// What it restored, where known.
        restored: Option<Fingerprint>,
    },
    /// A recovery of a revision that no longer runs (and is not what it restores): reported and
    /// cleared, never acted on.
    Stale {
        /// What the marker says was failing.
        failing: Fingerprint,
        /// What runs now.
        runs_now: Option<Fingerprint>,
    },
}

impl std::fmt::Display for EarlierRecovery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::None => f.write_str("no earlier recovery"),
            Self::InProgress {
                failing,
                target: Some(target),
                failed_before,
                ..
            } => {
                write!(
                    f,
                    "a recovery from {failing} to revision {target} is under way"
                )?;
                match failed_before {
                    Some(why) => write!(f, " (its last attempt failed: {why})"),
                    None => Ok(()),
                }
            }
            Self::InProgress {
                failing,
                target: None,
                ..
            } => {
                write!(f, "a recovery from {failing} is under way")
            }
            Self::Finished {
                failing,
                restored: Some(restored),
            } => {
                write!(f, "an earlier run recovered from {failing} to {restored}")
            }
            Self::Finished {
                failing,
                restored: None,
            } => {
                write!(f, "an earlier run recovered from {failing}")
            }
            Self::Stale { failing, runs_now } => write!(
                f,
                "a stale recovery marker for {failing}, which no longer runs (now: {})",
                runs_now
                    .as_ref()
                    .map_or("nothing".to_owned(), ToString::to_string)
            ),
        }
    }
}

pub(crate) fn encode<T: Serialize>(value: &T) -> String {
    // These types serialize infallibly (no maps with non-string keys, no custom errors).
    serde_json::to_string(value).unwrap_or_default()
}

/// A marker that does not parse is treated as absent: a human may have edited it, and a guard
/// that re-assesses from observed state is safe without it.
pub(crate) fn decode<T: for<'de> Deserialize<'de>>(value: Option<&String>) -> Option<T> {
    value.and_then(|v| serde_json::from_str(v).ok())
}
