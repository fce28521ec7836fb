//! A guard with the canary strategy walks an Istio canary on the simulated mesh: the healthy
//! twin is promoted with all traffic on the new version, the failing one is aborted with the
//! weights back on the stable subset (verified), within two analysis intervals of the first
//! failing sample. Over several traffic seeds each.

use std::sync::Arc;
use std::time::Duration;

use deployguard_core::analysis::{AnalysisCheck, Judge, MeasurementOutcome, Threshold};
use deployguard_core::engine::{
    Canary, CanaryStep, Decision, EventKind, Guard, GuardOutcome, MemoryJournal, Strategy,
};
use deployguard_core::{TrafficRouter, TrafficSplit, Verification};
use deployguard_istio::IstioRouter;
use deployguard_k8s::KubeDeployment;
use deployguard_testkit::cluster::scenarios::{self, ISTIO_CANARY, ISTIO_ROUTE, ISTIO_STABLE};
use deployguard_testkit::cluster::{FakeCluster, SimulatedTraffic};

const INTERVAL: Duration = Duration::from_secs(10);
const SEEDS: u64 = 5;

fn router(cluster: &FakeCluster) -> IstioRouter {
    IstioRouter::builder(cluster.client(), "default", ISTIO_ROUTE)
        .route("primary")
        .subset("stable")
        .subset("canary")
        .build()
        .unwrap()
}

fn guard(cluster: &FakeCluster, journal: &MemoryJournal) -> Guard {
    let probe = cluster.traffic_probe("default", "myapp-service", INTERVAL);
    let errors = AnalysisCheck::builder("error-rate", &probe, "error_rate")
        .judge(Judge::statistical())
        .success(Threshold::at_most(0.01))
        .interval(INTERVAL)
        .initial_delay(INTERVAL)
        .build()
        .unwrap();
    let steps = vec![
        CanaryStep::SetWeight(10),
        CanaryStep::Pause(Some(Duration::from_secs(30))),
        CanaryStep::SetWeight(30),
        CanaryStep::Pause(Some(Duration::from_secs(30))),
    ];
    let client = cluster.client();
    Guard::builder(
        Strategy::Canary(Canary::new("stable", "canary", steps)),
        Arc::new(KubeDeployment::new(client.clone(), "default", ISTIO_CANARY)),
    )
    .stable(Arc::new(KubeDeployment::new(
        client,
        "default",
        ISTIO_STABLE,
    )))
    .router(Arc::new(router(cluster)))
    .probe(Arc::new(probe))
    .check(errors)
    .journal(Arc::new(journal.clone()))
    .poll_interval(Duration::from_secs(2))
    .build()
    .unwrap()
}

#[tokio::test(start_paused = true)]
async fn the_healthy_canary_is_promoted_with_all_traffic_on_the_new_version() {
    for seed in 1..=SEEDS {
        let cluster = FakeCluster::with_controllers();
        scenarios::load_seeded(&cluster, "istio-canary-healthy", seed)
            .await
            .unwrap();
        let journal = MemoryJournal::new();
        let report = guard(&cluster, &journal).run().await;
        assert!(
            matches!(report.outcome, GuardOutcome::Promoted { .. }),
            "seed {seed}: {}",
            report.outcome
        );
        // Every step was walked: 10% and 30% were both written.
        let advances: Vec<u8> = journal
            .events()
            .iter()
            .filter_map(|e| match &e.kind {
                EventKind::Decision {
                    decision: Decision::Advance,
                    ..
                } => Some(0),
                _ => None,
            })
            .collect();
        assert_eq!(advances.len(), 4, "seed {seed}: four steps advanced");
        let everything = TrafficSplit::all_to("canary", &["stable"]).unwrap();
        assert_eq!(
            router(&cluster).verify(&everything).await.unwrap(),
            Verification::Matches,
            "seed {seed}"
        );
        // The data plane agrees: the last minute was served by the new version alone.
        tokio::time::sleep(Duration::from_secs(60)).await;
        let window = cluster.traffic_window("default", "myapp-service", Duration::from_secs(60));
        assert!(
            window
                .iter()
                .flat_map(|s| &s.versions)
                .all(|v| v.image == "app:v2.4.0"),
            "seed {seed}: the old version still served after promotion"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn the_failing_canary_is_aborted_within_two_intervals_with_weights_back_on_stable() {
    for seed in 1..=SEEDS {
        let cluster = FakeCluster::with_controllers();
        scenarios::load_seeded(&cluster, "seed-istio-canary", seed)
            .await
            .unwrap();
        let journal = MemoryJournal::new();
        let report = guard(&cluster, &journal).run().await;
        assert!(
            matches!(report.outcome, GuardOutcome::RolledBack { .. }),
            "seed {seed}: {}",
            report.outcome
        );
        let events = journal.events();
        let first_failing = events
            .iter()
            .find(|e| {
                matches!(&e.kind, EventKind::Measured { judgement, .. }
                    if matches!(judgement.outcome, MeasurementOutcome::Failed(_)))
            })
            .map(|e| e.at)
            .expect("a failing sample");
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
            .map(|e| e.at)
            .expect("an abort");
        assert!(
            abort <= first_failing + 2 * INTERVAL,
            "seed {seed}: aborted at {abort:?}, first failing sample at {first_failing:?}"
        );
        let stable = TrafficSplit::all_to("stable", &["canary"]).unwrap();
        assert_eq!(
            router(&cluster).verify(&stable).await.unwrap(),
            Verification::Matches,
            "seed {seed}"
        );
    }
}
