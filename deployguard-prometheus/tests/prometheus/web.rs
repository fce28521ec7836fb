//! `WebProbe` against an HTTP server the test starts on a free loopback port: readings per
//! version from a JSON map and from a URL per version, a canary judged from them (and its
//! healthy twin passed), every way of failing with its error kind, secrets never shown, and the
//! probe conformance suite.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use deployguard_core::analysis::{
    AnalysisCheck, Judge, MeasurementOutcome, Threshold, VersionRef, Versions,
};
use deployguard_core::{ErrorKind, HealthProbe};
use deployguard_prometheus::WebProbe;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A one-route HTTP/1.1 server: answers every request with `status` and `body(path)`, and
/// remembers each request's head. Stops when dropped.
struct Server {
    url: String,
    heads: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(status: u16, body: fn(&str) -> String) -> Server {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
        .await
        .unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let heads = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&heads);
    let task = tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            let seen = Arc::clone(&seen);
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buffer = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match socket.read(&mut buffer).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buffer[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&head).into_owned();
                let path = head.split_whitespace().nth(1).unwrap_or("/").to_owned();
                seen.lock().unwrap().push(head);
                let text = body(&path);
                let answer = format!(
                    "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{text}",
                    text.len()
                );
                let _ = socket.write_all(answer.as_bytes()).await;
            });
        }
    });
    Server { url, heads, task }
}

fn versions() -> Versions {
    Versions::new(
        Some(VersionRef::new("app:v2.4.0", vec!["app:v2.4.0".into()])),
        Some(VersionRef::new("app:v2.3.1", vec!["app:v2.3.1".into()])),
    )
}

fn check(probe: &WebProbe) -> AnalysisCheck {
    AnalysisCheck::builder("errors", probe, "error_rate")
        .judge(Judge::Compare {
            max_ratio: Some(2.0),
            max_increase: None,
            min_observations: 0,
        })
        .success(Threshold::at_most(0.05))
        .build()
        .unwrap()
}

#[tokio::test]
async fn a_canary_is_judged_from_a_local_endpoints_json_and_its_healthy_twin_passes() {
    let bad = serve(200, |_| {
        r#"{"error_rate": {"app:v2.3.1": 0.002, "app:v2.4.0": 0.15}, "latency": {"p99": "0.31"}}"#
            .into()
    })
    .await;
    let probe = WebProbe::builder("status", &format!("{}/api/canary", bad.url))
        .header("Authorization", "Bearer s3cret")
        .metric("error_rate", "$.error_rate")
        .metric("p99", "$.latency.p99")
        .build()
        .unwrap();
    let sample = probe.sample().await.unwrap();
    let rates: Vec<(Option<&str>, Option<f64>)> = sample
        .series("error_rate")
        .map(|m| (m.version(), m.value))
        .collect();
    assert_eq!(
        rates,
        [
            (Some("app:v2.3.1"), Some(0.002)),
            (Some("app:v2.4.0"), Some(0.15))
        ]
    );
    assert_eq!(sample.get("p99").unwrap().value, Some(0.31));
    let judged = check(&probe).judge(Ok(&sample), &versions());
    assert!(
        matches!(judged.outcome, MeasurementOutcome::Failed(_)),
        "{judged:?}"
    );
    assert!(judged.reason.contains("app:v2.4.0"), "{}", judged.reason);
    // The credential went to the server, and is never shown.
    let heads = bad.heads.lock().unwrap().clone();
    assert!(
        heads[0]
            .to_lowercase()
            .contains("authorization: bearer s3cret"),
        "{heads:?}"
    );
    assert!(!format!("{probe:?}").contains("s3cret"));

    let healthy = serve(200, |_| {
        r#"{"error_rate": {"app:v2.3.1": 0.002, "app:v2.4.0": 0.003}, "latency": {"p99": 0.3}}"#
            .into()
    })
    .await;
    let probe = WebProbe::builder("status", &format!("{}/api/canary", healthy.url))
        .metric("error_rate", "$.error_rate")
        .build()
        .unwrap();
    let judged = check(&probe).judge(Ok(&probe.sample().await.unwrap()), &versions());
    assert!(
        matches!(judged.outcome, MeasurementOutcome::Successful(_)),
        "{judged:?}"
    );
}

#[tokio::test]
async fn a_url_per_version_is_asked_once_per_version_and_posts_its_body() {
    let server = serve(200, |path| {
        let rate = if path.ends_with("app:v2.4.0") {
            0.2
        } else {
            0.001
        };
        format!(r#"{{"stats": [{{"errors": {rate}}}]}}"#)
    })
    .await;
    let probe = WebProbe::builder(
        "per-version",
        &format!("{}/versions/{{version}}", server.url),
    )
    .post(r#"{"window": "5m"}"#)
    .metric("error_rate", "$.stats[0].errors")
    .metric("absent", "$.nothing")
    .versions(["app:v2.3.1", "app:v2.4.0"])
    .build()
    .unwrap();
    let sample = probe.sample().await.unwrap();
    let rates: Vec<(Option<&str>, Option<f64>)> = sample
        .series("error_rate")
        .map(|m| (m.version(), m.value))
        .collect();
    assert_eq!(
        rates,
        [
            (Some("app:v2.3.1"), Some(0.001)),
            (Some("app:v2.4.0"), Some(0.2))
        ]
    );
    // A path that finds nothing is no data, not an error.
    assert!(sample.series("absent").all(|m| m.value.is_none()));
    let heads = server.heads.lock().unwrap().clone();
    assert_eq!(heads.len(), 2);
    assert!(
        heads
            .iter()
            .all(|h| h.starts_with("POST /versions/app:v2.")),
        "{heads:?}"
    );
    let judged = check(&probe).judge(Ok(&sample), &versions());
    assert!(
        matches!(judged.outcome, MeasurementOutcome::Failed(_)),
        "{judged:?}"
    );
}

#[tokio::test]
async fn every_way_of_failing_has_its_kind_and_says_whether_a_retry_helps() {
    let url = |server: &Server| format!("{}/health", server.url);
    let probe = |url: &str| {
        WebProbe::builder("web", url)
            .metric("error_rate", "$.error_rate")
            .timeout(Duration::from_secs(2))
            .build()
            .unwrap()
    };
    for (status, body, kind, retryable) in [
        (500, "oops", ErrorKind::Unavailable, true),
        (429, "slow down", ErrorKind::Unavailable, true),
        (401, "who?", ErrorKind::Forbidden, false),
        (404, "no", ErrorKind::InvalidInput, false),
        (200, "<html>", ErrorKind::Unexpected, false),
        (
            200,
            r#"{"error_rate": "high"}"#,
            ErrorKind::Unexpected,
            false,
        ),
        (200, r#"{"error_rate": [1]}"#, ErrorKind::Unexpected, false),
    ] {
        let body: fn(&str) -> String = match body {
            "oops" => |_| "oops".into(),
            "slow down" => |_| "slow down".into(),
            "who?" => |_| "who?".into(),
            "no" => |_| "no".into(),
            "<html>" => |_| "<html>".into(),
            r#"{"error_rate": "high"}"# => |_| r#"{"error_rate": "high"}"#.into(),
            _ => |_| r#"{"error_rate": [1]}"#.into(),
        };
        let server = serve(status, body).await;
        let err = probe(&url(&server)).sample().await.unwrap_err();
        assert_eq!(
            (err.kind(), err.is_retryable()),
            (kind, retryable),
            "{status} {err}"
        );
    }
    // Nobody listening: unreachable, retryable.
    let gone = {
        let server = serve(200, |_| "{}".into()).await;
        url(&server)
    };
    let err = probe(&gone).sample().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    // A server that accepts and never answers: a timeout, retryable.
    let silent = tokio::net::TcpListener::bind(("127.0.0.1", 0))
        .await
        .unwrap();
    let err = probe(&format!("http://{}/x", silent.local_addr().unwrap()))
        .sample()
        .await
        .unwrap_err();
    assert_eq!(
        (err.kind(), err.is_retryable()),
        (ErrorKind::Timeout, true),
        "{err}"
    );
    // A password in the URL is never in an error.
    let err = probe(&format!(
        "http://bot:hunter2@{}/x",
        silent.local_addr().unwrap()
    ))
    .sample()
    .await
    .unwrap_err();
    assert!(
        !err.to_string().contains("hunter2") && err.to_string().contains("bot:<redacted>@"),
        "{err}"
    );
}

#[tokio::test]
async fn bad_settings_are_refused_at_build_naming_the_field() {
    for (probe, field) in [
        (WebProbe::builder("w", "ftp://x/").metric("m", "$.m"), "url"),
        (WebProbe::builder("w", "http://x/"), "metrics"),
        (
            WebProbe::builder("w", "http://x/").metric("m", "m"),
            "metrics.m",
        ),
        (
            WebProbe::builder("w", "http://x/{version}").metric("m", "$.m"),
            "versions",
        ),
        (
            WebProbe::builder("w", "http://x/")
                .metric("m", "$.m")
                .timeout(Duration::ZERO),
            "timeout",
        ),
        (
            WebProbe::builder("w", "http://x/")
                .metric("m", "$.m")
                .header("bad header", "v"),
            "headers",
        ),
    ] {
        let err = probe.build().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        assert!(err.to_string().contains(field), "{field}: {err}");
    }
}

#[tokio::test]
async fn the_probe_conformance_suite_passes() {
    let server = serve(200, |_| {
        r#"{"error_rate": {"app:v2.3.1": 0.002, "app:v2.4.0": 0.003}}"#.into()
    })
    .await;
    let probe = WebProbe::builder("web", &server.url)
        .metric("error_rate", "$.error_rate")
        .build()
        .unwrap();
    deployguard_testkit::conformance::probe_suite(&probe)
        .await
        .unwrap();
}
