//! [`GuardBuilder`]: everything a guard needs, validated once at `build()`.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use super::config::GuardConfig;
use super::execute::Platform;
use super::gate::MigrationPolicy;
use super::guard::Guard;
#[cfg(doc)]
use super::journal::MemoryJournal;
use super::journal::{JournalSink, Traced};
use super::recover::Recovery;
use super::retry::RetryPolicy;
use super::strategy::Strategy;
use crate::analysis::AnalysisCheck;
use crate::error::{Error, Result};
use crate::model::RoutingMode;
use crate::traits::{ActorLock, DeploymentBackend, HealthProbe, MigrationInspector, TrafficRouter};

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
    journal: Vec<Arc<dyn JournalSink>>,
    lock: Option<(Arc<dyn ActorLock>, String)>,
}

impl GuardBuilder {
    pub(super) fn new(strategy: Strategy, backend: Arc<dyn DeploymentBackend>) -> Self {
        Self {
            strategy,
            backend,
            stable: None,
            router: None,
            migrations: None,
            probes: Vec::new(),
            checks: Vec::new(),
            config: GuardConfig::default(),
            journal: Vec::new(),
            lock: None,
        }
    }

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
    /// The whole recovery's deadline, assessment included (default 600 s, the seed runbook's
    /// MAX_ROLLBACK_TIME).
    pub fn recovery_deadline(mut self, deadline: Duration) -> Self {
        self.config.recovery_deadline = deadline;
        self
    }
    /// One step's timeout (default 300 s; never past the recovery deadline).
    pub fn step_timeout(mut self, timeout: Duration) -> Self {
        self.config.step_timeout = timeout;
        self
    }
    /// How often the rollout is observed (default 5 s).
    pub fn poll_interval(mut self, interval: Duration) -> Self {
        self.config.poll_interval = interval;
        self
    }
    /// How long the candidate's pods may show a definite failure (CrashLoopBackOff, image pull,
    /// missing config, OOMKilled) before the guard aborts (default 20 s; `None`: never).
    pub fn pod_failure_after(mut self, after: Option<Duration>) -> Self {
        self.config.pod_failure_after = after;
        self
    }
    /// How long the candidate's pods may run unready, answering nothing, before the guard
    /// aborts (default `None`: the workload's progress deadline; see
    /// [`GuardConfig::unready_after`]).
    pub fn unready_after(mut self, after: Option<Duration>) -> Self {
        self.config.unready_after = after;
        self
    }
    /// How long a completed rolling or recreate rollout is still judged before it is promoted
    /// (default 5 min; zero: promoted once complete). See [`GuardConfig::bake`].
    pub fn bake(mut self, bake: Duration) -> Self {
        self.config.bake = bake;
        self
    }
    /// What the migration gate does (default: block).
    pub fn migration_policy(mut self, policy: MigrationPolicy) -> Self {
        self.config.migration_policy = policy;
        self
    }
    /// Consecutive observation errors tolerated before the guard gives up (default 4).
    pub fn observe_error_limit(mut self, limit: u32) -> Self {
        self.config.observe_error_limit = limit;
        self
    }
    /// One actor per deployment: the guard holds `lock` as `holder` (a name unique to this
    /// guard: its pod, its process) before it writes anything, renews it while it runs, and a
    /// guard that finds it held waits for the holder and reports its outcome.
    pub fn lock(mut self, lock: Arc<dyn ActorLock>, holder: &str) -> Self {
        self.lock = Some((lock, holder.to_owned()));
        self
    }
    /// Whether a recovery may resume a deployment someone paused (default: no, it is refused).
    pub fn resume_paused(mut self, resume: bool) -> Self {
        self.config.resume_paused = resume;
        self
    }
    /// How long the lock lasts without a renewal (default 15 s).
    pub fn lock_ttl(mut self, ttl: Duration) -> Self {
        self.config.lock_ttl = ttl;
        self
    }
    /// How failed reads and writes are retried (default: [`RetryPolicy::default`]).
    pub fn retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.config.retry = policy;
        self
    }
    /// Observe, analyse and plan; write nothing (default: off).
    pub fn dry_run(mut self, dry_run: bool) -> Self {
        self.config.dry_run = dry_run;
        self
    }
    /// Where journal events go besides `tracing` (target `deployguard::journal`, see
    /// [`TracingJournal`](super::TracingJournal)), which always gets them: a [`MemoryJournal`]
    /// to read them back, a metrics sink, a sink of your own to forward them. Each call adds
    /// one: every sink gets every event.
    pub fn journal(mut self, journal: Arc<dyn JournalSink>) -> Self {
        self.journal.push(journal);
        self
    }

    /// The guard, or `InvalidInput` naming what is wrong.
    pub fn build(self) -> Result<Guard> {
        self.config.validate()?;
        let probes: HashMap<String, &Arc<dyn HealthProbe>> =
            self.probes.iter().map(|p| (p.name(), p)).collect();
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
            let Some(probe) = probes.get(&check.probe) else {
                let mut known: Vec<&str> = probes.keys().map(String::as_str).collect();
                known.sort_unstable();
                return Err(Error::invalid_input(
                    &format!("check {}: probe", check.name),
                    format!(
                        "no probe called {:?} was added to the guard (probes: {})",
                        check.probe,
                        if known.is_empty() {
                            "none".to_owned()
                        } else {
                            known.join(", ")
                        }
                    ),
                ));
            };
            let metrics = probe.metrics();
            if !metrics.is_empty() && !metrics.contains(&check.metric) {
                return Err(Error::invalid_input(
                    &format!("check {}: metric", check.name),
                    format!(
                        "probe {:?} never reports {:?}; it reports {}",
                        check.probe,
                        check.metric,
                        metrics.join(", ")
                    ),
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
        // The ladder names the deployment as kubectl does: its own name, without namespace.
        let name = self.backend.name();
        Ok(Guard {
            recovery: Recovery {
                strategy: self.strategy,
                platform: Platform {
                    backend: self.backend,
                    stable: self.stable,
                    router: self.router,
                    migrations: self.migrations,
                    inspected: Arc::default(),
                    completed: Arc::default(),
                    rolled_back_to: Arc::default(),
                },
                config: self.config,
                journal: Arc::new(Traced(self.journal)),
                name,
            },
            probes: self.probes,
            checks: self.checks,
            lock: self.lock,
        })
    }
}
