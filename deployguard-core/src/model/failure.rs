//! Why a rollout fails, with the evidence that shows it.

use serde::{Deserialize, Serialize};

/// A diagnosed failure.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "snake_case")]
#[non_exhaustive]
pub enum FailureMode {
    /// An image cannot be pulled (`ErrImagePull`, `ImagePullBackOff`).
    ImagePull {
        /// The image that cannot be pulled.
        image: String,
    },
    /// A container keeps crashing (`CrashLoopBackOff`).
    CrashLoop {
        /// Restarts of the worst pod.
        restarts: u32,
    },
    /// A ConfigMap or Secret the pod needs is missing (`CreateContainerConfigError`).
    ConfigError {
        /// What is missing (`configmap "app-config"`).
        missing: String,
    },
    /// No node can take the pod (`FailedScheduling`).
    Unschedulable {
        /// The resource that is short (`cpu`, `memory`), where the scheduler names one.
        resource: Option<String>,
    },
    /// Pods run but never pass readiness.
    ReadinessFailing,
    /// A container was killed for using too much memory.
    OomKilled,
    /// The platform stopped waiting for progress.
    ProgressDeadlineExceeded,
    /// An analysis check failed.
    AnalysisFailed {
        /// The check's name.
        check: String,
    },
}

impl FailureMode {
    /// A short name for reports (`"image-pull"`).
    pub fn name(&self) -> &'static str {
        match self {
            Self::ImagePull { .. } => "image-pull",
            Self::CrashLoop { .. } => "crash-loop",
            Self::ConfigError { .. } => "config-error",
            Self::Unschedulable { .. } => "unschedulable",
            Self::ReadinessFailing => "readiness-failing",
            Self::OomKilled => "oom-killed",
            Self::ProgressDeadlineExceeded => "progress-deadline-exceeded",
            Self::AnalysisFailed { .. } => "analysis-failed",
        }
    }
}

/// A failure mode and the observations that show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Diagnosis {
    /// What fails.
    pub mode: FailureMode,
    /// Lines of evidence: pod reasons, event messages, log lines.
    pub evidence: Vec<String>,
}

impl Diagnosis {
    /// A diagnosis with its evidence.
    pub fn new(mode: FailureMode, evidence: Vec<String>) -> Self {
        Self { mode, evidence }
    }
}
