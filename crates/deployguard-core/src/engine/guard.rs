//! [`Guard`]: observe → analyse → decide → act, until the rollout is promoted or recovered.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use super::decide::{Decision, DecisionInput, Phase, decide};
use super::execute::{ExecuteOptions, Platform, Report};
use super::gate::MigrationPolicy;
use super::journal::{EventKind, JournalEvent, JournalSink, MemoryJournal};
use super::markers::{self, Recovery, RecoveryState, Rollout};
use super::plan::Plan;
use super::strategy::{CanaryStep, Strategy};
use crate::analysis::{
    AnalysisCheck, CheckRun, CheckStatus, RolloutStatus, Verdict, rollout_status,
};
use crate::error::{Error, Result};
use crate::model::{Fingerprint, RolloutSnapshot, RoutingMode, TrafficSplit};
use crate::traits::{DeploymentBackend, HealthProbe, MigrationInspector, TrafficRouter};

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
        /// Why.
        reason: String,
    },
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

/// Settings of a guard.
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
}

impl GuardConfig {
    /// Sets the whole recovery's deadline.
    pub fn with_recovery_deadline(mut self, deadline: Duration) -> Self {
        self.recovery_deadline = deadline;
        self
    }
    /// Sets one step's timeout.
    pub fn with_step_timeout(mut self, timeout: Duration) -> Self {
        self.step_timeout = timeout;
        self
    }
    /// Sets how often the rollout is observed.
    pub fn with_poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = interval;
        self
    }
    /// Sets the migration gate's policy.
    pub fn with_migration_policy(mut self, policy: MigrationPolicy) -> Self {
        self.migration_policy = policy;
        self
    }
    /// Observe, analyse and plan; write nothing.
    pub fn with_dry_run(mut self, dry_run: bool) -> Self {
        self.dry_run = dry_run;
        self
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
        }
    }
}

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
    pub(crate) strategy: Strategy,
    pub(crate) platform: Platform,
    pub(crate) probes: Vec<Arc<dyn HealthProbe>>,
    pub(crate) checks: Vec<AnalysisCheck>,
    pub(crate) config: GuardConfig,
    pub(crate) journal: Arc<dyn JournalSink>,
    pub(crate) name: String,
}

/// Builds a [`Guard`]; [`build`](Self::build) validates everything.
#[derive(Debug)]
pub struct GuardBuilder {
    strategy: Strategy,
    backend: Arc<dyn DeploymentBackend>,
    stable: Option<Arc<dyn DeploymentBackend>>,
    router: Option<Arc<dyn TrafficRouter>>,
    migrations: Option<Arc<dyn MigrationInspector>>,
    probes: Vec<Arc<dyn HealthProbe>>,
    checks: Vec<AnalysisCheck>,
    config: GuardConfig,
    journal: Arc<dyn JournalSink>,
}

impl Guard {
    /// Starts building a guard of `backend` (the candidate's deployment) under `strategy`.
    pub fn builder(strategy: Strategy, backend: Arc<dyn DeploymentBackend>) -> GuardBuilder {
        GuardBuilder {
            strategy,
            backend,
            stable: None,
            router: None,
            migrations: None,
            probes: Vec::new(),
            checks: Vec::new(),
            config: GuardConfig::default(),
            journal: Arc::new(MemoryJournal::new()),
        }
    }

    /// Asks a guard paused at a manual gate to promote: a marker on the deployment, read by the
    /// next [`run`](Self::run), whichever process runs it.
    pub async fn promote(&self) -> Result<()> {
        self.platform
            .backend
            .set_marker(markers::PROMOTE, Some("true".into()))
            .await
    }

    /// The settings.
    pub fn config(&self) -> &GuardConfig {
        &self.config
    }
}

impl GuardBuilder {
    /// The stable side's deployment (blue-green's active side, canary's stable): scaled up and
    /// awaited before traffic goes back to it.
    pub fn stable(mut self, stable: Arc<dyn DeploymentBackend>) -> Self {
        self.stable = Some(stable);
        self
    }
    /// The traffic router (required for blue-green and canary).
    pub fn router(mut self, router: Arc<dyn TrafficRouter>) -> Self {
        self.router = Some(router);
        self
    }
    /// The migration inspector for the gate.
    pub fn migrations(mut self, migrations: Arc<dyn MigrationInspector>) -> Self {
        self.migrations = Some(migrations);
        self
    }
    /// A probe checks can read, by its name.
    pub fn probe(mut self, probe: Arc<dyn HealthProbe>) -> Self {
        self.probes.push(probe);
        self
    }
    /// A background check, analysed for the whole rollout.
    pub fn check(mut self, check: AnalysisCheck) -> Self {
        self.checks.push(check);
        self
    }
    /// The settings.
    pub fn config(mut self, config: GuardConfig) -> Self {
        self.config = config;
        self
    }
    /// Observe, analyse and plan; write nothing.
    pub fn dry_run(mut self, dry_run: bool) -> Self {
        self.config.dry_run = dry_run;
        self
    }
    /// Where journal events go (default: a [`MemoryJournal`] nobody reads).
    pub fn journal(mut self, journal: Arc<dyn JournalSink>) -> Self {
        self.journal = journal;
        self
    }

    /// The guard, or `InvalidInput` naming what is wrong.
    pub fn build(self) -> Result<Guard> {
        let config = &self.config;
        for (field, value) in [
            ("config.recovery_deadline", config.recovery_deadline),
            ("config.step_timeout", config.step_timeout),
            ("config.poll_interval", config.poll_interval),
        ] {
            if value.is_zero() {
                return Err(Error::invalid_input(field, "must be greater than zero"));
            }
        }
        let probe_names: HashSet<String> = self.probes.iter().map(|p| p.name()).collect();
        let mut check_names = HashSet::new();
        let strategy_checks: Vec<&AnalysisCheck> = match &self.strategy {
            Strategy::BlueGreen(bg) => bg.pre_promotion.iter().chain(&bg.post_promotion).collect(),
            _ => Vec::new(),
        };
        for check in self.checks.iter().chain(strategy_checks) {
            check.validate()?;
            if !check_names.insert(check.name.clone()) {
                return Err(Error::invalid_input(
                    &format!("check {}", check.name),
                    "the name is used twice",
                ));
            }
            if !probe_names.contains(&check.probe) {
                return Err(Error::invalid_input(
                    &format!("check {}: probe", check.name),
                    format!("no probe called {:?} was added to the guard", check.probe),
                ));
            }
        }
        self.strategy.validate(&self.checks)?;
        let (stable, candidate, mode) = match &self.strategy {
            Strategy::BlueGreen(bg) => (Some(&bg.active), Some(&bg.preview), None),
            Strategy::Canary(c) => (
                Some(&c.stable),
                Some(&c.canary),
                Some(RoutingMode::Weighted),
            ),
            _ => (None, None, None),
        };
        if let (Some(stable), Some(candidate)) = (stable, candidate) {
            let router = self.router.as_ref().ok_or_else(|| {
                Error::invalid_input("router", "blue-green and canary need a traffic router")
            })?;
            let caps = router.capabilities();
            for name in [stable, candidate] {
                if !caps.backends.contains(name) {
                    return Err(Error::invalid_input(
                        "router",
                        format!("{} does not route backend {name:?}", router.target()),
                    ));
                }
            }
            if mode.is_some_and(|mode| mode != caps.mode) {
                return Err(Error::invalid_input(
                    "router",
                    "a canary needs a weighted router",
                ));
            }
        }
        // The ladder names the deployment as kubectl does: the last word of the target, after
        // any namespace ("deployment default/web" → "web").
        let target = self.backend.target();
        let last_word = target.rsplit(' ').next().unwrap_or(&target);
        let name = last_word.rsplit('/').next().unwrap_or(last_word).to_owned();
        Ok(Guard {
            strategy: self.strategy,
            platform: Platform {
                backend: self.backend,
                stable: self.stable,
                router: self.router,
                migrations: self.migrations,
            },
            probes: self.probes,
            checks: self.checks,
            config: self.config,
            journal: self.journal,
            name,
        })
    }
}

/// The analysis state of the checks that apply in one phase.
struct Analysis {
    checks: Vec<AnalysisCheck>,
    runs: Vec<CheckRun>,
    due: Vec<Instant>,
}

impl Analysis {
    fn new(checks: Vec<AnalysisCheck>) -> Self {
        let now = Instant::now();
        let due = checks.iter().map(|c| now + c.initial_delay).collect();
        let runs = vec![CheckRun::default(); checks.len()];
        Self { checks, runs, due }
    }

    fn verdict(&self) -> Verdict {
        Verdict::combine(self.checks.iter().zip(&self.runs))
    }

    /// Whether every acting check is satisfied: finished and passed, or — for a check that runs
    /// until the rollout ends — evaluated at least once, without failing, by the time the
    /// rollout is done (a no-data answer under the ignore policy counts as evaluated).
    fn satisfied(&self, rolled_out: bool) -> bool {
        self.checks
            .iter()
            .zip(&self.runs)
            .filter(|(c, _)| !c.dry_run)
            .all(|(check, run)| match run.status {
                CheckStatus::Successful => true,
                CheckStatus::Running => {
                    check.count.is_none()
                        && check.consecutive_success_limit == 0
                        && rolled_out
                        && run.evaluations > 0
                }
                _ => false,
            })
    }

    fn next_wake(&self, poll: Duration) -> Instant {
        let pending = self
            .runs
            .iter()
            .zip(&self.due)
            .filter(|(r, _)| !r.status.is_terminal())
            .map(|(_, d)| *d);
        pending.fold(Instant::now() + poll, Instant::min)
    }
}

impl Guard {
    fn emit(&self, started: Instant, kind: EventKind) {
        self.journal.record(&JournalEvent {
            at: started.elapsed(),
            kind,
        });
    }

    fn checks_for(&self, phase: Phase) -> Vec<AnalysisCheck> {
        let mut checks = self.checks.clone();
        if let Strategy::BlueGreen(bg) = &self.strategy {
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
        if self.config.dry_run {
            return Ok(());
        }
        self.platform.backend.set_marker(key, value).await
    }

    /// Runs the guard to its end: promoted, rolled back, paused or failed.
    pub async fn run(&self) -> GuardReport {
        let started = Instant::now();
        let report = self.run_inner(started).await.unwrap_or_else(|err| {
            self.report(GuardOutcome::Failed {
                reason: err.to_string(),
            })
        });
        let outcome = match &report.outcome {
            GuardOutcome::Promoted { .. } => "promoted".to_owned(),
            GuardOutcome::RolledBack { reason, .. } => format!("rolled back: {reason}"),
            GuardOutcome::Paused { reason } => format!("paused: {reason}"),
            GuardOutcome::Failed { reason } => format!("failed: {reason}"),
        };
        self.emit(started, EventKind::Finished { outcome });
        report
    }

    pub(crate) fn report(&self, outcome: GuardOutcome) -> GuardReport {
        GuardReport {
            outcome,
            dry_run: self.config.dry_run,
            plan: None,
            execution: None,
        }
    }

    async fn observe(&self, errors: &mut u32) -> Result<Option<RolloutSnapshot>> {
        match self.platform.backend.observe().await {
            Ok(snapshot) => {
                *errors = 0;
                Ok(Some(snapshot))
            }
            Err(err) if err.is_retryable() && *errors < self.config.observe_error_limit => {
                *errors += 1;
                Ok(None)
            }
            Err(err) => Err(err),
        }
    }

    async fn run_inner(&self, started: Instant) -> Result<GuardReport> {
        let marks: BTreeMap<String, String> = self.platform.backend.markers().await?;
        let snapshot = self.platform.backend.observe().await?;
        let current = snapshot
            .current_fingerprint
            .clone()
            .unwrap_or_else(|| Fingerprint::new(""));
        let rollout: Option<Rollout> = markers::decode(marks.get(markers::ROLLOUT));
        if let Some(recovery) = markers::decode::<Recovery>(marks.get(markers::RECOVERY)) {
            match recovery.state {
                RecoveryState::Done if recovery.failing != current => {
                    return Ok(self.report(GuardOutcome::RolledBack {
                        failing: recovery.failing,
                        restored: recovery.restored,
                        reason: "recovered by an earlier run".into(),
                    }));
                }
                RecoveryState::InProgress => {
                    let phase = rollout
                        .as_ref()
                        .map_or(Phase::initial(&self.strategy), |r| r.phase);
                    let split = rollout.and_then(|r| r.original_split);
                    return self
                        .recover(
                            started,
                            recovery.reason,
                            phase,
                            split,
                            recovery.failing,
                            recovery.target,
                        )
                        .await;
                }
                RecoveryState::Done => {}
            }
        }
        let resumed = rollout.filter(|r| r.fingerprint == current);
        let (mut phase, original_split) = match resumed {
            Some(r) => (r.phase, r.original_split),
            None => {
                let split = match &self.platform.router {
                    Some(router) => Some(router.current().await?),
                    None => None,
                };
                let phase = Phase::initial(&self.strategy);
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
        let mut analysis = Analysis::new(self.checks_for(phase));
        let mut phase_started = Instant::now();
        let mut last_status = String::new();
        let mut last_verdict = Verdict::Running;
        let mut observe_errors = 0;
        loop {
            let Some(snapshot) = self.observe(&mut observe_errors).await? else {
                tokio::time::sleep(self.config.poll_interval).await;
                continue;
            };
            let status = rollout_status(&self.name, &snapshot);
            let status_text = format!("{status:?}");
            if status_text != last_status {
                let message = match &status {
                    RolloutStatus::Waiting(m)
                    | RolloutStatus::Done(m)
                    | RolloutStatus::Failed(m) => m.clone(),
                };
                self.emit(
                    started,
                    EventKind::Observed {
                        status: message,
                        healthy_fraction: snapshot.healthy_fraction(),
                    },
                );
                last_status = status_text;
            }
            self.measure(started, &mut analysis).await;
            let verdict = analysis.verdict();
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
                strategy: &self.strategy,
                phase,
                rollout: &status,
                verdict: &verdict,
                checks_satisfied: analysis.satisfied(rolled_out),
                phase_elapsed: phase_started.elapsed(),
                promote_requested: false,
            };
            let mut decision = decide(&input);
            if matches!(decision, Decision::Pause(_)) && verdict != Verdict::Running {
                let marks = self.platform.backend.markers().await?;
                input.promote_requested = marks.get(markers::PROMOTE).is_some_and(|v| v == "true");
                decision = decide(&input);
            }
            if decision != Decision::Wait {
                self.emit(
                    started,
                    EventKind::Decision {
                        decision: format!("{decision:?} in {phase:?}"),
                    },
                );
            }
            match decision {
                Decision::Wait => {
                    tokio::time::sleep_until(analysis.next_wake(self.config.poll_interval)).await
                }
                Decision::Advance => {
                    phase = self.advance(phase).await?;
                    let marker = Rollout {
                        fingerprint: current.clone(),
                        phase,
                        original_split: original_split.clone(),
                    };
                    self.write_marker(markers::ROLLOUT, Some(markers::encode(&marker)))
                        .await?;
                    if self.starts_new_analysis(phase) {
                        analysis = Analysis::new(self.checks_for(phase));
                    }
                    phase_started = Instant::now();
                }
                Decision::Promote => return self.promote_rollout(&snapshot).await,
                Decision::Abort(reason) => {
                    return self
                        .recover(started, reason, phase, original_split, current, None)
                        .await;
                }
                Decision::Pause(reason) => return Ok(self.report(GuardOutcome::Paused { reason })),
            }
        }
    }

    /// Whether entering `phase` starts a fresh analysis (a canary analysis step, blue-green
    /// post-promotion).
    fn starts_new_analysis(&self, phase: Phase) -> bool {
        match (&self.strategy, phase) {
            (Strategy::Canary(c), Phase::CanaryStep(i)) => {
                matches!(c.steps.get(i), Some(CanaryStep::Analysis))
            }
            (Strategy::BlueGreen(_), Phase::PostPromotion) => true,
            _ => false,
        }
    }

    async fn measure(&self, started: Instant, analysis: &mut Analysis) {
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
            let outcome = check.classify(sample.as_ref());
            analysis.runs[index].record(check, outcome);
            self.emit(
                started,
                EventKind::Measured {
                    check: check.name.clone(),
                    outcome,
                    dry_run: check.dry_run,
                },
            );
            analysis.due[index] = now + check.interval;
        }
    }

    /// Acts on an Advance decision: applies a canary weight, or switches blue-green traffic.
    async fn advance(&self, phase: Phase) -> Result<Phase> {
        match (&self.strategy, phase) {
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
            _ => Ok(phase),
        }
    }

    async fn shift(&self, split: &TrafficSplit) -> Result<()> {
        if self.config.dry_run {
            return Ok(());
        }
        let router = self
            .platform
            .router
            .as_ref()
            .ok_or_else(|| Error::invalid_input("router", "missing"))?;
        router.current().await?;
        router.apply(split).await
    }

    async fn promote_rollout(&self, snapshot: &RolloutSnapshot) -> Result<GuardReport> {
        if !self.config.dry_run {
            if let Some(revision) = snapshot.current_revision {
                self.platform.backend.mark_verified(revision).await?;
            }
            if let (Strategy::BlueGreen(bg), Some(stable)) = (&self.strategy, &self.platform.stable)
            {
                tokio::time::sleep(bg.scale_down_delay).await;
                stable.scale(0).await?;
            }
            self.platform
                .backend
                .set_marker(markers::ROLLOUT, None)
                .await?;
            self.platform
                .backend
                .set_marker(markers::PROMOTE, None)
                .await?;
        }
        Ok(self.report(GuardOutcome::Promoted {
            fingerprint: snapshot.current_fingerprint.clone(),
        }))
    }

    /// The options a plan of this guard executes with, from now.
    pub(crate) fn execute_options(&self, started: Instant) -> ExecuteOptions {
        ExecuteOptions {
            deadline: Instant::now() + self.config.recovery_deadline,
            step_timeout: self.config.step_timeout,
            poll: self.config.poll_interval,
            dry_run: self.config.dry_run,
            migration_policy: self.config.migration_policy,
            started,
        }
    }
}
