//! Running the installed kubectl binaries against a served cluster.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Command;

use deployguard_testkit::cluster::ServedCluster;

/// The installed `kubectl.1.NN` binaries sit beside the file `kubectl` resolves to.
pub fn kubectl_binary(minor: u32) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let kubectl = std::env::split_paths(&path)
        .map(|dir| dir.join("kubectl"))
        .find(|candidate| candidate.is_file())
        .expect("kubectl on PATH (the machine ships kubectl 1.27-1.33)");
    let resolved = std::fs::canonicalize(kubectl).unwrap();
    let binary = resolved.with_file_name(format!("kubectl.1.{minor}"));
    assert!(binary.is_file(), "{} is missing", binary.display());
    binary
}

pub struct Kubectl {
    pub binary: PathBuf,
    pub home: tempfile::TempDir,
}

pub struct Output {
    pub stdout: String,
    pub stderr: String,
    pub code: i32,
}

impl Kubectl {
    pub fn new(minor: u32, served: &ServedCluster) -> Self {
        let home = tempfile::tempdir().unwrap();
        served
            .write_kubeconfig(&home.path().join("kubeconfig"))
            .unwrap();
        Self {
            binary: kubectl_binary(minor),
            home,
        }
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(&self.binary);
        // Each test gets its own discovery cache: ports are reused between tests.
        command
            .args(args)
            .env("KUBECONFIG", self.home.path().join("kubeconfig"))
            .env("HOME", self.home.path())
            .arg("--cache-dir")
            .arg(self.home.path().join("cache"));
        command
    }

    pub async fn run(&self, args: &[&str]) -> Output {
        let mut command = self.command(args);
        let output = tokio::task::spawn_blocking(move || command.output())
            .await
            .unwrap()
            .unwrap();
        Output {
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
            code: output.status.code().unwrap_or(-1),
        }
    }

    pub async fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args).await;
        assert_eq!(out.code, 0, "kubectl {args:?} failed: {}", out.stderr);
        out.stdout
    }
}

/// Waits (real time: real clients talk to a served cluster) until `ready` holds, up to 60 s.
pub async fn until(what: &str, mut ready: impl FnMut() -> bool) {
    for _ in 0..1200 {
        if ready() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}
