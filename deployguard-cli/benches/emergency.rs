//! The emergency rollback beside `kubectl rollout undo` + `kubectl rollout status`, and beside
//! the seed runbook's script, each on a fresh simulated cluster with the seed incident
//! (`seed-rolling-failure`, stalled) served over loopback HTTP, at cluster time scales 1 and
//! 10. Prints each one's wall time, the ratio to kubectl measured in the same run, and its API
//! requests (reads + writes). Each contender runs several times on clusters of its own (the
//! clusters are made together, so their stalls overlap) and the median is printed: when the
//! restored pods become ready depends on where in the simulated kubelet's cycle the rollback
//! lands. Asserts nothing about speed; the command's request list is asserted in
//! `tests/cli/emergency.rs`.
//!
//! `cargo bench -p deployguard-cli --bench emergency`; under `cargo test` (no `--bench`
//! argument) one run at scale 10 as a smoke test.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use deployguard_testkit::cluster::kubectl::Kubectl;
use deployguard_testkit::cluster::scenarios::{ServedSeed, served_seed};
use deployguard_testkit::cluster::wait;

/// What one contender did.
struct Run {
    wall: Duration,
    reads: usize,
    writes: usize,
    outcome: String,
}

impl Run {
    fn of(seed: &ServedSeed, wall: Duration, outcome: String) -> Self {
        let requests = seed.cluster.requests();
        let writes = requests.iter().filter(|r| r.verb.is_write()).count();
        Self {
            wall,
            reads: requests.len() - writes,
            writes,
            outcome,
        }
    }
}

/// The seed's script as vendored in the testkit.
fn seed_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../deployguard-testkit/tests/fixtures/emergency_rollback.sh")
}

async fn rolled_back(seed: &ServedSeed) -> bool {
    wait::until("the rollback to roll out", Duration::from_secs(120), || {
        seed.cluster
            .deployment("default", "app-deployment")
            .ok()
            .and_then(|d| d.status)
            .is_some_and(|s| {
                s.updated_replicas == Some(6)
                    && s.available_replicas == Some(6)
                    && s.replicas == Some(6)
            })
    })
    .await
    .is_ok()
}

async fn kubectl(seed: ServedSeed) -> Run {
    let kubectl = Kubectl::new(&seed.served).expect("kubectl");
    // An operator's kubectl has its discovery cache warm.
    kubectl.ok(&["get", "deployment", "app-deployment"]).await;
    seed.cluster.clear_requests();
    let started = Instant::now();
    let undo = kubectl
        .run(&["rollout", "undo", "deployment/app-deployment"])
        .await;
    let status = kubectl
        .run(&[
            "rollout",
            "status",
            "deployment/app-deployment",
            "--timeout=120s",
        ])
        .await;
    let wall = started.elapsed();
    let outcome = if undo.code == 0 && status.code == 0 {
        "rolled back".to_owned()
    } else {
        format!("failed: {}{}", undo.stderr.trim(), status.stderr.trim())
    };
    Run::of(&seed, wall, outcome)
}

async fn emergency(seed: ServedSeed, binary: &Path) -> Run {
    seed.cluster.clear_requests();
    let mut command = tokio::process::Command::new(binary);
    command
        .args(["app-deployment", "--yes", "--max-rollback-time", "120s"])
        .env("KUBECONFIG", &seed.kubeconfig)
        .stdin(std::process::Stdio::null());
    let started = Instant::now();
    let output = command.output().await.expect("running emergency-rollback");
    let wall = started.elapsed();
    let outcome = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    let run = Run::of(&seed, wall, outcome);
    assert!(
        rolled_back(&seed).await,
        "the command said: {}",
        run.outcome
    );
    run
}

/// The script in a private mount namespace with a temporary directory over `/var/log` (it
/// logs there), as the testkit's own test runs it; `None` where that cannot be done.
async fn seed_script_run(seed: ServedSeed) -> Option<Run> {
    let kubectl = Kubectl::new(&seed.served).ok()?;
    kubectl.ok(&["get", "deployment", "app-deployment"]).await;
    let logs = tempfile::tempdir().ok()?;
    let mut command = Command::new("unshare");
    command
        .args(["--mount", "--propagation", "private", "sh", "-c"])
        .arg(r#"mount --bind "$1" /var/log && shift && exec bash "$@""#)
        .arg("sh")
        .arg(logs.path())
        .arg(seed_script())
        .env("DEPLOYMENT_NAME", "app-deployment")
        .env("KUBECONFIG", kubectl.kubeconfig())
        .env("HOME", kubectl.home());
    seed.cluster.clear_requests();
    let started = Instant::now();
    let output = tokio::task::spawn_blocking(move || command.output())
        .await
        .ok()?
        .ok()?;
    let wall = started.elapsed();
    let stderr = String::from_utf8_lossy(&output.stderr);
    if stderr.contains("unshare:") || stderr.contains("mount:") {
        return None;
    }
    let last = stderr.lines().last().unwrap_or_default().trim().replace(
        &seed_script().display().to_string(),
        "emergency_rollback.sh",
    );
    let outcome = format!("exit {}: {last}", output.status.code().unwrap_or(-1));
    Some(Run::of(&seed, wall, outcome))
}

/// The run of median wall time.
fn median(mut runs: Vec<Run>) -> Run {
    runs.sort_by_key(|r| r.wall);
    let middle = runs.len() / 2;
    runs.swap_remove(middle)
}

fn row(what: &str, run: &Run, against: Option<&Run>) {
    let ratio = against.map_or(String::new(), |k| {
        format!(
            " = {:.2}× kubectl",
            run.wall.as_secs_f64() / k.wall.as_secs_f64()
        )
    });
    println!(
        "{what:<48} {:>7.2} s{ratio:<16} {:>2} reads + {} writes  ({})",
        run.wall.as_secs_f64(),
        run.reads,
        run.writes,
        run.outcome
    );
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    // (time scale, runs of each contender)
    let plan: &[(f64, usize)] = if full {
        &[(1.0, 3), (10.0, 5)]
    } else {
        &[(10.0, 1)]
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let binary = std::path::PathBuf::from(env!("CARGO_BIN_EXE_emergency-rollback"));
    runtime.block_on(async {
        for &(scale, runs) in plan {
            let mut seeds: Vec<ServedSeed> =
                futures::future::join_all((0..2 * runs + 1).map(|_| served_seed(scale)))
                    .await
                    .into_iter()
                    .map(|seed| seed.expect("the seed incident"))
                    .collect();
            if Kubectl::new(&seeds[0].served).is_err() {
                println!("emergency rollback: no kubectl on this machine");
                return;
            }
            let script = seeds.pop().expect("a cluster for the script");
            let (mut theirs, mut ours) = (Vec::new(), Vec::new());
            for (i, seed) in seeds.into_iter().enumerate() {
                if i % 2 == 0 {
                    theirs.push(kubectl(seed).await);
                } else {
                    ours.push(emergency(seed, &binary).await);
                }
            }
            let (theirs, ours) = (median(theirs), median(ours));
            let runs = if runs > 1 {
                format!(", median of {runs}")
            } else {
                String::new()
            };
            row(
                &format!("kubectl rollout undo + status, ×{scale}{runs}"),
                &theirs,
                None,
            );
            row(
                &format!("emergency-rollback --yes, ×{scale}{runs}"),
                &ours,
                Some(&theirs),
            );
            match seed_script_run(script).await {
                Some(run) => row(&format!("seed script, ×{scale}"), &run, Some(&theirs)),
                None => println!("seed script, ×{scale}: not run (needs unshare and mount)"),
            }
        }
    });
}
