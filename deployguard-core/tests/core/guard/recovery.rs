//! Recovery: restarts, deadlines, retries, detection latency, ordering, invalid configuration.

use std::sync::Arc;
use std::time::Duration;

use deployguard_core::analysis::{AnalysisCheck, NoDataPolicy, Threshold};
use deployguard_core::engine::{
    BlueGreen, Canary, CanaryStep, Decision, EventKind, ExecutionOutcome, Guard, GuardOutcome,
    JournalEvent, JournalSink, MemoryJournal, StepStatus, Strategy,
};
use deployguard_core::{Error, ErrorKind, RouterCapabilities, TrafficSplit};
use deployguard_testkit::{Behaviour, FakeDeployment, FakeRouter, Op, ScriptedProbe};
use tokio::sync::watch;

use super::world::{ALL, Kind, Schema, Script, World, error_rate_check};

/// Signals each finished plan step, so a test can "crash" the guard right after it.
#[derive(Debug)]
struct StepSignal(watch::Sender<Option<usize>>);

impl JournalSink for StepSignal {
    fn record(&self, event: &JournalEvent) {
        if let EventKind::StepFinished { index, .. } = event.kind {
            self.0.send_replace(Some(index));
        }
    }
}

/// A script that fails once traffic reached the candidate, per strategy.
fn failing_late(kind: Kind) -> Script {
    match kind {
        Kind::Canary => Script::FailingAfter(3),
        Kind::BlueGreen => Script::FailingAfter(1),
        _ => Script::Failing,
    }
}

#[tokio::test(start_paused = true)]
async fn a_guard_restarted_after_each_plan_step_recovers_exactly_once() {
    for kind in ALL {
        let mut crash_after = 0;
        loop {
            let (tx, mut rx) = watch::channel(None);
            let mut world = World::new(kind, &failing_late(kind), Schema::Compatible)
                .with_journal(Arc::new(StepSignal(tx)));
            world.slow_calls();
            let guard = world.guard();
            let crashed = tokio::select! {
                biased;
                _ = rx.wait_for(|done| done.is_some_and(|i| i >= crash_after)) => true,
                _ = guard.run() => false,
            };
            if !crashed {
                // The plan has fewer steps than `crash_after`: every crash point was tried.
                assert!(crash_after >= 4, "{kind:?}: only {crash_after} steps");
                break;
            }
            // A new process: same platform, nothing in memory.
            let restarted = guard.clone().run().await;
            assert!(
                matches!(restarted.outcome, GuardOutcome::RolledBack { .. }),
                "{kind:?} crashed after step {crash_after}: {:?}",
                restarted.outcome
            );
            assert_eq!(
                world.effective_recoveries(),
                1,
                "{kind:?} crashed after step {crash_after}"
            );
            match kind {
                Kind::Rolling | Kind::Recreate => {
                    assert_eq!(world.candidate.current_images(), ["app:v2.3.1"])
                }
                Kind::BlueGreen => assert_eq!(
                    world.router.as_ref().unwrap().split().weight("green"),
                    Some(0)
                ),
                Kind::Canary => assert_eq!(
                    world.router.as_ref().unwrap().split().weight("canary"),
                    Some(0)
                ),
            }
            crash_after += 1;
        }
    }
}

#[tokio::test(start_paused = true)]
async fn canary_abort_forces_the_candidate_to_zero_and_moves_traffic_before_scaling_down() {
    let mut world = World::new(Kind::Canary, &Script::FailingAfter(3), Schema::Compatible);
    let report = world.guard().run().await;
    assert!(
        matches!(report.outcome, GuardOutcome::RolledBack { .. }),
        "{:?}",
        report.outcome
    );
    let router = world.router.as_ref().unwrap();
    let applied: Vec<String> = router.applied().iter().map(ToString::to_string).collect();
    assert_eq!(
        applied,
        [
            "canary=20%, stable=80%",
            "canary=50%, stable=50%",
            "canary=0%, stable=100%"
        ]
    );
    // Traffic left the candidate before it was scaled down.
    let restore = router
        .calls()
        .into_iter()
        .rfind(|c| c.op == Op::Apply)
        .unwrap()
        .at;
    let scale = world
        .candidate
        .calls()
        .into_iter()
        .find(|c| c.op == Op::Scale)
        .unwrap()
        .at;
    assert_eq!(
        scale - restore,
        Duration::from_secs(30),
        "the abort scale-down delay"
    );
    assert_eq!(world.candidate.replicas(), 0);
}

#[tokio::test(start_paused = true)]
async fn after_promotion_traffic_never_goes_back_to_a_stable_side_that_cannot_serve() {
    let mut world = World::new(
        Kind::BlueGreen,
        &Script::FailingAfter(1),
        Schema::Compatible,
    )
    .configure(|b| b.recovery_deadline(Duration::from_secs(120)));
    // Blue was scaled away and cannot come back.
    let blue = world.stable.clone().unwrap();
    blue.set_behaviour(
        deployguard_core::RevisionId(1),
        Behaviour::waiting("ImagePullBackOff", "registry gone"),
    );
    blue.deploy(
        ["app:v2.3.1-rebuilt"],
        Behaviour::waiting("ImagePullBackOff", "registry gone"),
    );
    let report = world.guard().run().await;
    let GuardOutcome::Failed { reason, kind } = &report.outcome else {
        panic!("expected Failed, got {:?}", report.outcome);
    };
    assert!(reason.contains("scale stable to 6"), "{reason}");
    // The error's kind survives: a step that timed out waiting is a timeout.
    assert_eq!(*kind, deployguard_core::ErrorKind::Timeout, "{reason}");
    // Production stays on green, degraded but serving; nothing half-switched.
    assert_eq!(
        world.router.as_ref().unwrap().split().weight("green"),
        Some(100)
    );
}

#[tokio::test(start_paused = true)]
async fn a_deadline_overrun_ends_failed_with_a_partial_report() {
    for kind in ALL {
        let mut world = World::new(kind, &failing_late(kind), Schema::Compatible)
            .configure(|b| b.recovery_deadline(Duration::from_secs(90)));
        match kind {
            // The old revision takes 15 minutes to start.
            Kind::Rolling | Kind::Recreate => world.candidate.set_behaviour(
                deployguard_core::RevisionId(1),
                Behaviour::healthy_after(Duration::from_secs(900)),
            ),
            // The data plane keeps routing to the candidate.
            Kind::BlueGreen | Kind::Canary => {
                let router = world.router.as_ref().unwrap();
                let stuck = if kind == Kind::BlueGreen {
                    TrafficSplit::all_to("green", &["blue"]).unwrap()
                } else {
                    TrafficSplit::two_way("stable", "canary", 50).unwrap()
                };
                router.set_data_plane(Some(stuck));
            }
        }
        let started = tokio::time::Instant::now();
        let report = world.guard().run().await;
        let GuardOutcome::Failed {
            reason,
            kind: error_kind,
        } = &report.outcome
        else {
            panic!("{kind:?}: expected Failed, got {:?}", report.outcome);
        };
        assert_eq!(*error_kind, deployguard_core::ErrorKind::Timeout);
        assert!(
            reason.starts_with("recovery deadline of 90s exceeded at step"),
            "{kind:?}: {reason}"
        );
        let execution = report.execution.unwrap();
        let ExecutionOutcome::DeadlineExceeded { step } = execution.outcome else {
            panic!("{kind:?}: {:?}", execution.outcome);
        };
        assert!(
            execution.steps[..step]
                .iter()
                .all(|s| s.status == StepStatus::Done),
            "{kind:?}"
        );
        assert!(
            matches!(execution.steps[step].status, StepStatus::Failed(_)),
            "{kind:?}"
        );
        assert!(
            execution.steps[step + 1..]
                .iter()
                .all(|s| s.status == StepStatus::NotRun),
            "{kind:?}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(90 + 60),
            "{kind:?}: took {:?}",
            started.elapsed()
        );
    }
}

#[tokio::test(start_paused = true)]
async fn retryable_errors_are_retried_with_backoff_inside_the_deadline() {
    let mut world = World::new(Kind::Rolling, &Script::Failing, Schema::Compatible);
    for _ in 0..2 {
        world.candidate.fail_next(
            Op::RollbackTo,
            Error::new(ErrorKind::Unavailable, "503 Service Unavailable"),
        );
    }
    let report = world.guard().run().await;
    assert!(
        matches!(report.outcome, GuardOutcome::RolledBack { .. }),
        "{:?}",
        report.outcome
    );
    let execution = report.execution.unwrap();
    let rollback = execution
        .steps
        .iter()
        .find(|s| s.step.to_string().starts_with("roll back"))
        .unwrap();
    assert_eq!(rollback.attempts, 3);
    // The default policy's jittered backoff: 250–500 ms, then 500–1000 ms.
    assert!(
        (750..=1_500).contains(&rollback.took_ms),
        "{} ms",
        rollback.took_ms
    );
    world.candidate.assert_finished();
}

#[tokio::test(start_paused = true)]
async fn abort_comes_within_two_intervals_of_the_first_failing_sample() {
    let (backend, _handle) = FakeDeployment::builder("web")
        .replicas(6)
        .verified_revision(["app:v1"], Behaviour::healthy())
        .revision(
            ["app:v2"],
            Behaviour::healthy_after(Duration::from_secs(300)),
        )
        .build();
    let (probe, _) = ScriptedProbe::new("http")
        .values("error_rate", 0.0, 2)
        .value("error_rate", 0.2)
        .build();
    let journal = MemoryJournal::new();
    let check = AnalysisCheck::builder("error-rate", "http", "error_rate")
        .success(Threshold::at_most(0.01))
        .interval(Duration::from_secs(10))
        .failure_limit(1)
        .build()
        .unwrap();
    let guard = Guard::builder(Strategy::Rolling, Arc::new(backend))
        .probe(Arc::new(probe))
        .check(check)
        .journal(Arc::new(journal.clone()))
        .build()
        .unwrap();
    let report = guard.run().await;
    assert!(
        matches!(report.outcome, GuardOutcome::RolledBack { .. }),
        "{:?}",
        report.outcome
    );
    let events = journal.events();
    let first_failure = events
        .iter()
        .find(|e| matches!(&e.kind, EventKind::Measured { outcome, .. } if matches!(outcome, deployguard_core::analysis::MeasurementOutcome::Failed(_))))
        .unwrap()
        .at;
    let abort = events
        .iter()
        .find(|e| {
            matches!(
                &e.kind,
                EventKind::Decision {
                    decision: Decision::Abort(_),
                    ..
                }
            )
        })
        .unwrap()
        .at;
    assert_eq!(first_failure, Duration::from_secs(20));
    assert!(
        abort - first_failure <= Duration::from_secs(20),
        "abort {abort:?}, first failure {first_failure:?}"
    );
    assert_eq!(abort - first_failure, Duration::from_secs(10));
}

#[tokio::test(start_paused = true)]
async fn a_manual_blue_green_gate_pauses_until_promoted_by_anyone() {
    let (green, _) = FakeDeployment::builder("myapp-green")
        .revision(["app:v2"], Behaviour::healthy())
        .build();
    let (router, router_handle) = FakeRouter::all_or_nothing("svc/myapp", ["blue", "green"]);
    let (probe, _) = ScriptedProbe::new("http").value("error_rate", 0.0).build();
    let strategy = Strategy::BlueGreen(
        BlueGreen::new("blue", "green")
            .with_manual_promotion()
            .with_pre_promotion(error_rate_check(NoDataPolicy::Pause, Some(2))),
    );
    let guard = Guard::builder(strategy, Arc::new(green))
        .router(Arc::new(router))
        .probe(Arc::new(probe))
        .build()
        .unwrap();
    let first = guard.run().await;
    assert_eq!(
        first.outcome,
        GuardOutcome::Paused {
            reason: "preview green is ready; awaiting promotion".into()
        }
    );
    assert_eq!(router_handle.split().weight("blue"), Some(100));
    guard.promote().await.unwrap();
    let second = guard.clone().run().await;
    assert!(
        matches!(second.outcome, GuardOutcome::Promoted { .. }),
        "{:?}",
        second.outcome
    );
    assert_eq!(router_handle.split().weight("green"), Some(100));
}

#[test]
fn invalid_configuration_is_refused_at_build_naming_the_field() {
    let backend = || {
        Arc::new(
            FakeDeployment::builder("web")
                .revision(["a"], Behaviour::healthy())
                .build()
                .0,
        )
    };
    let probe = || {
        Arc::new(
            ScriptedProbe::new("http")
                .value("error_rate", 0.0)
                .build()
                .0,
        )
    };
    let weighted = || {
        Arc::new(
            FakeRouter::new("vs", RouterCapabilities::weighted(["stable", "canary"]))
                .unwrap()
                .0,
        )
    };
    let check = |f: fn(&mut AnalysisCheck)| {
        let mut check = error_rate_check(NoDataPolicy::Pause, Some(3));
        f(&mut check);
        check
    };
    let cases: Vec<(Result<Guard, Error>, &str)> = vec![
        (
            Guard::builder(Strategy::Rolling, backend())
                .probe(probe())
                .check(check(|c| c.success.max = Some(f64::NAN)))
                .build(),
            "invalid input: check error-rate: success.max: NaN is not a finite number",
        ),
        (
            Guard::builder(Strategy::Rolling, backend())
                .probe(probe())
                .check(check(|c| c.success.max = Some(-1.0)))
                .build(),
            "invalid input: check error-rate: success.max: -1 is negative",
        ),
        (
            Guard::builder(Strategy::Rolling, backend())
                .probe(probe())
                .check(check(|c| c.failure = Some(Threshold::between(0.9, 0.1))))
                .build(),
            "invalid input: check error-rate: failure: min 0.9 is greater than max 0.1",
        ),
        (
            Guard::builder(Strategy::Rolling, backend())
                .probe(probe())
                .check(check(|c| c.interval = Duration::ZERO))
                .build(),
            "invalid input: check error-rate: interval: must be greater than zero",
        ),
        (
            Guard::builder(
                Strategy::Canary(Canary::new("stable", "canary", vec![])),
                backend(),
            )
            .router(weighted())
            .build(),
            "invalid input: canary.steps: is empty",
        ),
        (
            Guard::builder(
                Strategy::Canary(Canary::new(
                    "stable",
                    "canary",
                    vec![CanaryStep::SetWeight(120)],
                )),
                backend(),
            )
            .router(weighted())
            .build(),
            "invalid input: canary.steps[0]: weight 120 is over 100",
        ),
        (
            Guard::builder(Strategy::Rolling, backend())
                .check(check(|_| {}))
                .build(),
            "invalid input: check error-rate: probe: no probe called \"http\" was added to the guard (probes: none)",
        ),
        (
            Guard::builder(Strategy::Rolling, backend())
                .probe(Arc::new(
                    ScriptedProbe::new("http")
                        .reports(["error_rate_5xx", "p99_latency_seconds"])
                        .build()
                        .0,
                ))
                .check(check(|_| {}))
                .build(),
            "invalid input: check error-rate: metric: probe \"http\" never reports \"error_rate\"; it reports error_rate_5xx, p99_latency_seconds",
        ),
        (
            Guard::builder(
                Strategy::Canary(Canary::new(
                    "stable",
                    "canary",
                    vec![CanaryStep::SetWeight(10)],
                )),
                backend(),
            )
            .build(),
            "invalid input: router: blue-green and canary need a traffic router",
        ),
        (
            Guard::builder(Strategy::Rolling, backend())
                .recovery_deadline(Duration::ZERO)
                .build(),
            "invalid input: recovery_deadline: must be greater than zero",
        ),
    ];
    for (result, expected) in cases {
        let err = result.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        assert_eq!(err.to_string(), expected);
    }
}

#[tokio::test(start_paused = true)]
async fn assess_plan_execute_step_by_step() {
    let mut world = World::new(Kind::Rolling, &Script::Failing, Schema::Compatible);
    let guard = world.guard();
    let assessment = guard.assess().await.unwrap();
    assert!(assessment.is_failing());
    assert_eq!(assessment.healthy_fraction, Some(5.0 / 6.0));
    assert_eq!(
        assessment.failure_modes[0].mode,
        deployguard_core::FailureMode::ReadinessFailing
    );
    let evidence = &assessment.failure_modes[0].evidence;
    assert_eq!(
        evidence[0],
        "3 of 3 pods of the current revision run but are not ready"
    );
    assert!(
        evidence[1].ends_with(
            "its app answers the readiness probe with an error 0 s after it was created, past the 0 s a start takes (its probes declare 0 s): Readiness probe failed: HTTP probe failed with statuscode: 503"
        ),
        "{evidence:?}"
    );
    assert_eq!(
        assessment.rollback_target.as_ref().unwrap().images,
        ["app:v2.3.1"]
    );
    assert!(world.writes().is_empty(), "assess only reads");

    let plan = guard.plan(&assessment).await.unwrap();
    assert_eq!(plan.steps.len(), 6);
    let report = guard.execute(&plan, Duration::from_secs(600)).await;
    assert!(report.is_complete(), "{report:?}");
    assert_eq!(world.candidate.current_images(), ["app:v2.3.1"]);
    // The serialized report is what a CLI prints with --json.
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["steps"][2]["step"]["step"], "roll_back");
    assert_eq!(json["outcome"]["outcome"], "completed");
}

#[tokio::test(start_paused = true)]
async fn a_deployment_with_no_pods_is_assessed_without_dividing_by_zero() {
    let (backend, _) = FakeDeployment::builder("idle")
        .replicas(0)
        .revision(["a"], Behaviour::healthy())
        .build();
    let guard = Guard::builder(Strategy::Rolling, Arc::new(backend))
        .build()
        .unwrap();
    let assessment = guard.assess().await.unwrap();
    assert_eq!(assessment.healthy_fraction, None);
    assert!(assessment.rollback_target.is_none());
    let err = guard.plan(&assessment).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
}

#[tokio::test(start_paused = true)]
async fn a_dry_run_check_is_journaled_but_never_acted_on() {
    let (backend, _) = FakeDeployment::builder("web")
        .verified_revision(["app:v1"], Behaviour::healthy())
        .revision(["app:v2"], Behaviour::healthy())
        .build();
    let (errors, _) = ScriptedProbe::new("http").value("error_rate", 0.0).build();
    let (latency, _) = ScriptedProbe::new("latency").value("p99", 5.2).build();
    let journal = MemoryJournal::new();
    let shadow = AnalysisCheck::builder("p99", "latency", "p99")
        .success(Threshold::at_most(0.5))
        .dry_run(true)
        .build()
        .unwrap();
    let guard = Guard::builder(Strategy::Rolling, Arc::new(backend))
        .probe(Arc::new(errors))
        .probe(Arc::new(latency))
        .check(error_rate_check(NoDataPolicy::Pause, None))
        .check(shadow)
        .journal(Arc::new(journal.clone()))
        .build()
        .unwrap();
    let report = guard.run().await;
    assert!(
        matches!(report.outcome, GuardOutcome::Promoted { .. }),
        "{:?}",
        report.outcome
    );
    let shadow_failed = journal.events().into_iter().any(|e| {
        matches!(e.kind, EventKind::Measured { ref check, dry_run: true, outcome: deployguard_core::analysis::MeasurementOutcome::Failed(_), .. } if check == "p99")
    });
    assert!(
        shadow_failed,
        "the dry-run check was evaluated and journaled"
    );
    let json = serde_json::to_string(&journal.events()[0]).unwrap();
    assert!(json.starts_with(r#"{"at":0,"event":"started""#), "{json}");
    let json = serde_json::to_string(&journal.events()[1]).unwrap();
    assert!(json.starts_with(r#"{"at":0,"event":"observed""#), "{json}");
}

#[tokio::test(start_paused = true)]
async fn a_promoted_canary_moves_all_traffic_before_the_old_side_scales_down() {
    let mut world = World::new(Kind::Canary, &Script::Healthy, Schema::Compatible);
    let report = world.guard().run().await;
    assert!(
        matches!(report.outcome, GuardOutcome::Promoted { .. }),
        "{}",
        report.outcome
    );
    let router = world.router.as_ref().unwrap();
    let stable = world.stable.as_ref().unwrap();
    assert_eq!(
        router.split(),
        TrafficSplit::all_to("canary", &["stable"]).unwrap()
    );
    let all_traffic_moved = router
        .writes()
        .iter()
        .find(|c| c.detail.contains("canary=100%"))
        .map(|c| c.at)
        .expect("all traffic moved to the canary");
    let scaled_down = stable
        .writes()
        .iter()
        .find(|c| c.op == Op::Scale)
        .map(|c| c.at)
        .expect("the old side scaled down");
    assert!(all_traffic_moved < scaled_down);
    let candidate_scaled_up = world
        .candidate
        .writes()
        .iter()
        .find(|c| c.op == Op::Scale)
        .map(|c| c.at)
        .expect("the candidate scaled up to full size");
    assert!(candidate_scaled_up <= all_traffic_moved);
}

#[tokio::test(start_paused = true)]
async fn a_deployment_someone_paused_is_refused_unless_resuming_is_allowed() {
    let build = |resume: bool| async move {
        let (backend, handle) = FakeDeployment::builder("web")
            .replicas(6)
            .verified_revision(["app:v2.3.1"], Behaviour::healthy())
            .revision(["app:v2.4.0"], Behaviour::failing_readiness())
            .build();
        // A human paused the failing rollout (kubectl rollout pause).
        deployguard_core::DeploymentBackend::set_paused(&backend, true)
            .await
            .unwrap();
        let (probe, _) = ScriptedProbe::new("http").value("error_rate", 0.15).build();
        let backend = Arc::new(backend);
        let guard = Guard::builder(
            Strategy::Rolling,
            Arc::clone(&backend) as Arc<dyn deployguard_core::DeploymentBackend>,
        )
        .probe(Arc::new(probe))
        .check(
            AnalysisCheck::builder("error-rate", "http", "error_rate")
                .success(Threshold::at_most(0.01))
                .interval(Duration::from_secs(10))
                .build()
                .unwrap(),
        )
        .resume_paused(resume)
        .build()
        .unwrap();
        let report = guard.run().await;
        let markers = deployguard_core::DeploymentBackend::markers(backend.as_ref())
            .await
            .unwrap();
        (report, handle, markers)
    };
    let (report, handle, markers) = build(false).await;
    match &report.outcome {
        GuardOutcome::Paused { reason } => assert!(reason.contains("is paused"), "{reason}"),
        other => panic!("{other}"),
    }
    assert_eq!(
        handle.current_images(),
        ["app:v2.4.0"],
        "nothing rolled back"
    );
    assert!(handle.is_paused(), "left as the human left it");
    // The platform's object says the recovery was refused, and why.
    let recovery = &markers[deployguard_core::engine::RECOVERY];
    assert!(recovery.contains("\"state\":\"refused\""), "{recovery}");
    let (report, handle, _) = build(true).await;
    assert!(
        matches!(report.outcome, GuardOutcome::RolledBack { .. }),
        "{}",
        report.outcome
    );
    assert_eq!(handle.current_images(), ["app:v2.3.1"]);
}
