//! The incident replay: scenarios of the simulated cluster, each once as Kubernetes alone
//! handles it and once guarded by deployguard, with the timeline, the cost of each, and a
//! confusion table of what the guard concluded against each scenario's ground truth.
//!
//! This room runs the replays; `report.rs` words them for a person ([`render`], [`render_table`]).

mod report;

pub use report::{Row, render, render_table, row};

use std::sync::Arc;
use std::time::Duration;

use deployguard_core::analysis::{AnalysisCheck, Judge, MeasurementOutcome, Threshold};
use deployguard_core::engine::{
    BlueGreen, Canary, CanaryStep, Decision, EventKind, Guard, GuardOutcome, JournalEvent,
    MemoryJournal, Step, Strategy,
};
use deployguard_core::{DeploymentBackend, Error, ErrorKind, Result};
use deployguard_istio::IstioRouter;
use deployguard_k8s::{
    GatewayRouter, JobMigrationInspector, KubeDeployment, PodReadinessProbe, ServiceSelectorRouter,
};
use deployguard_testkit::cluster::scenarios::{self, Layout, Truth};
use deployguard_testkit::cluster::{FakeCluster, SimulatedTraffic, TrafficProbe, TrafficSecond};
use serde::Serialize;
use tokio::time::Instant;

/// Where each rolling scenario's deployment and service are.
const NAMESPACE: &str = "default";
const DEPLOYMENT: &str = "app-deployment";
const SERVICE: &str = "myapp-service";
/// The version every rolling scenario rolls out.
const NEW: &str = "app:v2.4.0";

/// How often the guard's checks measure: detection is counted in these.
pub const ANALYSIS_INTERVAL: Duration = Duration::from_secs(10);

/// What a run ended with, as the confusion table names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// The rollout completed (promoted, or completed on its own).
    Rollout,
    /// Rolled back to the last good revision (or, for a canary or a blue-green, traffic put
    /// back on the stable side).
    RolledBack,
    /// Stopped for a human, with a reason (a shared cause, a migration gate).
    Paused,
    /// Nothing was done and the rollout did not complete.
    Nothing,
    /// The candidate runs, and nothing moves traffic to it (a canary or blue-green without a
    /// guard: Kubernetes starts pods, routes are someone else's job).
    Idle,
    /// The guard could not finish.
    Failed,
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Rollout => "rollout completes",
            Self::RolledBack => "rolled back",
            Self::Paused => "paused, says why",
            Self::Nothing => "nothing, stays broken",
            Self::Idle => "runs, gets no traffic",
            Self::Failed => "failed",
        })
    }
}

fn secs<S: serde::Serializer>(d: &Option<Duration>, s: S) -> std::result::Result<S::Ok, S::Error> {
    match d {
        Some(d) => s.serialize_some(&d.as_secs()),
        None => s.serialize_none(),
    }
}

/// How one run went.
#[derive(Debug, Clone, Serialize)]
pub struct Run {
    /// `unguarded` or `guarded`.
    pub label: &'static str,
    /// The scenario.
    pub scenario: String,
    /// The seed of its traffic.
    pub seed: u64,
    /// What ended the run.
    pub action: Action,
    /// When the guard (or Kubernetes) first acted on a failure, from the rollout's start.
    #[serde(serialize_with = "secs")]
    pub detected: Option<Duration>,
    /// What detected it, in words.
    pub detected_by: Option<String>,
    /// When the first measurement blaming the candidate came, from the rollout's start.
    #[serde(serialize_with = "secs")]
    pub first_failing_sample: Option<Duration>,
    /// When service was restored (rolled back) or the rollout completed.
    #[serde(serialize_with = "secs")]
    pub recovered: Option<Duration>,
    /// How the run ended, in words.
    pub outcome: String,
    /// Requests sent over the horizon.
    pub requests: u64,
    /// Failed requests over the horizon.
    pub failed: u64,
    /// Failed requests that pods of the new version served.
    pub failed_by_new_version: u64,
    /// Requests that pods of the new version served, failed or not.
    pub served_by_new_version: u64,
    /// Timeline entries, from the rollout's start.
    #[serde(skip)]
    pub timeline: Vec<(Duration, String)>,
    /// The guard's journal (empty when unguarded).
    pub journal: Vec<JournalEvent>,
    /// The Service's traffic, one entry per simulated second, per version.
    #[serde(skip)]
    pub seconds: Vec<TrafficSecond>,
    /// Every image the deployment's ReplicaSets ran by the end of the replay.
    pub images: Vec<String>,
    /// Each ReplicaSet's pod-template-hash and image.
    #[serde(skip)]
    pub hashes: Vec<(String, String)>,
    /// What the picture marks on the time axis.
    #[serde(skip)]
    pub markers: Vec<(Duration, String)>,
}

/// The checks every replay's guard runs: the sequential judge (anytime-valid e-values) of errors
/// and of latency against the baseline version and the range, each over everything both
/// versions served since the new one first served (pooled), `count` times when given (blue-green's post-promotion checks must finish),
/// else for as long as the rollout and its bake run.
fn checks(probe: &TrafficProbe, count: Option<u32>) -> Result<Vec<AnalysisCheck>> {
    let errors = AnalysisCheck::builder("error-rate", probe, "error_rate")
        .judge(Judge::sequential())
        .success(Threshold::at_most(0.01))
        .interval(ANALYSIS_INTERVAL)
        .initial_delay(ANALYSIS_INTERVAL)
        .pooled(true);
    let latency = AnalysisCheck::builder("latency", probe, "latency_seconds")
        .judge(Judge::sequential())
        .success(Threshold::at_most(0.5))
        .interval(ANALYSIS_INTERVAL)
        .initial_delay(ANALYSIS_INTERVAL)
        .pooled(true);
    let (errors, latency) = match count {
        Some(count) => (errors.count(count), latency.count(count)),
        None => (errors, latency),
    };
    Ok(vec![errors.build()?, latency.build()?])
}

/// The steps of the replay's Istio canary: 10%, then 30%, half a minute each, then promotion.
pub fn canary_steps() -> Vec<CanaryStep> {
    vec![
        CanaryStep::SetWeight(10),
        CanaryStep::Pause(Some(Duration::from_secs(30))),
        CanaryStep::SetWeight(30),
        CanaryStep::Pause(Some(Duration::from_secs(30))),
    ]
}

/// What a scenario of `layout` sends its requests to: the Gateway for the Gateway API
/// layouts, else the Service.
pub fn traffic_target(layout: Layout) -> &'static str {
    match layout {
        Layout::GatewayCanary => scenarios::GATEWAY,
        _ => SERVICE,
    }
}

/// The Deployment whose rollout a scenario of `layout` guards.
pub fn candidate(layout: Layout) -> &'static str {
    match layout {
        Layout::IstioCanary | Layout::GatewayCanary => scenarios::ISTIO_CANARY,
        Layout::IstioBlueGreen => scenarios::ISTIO_GREEN,
        Layout::SelectorBlueGreen => scenarios::SELECTOR_GREEN,
        _ => DEPLOYMENT,
    }
}

/// The guard every replay runs: the checks above, the candidate's pods as evidence (the
/// engine's defaults), and for the Istio layouts the VirtualService route `primary` as router.
pub fn guard_for(cluster: &FakeCluster, layout: Layout, journal: &MemoryJournal) -> Result<Guard> {
    guard_judging(cluster, layout, journal, None)
}

/// How a rolling replay's guard judges traffic instead of the replay's own checks (the
/// benchmark's peer judges).
pub type Judging = fn(&FakeCluster) -> Result<Judged>;

/// What a [`Judging`] gives the guard: a probe, the checks that read it, and how long the guard
/// watches the finished rollout before it promotes (`None`: the guard's default bake).
#[derive(Debug)]
pub struct Judged {
    /// The probe the checks read.
    pub probe: TrafficProbe,
    /// The checks.
    pub checks: Vec<AnalysisCheck>,
    /// The bake.
    pub bake: Option<Duration>,
}

/// [`guard_for`], judging a rolling update's traffic by `judging` when given.
pub fn guard_judging(
    cluster: &FakeCluster,
    layout: Layout,
    journal: &MemoryJournal,
    judging: Option<Judging>,
) -> Result<Guard> {
    let client = cluster.client();
    let backend = Arc::new(KubeDeployment::new(
        client.clone(),
        NAMESPACE,
        candidate(layout),
    ));
    let Judged {
        probe,
        checks: rolling_checks,
        bake,
    } = match judging {
        Some(judging) => judging(cluster)?,
        None => {
            let probe = cluster.traffic_probe(NAMESPACE, traffic_target(layout), ANALYSIS_INTERVAL);
            let checks = checks(&probe, None)?;
            Judged {
                probe,
                checks,
                bake: None,
            }
        }
    };
    let istio = |stable: &str, candidate: &str| {
        IstioRouter::builder(client.clone(), NAMESPACE, scenarios::ISTIO_ROUTE)
            .route("primary")
            .subset(stable)
            .subset(candidate)
            .build()
    };
    let builder = match layout {
        Layout::IstioCanary => {
            let canary = Canary::new("stable", "canary", canary_steps());
            let mut builder = Guard::builder(Strategy::Canary(canary), backend)
                .stable(Arc::new(KubeDeployment::new(
                    client.clone(),
                    NAMESPACE,
                    scenarios::ISTIO_STABLE,
                )))
                .router(Arc::new(istio("stable", "canary")?));
            for check in checks(&probe, None)? {
                builder = builder.check(check);
            }
            builder
        }
        Layout::GatewayCanary => {
            let canary = Canary::new("stable", "canary", canary_steps());
            let router =
                GatewayRouter::builder(client.clone(), NAMESPACE, scenarios::GATEWAY_ROUTE)
                    .rule_named("primary")
                    .backend("stable", scenarios::ISTIO_STABLE)
                    .backend("canary", scenarios::ISTIO_CANARY)
                    .build()?;
            let mut builder = Guard::builder(Strategy::Canary(canary), backend)
                .stable(Arc::new(KubeDeployment::new(
                    client.clone(),
                    NAMESPACE,
                    scenarios::ISTIO_STABLE,
                )))
                .router(Arc::new(router));
            for check in checks(&probe, None)? {
                builder = builder.check(check);
            }
            builder
        }
        Layout::IstioBlueGreen => {
            let mut blue_green = BlueGreen::new("blue", "green");
            for check in checks(&probe, Some(3))? {
                blue_green = blue_green.with_post_promotion(check);
            }
            Guard::builder(Strategy::BlueGreen(blue_green), backend)
                .stable(Arc::new(KubeDeployment::new(
                    client.clone(),
                    NAMESPACE,
                    scenarios::ISTIO_BLUE,
                )))
                .router(Arc::new(istio("blue", "green")?))
        }
        Layout::SelectorBlueGreen => {
            // The seed runbook's blue-green: green is judged by its pods before any traffic
            // moves (every pod ready, three looks in a row), then by its traffic once the
            // Service's selector points at it.
            let readiness = PodReadinessProbe::new(KubeDeployment::new(
                client.clone(),
                NAMESPACE,
                scenarios::SELECTOR_GREEN,
            ));
            let ready = AnalysisCheck::builder("green-ready", &readiness, "ready_fraction")
                .success(Threshold::at_least(1.0))
                .interval(ANALYSIS_INTERVAL)
                .initial_delay(Duration::from_secs(30))
                .count(3)
                .build()?;
            let mut blue_green = BlueGreen::new("blue", "green").with_pre_promotion(ready);
            for check in checks(&probe, Some(3))? {
                blue_green = blue_green.with_post_promotion(check);
            }
            let router = ServiceSelectorRouter::new(
                client.clone(),
                NAMESPACE,
                SERVICE,
                "version",
                [("blue", "blue"), ("green", "green")],
            )?;
            Guard::builder(Strategy::BlueGreen(blue_green), backend)
                .stable(Arc::new(KubeDeployment::new(
                    client.clone(),
                    NAMESPACE,
                    scenarios::SELECTOR_BLUE,
                )))
                .router(Arc::new(router))
                .probe(Arc::new(readiness))
        }
        _ => {
            let mut builder = Guard::builder(Strategy::Rolling, backend).migrations(Arc::new(
                JobMigrationInspector::new(client.clone(), NAMESPACE),
            ));
            for check in rolling_checks {
                builder = builder.check(check);
            }
            builder
        }
    };
    let builder = match bake {
        Some(bake) => builder.bake(bake),
        None => builder,
    };
    builder
        .probe(Arc::new(probe))
        .journal(Arc::new(journal.clone()))
        .poll_interval(Duration::from_secs(2))
        .build()
}

/// The rolling scenarios the replay runs, with their ground truth.
pub fn rolling_scenarios() -> Vec<scenarios::Scenario> {
    scenarios::catalogue()
        .into_iter()
        .filter(|s| s.truth.is_some())
        .collect()
}

/// Replays `scenario` with traffic seed `seed` for `horizon` of simulated time, guarded or not.
/// Must run on a paused tokio clock to finish at once.
pub async fn replay(scenario: &str, guarded: bool, horizon: Duration, seed: u64) -> Result<Run> {
    let known = scenarios::catalogue();
    let Some(info) = known.iter().find(|s| s.name == scenario) else {
        let names: Vec<&str> = rolling_scenarios().iter().map(|s| s.name).collect();
        return Err(Error::invalid_input(
            "--scenario",
            format!(
                "unknown scenario {scenario:?}; the scenarios are: {}",
                names.join(", ")
            ),
        ));
    };
    if info.truth.is_none() {
        return Err(Error::unsupported(format!(
            "the replay guards rollouts; {scenario:?} has none"
        )));
    }
    let cluster = FakeCluster::with_controllers();
    scenarios::load_seeded(&cluster, scenario, seed)
        .await
        .map_err(|e| Error::new(ErrorKind::Unexpected, format!("loading {scenario}: {e}")))?;
    replay_loaded(&cluster, scenario, info, guarded, horizon, seed, None).await
}

/// Replays a rolling update of `variation` (see [`scenarios::Variation`]), as [`replay`] does a
/// named scenario: the parameter sweeps' way in.
pub async fn replay_variation(
    variation: &scenarios::Variation,
    guarded: bool,
    horizon: Duration,
    seed: u64,
) -> Result<Run> {
    replay_variation_with(variation, guarded, horizon, seed, None).await
}

/// A guarded replay of `variation` judged by `judging` (see [`guard_judging`]).
pub async fn replay_variation_judged(
    variation: &scenarios::Variation,
    horizon: Duration,
    seed: u64,
    judging: Option<Judging>,
) -> Result<Run> {
    replay_variation_with(variation, true, horizon, seed, judging).await
}

async fn replay_variation_with(
    variation: &scenarios::Variation,
    guarded: bool,
    horizon: Duration,
    seed: u64,
    judging: Option<Judging>,
) -> Result<Run> {
    let cluster = FakeCluster::with_controllers();
    scenarios::load_variation(&cluster, variation, seed)
        .await
        .map_err(|e| Error::new(ErrorKind::Unexpected, format!("loading {variation}: {e}")))?;
    let info = scenarios::catalogue()
        .into_iter()
        .find(|s| s.name == "healthy-rollout")
        .expect("healthy-rollout is in the catalogue");
    replay_loaded(
        &cluster,
        &variation.to_string(),
        &info,
        guarded,
        horizon,
        seed,
        judging,
    )
    .await
}

/// A guarded replay of the named rolling `scenario` judged by `judging`.
pub async fn replay_judged(
    scenario: &str,
    horizon: Duration,
    seed: u64,
    judging: Option<Judging>,
) -> Result<Run> {
    let info = scenarios::catalogue()
        .into_iter()
        .find(|s| s.name == scenario)
        .ok_or_else(|| Error::invalid_input("scenario", format!("unknown: {scenario}")))?;
    let cluster = FakeCluster::with_controllers();
    scenarios::load_seeded(&cluster, scenario, seed)
        .await
        .map_err(|e| Error::new(ErrorKind::Unexpected, format!("loading {scenario}: {e}")))?;
    replay_loaded(&cluster, scenario, &info, true, horizon, seed, judging).await
}

/// Replays what `cluster` has loaded (`scenario`, shaped as `info` says).
async fn replay_loaded(
    cluster: &FakeCluster,
    scenario: &str,
    info: &scenarios::Scenario,
    guarded: bool,
    horizon: Duration,
    seed: u64,
    judging: Option<Judging>,
) -> Result<Run> {
    let layout = info.layout;
    let deployment = candidate(layout);
    // The scenario just set the new image: the rollout starts now.
    let start = Instant::now();
    let backend = KubeDeployment::new(cluster.client(), NAMESPACE, deployment);
    let start_line = match info.truth {
        Some(Truth::Healthy) => format!("rollout: {deployment} rolls out {NEW} ({scenario})"),
        _ => format!("rollout starts: {deployment} rolls out {NEW} ({scenario})"),
    };
    let mut run = Run {
        label: if guarded { "guarded" } else { "unguarded" },
        scenario: scenario.to_owned(),
        seed,
        action: Action::Nothing,
        detected: None,
        detected_by: None,
        first_failing_sample: None,
        recovered: None,
        outcome: String::new(),
        requests: 0,
        failed: 0,
        failed_by_new_version: 0,
        served_by_new_version: 0,
        timeline: vec![(Duration::ZERO, start_line)],
        journal: Vec::new(),
        seconds: Vec::new(),
        images: Vec::new(),
        hashes: Vec::new(),
        markers: Vec::new(),
    };
    if guarded {
        let journal = MemoryJournal::new();
        let report = guard_judging(cluster, layout, &journal, judging)?
            .run()
            .await;
        run.journal = journal.events();
        read_journal(&mut run);
        run.action = match &report.outcome {
            GuardOutcome::RolledBack { .. } => Action::RolledBack,
            GuardOutcome::Paused { .. } => Action::Paused,
            GuardOutcome::Promoted { .. } => Action::Rollout,
            GuardOutcome::Failed { .. } => Action::Failed,
            _ => Action::Nothing,
        };
        run.outcome = match &report.outcome {
            GuardOutcome::RolledBack { .. } if layout == Layout::SelectorBlueGreen => {
                "aborted before any traffic moved: the Service still selects blue, green scaled to 0".into()
            }
            GuardOutcome::RolledBack { .. } if layout == Layout::GatewayCanary => {
                "aborted: all traffic back on app-stable (verified), the candidate scaled to 0".into()
            }
            GuardOutcome::RolledBack { .. } if layout != Layout::Rolling => {
                "aborted: all traffic back on the stable subset (verified), the candidate scaled to 0".into()
            }
            GuardOutcome::RolledBack {
                failing,
                failing_image,
                restored: Some(restored),
                restored_image,
                ..
            } => format!(
                "rolled back {} ({failing}) to {} ({restored})",
                failing_image.as_deref().unwrap_or("?"),
                restored_image.as_deref().unwrap_or("?")
            ),
            GuardOutcome::RolledBack { .. } => "rolled back to the last good revision".into(),
            GuardOutcome::Paused { reason } => format!("paused for a human: {reason}"),
            GuardOutcome::Failed { reason, .. } => format!("failed: {reason}"),
            GuardOutcome::Promoted { .. } => "promoted".into(),
            other => other.to_string(),
        };
        if run.action == Action::Rollout {
            run.recovered = run.journal.last().map(|e| e.at);
        }
    } else {
        // Kubernetes alone reports a condition and takes no action.
        while start.elapsed() < horizon {
            let snapshot = backend.observe().await?;
            if snapshot.progress_deadline_exceeded && run.detected.is_none() {
                run.detected = Some(start.elapsed());
                run.detected_by = Some("ProgressDeadlineExceeded, no action".into());
                run.timeline.push((
                    start.elapsed(),
                    "the Deployment controller marks the rollout ProgressDeadlineExceeded".into(),
                ));
                run.markers.push((
                    start.elapsed(),
                    "Kubernetes: ProgressDeadlineExceeded".into(),
                ));
            }
            if snapshot.is_complete() && run.recovered.is_none() {
                run.recovered = Some(start.elapsed());
                run.markers
                    .push((start.elapsed(), "Kubernetes: rollout complete".into()));
            }
            tokio::time::sleep(ANALYSIS_INTERVAL).await;
        }
        (run.action, run.outcome) = if layout != Layout::Rolling {
            // Kubernetes starts the candidate; nothing moves the route's weights (or the
            // Service's selector) to it.
            run.recovered = None;
            (
                Action::Idle,
                "the candidate runs; nothing moves traffic to it".into(),
            )
        } else if run.recovered.is_some() {
            (Action::Rollout, "completed on its own".into())
        } else {
            (
                Action::Nothing,
                "still broken; nothing was rolled back".into(),
            )
        };
    }
    let remaining = horizon.saturating_sub(start.elapsed());
    tokio::time::sleep(remaining).await;
    run.seconds = cluster.traffic_window(NAMESPACE, traffic_target(layout), horizon);
    let replica_sets = cluster
        .replica_sets(NAMESPACE)
        .map_err(|e| Error::new(ErrorKind::Unexpected, e.to_string()))?;
    run.hashes = replica_sets
        .iter()
        .filter_map(|rs| {
            let hash = rs
                .metadata
                .labels
                .as_ref()?
                .get("pod-template-hash")?
                .clone();
            let pod = rs.spec.as_ref()?.template.as_ref()?.spec.as_ref()?;
            Some((hash, pod.containers.first()?.image.clone()?))
        })
        .collect();
    run.images = replica_sets
        .iter()
        .filter_map(|rs| rs.spec.as_ref()?.template.as_ref()?.spec.as_ref())
        .flat_map(|pod| pod.containers.iter().filter_map(|c| c.image.clone()))
        .collect();
    run.images.sort();
    run.images.dedup();
    run.requests = run.seconds.iter().map(|s| s.requests).sum();
    run.failed = run.seconds.iter().map(|s| s.errors).sum();
    for version in run.seconds.iter().flat_map(|s| &s.versions) {
        if version.image == NEW {
            run.served_by_new_version += version.requests;
            run.failed_by_new_version += version.errors;
        }
    }
    Ok(run)
}

/// The guarded run's timeline and detection, from its typed journal.
fn read_journal(run: &mut Run) {
    for event in &run.journal {
        let line = match &event.kind {
            EventKind::Measured {
                check, judgement, ..
            } => {
                if matches!(
                    judgement.outcome,
                    deployguard_core::analysis::MeasurementOutcome::Failed(_)
                ) && run.first_failing_sample.is_none()
                {
                    run.first_failing_sample = Some(event.at);
                }
                format!(
                    "{check}: {} ({})",
                    judgement.reason,
                    in_words(judgement.outcome)
                )
            }
            EventKind::Decision { decision, .. } => {
                match decision {
                    Decision::Abort(why) | Decision::Pause(why) if run.detected.is_none() => {
                        run.detected = Some(event.at);
                        run.detected_by = Some(why.clone());
                        let what = if matches!(decision, Decision::Abort(_)) {
                            "guard: abort"
                        } else {
                            "guard: pause"
                        };
                        run.markers.push((event.at, what.into()));
                    }
                    _ => {}
                }
                format!("decision: {decision}")
            }
            EventKind::StepStarted { index, step } => {
                if matches!(step, Step::RollBack { .. }) {
                    run.markers.push((event.at, "guard: roll back".into()));
                }
                format!("step {} started: {step}", index + 1)
            }
            EventKind::StepFinished {
                index, attempts, ..
            } => format!("step {} done ({attempts} attempt(s))", index + 1),
            EventKind::StepFailed { index, error } => {
                format!("step {} failed: {error}", index + 1)
            }
            EventKind::Baking { duration } => {
                run.markers.push((event.at, "guard: baking".into()));
                format!(
                    "baking: the rollout completed; {NEW} is judged {} min more before it is promoted",
                    duration.as_secs() / 60
                )
            }
            EventKind::Baked { duration } => {
                format!("baked {} min: nothing failed", duration.as_secs() / 60)
            }
            EventKind::Finished { outcome } => {
                run.markers.push((event.at, "guard: done".into()));
                if matches!(outcome, GuardOutcome::RolledBack { .. }) {
                    run.recovered = Some(event.at);
                }
                outcome.to_string()
            }
            _ => continue,
        };
        run.timeline.push((event.at, line));
    }
}

/// A measurement's outcome as the timeline says it.
fn in_words(outcome: MeasurementOutcome) -> &'static str {
    match outcome {
        MeasurementOutcome::Successful(_) => "passed",
        MeasurementOutcome::Failed(_) => "failed: the new version is worse",
        MeasurementOutcome::Shared(_) => "both versions out of range: a shared cause",
        MeasurementOutcome::Inconclusive(_) => "inconclusive",
        MeasurementOutcome::TooFew => "too few requests to judge",
        MeasurementOutcome::NoData => "no data",
        _ => "the probe could not be read",
    }
}
