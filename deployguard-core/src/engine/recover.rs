//! Assessment and recovery: what is wrong, what to do, doing it.

use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use super::decide::Phase;
use super::diagnose::diagnose_within;
use super::gate::{GateVerdict, migration_gate};
use super::report::ExecutionOutcome;
use super::starting::{StartBudget, Starting};
use std::sync::Arc;

use super::config::GuardConfig;
use super::execute::{ExecuteOptions, Platform};
use super::journal::JournalSink;
use super::journal::{EventKind, JournalEvent};
use super::markers::{self, EarlierRecovery, RecoveryMarker};
use super::outcome::{GuardOutcome, GuardReport};
use super::plan::{Plan, RecoveryContext, plan_recovery};
use super::strategy::Strategy;
use super::strategy::StrategyKind;
use super::target::rollback_target;
use crate::analysis::{RolloutStatus, rollout_status};
use crate::error::{Error, ErrorKind, Result};
use crate::model::{
    Diagnosis, Fingerprint, MigrationState, Revision, RolloutSnapshot, RoutingMode, TrafficSplit,
};

/// What is wrong with a rollout, and what recovery would do about it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Assessment {
    /// The guard's strategy.
    pub strategy: StrategyKind,
    /// What the router suggests the strategy is: all-or-nothing is blue-green, weighted is
    /// canary, no router is rolling.
    pub detected_strategy: StrategyKind,
    /// The observation.
    pub snapshot: RolloutSnapshot,
    /// The kubectl ladder's reading of it.
    pub status: RolloutStatus,
    /// Ready over desired; `None` when nothing is desired.
    pub healthy_fraction: Option<f64>,
    /// Failure modes with evidence.
    pub failure_modes: Vec<Diagnosis>,
    /// The new version's pods that are still starting, within their budget: not a failure.
    pub starting: Option<Starting>,
    /// The revision running now.
    pub current: Option<Revision>,
    /// Where a rollback would go.
    pub rollback_target: Option<Revision>,
    /// Why there is no rollback target, when there is none.
    pub no_target_reason: Option<String>,
    /// The schema's state, when a migration inspector is set.
    pub migrations: Option<MigrationState>,
    /// The migration gate's verdict on the rollback target.
    pub gate: GateVerdict,
    /// The router's split, when a router is set.
    pub traffic: Option<TrafficSplit>,
    /// What an earlier run left on the platform: a recovery to finish, one that finished, or a
    /// stale marker.
    pub earlier: EarlierRecovery,
    /// What is failing: the recovery under way's failing revision when there is one (after its
    /// rollback, what runs is the target, not the failure), else what runs now.
    pub failing: Option<Fingerprint>,
}

impl Assessment {
    /// Whether the rollout looks broken: failure modes were found or the ladder says failed.
    /// A rollout that is merely in progress, within its deadline, is not failing.
    pub fn is_failing(&self) -> bool {
        !self.failure_modes.is_empty() || matches!(self.status, RolloutStatus::Failed(_))
    }

    /// Whether an earlier run's recovery is under way and must be finished.
    pub fn recovery_under_way(&self) -> bool {
        matches!(self.earlier, EarlierRecovery::InProgress { .. })
    }

    /// A one-line summary of why it fails.
    pub fn reason(&self) -> String {
        if let EarlierRecovery::InProgress { reason, .. } = &self.earlier {
            return reason.clone();
        }
        if self.failure_modes.is_empty() {
            return self.status.message().to_owned();
        }
        let names: Vec<&str> = self.failure_modes.iter().map(|d| d.mode.name()).collect();
        names.join(", ")
    }
}

/// Assesses a deployment and recovers it: everything of a guard but the analysis. A
/// [`Guard`](super::Guard) holds one (see [`Guard::recovery`](super::Guard::recovery)); the
/// emergency command uses it alone.
#[derive(Debug, Clone)]
pub struct Recovery {
    pub(crate) strategy: Strategy,
    pub(crate) platform: Platform,
    pub(crate) config: GuardConfig,
    pub(crate) journal: Arc<dyn JournalSink>,
    /// The deployment's name, as the kubectl ladder prints it.
    pub(crate) name: String,
}

impl Recovery {
    pub(crate) fn report(&self, outcome: GuardOutcome) -> GuardReport {
        GuardReport {
            outcome,
            dry_run: self.config.dry_run,
            plan: None,
            execution: None,
        }
    }

    /// The options a plan of this guard executes with, from now.
    pub(crate) fn execute_options(&self, started: Instant) -> ExecuteOptions {
        ExecuteOptions {
            deadline: Instant::now() + self.config.recovery_deadline,
            step_timeout: self.config.step_timeout,
            poll: self.config.poll_interval,
            dry_run: self.config.dry_run,
            migration_policy: self.config.migration_policy,
            retry: self.config.retry,
            started,
        }
    }

    /// Observes the rollout and says what is wrong and where a rollback would go. Reads only.
    pub async fn assess(&self) -> Result<Assessment> {
        let deadline = Instant::now() + self.config.recovery_deadline;
        let retry = self.config.retry;
        let backend = &self.platform.backend;
        // Observed first: a backend may answer the markers and the history from that read.
        let snapshot = retry.run(deadline, || backend.observe()).await?;
        let marks = retry.run(deadline, || backend.markers()).await?;
        let history = retry.run(deadline, || backend.history()).await?;
        let current = snapshot
            .current_fingerprint
            .as_ref()
            .and_then(|fp| history.iter().find(|r| &r.fingerprint == fp))
            .cloned();
        let earlier = markers::decode::<RecoveryMarker>(marks.get(markers::RECOVERY))
            .map_or(EarlierRecovery::None, |marker| {
                marker.classify(snapshot.current_fingerprint.as_ref(), &history)
            });
        let (failing, pinned) = match &earlier {
            EarlierRecovery::InProgress {
                failing, target, ..
            } => (Some(failing.clone()), *target),
            _ => (snapshot.current_fingerprint.clone(), None),
        };
        let found = match (pinned, &failing) {
            // A recovery under way keeps its target: recomputing it after the rollback would
            // pick the revision before the restored one — the failing one.
            (Some(target), _) => history
                .iter()
                .find(|r| r.answers_to(target))
                .ok_or_else(|| {
                    Error::not_found(format!("revision {target}, the recovery's target"))
                }),
            (None, Some(failing)) => rollback_target(&history, failing),
            (None, None) => Err(Error::not_found(
                "the running revision: the deployment runs nothing yet",
            )),
        };
        let (rollback_target, no_target_reason) = match found {
            Ok(target) => (Some(target.clone()), None),
            Err(err) => (None, Some(err.to_string())),
        };
        let migrations = match &self.platform.migrations {
            Some(inspector) => {
                let state = retry.run(deadline, || inspector.inspect()).await?;
                *self
                    .platform
                    .inspected
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) =
                    Some((Instant::now(), state.clone()));
                Some(state)
            }
            None => None,
        };
        let gate = match (&rollback_target, &migrations) {
            (Some(target), Some(state)) => {
                migration_gate(target, state, self.config.migration_policy)
            }
            _ => GateVerdict::Pass,
        };
        let traffic = match &self.platform.router {
            Some(router) => Some(retry.run(deadline, || router.current()).await?.split),
            None => None,
        };
        let detected_strategy = match self.platform.router.as_ref().map(|r| r.capabilities().mode) {
            Some(RoutingMode::AllOrNothing) => StrategyKind::BlueGreen,
            Some(_) => StrategyKind::Canary,
            None => StrategyKind::Rolling,
        };
        let budget = StartBudget::of(&snapshot, self.config.unready_after);
        Ok(Assessment {
            strategy: self.strategy.kind(),
            detected_strategy,
            status: rollout_status(&self.name, &snapshot),
            healthy_fraction: snapshot.healthy_fraction(),
            failure_modes: diagnose_within(&snapshot, &budget),
            starting: Starting::of(&snapshot, &budget),
            snapshot,
            current,
            rollback_target,
            no_target_reason,
            migrations,
            gate,
            traffic,
            earlier,
            failing,
        })
    }

    /// The recovery plan for `assessment`. Pure apart from reading the stable side's state.
    pub async fn plan(&self, assessment: &Assessment) -> Result<Plan> {
        let failing = assessment.failing.clone().ok_or_else(|| {
            Error::not_found("the failing revision: the deployment runs nothing yet")
        })?;
        let ctx = self
            .context(
                Phase::initial(&self.strategy),
                assessment.reason(),
                failing,
                assessment,
                None,
            )
            .await?;
        plan_recovery(&ctx)
    }

    /// Executes `plan` within `deadline` from now (nothing is written in a dry run).
    pub async fn execute(
        &self,
        plan: &Plan,
        deadline: std::time::Duration,
    ) -> super::report::Report {
        let started = Instant::now();
        let mut options = self.execute_options(started);
        options.deadline = started + deadline;
        self.platform
            .execute(plan, &options, self.journal.as_ref())
            .await
    }

    async fn context(
        &self,
        phase: Phase,
        reason: String,
        failing: Fingerprint,
        assessment: &Assessment,
        original_split: Option<TrafficSplit>,
    ) -> Result<RecoveryContext> {
        let mut ctx = RecoveryContext::new(self.strategy.clone(), phase, failing, reason);
        ctx.current = assessment
            .snapshot
            .current_revision
            .zip(assessment.snapshot.current_fingerprint.clone());
        ctx.target = assessment.rollback_target.clone();
        ctx.gate = assessment.gate.clone();
        ctx.original_split = original_split;
        ctx.can_pause = self.platform.backend.capabilities().pause;
        ctx.paused_by_someone = assessment.snapshot.paused
            && !assessment.recovery_under_way()
            && !self.config.resume_paused;
        if let Some(stable) = &self.platform.stable {
            let deadline = Instant::now() + self.config.recovery_deadline;
            let snapshot = self.config.retry.run(deadline, || stable.observe()).await?;
            let replicas = if snapshot.desired > 0 {
                snapshot.desired
            } else {
                assessment.snapshot.desired
            };
            ctx.stable = Some((replicas, snapshot.desired > 0 && snapshot.is_complete()));
            if !self.strategy.recovers_by_rollback()
                && let (Some(state), Some(fp)) =
                    (&assessment.migrations, &snapshot.current_fingerprint)
            {
                // Traffic goes back to the stable side's code: gate on what it runs.
                let history = self.config.retry.run(deadline, || stable.history()).await?;
                if let Some(revision) = history.iter().find(|r| &r.fingerprint == fp) {
                    ctx.gate = migration_gate(revision, state, self.config.migration_policy);
                }
            }
        }
        Ok(ctx)
    }

    /// Plans and executes recovery from `failing`, journaling both. `target` pins the rollback
    /// target a previous run chose (after renumbering, recomputing it would find another).
    pub(crate) async fn recover(
        &self,
        started: Instant,
        reason: String,
        phase: Phase,
        original_split: Option<TrafficSplit>,
        failing: Fingerprint,
    ) -> Result<GuardReport> {
        use tracing::Instrument as _;
        let span = tracing::info_span!(
            target: "deployguard",
            "recovery",
            target = %self.platform.backend.target(),
            strategy = ?self.strategy.kind(),
            failing = %failing,
            reason = %reason,
        );
        self.recover_traced(started, reason, phase, original_split, failing)
            .instrument(span)
            .await
    }

    async fn recover_traced(
        &self,
        started: Instant,
        reason: String,
        phase: Phase,
        original_split: Option<TrafficSplit>,
        failing: Fingerprint,
    ) -> Result<GuardReport> {
        // The recovery's deadline covers its assessment too.
        let options = self.execute_options(started);
        let mut assessment = self.assess().await?;
        if assessment.recovery_under_way() {
            // The assessment already follows the recovery under way, with its pinned target.
        } else if assessment.snapshot.current_fingerprint.as_ref() != Some(&failing) {
            // What runs is not what failed (a human rolled back under us): recompute from the
            // failing revision, not from what runs now.
            let deadline = Instant::now() + self.config.recovery_deadline;
            let backend = &self.platform.backend;
            let history = self
                .config
                .retry
                .run(deadline, || backend.history())
                .await?;
            assessment.rollback_target = rollback_target(&history, &failing).ok().cloned();
            if let (Some(target), Some(state)) =
                (&assessment.rollback_target, &assessment.migrations)
            {
                assessment.gate = migration_gate(target, state, self.config.migration_policy);
            }
        }
        let ctx = self
            .context(
                phase,
                reason.clone(),
                failing.clone(),
                &assessment,
                original_split,
            )
            .await?;
        let plan = plan_recovery(&ctx)?;
        self.journal.record(&JournalEvent {
            at: started.elapsed(),
            kind: EventKind::Planned {
                steps: plan.steps.clone(),
                dry_run: self.config.dry_run,
            },
        });
        let execution = self
            .platform
            .execute(&plan, &options, self.journal.as_ref())
            .await;
        if let (Some(why), false) = (&plan.blocked, self.config.dry_run) {
            // The platform's object says the recovery was refused, and why.
            let record = RecoveryMarker::refused(failing.clone(), why.clone());
            let backend = &self.platform.backend;
            let deadline = Instant::now() + self.config.step_timeout;
            let written = self
                .config
                .retry
                .run(deadline, || {
                    backend.set_marker(markers::RECOVERY, Some(markers::encode(&record)))
                })
                .await;
            if let Err(err) = written {
                tracing::warn!(target: "deployguard", "recording the refused recovery: {err}");
            }
        }
        let outcome = match (&plan.blocked, &execution.outcome) {
            (Some(why), ExecutionOutcome::Completed) => GuardOutcome::Paused {
                reason: why.clone(),
            },
            (None, ExecutionOutcome::Completed) => {
                let failing_image = assessment
                    .current
                    .as_ref()
                    .filter(|c| c.fingerprint == failing)
                    .and_then(|c| c.images.first().cloned());
                GuardOutcome::rolled_back(
                    (failing, failing_image),
                    ctx.target
                        .map(|t| (t.fingerprint.clone(), t.images.first().cloned())),
                    reason,
                )
            }
            (_, ExecutionOutcome::DeadlineExceeded { step }) => GuardOutcome::Failed {
                kind: ErrorKind::Timeout,
                reason: format!(
                    "recovery deadline of {:?} exceeded at step {}: {}",
                    self.config.recovery_deadline,
                    step + 1,
                    plan.steps[*step]
                ),
            },
            (
                _,
                ExecutionOutcome::Failed {
                    step, kind, error, ..
                },
            ) => GuardOutcome::Failed {
                kind: *kind,
                reason: format!("step {} ({}) failed: {error}", step + 1, plan.steps[*step]),
            },
        };
        Ok(GuardReport {
            outcome,
            dry_run: self.config.dry_run,
            plan: Some(plan),
            execution: Some(execution),
        })
    }
}
