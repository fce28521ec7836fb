//! Judgement over many seeds: every rolling scenario, each failing one beside its healthy twin,
//! replayed with 20 traffic seeds (more with `DEPLOYGUARD_JUDGEMENT_SEEDS`). A guard is judged
//! on false alarms as much as on detection:
//!
//! - a healthy rollout is never rolled back (nor the overloaded one: capacity, not the
//!   version, is at fault there, and the guard must say so);
//! - a healthy rollout is never paused for lack of data (a quiet service, a slow start);
//! - a version at fault is rolled back, during the rollout or its bake, within two analysis
//!   intervals of the first failing sample (pods that never serve are judged by their pods,
//!   once their start is over);
//! - the requests failed by the new version when guarded are at most 5% of those unguarded
//!   (for a version that is only slow: the requests it served at all).

use std::time::Duration;

use deployguard_examples::replay::{ANALYSIS_INTERVAL, Action, Row, row};
use deployguard_testkit::cluster::scenarios::{self, Layout, Truth};

/// Twelve simulated minutes: the slowest rollout (pods that take 90 s to start) and its
/// five-minute bake both end within it.
const HORIZON: Duration = Duration::from_secs(12 * 60);

/// How soon a version at fault that never serves (so no traffic check can blame it) is rolled
/// back from the rollout's start, by its pods: the seed's 503s after the 15 s its probes declare
/// plus the 20 s a hard failure may last, or, for the slow starter, its 90 s start first.
fn pod_deadline(scenario: &str) -> Duration {
    match scenario {
        "slow-start-never-ready" => Duration::from_secs(150),
        _ => Duration::from_secs(75),
    }
}

fn seeds() -> u64 {
    std::env::var("DEPLOYGUARD_JUDGEMENT_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20)
}

/// Replays `scenario` over every seed and checks each against its ground truth.
async fn sweep(scenario: &str) {
    let info = scenarios::catalogue()
        .into_iter()
        .find(|s| s.name == scenario)
        .unwrap();
    let truth = info.truth.unwrap();
    for seed in 1..=seeds() {
        let row = row(scenario, HORIZON, seed).await.unwrap();
        check(&row, truth, info.layout, seed);
    }
}

fn check(row: &Row, truth: Truth, layout: Layout, seed: u64) {
    let (scenario, guarded, unguarded) = (&row.scenario, &row.guarded, &row.unguarded);
    let context = format!(
        "{scenario} seed {seed}: guard {:?}: {}",
        guarded.action, guarded.outcome
    );
    assert!(row.guard_is_right(), "{context}");
    match truth {
        Truth::Healthy => {
            assert_eq!(guarded.action, Action::Rollout, "{context}");
            let alone = if layout == Layout::Rolling {
                Action::Rollout
            } else {
                Action::Idle
            };
            assert_eq!(unguarded.action, alone, "{context}");
        }
        Truth::CapacityAtFault => {
            assert_ne!(guarded.action, Action::RolledBack, "{context}");
            let why = guarded.detected_by.as_deref().unwrap_or_default();
            assert!(
                why.starts_with("not the new version:") && why.contains("shared"),
                "{context}: {why}"
            );
        }
        Truth::VersionAtFault => {
            let acted = guarded.detected.expect("the guard acted");
            if let Some(first) = guarded.first_failing_sample {
                assert!(
                    acted <= first + 2 * ANALYSIS_INTERVAL,
                    "{context}: acted at {acted:?}, first failing sample at {first:?}"
                );
            } else {
                // No traffic to judge: the pods were, once their start was over and a hard
                // failure had lasted its allowance.
                let deadline = pod_deadline(scenario);
                assert!(acted <= deadline, "{context}: {acted:?}");
            }
            if layout != Layout::Rolling {
                // Alone, nothing sends the candidate traffic; guarded, it got its canary share
                // (or, blue-green, all of it) until the abort: under 1% of the run's requests.
                assert!(
                    guarded.failed_by_new_version * 100 <= guarded.requests,
                    "{context}: the candidate failed {} of {} requests",
                    guarded.failed_by_new_version,
                    guarded.requests
                );
                return;
            }
            // The harm: requests the bad version failed or, for a version that is only slow,
            // requests it served at all.
            let (harm_guarded, harm_unguarded) =
                if unguarded.failed_by_new_version * 100 >= unguarded.requests {
                    (
                        guarded.failed_by_new_version,
                        unguarded.failed_by_new_version,
                    )
                } else {
                    (
                        guarded.served_by_new_version,
                        unguarded.served_by_new_version,
                    )
                };
            // On a quiet service the evidence is slow to come (two requests a second: the first
            // minute holds a handful of errors), so a tenth of the harm is the bar there.
            let share = if scenario.starts_with("low-traffic") {
                10
            } else {
                20
            };
            assert!(
                harm_guarded * share <= harm_unguarded,
                "{context}: {harm_guarded} requests harmed guarded vs {harm_unguarded} unguarded"
            );
        }
        _ => unreachable!(),
    }
}

macro_rules! sweeps {
    ($($name:ident => $scenario:literal,)*) => {
        $(
            #[tokio::test(start_paused = true)]
            async fn $name() {
                sweep($scenario).await;
            }
        )*

        /// Every rolling scenario has its sweep above.
        #[test]
        fn every_rolling_scenario_is_swept_and_every_failing_one_has_a_healthy_twin() {
            let swept = [$($scenario),*];
            for scenario in scenarios::catalogue().into_iter().filter(|s| s.truth.is_some()) {
                assert!(swept.contains(&scenario.name), "{} is not swept", scenario.name);
                if scenario.truth != Some(Truth::Healthy) {
                    let twin = scenario.twin.expect("a failing scenario names its twin");
                    let twin = scenarios::catalogue().into_iter().find(|s| s.name == twin).unwrap();
                    assert_eq!(twin.truth, Some(Truth::Healthy), "{}", scenario.name);
                }
            }
        }
    };
}

sweeps! {
    healthy_rollout => "healthy-rollout",
    no_prestop => "no-prestop",
    prestop => "prestop",
    config_present => "config-present",
    fits_on_nodes => "fits-on-nodes",
    overloaded_rollout => "overloaded-rollout",
    bad_version => "bad-version",
    slow_version => "slow-version",
    seed_rolling_failure => "seed-rolling-failure",
    image_pull_failure => "image-pull-failure",
    crash_loop => "crash-loop",
    missing_config => "missing-config",
    unschedulable => "unschedulable",
    migration_job_failed => "migration-job-failed",
    seed_istio_canary => "seed-istio-canary",
    istio_canary_healthy => "istio-canary-healthy",
    gateway_canary => "gateway-canary",
    gateway_canary_healthy => "gateway-canary-healthy",
    istio_blue_green => "istio-blue-green",
    istio_blue_green_healthy => "istio-blue-green-healthy",
    seed_blue_green => "seed-blue-green",
    seed_blue_green_healthy => "seed-blue-green-healthy",
    slow_start => "slow-start",
    slow_start_never_ready => "slow-start-never-ready",
    late_failure => "late-failure",
    low_traffic => "low-traffic",
    low_traffic_bad => "low-traffic-bad",
    moderate_regression => "moderate-regression",
}
