//! The incident replay: a scenario of the simulated cluster, once as Kubernetes alone handles it
//! and once guarded by deployguard, with the timeline and the cost of each.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use deployguard_core::analysis::{AnalysisCheck, Threshold};
use deployguard_core::engine::{
    Decision, EventKind, Guard, GuardOutcome, JournalEvent, MemoryJournal, Step, Strategy,
};
use deployguard_core::{DeploymentBackend, Error, ErrorKind, Result};
use deployguard_k8s::{JobMigrationInspector, KubeDeployment};
use deployguard_testkit::cluster::{FakeCluster, TrafficSecond, scenarios};
use tokio::time::Instant;

/// Where each rolling scenario's deployment and service are.
const NAMESPACE: &str = "default";
const DEPLOYMENT: &str = "app-deployment";
const SERVICE: &str = "myapp-service";

/// How one run went.
#[derive(Debug, Clone)]
pub struct Run {
    /// `unguarded` or `guarded`.
    pub label: &'static str,
    /// When the failure was detected (and by what), from fault onset.
    pub detected: Option<(Duration, String)>,
    /// When service was restored, from fault onset.
    pub recovered: Option<Duration>,
    /// How the run ended, in words.
    pub outcome: String,
    /// Requests sent and failed over the horizon.
    pub requests: f64,
    /// Failed requests over the horizon.
    pub failed: f64,
    /// Timeline entries, from fault onset.
    pub timeline: Vec<(Duration, String)>,
    /// The guard's journal (empty when unguarded).
    pub journal: Vec<JournalEvent>,
    /// The Service's traffic, one entry per simulated second from fault onset, per version.
    pub seconds: Vec<TrafficSecond>,
    /// Every image the deployment's ReplicaSets ran by the end of the replay.
    pub images: Vec<String>,
    /// What the picture marks on the time axis: the guard's decisions and steps, the
    /// Deployment's conditions.
    pub markers: Vec<(Duration, String)>,
}

/// Replays `scenario` for `horizon` of simulated time, guarded or not. Must run on a paused
/// tokio clock to finish at once.
pub async fn replay(scenario: &str, guarded: bool, horizon: Duration) -> Result<Run> {
    if !scenarios::list().iter().any(|(name, _)| *name == scenario) {
        let names: Vec<&str> = scenarios::list().iter().map(|(name, _)| *name).collect();
        return Err(Error::invalid_input(
            "--scenario",
            format!(
                "unknown scenario {scenario:?}; the scenarios are: {}",
                names.join(", ")
            ),
        ));
    }
    if matches!(scenario, "empty" | "static-web" | "seed-blue-green") {
        return Err(Error::unsupported(format!(
            "the replay guards rolling scenarios; {scenario:?} has no rolling deployment"
        )));
    }
    let cluster = FakeCluster::with_controllers();
    scenarios::load(&cluster, scenario)
        .await
        .map_err(|e| Error::new(ErrorKind::Unexpected, format!("loading {scenario}: {e}")))?;
    // The scenario just set the new image: this is fault onset.
    let onset = Instant::now();
    let backend = KubeDeployment::new(cluster.client(), NAMESPACE, DEPLOYMENT);
    let mut run = Run {
        label: if guarded { "guarded" } else { "unguarded" },
        detected: None,
        recovered: None,
        outcome: String::new(),
        requests: 0.0,
        failed: 0.0,
        timeline: vec![(
            Duration::ZERO,
            format!("fault onset: {DEPLOYMENT} rolls out app:v2.4.0 ({scenario})"),
        )],
        journal: Vec::new(),
        seconds: Vec::new(),
        images: Vec::new(),
        markers: Vec::new(),
    };
    if guarded {
        let journal = MemoryJournal::new();
        let probe = cluster.traffic_probe(NAMESPACE, SERVICE, Duration::from_secs(10));
        let check = AnalysisCheck::builder("error-rate", &probe, "error_rate")
            .success(Threshold::at_most(0.01))
            .interval(Duration::from_secs(10))
            .initial_delay(Duration::from_secs(10))
            .build()?;
        let guard = Guard::builder(Strategy::Rolling, Arc::new(backend.clone()))
            .probe(Arc::new(probe))
            .migrations(Arc::new(JobMigrationInspector::new(
                cluster.client(),
                NAMESPACE,
            )))
            .check(check)
            .journal(Arc::new(journal.clone()))
            .poll_interval(Duration::from_secs(2))
            .build()?;
        let report = guard.run().await;
        run.journal = journal.events();
        for event in &run.journal {
            let line = match &event.kind {
                EventKind::Measured { check, outcome, .. } => {
                    format!("measured {check}: {outcome}")
                }
                EventKind::Decision { decision, phase } => {
                    if matches!(decision, Decision::Abort(_)) && run.detected.is_none() {
                        run.detected = Some((event.at, "error-rate check failed".into()));
                        run.markers.push((event.at, "guard: abort".into()));
                    }
                    format!("decision ({phase}): {decision}")
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
                EventKind::Finished { outcome } => {
                    run.markers.push((event.at, "guard: done".into()));
                    outcome.to_string()
                }
                _ => continue,
            };
            run.timeline.push((event.at, line));
        }
        run.outcome = match &report.outcome {
            GuardOutcome::RolledBack { .. } => {
                run.recovered = run
                    .journal
                    .iter()
                    .rev()
                    .find(|e| matches!(e.kind, EventKind::Finished { .. }))
                    .map(|e| e.at);
                "rolled back to the last good revision".into()
            }
            GuardOutcome::Paused { reason } => format!("paused for a human: {reason}"),
            GuardOutcome::Failed { reason, .. } => format!("failed: {reason}"),
            GuardOutcome::Promoted { .. } => "promoted".into(),
            other => other.to_string(),
        };
    } else {
        // Kubernetes alone reports a condition and takes no action.
        while onset.elapsed() < horizon {
            let snapshot = backend.observe().await?;
            if snapshot.progress_deadline_exceeded && run.detected.is_none() {
                run.detected = Some((
                    onset.elapsed(),
                    "ProgressDeadlineExceeded, no action".into(),
                ));
                run.timeline.push((
                    onset.elapsed(),
                    "the Deployment controller marks the rollout ProgressDeadlineExceeded".into(),
                ));
                run.markers.push((
                    onset.elapsed(),
                    "Kubernetes: ProgressDeadlineExceeded".into(),
                ));
            }
            if snapshot.is_complete() && run.recovered.is_none() {
                run.recovered = Some(onset.elapsed());
                run.markers
                    .push((onset.elapsed(), "Kubernetes: rollout complete".into()));
            }
            tokio::time::sleep(Duration::from_secs(10)).await;
        }
        run.outcome = if run.recovered.is_some() {
            "completed on its own".into()
        } else {
            "still broken; nothing was rolled back".into()
        };
    }
    let remaining = horizon.saturating_sub(onset.elapsed());
    tokio::time::sleep(remaining).await;
    run.seconds = cluster.traffic_window(NAMESPACE, SERVICE, horizon);
    run.images = cluster
        .replica_sets(NAMESPACE)
        .map_err(|e| Error::new(ErrorKind::Unexpected, e.to_string()))?
        .iter()
        .filter_map(|rs| rs.spec.as_ref()?.template.as_ref()?.spec.as_ref())
        .flat_map(|pod| pod.containers.iter().filter_map(|c| c.image.clone()))
        .collect();
    run.images.sort();
    run.images.dedup();
    run.requests = run.seconds.iter().map(|s| s.requests).sum();
    run.failed = run.seconds.iter().map(|s| s.errors).sum();
    Ok(run)
}

fn seconds(d: Duration) -> String {
    format!("{}s", d.as_secs())
}

/// The side-by-side table and the guarded timeline.
pub fn render(scenario: &str, horizon: Duration, unguarded: &Run, guarded: &Run) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "deployguard incident replay: scenario {scenario} ({} min of simulated time)\n",
        horizon.as_secs() / 60
    );
    let row = |out: &mut String, label: &str, unguarded: &str, guarded: &str| {
        let _ = writeln!(out, "{label:<22} {unguarded:<40} {guarded}");
    };
    row(
        &mut out,
        "",
        "unguarded (Kubernetes alone)",
        "guarded by deployguard",
    );
    let detect = |r: &Run| {
        r.detected.as_ref().map_or("never".to_owned(), |(at, how)| {
            format!("{} ({how})", seconds(*at))
        })
    };
    let recover = |r: &Run| r.recovered.map_or("never".to_owned(), seconds);
    let failed = |r: &Run| {
        let share = if r.requests > 0.0 {
            r.failed / r.requests * 100.0
        } else {
            0.0
        };
        format!("{:.0} of {:.0} ({share:.1}%)", r.failed, r.requests)
    };
    row(&mut out, "fault onset", "0s", "0s");
    let _ = writeln!(
        out,
        "{:<22} {:<40} {}",
        "time to detect",
        detect(unguarded),
        detect(guarded)
    );
    let _ = writeln!(
        out,
        "{:<22} {:<40} {}",
        "time to recover",
        recover(unguarded),
        recover(guarded)
    );
    let _ = writeln!(
        out,
        "{:<22} {:<40} {}",
        "failed requests",
        failed(unguarded),
        failed(guarded)
    );
    let _ = writeln!(
        out,
        "{:<22} {:<40} {}",
        "outcome", unguarded.outcome, guarded.outcome
    );
    let _ = writeln!(out, "\nguarded timeline:");
    for (at, line) in &guarded.timeline {
        let _ = writeln!(out, "  +{:<6} {line}", seconds(*at));
    }
    out
}
