//! What a [`DeploymentBackend`](crate::DeploymentBackend) observes of a rollout.

use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use super::revision::{Fingerprint, RevisionId};

/// One observation of a deployment and its pods.
///
/// Counts follow the Kubernetes Deployment status: `updated` pods run the current revision,
/// `ready` pods pass readiness, `available` pods have been ready for `minReadySeconds`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RolloutSnapshot {
    /// Replicas the deployment asks for.
    pub desired: u32,
    /// Pods of any revision that exist (Kubernetes `status.replicas`).
    pub total: u32,
    /// Pods of the current revision.
    pub updated: u32,
    /// Ready pods of any revision.
    pub ready: u32,
    /// Available pods of any revision.
    pub available: u32,
    /// The revision the deployment runs now (or rolls out to).
    pub current_revision: Option<RevisionId>,
    /// What the current revision runs.
    pub current_fingerprint: Option<Fingerprint>,
    /// Whether the platform has acted on the latest spec (Kubernetes: observedGeneration ≥
    /// generation). Counts are stale until it has.
    pub generation_observed: bool,
    /// Whether the rollout is paused.
    pub paused: bool,
    /// Whether the platform gave up waiting for progress (Kubernetes: `ProgressDeadlineExceeded`).
    pub progress_deadline_exceeded: bool,
    /// Platform conditions, verbatim.
    pub conditions: Vec<Condition>,
    /// Every pod the deployment owns.
    pub pods: Vec<PodState>,
    /// Recent events about the deployment and its pods, oldest first.
    pub events: Vec<EventRecord>,
    /// The platform's clock when it answered (the API server's `Date`), where known. Pod ages
    /// are counted on it, never on the observer's clock.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_at: Option<SystemTime>,
    /// What the workload declares about how long its pods take to start.
    #[serde(default)]
    pub patience: Patience,
    /// Who last changed what the deployment runs, when that was not deployguard (Kubernetes:
    /// the field manager owning the pod template's images, e.g. `kubectl-rollout`); `None` when
    /// deployguard wrote it last or the platform does not say. A recovery that finds the
    /// template changed by someone else stops rather than fight them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template_changed_by: Option<String>,
}

/// What a workload declares about its start: how long a pod of it may take to become ready,
/// and how long the platform waits for progress. A pod that is starting is not failing; these
/// say for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Patience {
    /// How long a start may take by the pod template: the startup probe's budget
    /// (`initialDelaySeconds + failureThreshold × periodSeconds`), then the readiness probe's
    /// initial delay and `failureThreshold × periodSeconds`, then `minReadySeconds`.
    pub declared_start: Duration,
    /// How long the platform waits for progress before it gives up (Kubernetes:
    /// `progressDeadlineSeconds`, 600 s by default); `None` when it does not say.
    pub progress_deadline: Option<Duration>,
}

impl Patience {
    /// A workload whose start takes `declared_start` and whose platform waits
    /// `progress_deadline` for progress.
    pub fn new(declared_start: Duration, progress_deadline: Option<Duration>) -> Self {
        Self {
            declared_start,
            progress_deadline,
        }
    }
}

impl RolloutSnapshot {
    /// An empty snapshot of a deployment that wants `desired` replicas.
    pub fn new(desired: u32) -> Self {
        Self {
            desired,
            generation_observed: true,
            ..Self::default()
        }
    }

    /// Ready pods over desired replicas, in `0.0..=1.0`; `None` when nothing is desired, so a
    /// deployment scaled to zero never divides by zero.
    pub fn healthy_fraction(&self) -> Option<f64> {
        (self.desired > 0)
            .then(|| f64::from(self.ready.min(self.desired)) / f64::from(self.desired))
    }

    /// Pods of revision `id`.
    pub fn pods_of(&self, id: RevisionId) -> impl Iterator<Item = &PodState> {
        self.pods.iter().filter(move |p| p.revision == Some(id))
    }

    /// Whether the rollout has finished: every desired replica runs the current revision and is
    /// available, and no old pod is left (the kubectl `rollout status` success condition).
    pub fn is_complete(&self) -> bool {
        self.generation_observed
            && !self.progress_deadline_exceeded
            && self.updated >= self.desired
            && self.total <= self.updated
            && self.available >= self.updated
    }
}

/// A platform condition (Kubernetes `status.conditions[]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Condition {
    /// `Progressing`, `Available`, `ReplicaFailure`, …
    pub kind: String,
    /// `True`, `False` or `Unknown`.
    pub status: String,
    /// The machine-readable reason (`ProgressDeadlineExceeded`).
    pub reason: String,
    /// The human message.
    pub message: String,
}

impl Condition {
    /// A condition from its four fields.
    pub fn new(
        kind: impl Into<String>,
        status: impl Into<String>,
        reason: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            kind: kind.into(),
            status: status.into(),
            reason: reason.into(),
            message: message.into(),
        }
    }
}

/// One pod, reduced to what diagnosis needs.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub struct PodState {
    /// The pod's name.
    pub name: String,
    /// The revision whose ReplicaSet owns the pod.
    pub revision: Option<RevisionId>,
    /// `Pending`, `Running`, `Succeeded`, `Failed`, `Unknown`.
    pub phase: String,
    /// Whether the pod is Ready.
    pub ready: bool,
    /// Restarts summed over containers.
    pub restarts: u32,
    /// The first waiting reason of a container (`CrashLoopBackOff`, `ImagePullBackOff`, …).
    pub waiting_reason: Option<String>,
    /// The reason a container last terminated (`OOMKilled`, `Error`, …).
    pub last_termination_reason: Option<String>,
    /// The message that goes with the waiting or termination reason.
    pub message: Option<String>,
    /// The last log lines of a failing container.
    pub log_tail: Vec<String>,
    /// How long the pod has existed, by the platform's clock; `None` when unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub age: Option<Duration>,
    /// For a ready pod: how long after its creation it became ready.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_after: Option<Duration>,
    /// The kubelet's latest readiness probe failure for this pod, verbatim (`Readiness probe
    /// failed: HTTP probe failed with statuscode: 503`, or `… connect: connection refused` while
    /// nothing listens yet).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probe_failure: Option<String>,
}

impl PodState {
    /// A running pod of `revision`.
    pub fn running(name: impl Into<String>, revision: RevisionId, ready: bool) -> Self {
        Self {
            name: name.into(),
            revision: Some(revision),
            phase: "Running".into(),
            ready,
            ..Self::default()
        }
    }

    /// The same pod, `age` old.
    pub fn aged(mut self, age: Duration) -> Self {
        self.age = Some(age);
        self
    }

    /// The same pod with its latest readiness probe failure.
    pub fn with_probe_failure(mut self, message: impl Into<String>) -> Self {
        self.probe_failure = Some(message.into());
        self
    }

    /// Whether the pod's app answered its readiness probe with an error (an HTTP status, an
    /// exec probe's exit code), rather than not answering at all (nothing listens yet, a
    /// timeout): a running app that says it is not well, where a starting one says nothing.
    pub fn app_answered_unready(&self) -> bool {
        self.probe_failure.as_deref().is_some_and(|m| {
            m.contains("statuscode") || m.contains("exit code") || m.contains("exited with")
        })
    }

    /// The same pod waiting with `reason`.
    pub fn with_waiting(mut self, reason: impl Into<String>, message: impl Into<String>) -> Self {
        self.waiting_reason = Some(reason.into());
        self.message = Some(message.into());
        self
    }
}

/// One platform event (Kubernetes `Event`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct EventRecord {
    /// What the event is about (`pod/web-5d9c-abcde`).
    pub object: String,
    /// `Normal` or `Warning`.
    pub kind: String,
    /// The reason (`BackOff`, `FailedScheduling`, …).
    pub reason: String,
    /// The message.
    pub message: String,
    /// How many times it happened.
    pub count: u32,
}

impl EventRecord {
    /// A warning event.
    pub fn warning(
        object: impl Into<String>,
        reason: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            object: object.into(),
            kind: "Warning".into(),
            reason: reason.into(),
            message: message.into(),
            count: 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn healthy_fraction_never_divides_by_zero() {
        let empty = RolloutSnapshot::new(0);
        assert_eq!(empty.healthy_fraction(), None);
        let mut half = RolloutSnapshot::new(6);
        half.ready = 3;
        assert_eq!(half.healthy_fraction(), Some(0.5));
    }
}
