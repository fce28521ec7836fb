//! What one decision of the statistical judge costs at 10,000 samples per side: Fisher's exact
//! test on error counts, Mann-Whitney U on latency samples, each through
//! `AnalysisCheck::judge` as the guard calls it. Prints a table; not a timed test.
//!
//! ```text
//! cargo bench -p deployguard-core --bench judge
//! ```
//!
//! Under `cargo test` (no `--bench` argument) each decision runs once, as a smoke test, and
//! nothing is timed.

use std::hint::black_box;
use std::time::{Duration, Instant};

use deployguard_core::analysis::{AnalysisCheck, Judge, Threshold, VersionRef, Versions};
use deployguard_core::{Measurement, Sample};

/// A reproducible spread of latencies around `median` (a log-normal, from a seeded generator).
fn latencies(n: usize, median: f64, seed: u64) -> Vec<f64> {
    let mut rng = fastrand::Rng::with_seed(seed);
    (0..n)
        .map(|_| {
            let (u1, u2) = (rng.f64().max(f64::MIN_POSITIVE), rng.f64());
            let normal = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
            median * (0.5 * normal).exp()
        })
        .collect()
}

fn time(label: &str, samples: usize, mut decide: impl FnMut()) {
    // Warm up (the smoke test's one run), then run for about a second.
    decide();
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let started = Instant::now();
    let mut runs = 0u32;
    while started.elapsed() < Duration::from_secs(1) {
        decide();
        runs += 1;
    }
    let per = started.elapsed() / runs;
    println!("{label:<44} {samples:>8} {:>12.1?} {runs:>8}", per);
}

fn main() {
    let versions = Versions::new(
        Some(VersionRef::new("app:v2.4.0", vec![])),
        Some(VersionRef::new("app:v2.3.1", vec![])),
    );
    let errors = AnalysisCheck::builder("error-rate", "http", "error_rate")
        .judge(Judge::statistical())
        .success(Threshold::at_most(0.01))
        .build()
        .unwrap();
    let latency = AnalysisCheck::builder("latency", "http", "latency_seconds")
        .judge(Judge::Statistical {
            confidence: 0.99,
            margin: 0.5,
            min_observations: 50,
        })
        .build()
        .unwrap();
    println!(
        "{:<44} {:>8} {:>12} {:>8}",
        "decision", "per side", "per decision", "runs"
    );
    for n in [1_000usize, 10_000] {
        let counts = |bad: u64| {
            Sample::new(
                vec![
                    Measurement::proportion("error_rate", bad, n as u64)
                        .with_label("version", "app:v2.4.0"),
                    Measurement::proportion("error_rate", (n / 500) as u64, n as u64)
                        .with_label("version", "app:v2.3.1"),
                ],
                "",
            )
        };
        let healthy = counts((n / 500) as u64);
        let broken = counts((n * 15 / 100) as u64);
        time("Fisher's exact, healthy (0.2% vs 0.2%)", n, || {
            black_box(errors.judge(Ok(black_box(&healthy)), &versions));
        });
        time("Fisher's exact, broken (15% vs 0.2%)", n, || {
            black_box(errors.judge(Ok(black_box(&broken)), &versions));
        });
        let sample = |scale: f64| {
            Sample::new(
                vec![
                    Measurement::samples(
                        "latency_seconds",
                        Some(0.04 * scale),
                        latencies(n, 0.04 * scale, 7),
                    )
                    .with_label("version", "app:v2.4.0"),
                    Measurement::samples("latency_seconds", Some(0.04), latencies(n, 0.04, 11))
                        .with_label("version", "app:v2.3.1"),
                ],
                "",
            )
        };
        let same = sample(1.0);
        let slow = sample(4.0);
        time("Mann-Whitney U, same latency", n, || {
            black_box(latency.judge(Ok(black_box(&same)), &versions));
        });
        time("Mann-Whitney U, 4x slower", n, || {
            black_box(latency.judge(Ok(black_box(&slow)), &versions));
        });
    }
}
