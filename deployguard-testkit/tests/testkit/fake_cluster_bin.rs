//! The `fake-cluster` binary as a new user runs it: start it, point kubectl at its kubeconfig.
#![cfg(feature = "bin")]

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};

#[test]
fn a_new_user_sees_the_stalled_rollout_with_kubectl() {
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kc.yaml");
    let mut server = Command::new(env!("CARGO_BIN_EXE_fake-cluster"))
        .args(["--scenario", "seed-rolling-failure", "--kubeconfig"])
        .arg(&kubeconfig)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(server.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    assert!(
        first.starts_with("listening on http://127.0.0.1:"),
        "{first}"
    );

    // The stall takes shape within seconds: kubectl itself waits for it, by watching.
    let kubectl = deployguard_testkit::cluster::kubectl::kubectl_binary(33)
        .expect("kubectl 1.33 beside kubectl");
    for condition in [
        "jsonpath={.status.updatedReplicas}=3",
        "jsonpath={.status.readyReplicas}=5",
    ] {
        let waited = Command::new(&kubectl)
            .args([
                "wait",
                "deployment/app-deployment",
                "--timeout=60s",
                "--for",
                condition,
                "--cache-dir",
            ])
            .arg(dir.path().join("cache"))
            .env("KUBECONFIG", &kubeconfig)
            .output()
            .unwrap();
        assert!(
            waited.status.success(),
            "{}",
            String::from_utf8_lossy(&waited.stderr)
        );
    }
    let out = Command::new(&kubectl)
        .args(["get", "deploy,rs,pods", "--cache-dir"])
        .arg(dir.path().join("cache"))
        .env("KUBECONFIG", &kubeconfig)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let deployment = text
        .lines()
        .find(|l| l.starts_with("deployment.apps/app-deployment"))
        .unwrap();
    assert_eq!(
        deployment.split_whitespace().take(4).collect::<Vec<_>>(),
        ["deployment.apps/app-deployment", "5/6", "3", "5"]
    );
    let sets: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("replicaset.apps/"))
        .collect();
    assert_eq!(sets.len(), 2, "{text}");
    assert_eq!(
        text.lines()
            .filter(|l| l.starts_with("pod/") && l.contains(" 0/1 "))
            .count(),
        3,
        "{text}"
    );
    // The old pod scaled down for the new ones shows `Terminating` for the second its
    // container takes to stop, as on a real cluster: five old pods serve beside it.
    assert_eq!(
        text.lines()
            .filter(|l| l.starts_with("pod/")
                && l.contains(" 1/1 ")
                && !l.contains(" Terminating "))
            .count(),
        5,
        "{text}"
    );

    server.kill().unwrap();
    let mut log = String::new();
    server
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut log)
        .unwrap();
    let _ = server.wait();
    assert!(
        log.lines().any(
            |l| l.starts_with("GET /apis/apps/v1/namespaces/default/deployments")
                && l.ends_with(" 200")
        ),
        "{log}"
    );

    let listed = Command::new(env!("CARGO_BIN_EXE_fake-cluster"))
        .arg("--list-scenarios")
        .output()
        .unwrap();
    let names: Vec<String> = String::from_utf8_lossy(&listed.stdout)
        .lines()
        .map(|l| l.split_whitespace().next().unwrap_or("").to_owned())
        .collect();
    for name in [
        "seed-rolling-failure",
        "seed-blue-green",
        "healthy-rollout",
        "image-pull-failure",
        "crash-loop",
        "missing-config",
        "unschedulable",
        "migration-job-failed",
    ] {
        assert!(
            names.iter().any(|n| n == name),
            "{name} missing from {names:?}"
        );
    }
    let bad = Command::new(env!("CARGO_BIN_EXE_fake-cluster"))
        .args(["--scenario", "nope"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("unknown scenario \"nope\""));
}

#[test]
fn help_explains_every_option_and_the_default_kubeconfig_stays_out_of_the_working_directory() {
    let help = Command::new(env!("CARGO_BIN_EXE_fake-cluster"))
        .arg("--help")
        .output()
        .unwrap();
    assert!(help.status.success());
    let text = String::from_utf8_lossy(&help.stdout);
    for option in [
        "--scenario",
        "--listen",
        "--kubeconfig",
        "--time-scale",
        "--token",
        "--list-scenarios",
    ] {
        assert!(text.contains(option), "{option} missing from:\n{text}");
    }

    let cwd = tempfile::tempdir().unwrap();
    // The server's own temporary directory goes inside this test's (and is killed with it).
    let tmp = tempfile::tempdir().unwrap();
    let mut server = Command::new(env!("CARGO_BIN_EXE_fake-cluster"))
        .current_dir(cwd.path())
        .env("TMPDIR", tmp.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(server.stdout.take().unwrap());
    let (mut first, mut second) = (String::new(), String::new());
    stdout.read_line(&mut first).unwrap();
    stdout.read_line(&mut second).unwrap();
    let path = std::path::PathBuf::from(second.trim().strip_prefix("kubeconfig: ").unwrap());
    let kubeconfig = std::fs::read_to_string(&path).unwrap();
    server.kill().unwrap();
    let _ = server.wait();
    assert!(
        kubeconfig.contains(first.trim().strip_prefix("listening on ").unwrap()),
        "{kubeconfig}"
    );
    assert!(path.starts_with(tmp.path()), "{}", path.display());
    assert_eq!(
        std::fs::read_dir(cwd.path()).unwrap().count(),
        0,
        "nothing is written into the working directory"
    );

    let bad = Command::new(env!("CARGO_BIN_EXE_fake-cluster"))
        .args(["--scenario", "nope"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert_eq!(bad.status.code(), Some(2));
    assert!(
        stderr.contains("the scenarios are: empty, static-web, seed-rolling-failure"),
        "{stderr}"
    );
}

/// fake-cluster's own argument checks: exit 2 and a message naming the argument, before any
/// server is started or contacted.
#[test]
fn bad_arguments_are_refused_before_anything_starts() {
    let cases: &[(&[&str], &str)] = &[
        (&["--time-scale", "0"], "not a number greater than 0"),
        (&["--time-scale", "-1"], "unexpected argument"),
        (&["--time-scale", "abc"], "not a number greater than 0"),
        (&["--time-scale", "1e9"], "at most 1000"),
        (&["--fault", "bogus"], "is not a fault"),
        (&["--fault", "503:2"], "not a share between 0 and 1"),
        (&["--fault", "200"], "is not a fault"),
        (&["--scenario", "nope"], "the scenarios are"),
        (&["--nope"], "unexpected argument"),
    ];
    let binary = env!("CARGO_BIN_EXE_fake-cluster");
    for (args, words) in cases {
        let output = Command::new(binary).args(*args).output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(words), "{args:?}: {stderr}");
    }
}

/// A slow cluster starts as fast as any: the scenario is set up at a fast pace, then runs at
/// the scale asked for (at 0.05 its setup alone took 33 s before).
#[test]
fn a_slow_cluster_starts_serving_within_seconds() {
    let dir = tempfile::tempdir().unwrap();
    let began = std::time::Instant::now();
    let mut server = Command::new(env!("CARGO_BIN_EXE_fake-cluster"))
        .args([
            "--scenario",
            "seed-rolling-failure",
            "--time-scale",
            "0.05",
            "--kubeconfig",
        ])
        .arg(dir.path().join("kc.yaml"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Bounded wait: the line is read on a thread, and the server killed at the deadline.
    let stdout = server.stdout.take().unwrap();
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut first = String::new();
        let _ = BufReader::new(stdout).read_line(&mut first);
        let _ = sender.send(first);
    });
    let first = receiver.recv_timeout(std::time::Duration::from_secs(20));
    let took = began.elapsed();
    server.kill().unwrap();
    let _ = server.wait();
    let first = first.expect("serving within 20 s");
    println!(
        "fake-cluster --time-scale 0.05 served after {:.2}s",
        took.as_secs_f64()
    );
    assert!(
        first.starts_with("listening on http://127.0.0.1:"),
        "{first}"
    );
}
