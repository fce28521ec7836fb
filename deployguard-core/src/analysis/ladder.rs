//! The built-in check: kubectl's `rollout status` ladder over a [`RolloutSnapshot`].

use serde::{Deserialize, Serialize};

use crate::model::RolloutSnapshot;

/// Where a rollout stands by the kubectl ladder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", content = "message", rename_all = "snake_case")]
#[non_exhaustive]
pub enum RolloutStatus {
    /// Still rolling out; the message is kubectl's.
    Waiting(String),
    /// Rolled out.
    Done(String),
    /// The platform gave up (progress deadline exceeded).
    Failed(String),
}

impl RolloutStatus {
    /// kubectl's message, whatever the rung.
    pub fn message(&self) -> &str {
        match self {
            Self::Waiting(message) | Self::Done(message) | Self::Failed(message) => message,
        }
    }
}

impl std::fmt::Display for RolloutStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.message())
    }
}

/// Reads `snapshot` the way `kubectl rollout status deployment/NAME` does, rung by rung:
/// observed generation, progress deadline, updated < desired, old replicas pending termination,
/// available < updated, done. Messages are kubectl's, word for word.
///
/// ```
/// use deployguard_core::RolloutSnapshot;
/// use deployguard_core::analysis::{rollout_status, RolloutStatus};
///
/// let mut snapshot = RolloutSnapshot::new(6);
/// (snapshot.total, snapshot.updated, snapshot.available) = (8, 3, 5);
/// assert_eq!(
///     rollout_status("app-deployment", &snapshot),
///     RolloutStatus::Waiting(
///         "Waiting for deployment \"app-deployment\" rollout to finish: 3 out of 6 new replicas have been updated...".into()
///     )
/// );
/// ```
pub fn rollout_status(name: &str, snapshot: &RolloutSnapshot) -> RolloutStatus {
    if !snapshot.generation_observed {
        return RolloutStatus::Waiting(
            "Waiting for deployment spec update to be observed...".into(),
        );
    }
    if snapshot.progress_deadline_exceeded {
        return RolloutStatus::Failed(format!(
            "deployment {name:?} exceeded its progress deadline"
        ));
    }
    if snapshot.updated < snapshot.desired {
        return RolloutStatus::Waiting(format!(
            "Waiting for deployment {name:?} rollout to finish: {} out of {} new replicas have been updated...",
            snapshot.updated, snapshot.desired
        ));
    }
    if snapshot.total > snapshot.updated {
        return RolloutStatus::Waiting(format!(
            "Waiting for deployment {name:?} rollout to finish: {} old replicas are pending termination...",
            snapshot.total - snapshot.updated
        ));
    }
    if snapshot.available < snapshot.updated {
        return RolloutStatus::Waiting(format!(
            "Waiting for deployment {name:?} rollout to finish: {} of {} updated replicas are available...",
            snapshot.available, snapshot.updated
        ));
    }
    RolloutStatus::Done(format!("deployment {name:?} successfully rolled out"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot(desired: u32, total: u32, updated: u32, available: u32) -> RolloutSnapshot {
        let mut s = RolloutSnapshot::new(desired);
        (s.total, s.updated, s.available, s.ready) = (total, updated, available, available);
        s
    }

    #[test]
    fn each_rung_of_the_ladder() {
        let mut stale = snapshot(6, 6, 6, 6);
        stale.generation_observed = false;
        let mut deadline = snapshot(6, 8, 3, 5);
        deadline.progress_deadline_exceeded = true;
        let cases = [
            (
                stale,
                "Waiting(\"Waiting for deployment spec update to be observed...\")",
            ),
            (
                deadline,
                "Failed(\"deployment \\\"web\\\" exceeded its progress deadline\")",
            ),
            (
                snapshot(6, 8, 3, 5),
                "Waiting(\"Waiting for deployment \\\"web\\\" rollout to finish: 3 out of 6 new replicas have been updated...\")",
            ),
            (
                snapshot(6, 7, 6, 6),
                "Waiting(\"Waiting for deployment \\\"web\\\" rollout to finish: 1 old replicas are pending termination...\")",
            ),
            (
                snapshot(6, 6, 6, 4),
                "Waiting(\"Waiting for deployment \\\"web\\\" rollout to finish: 4 of 6 updated replicas are available...\")",
            ),
            (
                snapshot(6, 6, 6, 6),
                "Done(\"deployment \\\"web\\\" successfully rolled out\")",
            ),
        ];
        for (snapshot, expected) in cases {
            assert_eq!(format!("{:?}", rollout_status("web", &snapshot)), expected);
        }
    }
}
