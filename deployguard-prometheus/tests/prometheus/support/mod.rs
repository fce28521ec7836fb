//! A real Prometheus for tests: Debian's `prometheus` binary on a free loopback port, with its
//! own temporary data directory, stopped (killed) when dropped. Never the system service.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub struct Prometheus {
    pub url: String,
    pub port: u16,
    child: tokio::process::Child,
    pub dir: tempfile::TempDir,
    /// Directories the server reads (backfilled data), removed with it.
    keep: Vec<tempfile::TempDir>,
}

/// A free loopback port (bound, then released for the server to take).
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// `path`'s answer on `port`: status code and body, or `None` when nothing answers.
pub async fn get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await.ok()?;
    let request = format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n");
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut text = String::new();
    stream.read_to_string(&mut text).await.ok()?;
    let status = text.split_whitespace().nth(1)?.parse().ok()?;
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_owned())?;
    Some((status, body))
}

/// Waits (real time, with a deadline) until `check` holds.
pub async fn until<F, Fut>(what: &str, deadline: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let end = std::time::Instant::now() + deadline;
    while std::time::Instant::now() < end {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{what}: not within {deadline:?}");
}

impl Prometheus {
    /// Starts Prometheus with `config` (YAML) over the data in `data` (or an empty directory).
    pub async fn start(config: &str, data: Option<PathBuf>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let config_path = dir.path().join("prometheus.yml");
        std::fs::write(&config_path, config).unwrap();
        let data = data.unwrap_or_else(|| dir.path().join("data"));
        let port = free_port();
        let child = tokio::process::Command::new("prometheus")
            .arg(format!("--config.file={}", config_path.display()))
            .arg(format!("--storage.tsdb.path={}", data.display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--storage.tsdb.retention.time=100y")
            .arg("--log.level=warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("the prometheus binary (apt-get install prometheus; .ci/run installs it)");
        let server = Self {
            url: format!("http://127.0.0.1:{port}"),
            port,
            child,
            dir,
            keep: Vec::new(),
        };
        until(
            "prometheus to be ready",
            Duration::from_secs(60),
            || async { matches!(get(port, "/-/ready").await, Some((200, _))) },
        )
        .await;
        server
    }

    /// Keeps `dir` until the server is dropped.
    pub fn keep(&mut self, dir: tempfile::TempDir) {
        self.keep.push(dir);
    }

    /// Stops the server now (a test of an unreachable Prometheus).
    pub async fn stop(&mut self) {
        let _ = self.child.kill().await;
    }
}

/// Backfills `openmetrics` into a new TSDB directory under `dir` with promtool.
pub fn backfill(dir: &Path, openmetrics: &str) -> PathBuf {
    let input = dir.join("series.om");
    std::fs::write(&input, openmetrics).unwrap();
    let data = dir.join("tsdb");
    std::fs::create_dir_all(&data).unwrap();
    let output = std::process::Command::new("promtool")
        .args(["tsdb", "create-blocks-from", "openmetrics"])
        .arg(&input)
        .arg(&data)
        .output()
        .expect("promtool (it ships with the prometheus package)");
    assert!(
        output.status.success(),
        "promtool: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    data
}
