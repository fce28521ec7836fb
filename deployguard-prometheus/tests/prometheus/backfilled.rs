//! The probe against a real Prometheus over backfilled series, at fixed evaluation times:
//! per-version ratios with their counts, latency quantiles from histograms, no data, NaN, a
//! counter reset, a bad query, a range result, an unreachable server and one too slow.

use crate::support;

use std::fmt::Write as _;
use std::time::Duration;

use deployguard_core::{ErrorKind, HealthProbe, Observations};
use deployguard_prometheus::{PrometheusConfig, PrometheusProbe, Query, presets};
use support::{Prometheus, backfill};

/// Ten minutes of series, every 15 s, starting three hours ago (inside the retention, older
/// than the head block).
struct Series {
    start: i64,
    text: String,
}

const STEP: i64 = 15;
const POINTS: i64 = 41;

fn series() -> Series {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let start = (now - 3 * 3600) / 60 * 60;
    let mut text = String::from("# TYPE http_requests counter\n");
    // 10 requests a second per version; v2.4.0 fails 15%, v2.3.1 0.2%. v2.3.1's counter resets
    // (a restart) five minutes in.
    for i in 0..POINTS {
        let t = start + i * STEP;
        let seconds = (i * STEP) as f64;
        let old_seconds = if i * STEP >= 300 {
            seconds - 300.0
        } else {
            seconds
        };
        for (version, ok, err) in [
            ("v2.4.0", 8.5 * seconds, 1.5 * seconds),
            ("v2.3.1", 9.98 * old_seconds, 0.02 * old_seconds),
        ] {
            for (code, value) in [("200", ok), ("503", err)] {
                let _ = writeln!(
                    text,
                    "http_requests_total{{namespace=\"shop\",service=\"checkout\",version=\"{version}\",code=\"{code}\"}} {value} {t}"
                );
            }
        }
    }
    text.push_str("# TYPE queue_depth gauge\n");
    for i in 0..POINTS {
        let t = start + i * STEP;
        let _ = writeln!(text, "queue_depth{{service=\"checkout\"}} NaN {t}");
    }
    text.push_str("# TYPE http_request_duration_seconds histogram\n");
    for i in 0..POINTS {
        let t = start + i * STEP;
        let n = (i * STEP * 10) as f64;
        for (version, fast) in [("v2.4.0", 0.2), ("v2.3.1", 0.99)] {
            for (le, share) in [("0.1", fast), ("1.0", 0.995), ("+Inf", 1.0)] {
                let _ = writeln!(
                    text,
                    "http_request_duration_seconds_bucket{{namespace=\"shop\",service=\"checkout\",version=\"{version}\",le=\"{le}\"}} {} {t}",
                    (n * share).round()
                );
            }
            let _ = writeln!(
                text,
                "http_request_duration_seconds_count{{namespace=\"shop\",service=\"checkout\",version=\"{version}\"}} {n} {t}"
            );
            let _ = writeln!(
                text,
                "http_request_duration_seconds_sum{{namespace=\"shop\",service=\"checkout\",version=\"{version}\"}} {} {t}",
                n * 0.1
            );
        }
    }
    text.push_str("# EOF\n");
    Series { start, text }
}

async fn server() -> (Prometheus, i64) {
    let series = series();
    let staging = tempfile::tempdir().unwrap();
    let data = backfill(staging.path(), &series.text);
    let mut server = Prometheus::start("global:\n  scrape_interval: 1h\n", Some(data)).await;
    // The server reads the blocks where promtool wrote them: they go when it goes.
    server.keep(staging);
    (server, series.start)
}

fn probe(server: &Prometheus, at: i64) -> PrometheusProbe {
    PrometheusProbe::new("prometheus", PrometheusConfig::new(&server.url).unwrap())
        .unwrap()
        .at(at as f64)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_prometheus_answers_by_version_and_maps_every_failure_honestly() {
    let (mut server, start) = server().await;
    let at = start + 240;

    // Error ratio per version, with counts a statistical judge can test.
    let errors = probe(&server, at).with(presets::error_ratio_by_version(
        "shop",
        "checkout",
        Duration::from_secs(60),
    ));
    let sample = errors.sample().await.unwrap();
    let of = |version: &str| {
        sample
            .series("error_rate")
            .find(|m| m.version() == Some(version))
            .cloned()
            .unwrap_or_else(|| panic!("no {version} in {sample:?}"))
    };
    let candidate = of("v2.4.0");
    assert_eq!(
        candidate.observations,
        Some(Observations::Proportion {
            events: 90,
            trials: 600
        })
    );
    // 1.2 errors in the window: counts are whole requests.
    assert_eq!(
        of("v2.3.1").observations,
        Some(Observations::Proportion {
            events: 1,
            trials: 600
        })
    );

    // Across v2.3.1's counter reset (its value drops to 0 at +300 s), increase() counts what the
    // counters show — 150 before, 300 after — never a negative or a wrapped count. (The 15 s
    // between the last scrape before the restart and the restart are lost, as on a real
    // restart.)
    let after_reset = probe(&server, start + 330)
        .with(presets::error_ratio_by_version(
            "shop",
            "checkout",
            Duration::from_secs(60),
        ))
        .sample()
        .await
        .unwrap();
    let old = after_reset
        .series("error_rate")
        .find(|m| m.version() == Some("v2.3.1"))
        .unwrap();
    let Some(Observations::Proportion { trials, .. }) = old.observations else {
        panic!("{old:?}")
    };
    assert_eq!(trials, 450);

    // The p99 from the histogram, per version.
    let latency = probe(&server, at)
        .with(presets::latency_by_version(
            "shop",
            "checkout",
            0.99,
            Duration::from_secs(60),
        ))
        .sample()
        .await
        .unwrap();
    let p99 = |version: &str| {
        latency
            .series("latency_seconds")
            .find(|m| m.version() == Some(version))
            .and_then(|m| m.value)
            .unwrap()
    };
    assert!(p99("v2.4.0") > 0.9, "{latency:?}");
    assert!(p99("v2.3.1") <= 0.1, "{latency:?}");

    // Nothing matches: no data. NaN: no data.
    let empty = probe(&server, at)
        .with(Query::value(
            "error_rate",
            "sum(http_requests_total{service=\"nope\"})",
        ))
        .with(Query::value("queue", "queue_depth"))
        .sample()
        .await
        .unwrap();
    assert_eq!(empty.get("error_rate").unwrap().value, None);
    assert_eq!(empty.get("queue").unwrap().value, None);

    // A bad query is the caller's to fix, not a failing version and not worth a retry.
    let err = probe(&server, at)
        .with(Query::value("broken", "sum(rate(http_requests_total[1m]"))
        .sample()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    assert!(!err.is_retryable());
    assert!(err.to_string().contains("bad_data"), "{err}");
    // A range result is refused with what to do.
    let err = probe(&server, at)
        .with(Query::value("range", "http_requests_total[1m]"))
        .sample()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    assert!(err.to_string().contains("returns a matrix"), "{err}");

    // The shared conformance suite, against the real server.
    let all = probe(&server, at)
        .with(presets::error_ratio_by_version(
            "shop",
            "checkout",
            Duration::from_secs(60),
        ))
        .with(presets::latency_by_version(
            "shop",
            "checkout",
            0.99,
            Duration::from_secs(60),
        ));
    deployguard_testkit::conformance::probe_suite(&all)
        .await
        .unwrap();

    // Stopped: unreachable, retryable.
    server.stop().await;
    let err = errors.sample().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    assert!(err.is_retryable());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_does_not_answer_in_time_is_a_retryable_timeout() {
    // A listener that accepts and never answers.
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
        .await
        .unwrap();
    let port = listener.local_addr().unwrap().port();
    let _held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            open.push(socket);
        }
    });
    let config = PrometheusConfig::new(&format!("http://127.0.0.1:{port}"))
        .unwrap()
        .timeout(Duration::from_millis(300));
    let probe = PrometheusProbe::new("slow", config)
        .unwrap()
        .with(Query::value("x", "up"));
    let err = probe.sample().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    assert!(err.is_retryable());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_503_is_a_retryable_unavailable_never_a_measurement() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    // Bound here, not picked and bound later: no other test can take the port in between.
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
        .await
        .unwrap();
    let port = listener.local_addr().unwrap().port();
    let _server = tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let mut buf = [0u8; 4096];
            let _ = socket.read(&mut buf).await;
            let body = r#"{"status":"error","errorType":"unavailable","error":"too many queries"}"#;
            let answer = format!(
                "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = socket.write_all(answer.as_bytes()).await;
        }
    });
    let probe = PrometheusProbe::new(
        "busy",
        PrometheusConfig::new(&format!("http://127.0.0.1:{port}")).unwrap(),
    )
    .unwrap()
    .with(Query::value("x", "up"));
    let err = probe.sample().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    assert!(err.is_retryable());
    assert!(err.to_string().contains("too many queries"), "{err}");
}
