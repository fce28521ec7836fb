//! [`Guard`]: observe → analyse → decide → act, until the rollout is promoted or recovered.

use std::collections::BTreeMap;
use std::sync::Arc;

use std::time::Duration;

use tokio::time::Instant;

use super::builder::GuardBuilder;
use super::config::GuardConfig;
use super::decide::{Decision, DecisionInput, Phase, decide};
use super::journal::{EventKind, JournalEvent};
use super::markers::{self, EarlierRecovery, RecoveryMarker, Rollout};
use super::outcome::{GuardOutcome, GuardReport};
use super::plan::Plan;
use super::pod_health::PodHealth;
use super::recover::{Assessment, Recovery};
use super::report::Report;
use super::starting::{StartBudget, Starting};
use super::strategy::{Canary, CanaryStep, Strategy};
use crate::analysis::{
    AnalysisCheck, CheckSchedule, RolloutStatus, Verdict, VersionRef, Versions, rollout_status,
};
use crate::error::{Error, Result};
use crate::model::{Fingerprint, RolloutSnapshot, TrafficSplit, Verification};
use crate::traits::{
    ActorLock, DeploymentBackend, DeploymentBackendExt, HealthProbe, LockState, TrafficRouterExt,
};

/// Guards one rollout.
///
/// A guard keeps no progress in memory that it cannot find again: its phase, the split before the
/// rollout and any recovery in progress are markers on the deployment. A guard restarted at any
/// point re-assesses from what it observes plus those markers and finishes the job.
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use deployguard_core::analysis::{AnalysisCheck, Threshold};
/// use deployguard_core::engine::{Guard, GuardOutcome, Strategy};
/// use deployguard_testkit::{Behaviour, FakeDeployment, ScriptedProbe};
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() -> deployguard_core::Result<()> {
/// let (backend, handle) = FakeDeployment::builder("web")
///     .replicas(6)
///     .verified_revision(["app:v2.3.1"], Behaviour::healthy())
///     .revision(["app:v2.4.0"], Behaviour::failing_readiness())
///     .build();
/// let (probe, _) = ScriptedProbe::new("http").value("error_rate", 0.15).build();
/// let guard = Guard::builder(Strategy::Rolling, Arc::new(backend))
///     .probe(Arc::new(probe))
///     .check(
///         AnalysisCheck::builder("error-rate", "http", "error_rate")
///             .success(Threshold::at_most(0.01))
///             .interval(Duration::from_secs(10))
///             .build()?,
///     )
///     .build()?;
/// let report = guard.run().await;
/// assert!(matches!(report.outcome, GuardOutcome::RolledBack { .. }));
/// assert_eq!(handle.current_images(), ["app:v2.3.1"]);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct Guard {
    pub(crate) recovery: Recovery,
    pub(crate) probes: Vec<Arc<dyn HealthProbe>>,
    pub(crate) checks: Vec<AnalysisCheck>,
    /// The one-actor lock and this guard's name as its holder.
    pub(crate) lock: Option<(Arc<dyn ActorLock>, String)>,
}

impl Guard {
    /// Starts building a guard of `backend` (the candidate's deployment) under `strategy`.
    pub fn builder(strategy: Strategy, backend: Arc<dyn DeploymentBackend>) -> GuardBuilder {
        GuardBuilder::new(strategy, backend)
    }

    /// Asks a guard paused at a manual gate to promote: a marker on the deployment, read by the
    /// next [`run`](Self::run), whichever process runs it.
    pub async fn promote(&self) -> Result<()> {
        self.recovery
            .platform
            .backend
            .set_marker(markers::PROMOTE, Some("true".into()))
            .await
    }

    /// The settings.
    pub fn config(&self) -> &GuardConfig {
        &self.recovery.config
    }

    /// What assesses and recovers this guard's deployment, without the analysis: what an
    /// emergency command uses.
    pub fn recovery(&self) -> &Recovery {
        &self.recovery
    }

    /// Observes the rollout and says what is wrong and where a rollback would go. Reads only.
    pub async fn assess(&self) -> Result<Assessment> {
        self.recovery.assess().await
    }

    /// The recovery plan for `assessment`.
    pub async fn plan(&self, assessment: &Assessment) -> Result<Plan> {
        self.recovery.plan(assessment).await
    }

    /// Executes `plan` within `deadline` from now (nothing is written in a dry run).
    pub async fn execute(&self, plan: &Plan, deadline: Duration) -> Report {
        self.recovery.execute(plan, deadline).await
    }
}

impl Guard {
    fn emit(&self, started: Instant, kind: EventKind) {
        self.recovery.journal.record(&JournalEvent {
            at: started.elapsed(),
            kind,
        });
    }

    fn checks_for(&self, phase: Phase) -> Vec<AnalysisCheck> {
        let mut checks = self.checks.clone();
        if let Strategy::BlueGreen(bg) = &self.recovery.strategy {
            match phase {
                Phase::PrePromotion => checks.extend(bg.pre_promotion.iter().cloned()),
                Phase::PostPromotion => checks.extend(bg.post_promotion.iter().cloned()),
                _ => {}
            }
        }
        checks
    }

    fn probe(&self, name: &str) -> Option<&Arc<dyn HealthProbe>> {
        self.probes.iter().find(|p| p.name() == name)
    }

    async fn write_marker(&self, key: &str, value: Option<String>) -> Result<()> {
        if self.recovery.config.dry_run {
            return Ok(());
        }
        let deadline = Instant::now() + self.recovery.config.step_timeout;
        let backend = &self.recovery.platform.backend;
        self.recovery
            .config
            .retry
            .run(deadline, || backend.set_marker(key, value.clone()))
            .await
    }

    /// Runs the guard to its end: promoted, rolled back, paused or failed.
    ///
    /// Inside a `tracing` span `guard` with the deployment (`target`) and the `strategy` as
    /// fields; its journal goes to `tracing` as events in it.
    pub async fn run(&self) -> GuardReport {
        use tracing::Instrument as _;
        let span = tracing::info_span!(
            target: "deployguard",
            "guard",
            target = %self.recovery.platform.backend.target(),
            strategy = ?self.recovery.strategy.kind(),
            revision = tracing::field::Empty,
            dry_run = self.recovery.config.dry_run,
        );
        self.run_traced().instrument(span).await
    }

    async fn run_traced(&self) -> GuardReport {
        let started = Instant::now();
        self.emit(
            started,
            EventKind::Started {
                target: self.recovery.platform.backend.target(),
                strategy: self.recovery.strategy.kind(),
            },
        );
        let result = match &self.lock {
            Some((lock, holder)) => self.run_holding(lock.as_ref(), holder, started).await,
            None => self.run_inner(started).await,
        };
        let report = result.unwrap_or_else(|err| {
            self.recovery.report(GuardOutcome::Failed {
                kind: err.kind(),
                reason: err.to_string(),
            })
        });
        self.emit(
            started,
            EventKind::Finished {
                outcome: report.outcome.clone(),
            },
        );
        report
    }

    /// Runs holding the one-actor lock: waits while another actor holds it (and then finds that
    /// actor's outcome in the markers), renews it in the background, stops if it is lost, and
    /// releases it at the end.
    async fn run_holding(
        &self,
        lock: &dyn ActorLock,
        holder: &str,
        started: Instant,
    ) -> Result<GuardReport> {
        let config = &self.recovery.config;
        let ttl = config.lock_ttl;
        let deadline = Instant::now() + config.recovery_deadline;
        while let LockState::HeldBy {
            holder: other,
            expires_in,
        } = config
            .retry
            .run(deadline, || lock.acquire(holder, ttl))
            .await?
        {
            self.emit(
                started,
                EventKind::WaitingForLock {
                    holder: other.clone(),
                },
            );
            if Instant::now() >= deadline {
                return Err(Error::new(
                    crate::ErrorKind::Timeout,
                    format!("{} is held by {other}; gave up waiting", lock.target()),
                ));
            }
            let wait = expires_in.clamp(Duration::from_millis(100), config.poll_interval);
            tokio::time::sleep(wait).await;
        }
        let renew = async {
            loop {
                tokio::time::sleep(ttl / 3).await;
                let deadline = Instant::now() + ttl / 2;
                match config
                    .retry
                    .run(deadline, || lock.acquire(holder, ttl))
                    .await
                {
                    Ok(LockState::HeldBy { holder: other, .. }) => {
                        return Error::new(
                            crate::ErrorKind::Conflict,
                            format!(
                                "lost {} to {other}; stopped before writing more",
                                lock.target()
                            ),
                        );
                    }
                    Ok(_) => {}
                    Err(err) if err.is_retryable() => {}
                    Err(err) => return err,
                }
            }
        };
        let result = tokio::select! {
            result = self.run_inner(started) => result,
            lost = renew => Err(lost),
        };
        if let Err(err) = lock.release(holder).await {
            tracing::warn!(target: "deployguard", "releasing {}: {err}", lock.target());
        }
        result
    }

    /// One observation, retried by the policy within a step's timeout; an error that outlasts
    /// it is tolerated `observe_error_limit` times in a row before the guard gives up.
    async fn observe(&self, errors: &mut u32) -> Result<Option<RolloutSnapshot>> {
        let config = &self.recovery.config;
        let backend = &self.recovery.platform.backend;
        let deadline = Instant::now() + config.step_timeout;
        match config.retry.run(deadline, || backend.observe()).await {
            Ok(snapshot) => {
                *errors = 0;
                Ok(Some(snapshot))
            }
            Err(err) if err.is_retryable() && *errors < config.observe_error_limit => {
                *errors += 1;
                Ok(None)
            }
            Err(err) => Err(err),
        }
    }

    async fn run_inner(&self, started: Instant) -> Result<GuardReport> {
        let retry = self.recovery.config.retry;
        let backend = &self.recovery.platform.backend;
        let startup = Instant::now() + self.recovery.config.recovery_deadline;
        let marks: BTreeMap<String, String> = retry.run(startup, || backend.markers()).await?;
        let rollout: Option<Rollout> = markers::decode(marks.get(markers::ROLLOUT));
        let mut observe_errors = 0;
        // The failing revision is read from the platform, never assumed: a guard started before
        // the new ReplicaSet exists waits until the deployment runs something.
        let current = loop {
            if let Some(snapshot) = self.observe(&mut observe_errors).await?
                && let Some(current) = snapshot.current_fingerprint
            {
                break current;
            }
            tokio::time::sleep(self.recovery.config.poll_interval).await;
        };
        if let Some(marker) = markers::decode::<RecoveryMarker>(marks.get(markers::RECOVERY)) {
            let history = retry.run(startup, || backend.history()).await?;
            match marker.classify(Some(&current), &history) {
                EarlierRecovery::Finished { failing, restored } => {
                    return Ok(self.recovery.report(GuardOutcome::rolled_back(
                        with_image(failing, &history),
                        restored.map(|r| with_image(r, &history)),
                        "recovered by an earlier run".into(),
                    )));
                }
                EarlierRecovery::InProgress {
                    failing, reason, ..
                } => {
                    let phase = rollout
                        .as_ref()
                        .map_or(Phase::initial(&self.recovery.strategy), |r| r.phase);
                    let split = rollout.and_then(|r| r.original_split);
                    return self
                        .recovery
                        .recover(started, reason, phase, split, failing)
                        .await;
                }
                stale @ EarlierRecovery::Stale { .. } => {
                    // Never acted on: said, then cleared.
                    tracing::warn!(target: "deployguard", "{stale}; clearing it");
                    self.emit(started, EventKind::StaleMarkerCleared { marker: stale });
                    self.write_marker(markers::RECOVERY, None).await?;
                }
                _ => {}
            }
        }
        let resumed = rollout.filter(|r| r.fingerprint == current);
        let (mut phase, original_split) = match resumed {
            Some(r) => (r.phase, r.original_split),
            None => {
                let split = match &self.recovery.platform.router {
                    Some(router) => Some(retry.run(startup, || router.current()).await?.split),
                    None => None,
                };
                let phase = Phase::initial(&self.recovery.strategy);
                let marker = Rollout {
                    fingerprint: current.clone(),
                    phase,
                    original_split: split.clone(),
                };
                self.write_marker(markers::ROLLOUT, Some(markers::encode(&marker)))
                    .await?;
                (phase, split)
            }
        };
        tracing::Span::current().record("revision", tracing::field::display(&current));
        let versions = self.versions(&current).await;
        let mut pod_health = PodHealth::default();
        let mut analysis = CheckSchedule::new(self.checks_for(phase));
        let mut phase_started = Instant::now();
        let mut last_status: Option<RolloutStatus> = None;
        let mut last_verdict = Verdict::Running;
        let mut observe_errors = 0;
        loop {
            let Some(snapshot) = self.observe(&mut observe_errors).await? else {
                tokio::time::sleep(self.recovery.config.poll_interval).await;
                continue;
            };
            if snapshot.current_fingerprint.as_ref() != Some(&current) {
                // Someone else changed what runs (another guard, the emergency command, a
                // human): this guard judged the rollout it watched, never the new one.
                return self
                    .moved_on(started, &current, snapshot.current_fingerprint)
                    .await;
            }
            let status = rollout_status(&self.recovery.name, &snapshot);
            if last_status.as_ref() != Some(&status) {
                // A rollout whose pods are starting says for how long they may.
                let budget = StartBudget::of(&snapshot, self.recovery.config.unready_after);
                let message = match Starting::of(&snapshot, &budget) {
                    Some(starting) => format!("{} ({starting})", status.message()),
                    None => status.message().to_owned(),
                };
                self.emit(
                    started,
                    EventKind::Observed {
                        status: message,
                        healthy_fraction: snapshot.healthy_fraction(),
                    },
                );
                last_status = Some(status.clone());
            }
            let candidate_serves = snapshot
                .current_revision
                .is_some_and(|id| snapshot.pods_of(id).any(|pod| pod.ready));
            self.measure(started, &mut analysis, &versions, candidate_serves)
                .await;
            let mut verdict = analysis.verdict();
            // At a decision point (the bake's end, or completion without a bake), evidence that
            // is still inconclusive is a question for a human.
            let bake = self.recovery.config.bake;
            let at_decision_point = match phase {
                Phase::Baking => phase_started.elapsed() >= bake,
                Phase::Progressing => bake.is_zero() && matches!(status, RolloutStatus::Done(_)),
                _ => false,
            };
            if at_decision_point
                && verdict == Verdict::Running
                && let Some(why) = analysis.pending()
            {
                verdict = Verdict::Inconclusive(why);
            }
            if verdict != last_verdict {
                self.emit(
                    started,
                    EventKind::Verdict {
                        verdict: verdict.clone(),
                    },
                );
                last_verdict = verdict.clone();
            }
            let rolled_out = matches!(status, RolloutStatus::Done(_));
            let mut input = DecisionInput {
                strategy: &self.recovery.strategy,
                phase,
                rollout: &status,
                verdict: &verdict,
                checks_satisfied: analysis.satisfied(rolled_out),
                phase_elapsed: phase_started.elapsed(),
                promote_requested: false,
                bake: self.recovery.config.bake,
            };
            let mut decision = decide(&input);
            if let Some((_, reason)) = pod_health.observe(&snapshot, &self.recovery.config)
                && !matches!(decision, Decision::Abort(_) | Decision::Promote)
            {
                decision = Decision::Abort(reason);
            }
            if matches!(decision, Decision::Pause(_)) && verdict != Verdict::Running {
                let backend = &self.recovery.platform.backend;
                let deadline = Instant::now() + self.recovery.config.step_timeout;
                let marks = self
                    .recovery
                    .config
                    .retry
                    .run(deadline, || backend.markers())
                    .await?;
                input.promote_requested = marks.get(markers::PROMOTE).is_some_and(|v| v == "true");
                decision = decide(&input);
            }
            if decision != Decision::Wait {
                self.emit(
                    started,
                    EventKind::Decision {
                        decision: decision.clone(),
                        phase,
                    },
                );
            }
            match decision {
                Decision::Wait => {
                    tokio::time::sleep_until(analysis.next_wake(self.recovery.config.poll_interval))
                        .await
                }
                Decision::Advance => {
                    phase = self.advance(phase).await?;
                    if phase == Phase::Baking {
                        self.emit(
                            started,
                            EventKind::Baking {
                                duration: self.recovery.config.bake,
                            },
                        );
                    }
                    let marker = Rollout {
                        fingerprint: current.clone(),
                        phase,
                        original_split: original_split.clone(),
                    };
                    self.write_marker(markers::ROLLOUT, Some(markers::encode(&marker)))
                        .await?;
                    if self.starts_new_analysis(phase) {
                        analysis = CheckSchedule::new(self.checks_for(phase));
                    }
                    phase_started = Instant::now();
                }
                Decision::Promote => {
                    if phase == Phase::Baking {
                        self.emit(
                            started,
                            EventKind::Baked {
                                duration: phase_started.elapsed(),
                            },
                        );
                    }
                    return self.promote_rollout(&snapshot).await;
                }
                Decision::Abort(reason) => {
                    // What fails is the rollout this guard watched; the observation just now
                    // says it still runs.
                    return self
                        .recovery
                        .recover(started, reason, phase, original_split, current)
                        .await;
                }
                Decision::Pause(reason) => {
                    return Ok(self.recovery.report(GuardOutcome::Paused { reason }));
                }
            }
        }
    }

    /// Whether entering `phase` starts a fresh analysis (a canary analysis step, blue-green
    /// post-promotion).
    fn starts_new_analysis(&self, phase: Phase) -> bool {
        match (&self.recovery.strategy, phase) {
            (Strategy::Canary(c), Phase::CanaryStep(i)) => {
                matches!(c.steps.get(i), Some(CanaryStep::Analysis))
            }
            (Strategy::BlueGreen(_), Phase::PostPromotion) => true,
            _ => false,
        }
    }

    /// The candidate (what runs now) and the baseline it is judged against: the stable side
    /// of a canary or blue-green when there is one, else the newest other revision — what a
    /// rollback would restore. Unreadable, they are unknown and checks judge the whole service.
    async fn versions(&self, current: &Fingerprint) -> Versions {
        let platform = &self.recovery.platform;
        let deadline = Instant::now() + self.recovery.config.step_timeout;
        let retry = self.recovery.config.retry;
        let Ok(history) = retry.run(deadline, || platform.backend.history()).await else {
            return Versions::default();
        };
        let candidate = history
            .iter()
            .find(|r| &r.fingerprint == current)
            .map(VersionRef::of_revision);
        let baseline = match &platform.stable {
            Some(stable) => {
                let snapshot = retry.run(deadline, || stable.observe()).await.ok();
                let stable_history = retry.run(deadline, || stable.history()).await.ok();
                snapshot
                    .and_then(|s| s.current_fingerprint)
                    .zip(stable_history)
                    .and_then(|(fingerprint, history)| {
                        history
                            .iter()
                            .find(|r| r.fingerprint == fingerprint)
                            .map(VersionRef::of_revision)
                    })
            }
            None => history
                .iter()
                .filter(|r| &r.fingerprint != current)
                .max_by_key(|r| r.id)
                .map(VersionRef::of_revision),
        };
        Versions::new(candidate, baseline)
    }

    async fn measure(
        &self,
        started: Instant,
        analysis: &mut CheckSchedule,
        versions: &Versions,
        candidate_serves: bool,
    ) {
        let now = Instant::now();
        for index in 0..analysis.checks.len() {
            if analysis.runs[index].status.is_terminal() || analysis.due[index] > now {
                continue;
            }
            let check = &analysis.checks[index];
            let sample = match self.probe(&check.probe) {
                Some(probe) => probe.sample().await,
                None => Err(Error::not_found(format!("probe {}", check.probe))),
            };
            let judgement = if check.pools() {
                check.judge_pooled(&mut analysis.pools[index], sample.as_ref(), versions)
            } else {
                check.judge(sample.as_ref(), versions)
            };
            let outcome = judgement.outcome;
            let interval = check.interval;
            if analysis.not_yet(index, outcome, candidate_serves) {
                // Nothing to judge yet: said, and measured again at the next interval.
                self.emit(
                    started,
                    EventKind::NotYet {
                        check: analysis.checks[index].name.clone(),
                        reason: judgement.reason,
                    },
                );
                analysis.due[index] = now + interval;
                continue;
            }
            let check = &analysis.checks[index];
            analysis.runs[index].record_judgement(check, &judgement);
            self.emit(
                started,
                EventKind::Measured {
                    check: check.name.clone(),
                    outcome,
                    judgement,
                    dry_run: check.dry_run,
                },
            );
            analysis.due[index] = now + check.interval;
        }
    }

    /// Acts on an Advance decision: applies a canary weight, or switches blue-green traffic.
    async fn advance(&self, phase: Phase) -> Result<Phase> {
        match (&self.recovery.strategy, phase) {
            (Strategy::Canary(canary), Phase::CanaryStep(index)) => {
                if let Some(CanaryStep::SetWeight(weight)) = canary.steps.get(index) {
                    let split = TrafficSplit::two_way(&canary.stable, &canary.canary, *weight)?;
                    self.shift(&split).await?;
                }
                Ok(Phase::CanaryStep(index + 1))
            }
            (Strategy::BlueGreen(bg), Phase::PrePromotion) => {
                // The preview rolled out completely (the decision waited for it): it is ready
                // before it gets traffic.
                let split = TrafficSplit::all_to(&bg.preview, &[&bg.active])?;
                self.shift(&split).await?;
                Ok(Phase::PostPromotion)
            }
            (_, Phase::Progressing) => Ok(Phase::Baking),
            _ => Ok(phase),
        }
    }

    async fn shift(&self, split: &TrafficSplit) -> Result<()> {
        if self.recovery.config.dry_run {
            return Ok(());
        }
        let router = self
            .recovery
            .platform
            .router
            .as_ref()
            .ok_or_else(|| Error::invalid_input("router", "missing"))?;
        // A route also changes under the guard for reasons of no concern (a mesh writing the
        // route's status): a conflict is read again and retried within the step's time.
        let config = &self.recovery.config;
        let deadline = Instant::now() + config.step_timeout;
        config
            .retry
            .run(deadline, || router.switch(split))
            .await
            .map(drop)
    }

    /// Promotes: every read and write through the retry policy, inside the recovery deadline
    /// (a promotion is as much the guard's work as a recovery: one 503 must not end it).
    async fn promote_rollout(&self, snapshot: &RolloutSnapshot) -> Result<GuardReport> {
        let config = &self.recovery.config;
        let backend = &self.recovery.platform.backend;
        let deadline = Instant::now() + config.recovery_deadline;
        if !config.dry_run {
            if let Some(revision) = snapshot.current_revision {
                config
                    .retry
                    .run(deadline, || backend.mark_verified(revision))
                    .await?;
            }
            match (&self.recovery.strategy, &self.recovery.platform.stable) {
                (Strategy::BlueGreen(bg), Some(stable)) => {
                    tokio::time::sleep(bg.scale_down_delay).await;
                    config.retry.run(deadline, || stable.scale(0)).await?;
                }
                (Strategy::Canary(canary), stable) => {
                    self.promote_canary(canary, stable.as_ref(), deadline)
                        .await?;
                }
                _ => {}
            }
            for key in [markers::ROLLOUT, markers::PROMOTE] {
                config
                    .retry
                    .run(deadline, || backend.set_marker(key, None))
                    .await?;
            }
        }
        let history = self.recovery.platform.backend.history().await.ok();
        let image = snapshot
            .current_fingerprint
            .as_ref()
            .and_then(|fp| history.as_deref().and_then(|h| with_image(fp.clone(), h).1));
        Ok(self.recovery.report(GuardOutcome::Promoted {
            fingerprint: snapshot.current_fingerprint.clone(),
            image,
        }))
    }

    /// A promoted canary ends where a promotion must: the candidate at the stable side's size
    /// and ready, then all traffic on it (verified), then — only after the traffic moved — the
    /// old side scaled down.
    async fn promote_canary(
        &self,
        canary: &Canary,
        stable: Option<&Arc<dyn DeploymentBackend>>,
        deadline: Instant,
    ) -> Result<()> {
        let config = &self.recovery.config;
        let retry = config.retry;
        let backend = &self.recovery.platform.backend;
        if let Some(stable) = stable {
            let full = retry.run(deadline, || stable.observe()).await?.desired;
            let candidate = retry.run(deadline, || backend.observe()).await?;
            if full > candidate.desired {
                retry.run(deadline, || backend.scale(full)).await?;
            }
            retry
                .run(deadline, || {
                    backend.wait_until_complete(config.step_timeout, config.poll_interval)
                })
                .await?;
        }
        let router = self
            .recovery
            .platform
            .router
            .as_ref()
            .ok_or_else(|| Error::invalid_input("router", "a canary needs a traffic router"))?;
        let everything = TrafficSplit::all_to(&canary.canary, &[&canary.stable])?;
        self.shift(&everything).await?;
        // The old side keeps serving until the platform routes everything to the candidate
        // (a mesh applies a route a moment after it is written).
        let step_deadline = Instant::now() + config.step_timeout;
        loop {
            match retry.run(deadline, || router.verify(&everything)).await? {
                Verification::Matches => break,
                Verification::Differs(actual) => {
                    return Err(Error::conflict(format!(
                        "promoted with {everything} but the platform routes {actual}"
                    ))
                    .with_operation("promote")
                    .with_object(router.target()));
                }
                Verification::Unknown(why)
                    if Instant::now() + config.poll_interval >= step_deadline =>
                {
                    tracing::warn!(target: "deployguard", "promotion: the platform cannot confirm {everything} yet ({why}); going on");
                    break;
                }
                _ => tokio::time::sleep(config.poll_interval).await,
            }
        }
        if let Some(stable) = stable {
            tokio::time::sleep(canary.scale_down_delay).await;
            retry.run(deadline, || stable.scale(0)).await?;
        }
        Ok(())
    }

    /// The deployment no longer runs the rollout this guard watched (`guarded`). If a recovery
    /// of it is recorded, that recovery is finished or reported; otherwise the guard stops
    /// without acting: it never judges, or rolls back, a revision it did not watch.
    async fn moved_on(
        &self,
        started: Instant,
        guarded: &Fingerprint,
        runs_now: Option<Fingerprint>,
    ) -> Result<GuardReport> {
        let retry = self.recovery.config.retry;
        let backend = &self.recovery.platform.backend;
        let deadline = Instant::now() + self.recovery.config.recovery_deadline;
        let marks = retry.run(deadline, || backend.markers()).await?;
        let history = retry.run(deadline, || backend.history()).await?;
        let earlier = markers::decode::<RecoveryMarker>(marks.get(markers::RECOVERY))
            .map(|marker| marker.classify(runs_now.as_ref(), &history));
        match earlier {
            Some(EarlierRecovery::Finished { failing, restored }) if &failing == guarded => {
                Ok(self.recovery.report(GuardOutcome::rolled_back(
                    with_image(failing, &history),
                    restored.map(|r| with_image(r, &history)),
                    "recovered by another run".into(),
                )))
            }
            Some(EarlierRecovery::InProgress {
                failing, reason, ..
            }) if &failing == guarded => {
                let rollout: Option<Rollout> = markers::decode(marks.get(markers::ROLLOUT));
                let phase = rollout
                    .as_ref()
                    .map_or(Phase::initial(&self.recovery.strategy), |r| r.phase);
                let split = rollout.and_then(|r| r.original_split);
                self.recovery
                    .recover(started, reason, phase, split, failing)
                    .await
            }
            _ => Ok(self.recovery.report(GuardOutcome::Paused {
                reason: format!(
                    "the deployment now runs {}, not {guarded}, the rollout this guard watched; not acting on it",
                    runs_now.map_or("nothing".to_owned(), |f| f.to_string())
                ),
            })),
        }
    }
}

/// `fingerprint` with the first image of its revision in `history`, where it is there.
pub(crate) fn with_image(
    fingerprint: Fingerprint,
    history: &[crate::model::Revision],
) -> (Fingerprint, Option<String>) {
    let image = history
        .iter()
        .find(|r| r.fingerprint == fingerprint)
        .and_then(|r| r.images.first().cloned());
    (fingerprint, image)
}
