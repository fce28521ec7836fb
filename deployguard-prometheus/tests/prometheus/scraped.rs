//! End to end: the simulated cluster serves its traffic metrics over HTTP, a real Prometheus
//! scrapes them every second, and a guard reading PromQL rolls back a bad version and promotes
//! its healthy twin; a Prometheus that stops answering mid-analysis pauses the guard and is
//! never blamed on the version.

use crate::support;

use std::sync::Arc;
use std::time::Duration;

use deployguard_core::analysis::{AnalysisCheck, Threshold};
use deployguard_core::engine::{EventKind, Guard, GuardOutcome, MemoryJournal, Strategy};
use deployguard_k8s::KubeDeployment;
use deployguard_prometheus::{PrometheusConfig, PrometheusProbe, presets};
use deployguard_testkit::cluster::{FakeCluster, SimulatedTraffic, scenarios};
use support::{Prometheus, get, until};

/// A cluster ten times as fast as the wall clock, served, and a Prometheus scraping it.
async fn scraped() -> (
    FakeCluster,
    deployguard_testkit::cluster::ServedCluster,
    Prometheus,
) {
    let cluster = FakeCluster::builder()
        .controllers(true)
        .time_scale(10.0)
        .build();
    // The traffic's exposition is served at /metrics/traffic from its first use on: before any
    // scenario, so that Prometheus's target is up from the start.
    assert!(!cluster.traffic_metrics().contains("http_requests_total{"));
    let served = cluster.serve().await.unwrap();
    let config = format!(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n- job_name: fake-cluster\n  metrics_path: /metrics/traffic\n  static_configs:\n  - targets: ['{}']\n",
        served.addr()
    );
    let prometheus = Prometheus::start(&config, None).await;
    (cluster, served, prometheus)
}

fn guard(cluster: &FakeCluster, prometheus: &Prometheus) -> Guard {
    guard_with(cluster, prometheus, None, MemoryJournal::new())
}

/// The guard, its check taking `count` measurements (default: until the rollout ends).
fn guard_with(
    cluster: &FakeCluster,
    prometheus: &Prometheus,
    count: Option<u32>,
    journal: MemoryJournal,
) -> Guard {
    let config = PrometheusConfig::new(&prometheus.url)
        .unwrap()
        .timeout(Duration::from_secs(2));
    let probe =
        PrometheusProbe::new("prometheus", config)
            .unwrap()
            .with(presets::error_ratio_by_version(
                "default",
                "myapp-service",
                Duration::from_secs(10),
            ));
    let mut check = AnalysisCheck::builder("error-rate", &probe, "error_rate")
        .success(Threshold::at_most(0.05))
        .interval(Duration::from_secs(2))
        .initial_delay(Duration::from_secs(4));
    if let Some(count) = count {
        check = check.count(count);
    }
    let check = check.build().unwrap();
    Guard::builder(
        Strategy::Rolling,
        Arc::new(KubeDeployment::new(
            cluster.client(),
            "default",
            "app-deployment",
        )),
    )
    .probe(Arc::new(probe))
    .check(check)
    .journal(Arc::new(journal))
    .poll_interval(Duration::from_millis(500))
    // The cluster runs ten times as fast as this real-time guard: 10 s is a simulated
    // 100 s bake.
    .bake(Duration::from_secs(10))
    .recovery_deadline(Duration::from_secs(60))
    .build()
    .unwrap()
}

async fn scraping(prometheus: &Prometheus) {
    until(
        "prometheus to scrape the cluster",
        Duration::from_secs(30),
        || async {
            get(prometheus.port, "/api/v1/query?query=up")
                .await
                .is_some_and(|(_, body)| body.contains("\"1\"]"))
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guard_reading_prometheus_rolls_back_a_bad_version_and_promotes_its_twin() {
    for (scenario, rolls_back) in [("bad-version", true), ("healthy-rollout", false)] {
        let (cluster, _served, prometheus) = scraped().await;
        scraping(&prometheus).await;
        scenarios::load(&cluster, scenario).await.unwrap();
        let report = guard(&cluster, &prometheus).run().await;
        match (&report.outcome, rolls_back) {
            (GuardOutcome::RolledBack { reason, .. }, true) => {
                assert!(
                    reason.contains("error_rate") && reason.contains("on app:v2.4.0"),
                    "{reason}"
                );
            }
            (GuardOutcome::Promoted { .. }, false) => {}
            (other, _) => panic!("{scenario}: {other}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prometheus_that_stops_answering_pauses_the_guard_and_blames_nobody() {
    let (cluster, _served, mut prometheus) = scraped().await;
    scraping(&prometheus).await;
    scenarios::load(&cluster, "bad-version").await.unwrap();
    // Prometheus is gone before the first measurement: every read is an error.
    prometheus.stop().await;
    let report = guard(&cluster, &prometheus).run().await;
    let GuardOutcome::Paused { reason } = &report.outcome else {
        panic!("{}", report.outcome);
    };
    assert!(
        reason.contains("consecutive errors")
            && reason.contains("say nothing about the new version"),
        "{reason}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prometheus_stopped_mid_analysis_pauses_the_guard() {
    let (cluster, _served, prometheus) = scraped().await;
    scraping(&prometheus).await;
    scenarios::load(&cluster, "healthy-rollout").await.unwrap();
    let journal = MemoryJournal::new();
    // Ten measurements to pass: Prometheus goes away after the first.
    let guard = guard_with(&cluster, &prometheus, Some(10), journal.clone());
    let run = tokio::spawn(async move { guard.run().await });
    let measured = || {
        journal
            .events()
            .iter()
            .any(|e| matches!(e.kind, EventKind::Measured { .. }))
    };
    until("the first measurement", Duration::from_secs(30), || async {
        measured()
    })
    .await;
    let mut prometheus = prometheus;
    prometheus.stop().await;
    let report = run.await.unwrap();
    let GuardOutcome::Paused { reason } = &report.outcome else {
        panic!("{}", report.outcome);
    };
    assert!(reason.contains("consecutive errors"), "{reason}");
}
