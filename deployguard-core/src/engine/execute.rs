//! Executing a plan: each step through the traits, with retries inside a whole-recovery deadline.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

use super::gate::{GateVerdict, MigrationPolicy, migration_gate};
use super::journal::{EventKind, JournalEvent, JournalSink};
use super::markers;
use super::plan::{Plan, Step};
use super::report::{ExecutionOutcome, Report, StepReport, StepStatus};
use super::retry::RetryPolicy;
use crate::analysis::{RolloutStatus, rollout_status};
use crate::error::{Error, ErrorKind, Result};
use crate::model::{Fingerprint, MigrationState, RolloutSnapshot, Verification};
use crate::traits::{
    DeploymentBackend, DeploymentBackendExt, MigrationInspector, RollbackOptions, TrafficRouter,
};

/// What a plan runs against.
#[derive(Debug, Clone)]
pub(crate) struct Platform {
    pub(crate) backend: Arc<dyn DeploymentBackend>,
    pub(crate) stable: Option<Arc<dyn DeploymentBackend>>,
    pub(crate) router: Option<Arc<dyn TrafficRouter>>,
    pub(crate) migrations: Option<Arc<dyn MigrationInspector>>,
    /// The latest migration inspection and when it was made: the gate step reuses it while it
    /// is younger than one poll interval.
    pub(crate) inspected: Arc<Mutex<Option<(Instant, MigrationState)>>>,
    /// The status an AwaitAvailable step ended on, and when: the Validate step after it
    /// reuses it while it is younger than one poll interval.
    pub(crate) completed: Arc<Mutex<Option<(Instant, RolloutSnapshot)>>>,
    /// What the RollBack step put in place: the AwaitAvailable step after it stops when the
    /// deployment is changed to anything else while it waits.
    pub(crate) rolled_back_to: Arc<Mutex<Option<Fingerprint>>>,
}

/// How to execute.
#[derive(Debug, Clone)]
pub(crate) struct ExecuteOptions {
    pub(crate) deadline: Instant,
    pub(crate) step_timeout: Duration,
    pub(crate) poll: Duration,
    pub(crate) dry_run: bool,
    pub(crate) migration_policy: MigrationPolicy,
    pub(crate) retry: RetryPolicy,
    pub(crate) started: Instant,
}

impl Platform {
    pub(crate) async fn execute(
        &self,
        plan: &Plan,
        options: &ExecuteOptions,
        journal: &dyn JournalSink,
    ) -> Report {
        let mut steps: Vec<StepReport> = plan
            .steps
            .iter()
            .map(|step| StepReport {
                step: step.clone(),
                status: StepStatus::NotRun,
                attempts: 0,
                took_ms: 0,
            })
            .collect();
        // What an earlier plan rolled back to says nothing about this one.
        *self
            .rolled_back_to
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = None;
        let emit = |kind| {
            journal.record(&JournalEvent {
                at: options.started.elapsed(),
                kind,
            })
        };
        for (index, step) in plan.steps.iter().enumerate() {
            if options.dry_run {
                // A dry run writes nothing but asks what the real run would ask, so it never
                // promises a step the real run then refuses.
                if let Err(err) = self.preflight(step, options).await {
                    steps[index].status = StepStatus::Failed(err.to_string());
                    emit(EventKind::StepFailed {
                        index,
                        error: err.to_string(),
                    });
                    return Report {
                        steps,
                        outcome: ExecutionOutcome::Failed {
                            step: index,
                            kind: err.kind(),
                            error: err.to_string(),
                        },
                        dry_run: true,
                    };
                }
                steps[index].status = StepStatus::Planned;
                continue;
            }
            emit(EventKind::StepStarted {
                index,
                step: step.clone(),
            });
            let began = Instant::now();
            let step_deadline = options.deadline.min(began + options.step_timeout);
            let mut attempts = 0;
            let result = loop {
                attempts += 1;
                let attempt = tokio::time::timeout_at(
                    step_deadline,
                    self.run(step, options, step_deadline, &emit),
                )
                .await;
                match attempt {
                    Ok(Ok(())) => break Ok(()),
                    Ok(Err(err)) => {
                        let wait = options.retry.backoff(attempts);
                        if !err.is_retryable() || Instant::now() + wait >= step_deadline {
                            break Err(err);
                        }
                        emit(EventKind::StepRetrying {
                            index,
                            attempt: attempts,
                            error: err.to_string(),
                            wait,
                        });
                        tokio::time::sleep(wait).await;
                    }
                    Err(_) => {
                        break Err(Error::new(
                            ErrorKind::Timeout,
                            format!("step did not finish in {:?}", step_deadline - began),
                        ));
                    }
                }
            };
            steps[index].attempts = attempts;
            steps[index].took_ms = began.elapsed().as_millis() as u64;
            match result {
                Ok(()) => {
                    steps[index].status = StepStatus::Done;
                    emit(EventKind::StepFinished {
                        index,
                        took: began.elapsed(),
                        attempts,
                    });
                }
                Err(err) => {
                    steps[index].status = StepStatus::Failed(err.to_string());
                    emit(EventKind::StepFailed {
                        index,
                        error: err.to_string(),
                    });
                    // The platform's own object says the recovery failed, and why, whatever
                    // the caller does next: the next run (a guard, the command again) resumes it.
                    if let Some(Step::RecordIntent {
                        failing, target, ..
                    }) = plan.steps.first().filter(|_| index > 0)
                    {
                        let record = markers::RecoveryMarker::failed(
                            failing.clone(),
                            *target,
                            format!("step {} ({step}) failed: {err}", index + 1),
                        );
                        if let Err(mark_err) = self
                            .backend
                            .set_marker(markers::RECOVERY, Some(markers::encode(&record)))
                            .await
                        {
                            tracing::warn!(target: "deployguard", "recording the failed recovery: {mark_err}");
                        }
                    }
                    // A step that timed out against the recovery's own deadline (not its
                    // step timeout) ran out of the whole recovery's time.
                    let out_of_time = Instant::now() >= options.deadline
                        || (err.kind() == ErrorKind::Timeout && step_deadline == options.deadline);
                    let outcome = if out_of_time {
                        ExecutionOutcome::DeadlineExceeded { step: index }
                    } else {
                        ExecutionOutcome::Failed {
                            step: index,
                            kind: err.kind(),
                            error: err.to_string(),
                        }
                    };
                    return Report {
                        steps,
                        outcome,
                        dry_run: false,
                    };
                }
            }
        }
        Report {
            steps,
            outcome: ExecutionOutcome::Completed,
            dry_run: options.dry_run,
        }
    }

    /// The read-only checks of `step`: what its real run would refuse on.
    async fn preflight(&self, step: &Step, options: &ExecuteOptions) -> Result<()> {
        match step {
            Step::ShiftTraffic { split } | Step::VerifyTraffic { split } => {
                let router = self
                    .router
                    .as_ref()
                    .ok_or_else(|| missing("a traffic router"))?;
                router.capabilities().check(split)
            }
            Step::GateMigrations { target } => match &self.migrations {
                Some(migrations) => {
                    let state = migrations.inspect().await?;
                    match migration_gate(target, &state, options.migration_policy) {
                        GateVerdict::Block(why) => Err(Error::new(
                            ErrorKind::Refused,
                            format!("migration gate: {why}"),
                        )),
                        _ => Ok(()),
                    }
                }
                None => Ok(()),
            },
            Step::RollBack { to, .. } => {
                let history = self.backend.history().await?;
                if history.iter().any(|r| r.answers_to(*to)) {
                    Ok(())
                } else {
                    Err(Error::not_found(format!("revision {to} in the history")))
                }
            }
            Step::Freeze if !self.backend.capabilities().pause => Err(Error::unsupported(format!(
                "{} cannot pause",
                self.backend.target()
            ))),
            Step::EnsureStableReady { .. } if self.stable.is_none() => {
                Err(missing("a stable deployment"))
            }
            _ => Ok(()),
        }
    }

    async fn run(
        &self,
        step: &Step,
        options: &ExecuteOptions,
        step_deadline: Instant,
        emit: &(dyn Fn(EventKind) + Sync),
    ) -> Result<()> {
        match step {
            Step::RecordIntent {
                failing,
                target,
                reason,
            } => {
                let record =
                    markers::RecoveryMarker::in_progress(failing.clone(), *target, reason.clone());
                self.backend
                    .set_marker(markers::RECOVERY, Some(markers::encode(&record)))
                    .await
            }
            Step::Freeze => self.backend.set_paused(true).await,
            Step::EnsureStableReady { replicas } => {
                let stable = self
                    .stable
                    .as_ref()
                    .ok_or_else(|| missing("a stable deployment"))?;
                stable.scale(*replicas).await?;
                let wait = step_deadline.saturating_duration_since(Instant::now());
                stable
                    .wait_until_complete(wait, options.poll)
                    .await
                    .map(drop)
            }
            Step::ShiftTraffic { split } => {
                let router = self
                    .router
                    .as_ref()
                    .ok_or_else(|| missing("a traffic router"))?;
                // The write is conditional on this read: a concurrent change is a Conflict,
                // and the retry reads again before deciding to write.
                let read = router.current().await?;
                if read.split == *split {
                    return Ok(());
                }
                router.apply(split, &read.version).await.map(drop)
            }
            Step::VerifyTraffic { split } => {
                let router = self
                    .router
                    .as_ref()
                    .ok_or_else(|| missing("a traffic router"))?;
                loop {
                    match router.verify(split).await? {
                        Verification::Matches => return Ok(()),
                        other if Instant::now() + options.poll >= step_deadline => {
                            return Err(Error::new(
                                ErrorKind::Timeout,
                                format!("traffic is not {split}: {other}"),
                            ));
                        }
                        _ => tokio::time::sleep(options.poll).await,
                    }
                }
            }
            Step::GateMigrations { target } => {
                let Some(migrations) = &self.migrations else {
                    return Ok(());
                };
                // The gate decides again right before the rollback, from the assessment's
                // inspection only when that is younger than one poll interval (a plan run at
                // once, with no one asked); otherwise from a new one.
                let recent = self
                    .inspected
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .take()
                    .filter(|(at, _)| at.elapsed() < options.poll)
                    .map(|(_, state)| state);
                let state = match recent {
                    Some(state) => state,
                    None => migrations.inspect().await?,
                };
                match migration_gate(target, &state, options.migration_policy) {
                    GateVerdict::Block(why) => Err(Error::new(
                        ErrorKind::Refused,
                        format!("migration gate: {why}"),
                    )),
                    GateVerdict::Warn(why) => {
                        tracing::warn!(target: "deployguard", "migration gate (warn policy): {why}");
                        Ok(())
                    }
                    _ => Ok(()),
                }
            }
            Step::RollBack {
                to,
                expected_current,
            } => {
                let mut rollback = RollbackOptions::default().with_resume_if_paused(true);
                rollback.expected_current = *expected_current;
                let target = self.backend.revision(*to).await?;
                *self
                    .rolled_back_to
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner) = Some(target.fingerprint.clone());
                match self.backend.rollback_to(*to, rollback).await {
                    Ok(_) => Ok(()),
                    // After a conflict, decide afresh: if what we wanted already runs and we
                    // put it there (a retry after a lost answer), the step is done; if the
                    // deployment still runs what the plan was made against, someone touched it
                    // without changing what runs — re-read and try again; otherwise a human or
                    // another tool changed what runs, and the plan no longer holds: stop, and
                    // say who and what.
                    Err(err) if err.kind() == ErrorKind::Conflict && err.is_retryable() => {
                        let snapshot = self.backend.observe().await?;
                        let ours = snapshot.template_changed_by.is_none();
                        if snapshot.current_fingerprint == Some(target.fingerprint) && ours {
                            Ok(())
                        } else if expected_current.is_none()
                            || snapshot.current_revision == *expected_current
                        {
                            Err(err.with_retryable(true))
                        } else {
                            Err(self.changed_under_us(&snapshot).await)
                        }
                    }
                    Err(err) => Err(err),
                }
            }
            Step::AwaitAvailable => {
                // Each status goes to the journal, so whoever watches (a person at a terminal,
                // a log) sees the rollout move while the step waits. A backend that follows
                // changes returns the moment the rollout completes; the default looks every
                // poll and looks past a transient error until the deadline.
                let name = self.backend.name();
                let expected = self
                    .rolled_back_to
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .clone();
                let (seen, mut statuses) = tokio::sync::mpsc::unbounded_channel();
                let wait = step_deadline.saturating_duration_since(Instant::now());
                let waiting = self.backend.await_complete(wait, options.poll, seen);
                // Tells each new status; a status that runs something other than what this
                // recovery rolled back to (someone else's write) ends the wait at once.
                let telling = async {
                    let mut last = None;
                    while let Some(snapshot) = statuses.recv().await {
                        if let (Some(expected), Some(now)) =
                            (&expected, &snapshot.current_fingerprint)
                            && expected != now
                        {
                            return Some(snapshot);
                        }
                        let status = rollout_status(&name, &snapshot);
                        if last.as_ref() != Some(&status) {
                            emit(EventKind::Observed {
                                status: status.message().to_owned(),
                                healthy_fraction: snapshot.healthy_fraction(),
                            });
                            last = Some(status);
                        }
                    }
                    None
                };
                // The wait drops its sender when it ends, which ends the telling.
                let mut waiting = std::pin::pin!(waiting);
                let mut telling = std::pin::pin!(telling);
                let complete = tokio::select! {
                    complete = &mut waiting => match telling.await {
                        Some(changed) => return Err(self.changed_under_us(&changed).await),
                        None => complete,
                    },
                    changed = &mut telling => match changed {
                        Some(changed) => return Err(self.changed_under_us(&changed).await),
                        None => waiting.await,
                    },
                };
                let complete = complete?;
                if let Some(expected) = &expected
                    && complete.current_fingerprint.as_ref() != Some(expected)
                    && complete.current_fingerprint.is_some()
                {
                    return Err(self.changed_under_us(&complete).await);
                }
                *self
                    .completed
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner) = Some((Instant::now(), complete));
                Ok(())
            }
            Step::Validate { fingerprint } => {
                // The status the wait just ended on is as fresh as a new read would be: it is
                // used when it is younger than one poll interval.
                let recent = self
                    .completed
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .take()
                    .filter(|(at, _)| at.elapsed() < options.poll)
                    .map(|(_, snapshot)| snapshot);
                let snapshot = match recent {
                    Some(snapshot) => snapshot,
                    None => self.backend.observe().await?,
                };
                if snapshot.current_fingerprint.as_ref() != Some(fingerprint)
                    && snapshot.template_changed_by.is_some()
                {
                    return Err(self.changed_under_us(&snapshot).await);
                }
                if snapshot.current_fingerprint.as_ref() != Some(fingerprint) {
                    return Err(Error::new(
                        ErrorKind::Conflict,
                        format!(
                            "expected {fingerprint} to run, found {}",
                            snapshot
                                .current_fingerprint
                                .as_ref()
                                .map_or("nothing".to_owned(), ToString::to_string)
                        ),
                    )
                    .with_retryable(false));
                }
                match rollout_status(&self.backend.name(), &snapshot) {
                    RolloutStatus::Done(_) => Ok(()),
                    other => Err(Error::new(
                        ErrorKind::Timeout,
                        format!("not rolled out: {other}"),
                    )),
                }
            }
            Step::ScaleDownCandidate { replicas, after } => {
                tokio::time::sleep(*after).await;
                self.backend.scale(*replicas).await
            }
            Step::RecordOutcome { failing, restored } => {
                let record = markers::RecoveryMarker::done(failing.clone(), restored.clone());
                self.backend
                    .set_marker(markers::RECOVERY, Some(markers::encode(&record)))
                    .await?;
                self.backend.set_marker(markers::ROLLOUT, None).await?;
                self.backend.set_marker(markers::PROMOTE, None).await
            }
        }
    }
}

impl Platform {
    /// The error for a deployment someone else changed during the recovery: non-retryable
    /// `Conflict`, naming what it runs now, as which revision, and who wrote it (read afresh:
    /// the status that showed the change may carry a stale revision number).
    async fn changed_under_us(&self, seen: &RolloutSnapshot) -> Error {
        // The platform numbers the other writer's revision when it acts on their change (the
        // Deployment controller): wait a little for it, so the message names the number it
        // keeps.
        let mut now = seen.clone();
        for _ in 0..8 {
            match self.backend.observe().await {
                Ok(read) => {
                    now = read;
                    if now.generation_observed {
                        break;
                    }
                }
                Err(_) => break,
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        let revision = match now.current_revision {
            Some(id) => self.backend.revision(id).await.ok(),
            None => None,
        };
        let what = match (&revision, now.current_revision) {
            (Some(revision), Some(id)) if !revision.images.is_empty() => {
                format!("{} (revision {id})", revision.images.join(", "))
            }
            (_, Some(id)) => format!("revision {id}"),
            _ => now
                .current_fingerprint
                .as_ref()
                .map_or("something else".to_owned(), ToString::to_string),
        };
        let writer = now
            .template_changed_by
            .or_else(|| seen.template_changed_by.clone())
            .unwrap_or_else(|| "another writer".to_owned());
        Error::new(
            ErrorKind::Conflict,
            format!("the deployment's template changed under us: now {what}, written by {writer}"),
        )
        .with_retryable(false)
    }
}

fn missing(what: &str) -> Error {
    Error::new(
        ErrorKind::InvalidInput,
        format!("the plan needs {what}, and the guard has none"),
    )
    .with_retryable(false)
}
