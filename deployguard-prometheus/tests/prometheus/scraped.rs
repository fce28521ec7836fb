//! End to end: the simulated cluster serves its traffic metrics over HTTP, a real Prometheus
//! scrapes them every second, and a guard reading PromQL rolls back a bad version and promotes
//! its healthy twin; a Prometheus that stops answering mid-analysis pauses the guard and is
//! never blamed on the version.

use crate::support;

use std::sync::Arc;
use std::time::Duration;

use deployguard_core::analysis::{AnalysisCheck, Judge, Threshold};
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
    scraped_with(None).await
}

/// [`scraped`], Prometheus scraping `also` (`host:port`, path `/metrics`) too.
async fn scraped_with(
    also: Option<String>,
) -> (
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
    let mut config = format!(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n- job_name: fake-cluster\n  metrics_path: /metrics/traffic\n  static_configs:\n  - targets: ['{}']\n",
        served.addr()
    );
    if let Some(also) = also {
        config.push_str(&format!(
            "- job_name: deployguard\n  static_configs:\n  - targets: ['{also}']\n"
        ));
    }
    let prometheus = Prometheus::start(&config, None).await;
    (cluster, served, prometheus)
}

fn guard(cluster: &FakeCluster, prometheus: &Prometheus) -> Guard {
    guard_with(cluster, prometheus, None, MemoryJournal::new())
}

/// The guard, its journal also going to `sinks`.
fn guard_into(
    cluster: &FakeCluster,
    prometheus: &Prometheus,
    sinks: Vec<Arc<dyn deployguard_core::engine::JournalSink>>,
) -> Guard {
    let mut builder = builder(cluster, prometheus, None, Judge::Threshold);
    for sink in sinks {
        builder = builder.journal(sink);
    }
    builder.build().unwrap()
}

/// The guard, its check taking `count` measurements (default: until the rollout ends).
fn guard_with(
    cluster: &FakeCluster,
    prometheus: &Prometheus,
    count: Option<u32>,
    journal: MemoryJournal,
) -> Guard {
    builder(cluster, prometheus, count, Judge::Threshold)
        .journal(Arc::new(journal))
        .build()
        .unwrap()
}

fn builder(
    cluster: &FakeCluster,
    prometheus: &Prometheus,
    count: Option<u32>,
    judge: Judge,
) -> deployguard_core::engine::GuardBuilder {
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
        .judge(judge)
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
    .poll_interval(Duration::from_millis(500))
    // The cluster runs ten times as fast as this real-time guard: 10 s is a simulated
    // 100 s bake.
    .bake(Duration::from_secs(10))
    .recovery_deadline(Duration::from_secs(60))
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

/// The sequential judge (`prometheus-guard`'s) on the counts a real Prometheus gives: the bad
/// version rolled back, its healthy twin promoted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sequential_judge_on_prometheus_counts_rolls_back_the_bad_version_only() {
    for (scenario, rolls_back) in [("bad-version", true), ("healthy-rollout", false)] {
        let (cluster, _served, prometheus) = scraped().await;
        scraping(&prometheus).await;
        scenarios::load(&cluster, scenario).await.unwrap();
        let guard = builder(&cluster, &prometheus, None, Judge::sequential())
            .build()
            .unwrap();
        let report = guard.run().await;
        match (&report.outcome, rolls_back) {
            (GuardOutcome::RolledBack { reason, .. }, true) => {
                assert!(
                    reason.contains("beyond chance") && reason.contains("(e = "),
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

/// Serves `registry`'s exposition at `/metrics` on a free loopback port until the task is
/// dropped: what a program running guards serves.
async fn serve_metrics(
    registry: Arc<deployguard_prometheus::prometheus_client::registry::Registry>,
) -> (String, tokio::task::JoinHandle<()>) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let task = tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let registry = Arc::clone(&registry);
            tokio::spawn(async move {
                let mut request = vec![0u8; 4096];
                let _ = socket.read(&mut request).await;
                let mut body = String::new();
                deployguard_prometheus::prometheus_client::encoding::text::encode(
                    &mut body, &registry,
                )
                .unwrap();
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/openmetrics-text; version=1.0.0; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = socket.write_all(head.as_bytes()).await;
                let _ = socket.write_all(body.as_bytes()).await;
            });
        }
    });
    (addr, task)
}

/// A webhook on a free loopback port that answers its first POST 503 (the notifier must retry)
/// and keeps the bodies of the others.
async fn webhook() -> (
    String,
    Arc<std::sync::Mutex<Vec<String>>>,
    tokio::task::JoinHandle<()>,
) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hooks/deploys", listener.local_addr().unwrap());
    let bodies = Arc::new(std::sync::Mutex::new(Vec::new()));
    let kept = Arc::clone(&bodies);
    let task = tokio::spawn(async move {
        let mut served = 0;
        while let Ok((mut socket, _)) = listener.accept().await {
            served += 1;
            let mut request = Vec::new();
            let mut chunk = [0u8; 4096];
            // The headers, then as much body as Content-Length says.
            let body = loop {
                let n = socket.read(&mut chunk).await.unwrap_or(0);
                request.extend_from_slice(&chunk[..n]);
                let text = String::from_utf8_lossy(&request).to_string();
                if let Some((head, body)) = text.split_once("\r\n\r\n") {
                    let length = head
                        .lines()
                        .filter_map(|l| l.split_once(':'))
                        .find(|(name, _)| name.eq_ignore_ascii_case("content-length"))
                        .and_then(|(_, v)| v.trim().parse::<usize>().ok())
                        .unwrap_or(0);
                    if body.len() >= length || n == 0 {
                        break body.to_owned();
                    }
                } else if n == 0 {
                    break String::new();
                }
            };
            let status = if served == 1 {
                "503 Service Unavailable"
            } else {
                kept.lock().unwrap().push(body);
                "200 OK"
            };
            let answer =
                format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
            let _ = socket.write_all(answer.as_bytes()).await;
        }
    });
    (url, bodies, task)
}

/// The guard's own metrics, served as a program would and scraped by the real Prometheus: the
/// rollback of the bad version is counted, with the measurements and the time to detect it.
/// And its webhook gets the rollback notice in words, though it refused the first notice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_guards_metrics_are_scraped_and_count_the_rollback() {
    let mut registry = deployguard_prometheus::prometheus_client::registry::Registry::default();
    let metrics = deployguard_prometheus::GuardMetrics::register(&mut registry);
    let (addr, server) = serve_metrics(Arc::new(registry)).await;
    let (url, notices, hook) = webhook().await;
    let retry = deployguard_core::engine::RetryPolicy::new(
        Duration::from_millis(100),
        Duration::from_secs(1),
    );
    let notifier =
        deployguard_prometheus::WebhookNotifier::new(&url, retry, Duration::from_secs(20)).unwrap();
    let (cluster, _served, prometheus) = scraped_with(Some(addr)).await;
    scraping(&prometheus).await;
    scenarios::load(&cluster, "bad-version").await.unwrap();
    let report = guard_into(
        &cluster,
        &prometheus,
        vec![Arc::new(metrics), Arc::new(notifier.clone())],
    )
    .run()
    .await;
    assert!(
        matches!(report.outcome, GuardOutcome::RolledBack { .. }),
        "{}",
        report.outcome
    );
    let query = |q: &str| format!("/api/v1/query?query={q}");
    for (what, promql) in [
        (
            "the rollback counted",
            "deployguard_guard_outcomes_total%7Boutcome%3D%22rolled_back%22%7D",
        ),
        (
            "the failed measurement counted",
            "deployguard_measurements_total%7Bcheck%3D%22error-rate%22%2Coutcome%3D%22failed%22%7D",
        ),
        (
            "the time to detect observed",
            "deployguard_time_to_detect_seconds_count",
        ),
    ] {
        until(what, Duration::from_secs(30), || async {
            get(prometheus.port, &query(promql))
                .await
                .is_some_and(|(_, body)| body.contains("\"1\"]"))
        })
        .await;
    }
    until(
        "the webhook to get the rollback notice",
        Duration::from_secs(20),
        || async {
            notices.lock().unwrap().iter().any(|body| {
                let notice: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
                notice["text"].as_str().is_some_and(|text| {
                    text.starts_with(
                        "deployguard: deployment default/app-deployment: rolled back app:v2.4.0",
                    )
                })
            })
        },
    )
    .await;
    assert_eq!(notifier.dropped(), 0);
    server.abort();
    hook.abort();
}
