//! `prometheus-guard --metrics-addr`: the real binary, guarding a rollout on a served simulated
//! cluster, serves its own metrics for Prometheus while it runs.

use std::time::Duration;

use deployguard_testkit::cluster::{FakeCluster, scenarios};
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _};

/// GETs `/metrics` at `addr`: the body.
async fn scrape(addr: &str) -> Option<String> {
    let mut socket = tokio::net::TcpStream::connect(addr).await.ok()?;
    socket
        .write_all(format!("GET /metrics HTTP/1.1\r\nHost: {addr}\r\n\r\n").as_bytes())
        .await
        .ok()?;
    let mut answer = String::new();
    socket.read_to_string(&mut answer).await.ok()?;
    Some(answer.split_once("\r\n\r\n")?.1.to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_guard_serves_its_metrics_while_it_guards() {
    let binary = std::path::PathBuf::from(env!("CARGO_BIN_EXE_prometheus-guard"));
    let cluster = FakeCluster::builder().controllers(true).build();
    scenarios::load(&cluster, "healthy-rollout").await.unwrap();
    let served = cluster.serve().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    served.write_kubeconfig(&kubeconfig).unwrap();
    // No Prometheus answers (port 9 on loopback): the guard keeps measuring, and serves.
    let mut child = tokio::process::Command::new(&binary)
        .args([
            "app-deployment",
            "--service",
            "myapp-service",
            "--prometheus",
            "http://127.0.0.1:9",
            "--interval",
            "1s",
            "--metrics-addr",
            "127.0.0.1:0",
        ])
        .env("KUBECONFIG", &kubeconfig)
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let addr = tokio::time::timeout(Duration::from_secs(60), async {
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(rest) = line.strip_prefix("serving the guard's metrics at http://") {
                return rest.trim_end_matches("/metrics").to_owned();
            }
        }
        panic!("prometheus-guard ended without serving its metrics");
    })
    .await
    .expect("prometheus-guard to say where its metrics are");
    // Keep reading its progress so it never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let body = loop {
        if let Some(body) = scrape(&addr).await
            && body.contains("deployguard_guards_running 1")
        {
            break body;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no running guard in the metrics"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        body.contains("# TYPE deployguard_time_to_detect_seconds histogram"),
        "{body}"
    );
    child.kill().await.unwrap();
}
