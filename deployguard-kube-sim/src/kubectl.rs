//! The real `kubectl` against a served cluster, for tests: each [`Kubectl`] has its own
//! kubeconfig, home and discovery cache in a temporary directory that is removed on drop.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::ServedCluster;

/// The installed `kubectl.1.NN` beside the file `kubectl` on `PATH` resolves to (machines of
/// this project's kind ship 1.27–1.33), or `None` when there is no such binary.
pub fn kubectl_binary(minor: u32) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    let kubectl = std::env::split_paths(&path)
        .map(|dir| dir.join("kubectl"))
        .find(|candidate| candidate.is_file())?;
    let binary = std::fs::canonicalize(kubectl)
        .ok()?
        .with_file_name(format!("kubectl.1.{minor}"));
    binary.is_file().then_some(binary)
}

/// What one kubectl run printed and how it exited.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KubectlOutput {
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
    /// The exit code (-1 when killed by a signal).
    pub code: i32,
}

/// A kubectl binary bound to one served cluster.
#[derive(Debug)]
pub struct Kubectl {
    binary: PathBuf,
    home: tempfile::TempDir,
}

impl Kubectl {
    /// `kubectl` from `PATH`, talking to `served`.
    pub fn new(served: &ServedCluster) -> std::io::Result<Self> {
        Self::with_binary(PathBuf::from("kubectl"), served)
    }

    /// `kubectl.1.<minor>` (see [`kubectl_binary`]), talking to `served`.
    pub fn version(minor: u32, served: &ServedCluster) -> std::io::Result<Self> {
        let binary = kubectl_binary(minor).ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("kubectl.1.{minor} is not installed beside kubectl"),
            )
        })?;
        Self::with_binary(binary, served)
    }

    fn with_binary(binary: PathBuf, served: &ServedCluster) -> std::io::Result<Self> {
        let home = tempfile::tempdir()?;
        served.write_kubeconfig(&home.path().join("kubeconfig"))?;
        Ok(Self { binary, home })
    }

    /// The kubeconfig this kubectl uses.
    pub fn kubeconfig(&self) -> PathBuf {
        self.home.path().join("kubeconfig")
    }

    /// The temporary directory holding the kubeconfig, home and cache.
    pub fn home(&self) -> &Path {
        self.home.path()
    }

    /// A command running kubectl with `args`, its own kubeconfig, home and discovery cache
    /// (ports are reused between tests, so caches are never shared).
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(&self.binary);
        // The global flag goes first: after `--` it would be part of a container's command.
        command
            .arg("--cache-dir")
            .arg(self.home.path().join("cache"))
            .args(args)
            .env("KUBECONFIG", self.kubeconfig())
            .env("HOME", self.home.path());
        command
    }

    /// Runs kubectl with `args` off the async runtime's threads. A kubectl that cannot be
    /// started is reported as exit code -1 with the reason on stderr.
    pub async fn run(&self, args: &[&str]) -> KubectlOutput {
        let mut command = self.command(args);
        let output = tokio::task::spawn_blocking(move || command.output()).await;
        match output {
            Ok(Ok(output)) => KubectlOutput {
                stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
                stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
                code: output.status.code().unwrap_or(-1),
            },
            Ok(Err(err)) => KubectlOutput {
                stdout: String::new(),
                stderr: format!("cannot run {}: {err}", self.binary.display()),
                code: -1,
            },
            Err(err) => KubectlOutput {
                stdout: String::new(),
                stderr: format!("the kubectl task failed: {err}"),
                code: -1,
            },
        }
    }

    /// Runs kubectl with `args` and returns its stdout, for tests.
    ///
    /// # Panics
    /// When kubectl exits non-zero; the message has the arguments and kubectl's stderr.
    pub async fn ok(&self, args: &[&str]) -> String {
        let output = self.run(args).await;
        assert_eq!(output.code, 0, "kubectl {args:?} failed: {}", output.stderr);
        output.stdout
    }

    /// `kubectl rollout history deployment/<name>` as rows `"<revision> <change-cause>"`, with
    /// runs of blanks folded to one.
    pub async fn rollout_history(&self, deployment: &str) -> std::io::Result<Vec<String>> {
        let target = format!("deployment/{deployment}");
        let output = self.run(&["rollout", "history", &target]).await;
        if output.code != 0 {
            return Err(std::io::Error::other(format!(
                "kubectl rollout history exited {}: {}",
                output.code, output.stderr
            )));
        }
        Ok(history_rows(&output.stdout))
    }
}

/// The rows of `kubectl rollout history` output (after its two header lines), blanks folded.
pub fn history_rows(text: &str) -> Vec<String> {
    text.lines()
        .skip(2)
        .filter(|line| !line.trim().is_empty())
        .map(|line| line.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect()
}
