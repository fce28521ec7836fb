//! The incident replay, as the README's main job shows it.

use std::time::Duration;

use deployguard_examples::picture::{draw_png, draw_svg};
use deployguard_examples::replay::{render, replay};

const HORIZON: Duration = Duration::from_secs(15 * 60);

#[tokio::test(start_paused = true)]
async fn the_guard_detects_and_recovers_the_seed_incident_that_kubernetes_leaves_broken() {
    let unguarded = replay("seed-rolling-failure", false, HORIZON)
        .await
        .unwrap();
    let guarded = replay("seed-rolling-failure", true, HORIZON).await.unwrap();

    // Kubernetes alone: a condition after the 600 s progress deadline, and no recovery.
    assert_eq!(
        unguarded.detected.as_ref().map(|(at, _)| at.as_secs()),
        Some(600)
    );
    assert_eq!(unguarded.recovered, None);
    // deployguard: one 10 s analysis interval to detect, a rollback to recover.
    let (detected, _) = guarded.detected.clone().unwrap();
    assert!(detected <= Duration::from_secs(20), "{detected:?}");
    let recovered = guarded.recovered.unwrap();
    assert!(recovered <= Duration::from_secs(60), "{recovered:?}");
    assert_eq!(guarded.outcome, "rolled back to the last good revision");

    // The seed's numbers: 15% of requests fail while the rollout is stalled.
    assert_eq!(unguarded.requests, guarded.requests);
    let unguarded_rate = unguarded.failed / unguarded.requests;
    assert!((unguarded_rate - 0.153).abs() < 0.005, "{unguarded_rate}");
    assert!(
        guarded.failed * 20.0 < unguarded.failed,
        "guarded {} vs unguarded {}",
        guarded.failed,
        unguarded.failed
    );

    let text = render("seed-rolling-failure", HORIZON, &unguarded, &guarded);
    let recover_row: Vec<&str> = text
        .lines()
        .find(|l| l.starts_with("time to recover"))
        .unwrap()
        .split_whitespace()
        .collect();
    assert_eq!(recover_row[3], "never", "{text}");
    assert!(
        text.contains("step 3 started: roll back to revision 1"),
        "{text}"
    );
    // What a person reads is worded: no Rust Debug text.
    for debug in [
        "Some(",
        "None",
        "Failed(",
        "Abort(",
        "InProgress {",
        "Successful(",
    ] {
        assert!(!text.contains(debug), "{debug} in:\n{text}");
    }

    // The picture: both runs on one time axis, each panel labelled, every version drawn, and
    // the guard's decisions and the Deployment's conditions marked.
    let dir = tempfile::tempdir().unwrap();
    let svg = dir.path().join("replay.svg");
    draw_svg(&svg, "seed-rolling-failure", &unguarded, &guarded).unwrap();
    let svg = std::fs::read_to_string(svg).unwrap();
    for text in [
        "deployguard incident replay: seed-rolling-failure",
        "Kubernetes alone: error rate per version",
        "guarded by deployguard: error rate per version",
        "p99 latency per version",
        "ready pods per version",
        "traffic share per version",
        "seconds since the new version rolled out",
        "error rate (%)",
        "p99 latency (s)",
        "app:v2.3.1",
        "app:v2.4.0",
        "guard: abort",
        "guard: roll back",
        "Kubernetes: ProgressDeadlineExceeded",
    ] {
        assert!(svg.contains(text), "the picture lacks {text:?}");
    }
    // One line per version per panel per run, plus the legend's samples.
    assert!(svg.matches("<polyline").count() >= 16, "series missing");
    let png = dir.path().join("replay.png");
    draw_png(&png, "seed-rolling-failure", &unguarded, &guarded).unwrap();
    assert_eq!(&std::fs::read(png).unwrap()[1..4], b"PNG");
}

#[tokio::test(start_paused = true)]
async fn a_failed_migration_pauses_instead_of_rolling_back() {
    let guarded = replay("migration-job-failed", true, Duration::from_secs(5 * 60))
        .await
        .unwrap();
    assert!(
        guarded
            .outcome
            .starts_with("paused for a human: migration gate:"),
        "{}",
        guarded.outcome
    );
    assert_eq!(guarded.recovered, None);
}

#[tokio::test(start_paused = true)]
async fn unknown_or_unsupported_scenarios_are_refused() {
    let err = replay("nope", true, HORIZON).await.unwrap_err();
    let message = err.to_string();
    assert!(
        message.starts_with(
            "invalid input: --scenario: unknown scenario \"nope\"; the scenarios are: "
        ),
        "{message}"
    );
    assert!(message.contains("seed-rolling-failure"), "{message}");
    let err = replay("seed-blue-green", true, HORIZON).await.unwrap_err();
    assert_eq!(err.kind(), deployguard_core::ErrorKind::Unsupported);
}
