//! The fakes keep the semantics users rely on: Kubernetes revision numbering, rolling-update
//! counts, conditional writes, scripted answers, injected faults on tokio's clock.

use std::time::Duration;

use deployguard_core::{
    DeploymentBackend, DeploymentBackendExt, Error, ErrorKind, HealthProbe, RevisionId,
    RollbackOptions, RollbackOutcome, TrafficRouter, TrafficRouterExt, TrafficSplit, Verification,
};
use deployguard_testkit::{Behaviour, FakeDeployment, FakeRouter, Op, ScriptedProbe};

fn seed_like() -> (FakeDeployment, deployguard_testkit::FakeDeploymentHandle) {
    FakeDeployment::builder("app-deployment")
        .replicas(6)
        .revision(["app:v2.3.0"], Behaviour::healthy())
        .revision(["app:v2.3.1"], Behaviour::healthy())
        .revision(["app:v2.4.0"], Behaviour::failing_readiness())
        .build()
}

#[tokio::test(start_paused = true)]
async fn a_stalled_rolling_update_keeps_old_pods_serving() {
    let (backend, _) = seed_like();
    let s = backend.observe().await.unwrap();
    // 6 replicas, 25% surge (2) and 25% unavailable (1): 3 new pods never ready, 5 old serving.
    assert_eq!(
        (s.desired, s.total, s.updated, s.ready, s.available),
        (6, 8, 3, 5, 5)
    );
    assert_eq!(s.current_revision, Some(RevisionId(3)));
    assert_eq!(s.pods_of(RevisionId(2)).filter(|p| p.ready).count(), 5);
    assert!(!s.is_complete());
    assert!(!s.progress_deadline_exceeded);

    tokio::time::advance(Duration::from_secs(601)).await;
    let s = backend.observe().await.unwrap();
    assert!(s.progress_deadline_exceeded);
    assert_eq!(s.conditions[0].reason, "ProgressDeadlineExceeded");
}

#[tokio::test(start_paused = true)]
async fn rollback_renumbers_like_the_deployment_controller() {
    let (backend, handle) = seed_like();
    let outcome = backend
        .rollback_to(RevisionId(2), RollbackOptions::default())
        .await
        .unwrap();
    assert_eq!(
        outcome,
        RollbackOutcome::RolledBack {
            from: Some(RevisionId(3)),
            to: RevisionId(2)
        }
    );
    let history = backend.history().await.unwrap();
    let ids: Vec<u64> = history.iter().map(|r| r.id.0).collect();
    assert_eq!(ids, [1, 3, 4]);
    assert_eq!(history[2].previous_ids, [RevisionId(2)]);
    assert_eq!(handle.current_images(), ["app:v2.3.1"]);

    // Asking again by the old number is a no-op, not NotFound: rollbacks are idempotent.
    let again = backend
        .rollback_to(RevisionId(2), RollbackOptions::default())
        .await
        .unwrap();
    assert_eq!(
        again,
        RollbackOutcome::AlreadyCurrent {
            revision: RevisionId(2)
        }
    );
    assert_eq!(handle.writes().len(), 1);

    // A new rollout of the bad image brings revision 3 back as 5.
    assert_eq!(
        handle.deploy(["app:v2.4.0"], Behaviour::failing_readiness()),
        RevisionId(5)
    );
    let ids: Vec<u64> = backend
        .history()
        .await
        .unwrap()
        .iter()
        .map(|r| r.id.0)
        .collect();
    assert_eq!(ids, [1, 4, 5]);
}

#[tokio::test(start_paused = true)]
async fn a_healthy_revision_becomes_ready_after_its_startup_time() {
    let (backend, handle) = FakeDeployment::builder("web")
        .replicas(4)
        .revision(["web:1"], Behaviour::healthy())
        .build();
    handle.deploy(["web:2"], Behaviour::healthy_after(Duration::from_secs(30)));
    let start = tokio::time::Instant::now();
    assert!(!backend.observe().await.unwrap().is_complete());
    let snapshot = backend
        .wait_until_complete(Duration::from_secs(60), Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!((snapshot.updated, snapshot.ready), (4, 4));
    // Polled every 5 s: complete at the first poll at or after the 30 s startup.
    assert_eq!(start.elapsed(), Duration::from_secs(30));
}

#[tokio::test(start_paused = true)]
async fn waiting_for_a_broken_rollout_times_out_on_the_paused_clock() {
    let (backend, _) = seed_like();
    let start = tokio::time::Instant::now();
    let err = backend
        .wait_until_complete(Duration::from_secs(30), Duration::from_secs(10))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout);
    assert!(
        err.to_string().contains("3/6 updated, 5 available"),
        "{err}"
    );
    assert!(start.elapsed() <= Duration::from_secs(30));
}

#[tokio::test(start_paused = true)]
async fn a_paused_deployment_is_refused_unless_asked_to_resume() {
    let (backend, handle) = seed_like();
    backend.set_paused(true).await.unwrap();
    let err = backend
        .rollback_to(RevisionId(2), RollbackOptions::default())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Refused);
    assert_eq!(handle.current_images(), ["app:v2.4.0"]);
    let options = RollbackOptions::default().with_resume_if_paused(true);
    let outcome = backend.rollback_to(RevisionId(2), options).await.unwrap();
    assert!(matches!(outcome, RollbackOutcome::RolledBack { .. }));
    assert!(!handle.is_paused());
}

#[tokio::test(start_paused = true)]
async fn injected_faults_and_latency_fire_in_order_and_write_nothing() {
    let (backend, handle) = seed_like();
    handle.set_latency(Op::History, Duration::from_secs(2));
    handle.fail_next(
        Op::RollbackTo,
        Error::new(ErrorKind::Unavailable, "503 from the API"),
    );
    handle.expect_call(Op::Observe);

    let start = tokio::time::Instant::now();
    backend.history().await.unwrap();
    assert_eq!(start.elapsed(), Duration::from_secs(2));

    let err = backend
        .rollback_to(RevisionId(2), RollbackOptions::default())
        .await
        .unwrap_err();
    assert!(err.is_retryable());
    assert!(handle.writes().is_empty());
    let outcome = backend
        .rollback_to(RevisionId(2), RollbackOptions::default())
        .await
        .unwrap();
    assert!(matches!(outcome, RollbackOutcome::RolledBack { .. }));

    // Observe was expected and has not come yet: the handle says so.
    let unmet = std::panic::catch_unwind(|| handle.assert_finished());
    assert!(unmet.is_err());
    backend.observe().await.unwrap();
    handle.assert_finished();
    assert_eq!(handle.count(Op::RollbackTo), 2);
}

#[tokio::test]
async fn router_writes_are_conditional_on_the_version_read() {
    let (router, handle) = FakeRouter::weighted("vs/web", ["stable", "canary"]);
    let canary20 = TrafficSplit::two_way("stable", "canary", 20).unwrap();
    let read = router.current().await.unwrap();
    let version = router.apply(&canary20, &read.version).await.unwrap();

    handle.external_write(TrafficSplit::two_way("stable", "canary", 50).unwrap());
    let err = router
        .apply(
            &TrafficSplit::two_way("stable", "canary", 40).unwrap(),
            &version,
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict);
    assert_eq!(
        handle.split().weight("canary"),
        Some(50),
        "the other writer's change survives"
    );

    // With a fresh read the write goes through.
    router.route_all_to("stable").await.unwrap();
    assert_eq!(handle.applied().len(), 2);
    assert_eq!(handle.writes().len(), 2);
}

#[tokio::test]
async fn router_verification_sees_the_data_plane() {
    let (router, handle) = FakeRouter::all_or_nothing("svc/myapp", ["blue", "green"]);
    let green = TrafficSplit::all_to("green", &["blue"]).unwrap();
    handle.set_data_plane(Some(TrafficSplit::all_to("blue", &["green"]).unwrap()));
    let err = router.apply_verified(&green).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict);
    handle.set_data_plane(None);
    handle.set_unverifiable(Some("no endpoints reported yet"));
    assert!(matches!(
        router.verify(&green).await.unwrap(),
        Verification::Unknown(_)
    ));

    // An all-or-nothing router refuses a weighted split before writing anything.
    let before = handle.writes().len();
    let err = router
        .switch(&TrafficSplit::two_way("blue", "green", 30).unwrap())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unsupported);
    assert_eq!(handle.writes().len(), before);
}

#[tokio::test]
async fn a_probe_answers_its_script_then_repeats_the_last_step() {
    let (probe, handle) = ScriptedProbe::new("error-rate")
        .value("error_rate", 0.0)
        .error(ErrorKind::Unavailable)
        .value("error_rate", 0.15)
        .build();
    assert_eq!(
        probe
            .sample()
            .await
            .unwrap()
            .get("error_rate")
            .unwrap()
            .value,
        Some(0.0)
    );
    assert_eq!(
        probe.sample().await.unwrap_err().kind(),
        ErrorKind::Unavailable
    );
    for _ in 0..3 {
        assert_eq!(
            probe
                .sample()
                .await
                .unwrap()
                .get("error_rate")
                .unwrap()
                .value,
            Some(0.15)
        );
    }
    handle.assert_script_consumed();
    handle.push(deployguard_testkit::ProbeStep::Error(ErrorKind::Timeout));
    assert!(std::panic::catch_unwind(|| handle.assert_script_consumed()).is_err());
}
