//! The emergency command's binary against servers that misbehave on purpose: a body that never
//! ends, a proxy that reflects the request's headers, a plain-HTTP server offered a token, broken
//! kubeconfigs. What a person relies on: the command ends, in bounded memory, says what was wrong
//! and where, and never prints or sends a credential where it should not.

use std::io::Write as _;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use deployguard_cli::emergency::{self, ClientOptions};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const TOKEN: &str = "dg-hostile-secret-9931";

/// What a hostile server does with each request (given the request's head as text).
#[derive(Clone, Copy)]
enum Hostile {
    /// 200, JSON, chunked, `[` forever.
    EndlessBody,
    /// 502 with an HTML page quoting the request's headers.
    ReflectHeaders,
    /// 401 with a Kubernetes Status whose message quotes the Authorization header.
    ReflectInStatus,
    /// Whatever comes: bytes that are not HTTP.
    Garbage,
}

/// Serves `hostile` on a free loopback port until dropped; counts requests that carried an
/// `Authorization` header.
struct HostileServer {
    address: std::net::SocketAddr,
    with_credentials: Arc<AtomicUsize>,
    requests: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for HostileServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn hostile(behaviour: Hostile) -> HostileServer {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let with_credentials = Arc::new(AtomicUsize::new(0));
    let requests = Arc::new(AtomicUsize::new(0));
    let (counted, seen) = (Arc::clone(&with_credentials), Arc::clone(&requests));
    let task = tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let (counted, seen) = (Arc::clone(&counted), Arc::clone(&seen));
            tokio::spawn(answer(socket, behaviour, counted, seen));
        }
    });
    HostileServer {
        address,
        with_credentials,
        requests,
        task,
    }
}

async fn answer(
    mut socket: TcpStream,
    behaviour: Hostile,
    with_credentials: Arc<AtomicUsize>,
    requests: Arc<AtomicUsize>,
) {
    let mut head = Vec::new();
    let mut buffer = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match socket.read(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buffer[..n]),
        }
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    requests.fetch_add(1, Ordering::SeqCst);
    if head.to_ascii_lowercase().contains("\r\nauthorization:") {
        with_credentials.fetch_add(1, Ordering::SeqCst);
    }
    match behaviour {
        Hostile::EndlessBody => {
            let _ = socket
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n")
                .await;
            let chunk = format!("10000\r\n{}\r\n", "[".repeat(0x10000));
            while socket.write_all(chunk.as_bytes()).await.is_ok() {}
        }
        Hostile::ReflectHeaders => {
            let body =
                format!("<html><body><h1>502 Bad Gateway</h1><pre>{head}</pre></body></html>");
            let _ = socket
                .write_all(
                    format!(
                        "HTTP/1.1 502 Bad Gateway\r\ncontent-type: text/html\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    )
                    .as_bytes(),
                )
                .await;
        }
        Hostile::ReflectInStatus => {
            let authorization = head
                .lines()
                .find(|l| l.to_ascii_lowercase().starts_with("authorization:"))
                .unwrap_or_default()
                .to_owned();
            let body = serde_json::json!({
                "kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 401,
                "reason": "Unauthorized",
                "message": format!("token rejected; you sent {authorization}"),
            })
            .to_string();
            let _ = socket
                .write_all(
                    format!(
                        "HTTP/1.1 401 Unauthorized\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    )
                    .as_bytes(),
                )
                .await;
        }
        Hostile::Garbage => {
            let _ = socket
                .write_all(b"SSH-2.0-OpenSSH_9.6\r\n\x00\x01\x02")
                .await;
        }
    }
}

/// A kubeconfig for `server`, with the test's token or without a credential.
fn kubeconfig(dir: &std::path::Path, server: &str, token: bool) -> std::path::PathBuf {
    let user = if token {
        format!("  user:\n    token: {TOKEN}\n")
    } else {
        "  user: {}\n".to_owned()
    };
    let path = dir.join("kubeconfig");
    std::fs::write(
        &path,
        format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: c\nclusters:\n- name: k\n  cluster:\n    server: {server}\ncontexts:\n- name: c\n  context:\n    cluster: k\n    user: u\nusers:\n- name: u\n{user}"
        ),
    )
    .unwrap();
    path
}

/// What one run of the binary printed, how it exited, and its peak resident memory.
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
    peak_rss_kib: i64,
    took: Duration,
}

/// Runs `emergency-rollback` with `args` and `KUBECONFIG=kubeconfig`, killing it after a minute
/// (a run that needs that long has failed anyway). Its peak memory is the kernel's high-water
/// mark (`VmHWM`), read every few milliseconds while it runs: monotonic, so the last reading is
/// the peak up to a few milliseconds before exit.
fn run_binary(kubeconfig: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let (stdout_path, stderr_path) = (dir.path().join("stdout"), dir.path().join("stderr"));
    let mut command = Command::new(env!("CARGO_BIN_EXE_emergency-rollback"));
    command
        .args(args)
        .env("KUBECONFIG", kubeconfig)
        .env("HOME", dir.path())
        .env_remove("RUST_LOG")
        .env_remove("NO_COLOR")
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&stdout_path).unwrap())
        .stderr(std::fs::File::create(&stderr_path).unwrap());
    for (key, value) in env {
        command.env(key, value);
    }
    let began = std::time::Instant::now();
    let mut child = command.spawn().unwrap();
    let pid = child.id();
    let status_file = format!("/proc/{pid}/status");
    // A thread waits for the process; this one reads its memory between the waiter's answers
    // (a wait on the exit with a short timeout, never a sleep), and kills it past a minute.
    let (sender, exited) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = sender.send(child.wait());
    });
    let mut peak_rss_kib = 0;
    let status = loop {
        if let Some(kib) = std::fs::read_to_string(&status_file).ok().and_then(|text| {
            text.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<i64>().ok())
        }) {
            peak_rss_kib = peak_rss_kib.max(kib);
        }
        match exited.recv_timeout(Duration::from_millis(5)) {
            Ok(status) => break status.unwrap(),
            Err(std::sync::mpsc::RecvTimeoutError::Timeout)
                if began.elapsed() > Duration::from_secs(60) =>
            {
                let _ = Command::new("kill").arg("-9").arg(pid.to_string()).status();
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            Err(err) => panic!("the waiter is gone: {err}"),
        }
    };
    Run {
        code: status.code().unwrap_or(-1),
        stdout: std::fs::read_to_string(stdout_path).unwrap(),
        stderr: std::fs::read_to_string(stderr_path).unwrap(),
        peak_rss_kib,
        took: began.elapsed(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_never_ends_is_cut_at_its_limit_in_bounded_memory() {
    let server = hostile(Hostile::EndlessBody).await;
    let dir = tempfile::tempdir().unwrap();
    let path = kubeconfig(dir.path(), &format!("http://{}", server.address), false);
    let run = tokio::task::spawn_blocking(move || {
        run_binary(
            &path,
            &["app-deployment", "--yes", "--max-rollback-time", "5s"],
            &[],
        )
    })
    .await
    .unwrap();
    println!(
        "endless body: exit {} after {:.1}s, peak RSS {:.1} MiB",
        run.code,
        run.took.as_secs_f64(),
        run.peak_rss_kib as f64 / 1024.0
    );
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.peak_rss_kib < 64 * 1024,
        "peak RSS {} KiB",
        run.peak_rss_kib
    );
    assert!(run.took < Duration::from_secs(30), "took {:?}", run.took);
    assert!(
        run.stderr.contains(&format!("http://{}", server.address))
            && run.stderr.contains("larger than 4194304 bytes"),
        "the error names the server and the limit:\n{}",
        run.stderr
    );
    assert!(!run.stderr.contains("[[[["), "{}", run.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proxy_that_reflects_headers_never_gets_the_token_printed() {
    for behaviour in [Hostile::ReflectHeaders, Hostile::ReflectInStatus] {
        let server = hostile(behaviour).await;
        let dir = tempfile::tempdir().unwrap();
        let path = kubeconfig(dir.path(), &format!("http://{}", server.address), true);
        let run = tokio::task::spawn_blocking(move || {
            run_binary(
                &path,
                &[
                    "app-deployment",
                    "--yes",
                    "--allow-plain-http",
                    "--max-rollback-time",
                    "3s",
                ],
                &[("RUST_LOG", "debug")],
            )
        })
        .await
        .unwrap();
        // The proxy did see it (the flag allowed plain HTTP): what matters is what is printed.
        assert!(server.with_credentials.load(Ordering::SeqCst) > 0);
        let printed = format!("{}\n{}", run.stdout, run.stderr);
        assert!(
            !printed.contains(TOKEN),
            "the token was printed:\n{printed}"
        );
        assert_ne!(run.code, 0, "{printed}");
        match behaviour {
            Hostile::ReflectHeaders => assert!(
                printed.contains("answered 502 with")
                    && printed.contains("of text/html, not a Kubernetes Status (not quoted)"),
                "a summary instead of the body:\n{printed}"
            ),
            _ => assert!(
                printed
                    .to_ascii_lowercase()
                    .contains("you sent authorization: bearer [redacted]"),
                "{printed}"
            ),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_never_leaves_over_plain_http_without_the_flag() {
    let server = hostile(Hostile::ReflectHeaders).await;
    let dir = tempfile::tempdir().unwrap();
    let path = kubeconfig(dir.path(), &format!("http://{}", server.address), true);
    let run = tokio::task::spawn_blocking(move || {
        run_binary(&path, &["app-deployment", "--yes", "--json"], &[])
    })
    .await
    .unwrap();
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("is plain HTTP")
            && run
                .stderr
                .contains("--allow-plain-http for a local test cluster"),
        "{}",
        run.stderr
    );
    // --json: the error as a JSON object.
    let report: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(report["outcome"], "error");
    assert_eq!(report["exit_code"], 2);
    assert!(report["error"].as_str().unwrap().contains("only over TLS"));
    assert_eq!(
        server.requests.load(Ordering::SeqCst),
        0,
        "nothing was sent"
    );
    assert_eq!(server.with_credentials.load(Ordering::SeqCst), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_errors_name_the_server_and_logs_carry_no_colour_off_a_terminal() {
    // Nothing listens on a port just freed; garbage answers on another.
    let refused = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let garbage = hostile(Hostile::Garbage).await;
    for (address, cause) in [
        (refused, "Connection refused"),
        (garbage.address, "invalid HTTP version"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let path = kubeconfig(dir.path(), &format!("http://{address}"), false);
        let run = tokio::task::spawn_blocking(move || {
            run_binary(
                &path,
                &["app-deployment", "--yes", "--max-rollback-time", "2s"],
                &[("RUST_LOG", "debug")],
            )
        })
        .await
        .unwrap();
        assert_eq!(run.code, 1, "{}", run.stderr);
        assert!(
            run.stderr.contains(&format!("http://{address}")) && run.stderr.contains(cause),
            "names {address} and {cause}:\n{}",
            run.stderr
        );
        assert!(
            !run.stderr.contains('\u{1b}'),
            "no ANSI codes off a terminal:\n{}",
            run.stderr
        );
        assert!(
            !run.stderr.contains("did not answer in time"),
            "a refused connection is not a slow server:\n{}",
            run.stderr
        );
    }
}

#[tokio::test]
async fn every_kubeconfig_problem_names_the_file_and_its_cause() {
    let dir = tempfile::tempdir().unwrap();
    let at = |name: &str, text: Option<&str>| {
        let path = dir.path().join(name);
        if let Some(text) = text {
            std::fs::write(&path, text).unwrap();
        }
        path
    };
    let directory = dir.path().join("a-directory");
    std::fs::create_dir(&directory).unwrap();
    let secret = format!("    token: {TOKEN}\n");
    let cases = [
        (at("missing", None), "missing does not exist".to_owned()),
        (at("empty", Some("\n  \n")), "empty is empty".to_owned()),
        (
            directory.clone(),
            "a-directory is a directory, not a file".to_owned(),
        ),
        (
            at(
                "bad-yaml",
                Some(&format!("users:\n- name: u\n  user:\n{secret}  - [oops\n")),
            ),
            "bad-yaml is not a valid kubeconfig".to_owned(),
        ),
        (
            at(
                "no-context",
                Some("apiVersion: v1\nkind: Config\nclusters: []\ncontexts: []\nusers: []\n"),
            ),
            "no-context has no current-context; choose one with kubectl config use-context NAME"
                .to_owned(),
        ),
        (
            at(
                "unknown-context",
                Some(
                    "apiVersion: v1\nkind: Config\ncurrent-context: prod\nclusters: []\ncontexts: []\nusers: []\n",
                ),
            ),
            "its current-context \"prod\" is not among its contexts".to_owned(),
        ),
        (
            at(
                "no-server",
                Some(
                    "apiVersion: v1\nkind: Config\ncurrent-context: c\nclusters:\n- name: k\n  cluster: {}\ncontexts:\n- name: c\n  context:\n    cluster: k\n    user: u\nusers:\n- name: u\n  user: {}\n",
                ),
            ),
            "cluster \"k\" has no server".to_owned(),
        ),
    ];
    for (path, expected) in cases {
        let err = emergency::client_with(&ClientOptions {
            kubeconfig: Some(path.clone()),
            ..ClientOptions::default()
        })
        .await
        .map(drop)
        .unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains(&path.display().to_string()) && text.contains(&expected),
            "{}: {text}",
            path.display()
        );
        assert!(!text.contains(TOKEN), "{text}");
    }
}

#[test]
fn the_binary_says_where_the_kubeconfig_is_missing_in_words_and_in_json() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nowhere").join("config");
    let run = run_binary(&missing, &["app-deployment", "--json"], &[]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains(&format!(
            "kubeconfig {} (KUBECONFIG) does not exist",
            missing.display()
        )),
        "{}",
        run.stderr
    );
    let report: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(report["outcome"], "error");
    let _ = std::io::stdout().flush();
}
