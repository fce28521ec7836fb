//! The guard's markers on the platform: everything a restarted guard needs, and nothing kept
//! only in memory.

use serde::{Deserialize, Serialize};

use super::decide::Phase;
use crate::model::{Fingerprint, RevisionId, TrafficSplit};

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

pub(crate) fn encode<T: Serialize>(value: &T) -> String {
    // These types serialize infallibly (no maps with non-string keys, no custom errors).
    serde_json::to_string(value).unwrap_or_default()
}

/// A marker that does not parse is treated as absent: a human may have edited it, and a guard
/// that re-assesses from observed state is safe without it.
pub(crate) fn decode<T: for<'de> Deserialize<'de>>(value: Option<&String>) -> Option<T> {
    value.and_then(|v| serde_json::from_str(v).ok())
}
