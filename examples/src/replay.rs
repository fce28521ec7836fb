//! The incident replay: a scenario of the simulated cluster, once as Kubernetes alone handles it
//! and once guarded by deployguard, with the timeline and the cost of each.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use deployguard_core::analysis::{AnalysisCheck, Threshold};
use deployguard_core::engine::{
    EventKind, Guard, GuardOutcome, JournalEvent, MemoryJournal, Strategy,
};
use deployguard_core::{DeploymentBackend, Error, ErrorKind, Result};
use deployguard_k8s::{JobMigrationInspector, KubeDeployment};
use deployguard_testkit::cluster::{FakeCluster, scenarios};
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
}

/// Replays `scenario` for `horizon` of simulated time, guarded or not. Must run on a paused
/// tokio clock to finish at once.
pub async fn replay(scenario: &str, guarded: bool, horizon: Duration) -> Result<Run> {
    if !scenarios::list().iter().any(|(name, _)| *name == scenario) {
        return Err(Error::invalid_input(
            "--scenario",
            format!("unknown scenario {scenario:?}"),
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
    };
    if guarded {
        let journal = MemoryJournal::new();
        let check =
            AnalysisCheck::builder("error-rate", &format!("traffic:{SERVICE}"), "error_rate")
                .success(Threshold::at_most(0.01))
                .interval(Duration::from_secs(10))
                .initial_delay(Duration::from_secs(10))
                .build()?;
        let guard = Guard::builder(Strategy::Rolling, Arc::new(backend.clone()))
            .probe(Arc::new(cluster.traffic_probe(
                NAMESPACE,
                SERVICE,
                Duration::from_secs(10),
            )))
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
                    format!("measured {check}: {outcome:?}")
                }
                EventKind::Decision { decision } => {
                    if decision.starts_with("Abort") && run.detected.is_none() {
                        run.detected = Some((event.at, "error-rate check failed".into()));
                    }
                    format!("decision: {decision}")
                }
                EventKind::StepStarted { index, step } => {
                    format!("step {} started: {step}", index + 1)
                }
                EventKind::StepFinished {
                    index, attempts, ..
                } => format!("step {} done ({attempts} attempt(s))", index + 1),
                EventKind::StepFailed { index, error } => {
                    format!("step {} failed: {error}", index + 1)
                }
                EventKind::Finished { outcome } => outcome.clone(),
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
            GuardOutcome::Failed { reason } => format!("failed: {reason}"),
            GuardOutcome::Promoted { .. } => "promoted".into(),
            other => format!("{other:?}"),
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
            }
            if snapshot.is_complete() && run.recovered.is_none() {
                run.recovered = Some(onset.elapsed());
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
    let seconds = cluster.traffic_window(NAMESPACE, SERVICE, horizon);
    run.requests = seconds.iter().map(|s| s.requests).sum();
    run.failed = seconds.iter().map(|s| s.errors).sum();
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
