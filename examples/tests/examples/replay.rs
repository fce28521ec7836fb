//! The incident replay, as the README's main job shows it.

use std::time::Duration;

use deployguard_examples::picture::{draw_png, draw_svg};
use deployguard_examples::replay::{Action, render, replay};

const HORIZON: Duration = Duration::from_secs(15 * 60);

#[tokio::test(start_paused = true)]
async fn the_guard_blames_the_bad_version_that_kubernetes_rolls_out_in_full() {
    let unguarded = replay("bad-version", false, HORIZON, 1).await.unwrap();
    let guarded = replay("bad-version", true, HORIZON, 1).await.unwrap();

    // Kubernetes alone: the version passes readiness, so the rollout completes, and serves the
    // runbook's numbers from then on: 15% of requests fail, every one on app:v2.4.0.
    assert_eq!(unguarded.action, Action::Rollout);
    let unguarded_rate = unguarded.failed as f64 / unguarded.requests as f64;
    assert!((unguarded_rate - 0.15).abs() < 0.01, "{unguarded_rate}");
    assert!(unguarded.failed_by_new_version * 100 >= unguarded.failed * 99);

    // deployguard: the first measurement blames the candidate, by its own errors against the
    // baseline's, and the rollback follows.
    assert_eq!(guarded.action, Action::RolledBack);
    assert_eq!(guarded.first_failing_sample, Some(Duration::from_secs(10)));
    assert_eq!(guarded.detected, Some(Duration::from_secs(10)));
    let why = guarded.detected_by.clone().unwrap();
    assert!(
        why.starts_with("check error-rate: since the new version first served: error_rate 1")
            && why.contains("% on app:v2.4.0 vs "),
        "{why}"
    );
    // The sequential judge's evidence: the e-value past 1/α, and what it stands on.
    assert!(
        why.contains("% on app:v2.3.1: worse than the baseline beyond chance (e = ")
            && why.contains("≥ 200 on errors, after "),
        "{why}"
    );
    assert!(guarded.recovered.unwrap() <= Duration::from_secs(30));
    // The same requests arrived in both runs (arrivals have their own seeded generator).
    assert_eq!(unguarded.requests, guarded.requests);
    assert!(
        guarded.failed_by_new_version * 20 < unguarded.failed_by_new_version,
        "guarded {} vs unguarded {}",
        guarded.failed_by_new_version,
        unguarded.failed_by_new_version
    );

    let text = render("bad-version", HORIZON, &unguarded, &guarded);
    assert!(
        text.contains("step 3 started: roll back to revision 1"),
        "{text}"
    );
    // Versions are named by image, with the hash beside it.
    assert!(
        text.contains("rolled back app:v2.4.0 (86dc4c94cb) to app:v2.3.1 (5b98b594d6)"),
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
        "TooFew",
    ] {
        assert!(!text.contains(debug), "{debug} in:\n{text}");
    }

    // The picture: both runs on one time axis, each panel labelled, every version drawn, and
    // the guard's decisions and the Deployment's conditions marked.
    let dir = tempfile::tempdir().unwrap();
    let svg = dir.path().join("replay.svg");
    draw_svg(&svg, "bad-version", &unguarded, &guarded).unwrap();
    let svg = std::fs::read_to_string(svg).unwrap();
    for text in [
        "deployguard incident replay: bad-version",
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
        "Kubernetes: rollout complete",
    ] {
        assert!(svg.contains(text), "the picture lacks {text:?}");
    }
    // One line per version per panel per run, plus the legend's samples.
    assert!(svg.matches("<polyline").count() >= 16, "series missing");
    let png = dir.path().join("replay.png");
    draw_png(&png, "bad-version", &unguarded, &guarded).unwrap();
    assert_eq!(&std::fs::read(png).unwrap()[1..4], b"PNG");
}

#[tokio::test(start_paused = true)]
async fn a_failed_migration_pauses_instead_of_rolling_back() {
    let guarded = replay("migration-job-failed", true, Duration::from_secs(5 * 60), 1)
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
    let err = replay("nope", true, HORIZON, 1).await.unwrap_err();
    let message = err.to_string();
    assert!(
        message.starts_with(
            "invalid input: --scenario: unknown scenario \"nope\"; the scenarios are: "
        ),
        "{message}"
    );
    assert!(message.contains("seed-rolling-failure"), "{message}");
    let err = replay("static-web", true, HORIZON, 1).await.unwrap_err();
    assert_eq!(err.kind(), deployguard_core::ErrorKind::Unsupported);
}

/// The README's main-job section is the command's output, word for word.
#[tokio::test(start_paused = true)]
async fn the_readme_shows_the_table_the_replay_prints() {
    use deployguard_examples::replay::{render_table, rolling_scenarios, row};

    let horizon = Duration::from_secs(15 * 60);
    let mut rows = Vec::new();
    for scenario in rolling_scenarios() {
        rows.push(row(scenario.name, horizon, 1).await.unwrap());
    }
    let table = render_table(&rows, horizon);
    assert!(rows.iter().all(|r| r.guard_is_right()), "{table}");
    let readme = include_str!("../../../README.md");
    let start = "<!-- replay-table:start -->\n```text\n$ cargo run --example incident-replay\n";
    let from = readme.find(start).expect("the README marks the table") + start.len();
    let to = from
        + readme[from..]
            .find("```\n<!-- replay-table:end -->")
            .unwrap();
    assert_eq!(
        &readme[from..to],
        table,
        "update the README's table with the output of `cargo run --example incident-replay`"
    );
}
