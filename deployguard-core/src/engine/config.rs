//! [`GuardConfig`]: the settings a guard runs with.

use std::time::Duration;

use super::gate::MigrationPolicy;
use super::retry::RetryPolicy;
use crate::error::{Error, Result};

/// Settings of a guard, as its builder set them (read them with [`Guard::config`](super::Guard::config)).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct GuardConfig {
    /// The whole recovery's deadline (default 600 s, the seed runbook's MAX_ROLLBACK_TIME).
    pub recovery_deadline: Duration,
    /// One step's timeout (default 300 s, never past the recovery deadline).
    pub step_timeout: Duration,
    /// How often the rollout is observed (default 5 s).
    pub poll_interval: Duration,
    /// What the migration gate does (default: block).
    pub migration_policy: MigrationPolicy,
    /// Observe, analyse and plan; write nothing.
    pub dry_run: bool,
    /// Consecutive observation errors tolerated before the guard gives up (default 4).
    pub observe_error_limit: u32,
    /// How failed reads and writes are retried (the one policy of every read and write).
    pub retry: RetryPolicy,
    /// Whether a recovery may resume a deployment someone paused (default: no — refused with a
    /// clear reason, as `kubectl rollout undo` refuses).
    pub resume_paused: bool,
    /// How long the one-actor lock lasts without a renewal (default 15 s, renewed every third
    /// of it).
    pub lock_ttl: Duration,
    /// How long the candidate's pods may show a definite failure (CrashLoopBackOff, an image
    /// that cannot be pulled, a missing ConfigMap or Secret, OOMKilled, unschedulable, a running
    /// app answering its readiness probe with an error past its start) before the guard aborts
    /// (default 20 s; `None` leaves pod failures to the checks and the progress deadline).
    pub pod_failure_after: Option<Duration>,
    /// How long the candidate's pods may run unready while their app answers nothing before
    /// the guard aborts. Default `None`: the workload's own budget, its progress deadline
    /// (`progressDeadlineSeconds`, 600 s by default) — a pod that is starting is not failing,
    /// and unready pods get no traffic. Never shorter than the start the workload declares or
    /// has shown (see [`StartBudget`](super::StartBudget)). A running app that answers its
    /// readiness probe with an error past that start is failing sooner, after
    /// `pod_failure_after`.
    pub unready_after: Option<Duration>,
    /// How long a completed rolling or recreate rollout is still judged before it is promoted
    /// (default 5 min: what a service's ordinary deploy shows of a leak or a slow failure;
    /// zero turns it off). A failure during the bake rolls back to the last good revision,
    /// whose ReplicaSet is still there. Canary and blue-green judge after their own promotion
    /// steps instead.
    pub bake: Duration,
}

impl GuardConfig {
    /// `InvalidInput` naming the first setting that cannot work.
    pub(crate) fn validate(&self) -> Result<()> {
        for (field, value) in [
            ("recovery_deadline", self.recovery_deadline),
            ("step_timeout", self.step_timeout),
            ("poll_interval", self.poll_interval),
            ("lock_ttl", self.lock_ttl),
        ] {
            if value.is_zero() {
                return Err(Error::invalid_input(field, "must be greater than zero"));
            }
        }
        Ok(())
    }
}

impl Default for GuardConfig {
    fn default() -> Self {
        Self {
            recovery_deadline: Duration::from_secs(600),
            step_timeout: Duration::from_secs(300),
            poll_interval: Duration::from_secs(5),
            migration_policy: MigrationPolicy::Block,
            dry_run: false,
            observe_error_limit: 4,
            retry: RetryPolicy::default(),
            lock_ttl: Duration::from_secs(15),
            resume_paused: false,
            pod_failure_after: Some(Duration::from_secs(20)),
            unready_after: None,
            bake: Duration::from_secs(300),
        }
    }
}
