//! The judgement benchmark: a grid of rollouts on the simulated cluster, each judged by
//! deployguard's judge and by the peers' judges re-implemented from their documented defaults,
//! on the same traffic and seeds. Per judge and family: false rollbacks, misses, median time to
//! detect after the first bad request, and failed requests. Run by `scripts/bench judgement`.
//!
//! The peers' judges (shared/reference/sequential-judgement.md lists their defaults):
//! - Argo Rollouts: a threshold per measurement over the last minute, every minute,
//!   `failureLimit` 0, `consecutiveErrorLimit` 4;
//! - Flagger: a threshold per one-minute interval, failed after 5 failed checks, no data counts
//!   as failed;
//! - Kayenta: Mann-Whitney U (latency) and Fisher's exact test (errors) per fixed one-minute
//!   window, candidate against the baseline, 95% confidence.
//!
//! Every judge has the replay's ranges: errors at most 1%, p99 latency at most 300 ms.

use std::time::Duration;

use clap::Parser;
use deployguard_core::Result;
use deployguard_core::analysis::{AnalysisCheck, Judge, NoDataPolicy, Threshold};
use deployguard_examples::replay::{
    Action, Judged, Judging, Run, replay_judged, replay_variation_judged,
};
use deployguard_testkit::cluster::scenarios::Variation;
use deployguard_testkit::cluster::{FakeCluster, SimulatedTraffic, TrafficProbe};
use serde::Serialize;

#[derive(Parser)]
#[command(about = "Judges a grid of simulated rollouts with deployguard's judge and the peers'")]
struct Args {
    /// Traffic seeds per family.
    #[arg(long, default_value_t = 20)]
    seeds: u64,
    /// Print one JSON row per judge and family instead of a table.
    #[arg(long)]
    json: bool,
    /// Only the families whose name contains this (`--family "1 rps"`).
    #[arg(long)]
    family: Option<String>,
}

const MINUTE: Duration = Duration::from_secs(60);

fn probe(cluster: &FakeCluster, window: Duration) -> TrafficProbe {
    cluster.traffic_probe("default", "myapp-service", window)
}

fn pair(
    probe: &TrafficProbe,
    judge: Judge,
    interval: Duration,
    shape: impl Fn(
        deployguard_core::analysis::AnalysisCheckBuilder,
    ) -> deployguard_core::analysis::AnalysisCheckBuilder,
) -> Result<Vec<AnalysisCheck>> {
    let errors = AnalysisCheck::builder("error-rate", probe, "error_rate")
        .judge(judge)
        .success(Threshold::at_most(0.01))
        .interval(interval)
        .initial_delay(interval);
    let latency = AnalysisCheck::builder("latency", probe, "latency_seconds")
        .judge(judge)
        .success(Threshold::at_most(0.3))
        .interval(interval)
        .initial_delay(interval);
    Ok(vec![shape(errors).build()?, shape(latency).build()?])
}

/// How long every judge watches the finished rollout before it is promoted: long enough for
/// the latest onset of the grid (10 min after ready) to be seen.
const WATCH: Duration = Duration::from_secs(15 * 60);

fn judged(probe: TrafficProbe, checks: Vec<AnalysisCheck>) -> Result<Judged> {
    Ok(Judged {
        probe,
        checks,
        bake: Some(WATCH),
    })
}

fn argo(cluster: &FakeCluster) -> Result<Judged> {
    let probe = probe(cluster, MINUTE);
    let checks = pair(&probe, Judge::Threshold, MINUTE, |c| {
        c.failure_limit(0).consecutive_error_limit(4)
    })?;
    judged(probe, checks)
}

fn flagger(cluster: &FakeCluster) -> Result<Judged> {
    let probe = probe(cluster, MINUTE);
    let checks = pair(&probe, Judge::Threshold, MINUTE, |c| {
        c.failure_limit(4).no_data(NoDataPolicy::Fail)
    })?;
    judged(probe, checks)
}

fn kayenta(cluster: &FakeCluster) -> Result<Judged> {
    let probe = probe(cluster, MINUTE);
    let judge = Judge::Statistical {
        confidence: 0.95,
        margin: 0.0,
        min_observations: 50,
    };
    let checks = pair(&probe, judge, MINUTE, |c| c)?;
    judged(probe, checks)
}

/// deployguard's sequential judge over 10 s looks, pooled.
fn deployguard(cluster: &FakeCluster) -> Result<Judged> {
    let probe = probe(cluster, Duration::from_secs(10));
    let checks = pair(&probe, Judge::sequential(), Duration::from_secs(10), |c| c)?;
    judged(probe, checks)
}

const JUDGES: [(&str, Option<Judging>); 4] = [
    ("deployguard", Some(deployguard)),
    ("argo-rollouts", Some(argo)),
    ("flagger", Some(flagger)),
    ("kayenta", Some(kayenta)),
];

/// One family of rollouts: a name, whether the new version is at fault, and what to replay.
struct Family {
    name: String,
    at_fault: bool,
    what: What,
}

enum What {
    Variation(Variation),
    Scenario(&'static str),
}

fn families() -> Vec<Family> {
    let base = Variation::healthy();
    let secs = Duration::from_secs;
    let mut out = Vec::new();
    let mut add = |name: String, v: Variation| {
        out.push(Family {
            name,
            at_fault: v.at_fault(),
            what: What::Variation(v),
        });
    };
    for factor in [1.0, 2.0, 5.0, 10.0, 50.0] {
        let v = Variation {
            error_factor: factor,
            ..base
        };
        add(format!("errors x{factor}"), v);
    }
    for factor in [2.0, 4.0] {
        let v = Variation {
            latency_factor: factor,
            ..base
        };
        add(format!("latency x{factor}"), v);
    }
    // One request a second: the healthy twin, one at the range's bound (1% errors: not at
    // fault, yet a judge that counts minutes with an error fails it), and two regressions.
    for factor in [5.0, 50.0] {
        add(
            format!("1 rps errors x{factor}"),
            Variation {
                requests_per_second: 1.0,
                error_factor: factor,
                ..base
            },
        );
    }
    for rps in [1.0, 200.0] {
        add(
            format!("{rps} rps healthy"),
            Variation {
                requests_per_second: rps,
                ..base
            },
        );
        add(
            format!("{rps} rps errors x10"),
            Variation {
                requests_per_second: rps,
                error_factor: 10.0,
                ..base
            },
        );
    }
    for start in [2, 300] {
        add(
            format!("start {start} s healthy"),
            Variation {
                start: secs(start),
                ..base
            },
        );
    }
    for minutes in [0, 3, 10] {
        add(
            format!("onset {minutes} min, errors x75"),
            Variation {
                error_factor: 75.0,
                onset: secs(minutes * 60),
                ..base
            },
        );
    }
    out.push(Family {
        name: "overloaded service".into(),
        at_fault: false,
        what: What::Scenario("overloaded-rollout"),
    });
    out
}

#[derive(Serialize)]
struct Row {
    judge: &'static str,
    family: String,
    at_fault: bool,
    runs: u64,
    false_rollbacks: u64,
    misses: u64,
    median_detect_s: Option<u64>,
    failed_requests: u64,
}

/// When the first bad request could have been served: the new version's first request after
/// its onset (for a healthy family: its first request).
fn first_bad(run: &Run, onset: Duration) -> Option<Duration> {
    let first = run.seconds.iter().position(|s| {
        s.versions
            .iter()
            .any(|v| v.image == "app:v2.4.0" && v.requests > 0)
    })?;
    Some(Duration::from_secs(first as u64) + onset)
}

#[tokio::main(flavor = "current_thread", start_paused = true)]
async fn main() -> Result<()> {
    let args = Args::parse();
    let horizon = Duration::from_secs(30 * 60);
    let mut rows = Vec::new();
    let chosen = families().into_iter().filter(|f| {
        args.family
            .as_ref()
            .is_none_or(|part| f.name.contains(part.as_str()))
    });
    for family in chosen {
        for (judge, judging) in JUDGES {
            let (mut false_rollbacks, mut misses, mut failed) = (0, 0, 0);
            let mut detect: Vec<u64> = Vec::new();
            for seed in 1..=args.seeds {
                let (run, onset) = match &family.what {
                    What::Variation(v) => (
                        replay_variation_judged(v, horizon, seed, judging).await?,
                        v.onset,
                    ),
                    What::Scenario(name) => (
                        replay_judged(name, horizon, seed, judging).await?,
                        Duration::ZERO,
                    ),
                };
                let rolled_back = run.action == Action::RolledBack;
                failed += run.failed_by_new_version;
                if family.at_fault {
                    if rolled_back {
                        if let (Some(at), Some(bad)) = (run.detected, first_bad(&run, onset)) {
                            detect.push(at.saturating_sub(bad).as_secs());
                        }
                    } else {
                        misses += 1;
                    }
                } else if rolled_back {
                    false_rollbacks += 1;
                }
            }
            detect.sort_unstable();
            rows.push(Row {
                judge,
                family: family.name.clone(),
                at_fault: family.at_fault,
                runs: args.seeds,
                false_rollbacks,
                misses,
                median_detect_s: detect.get(detect.len() / 2).copied(),
                failed_requests: failed,
            });
        }
    }
    if args.json {
        for row in &rows {
            println!("{}", serde_json::to_string(row).unwrap_or_default());
        }
        return Ok(());
    }
    println!(
        "deployguard judgement benchmark: {} seeds per family and judge, {} min of simulated time each\n",
        args.seeds,
        horizon.as_secs() / 60
    );
    println!(
        "| family | truth | judge | false rollbacks | misses | median detect (s) | failed requests |"
    );
    println!("|---|---|---|---|---|---|---|");
    for row in &rows {
        println!(
            "| {} | {} | {} | {} | {} | {} | {} |",
            row.family,
            if row.at_fault { "at fault" } else { "healthy" },
            row.judge,
            row.false_rollbacks,
            row.misses,
            row.median_detect_s
                .map_or("-".to_owned(), |s| s.to_string()),
            row.failed_requests
        );
    }
    Ok(())
}
