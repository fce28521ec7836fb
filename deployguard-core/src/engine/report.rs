//! What executing a recovery plan did, step by step: the [`Report`] a recovery returns.

use serde::{Deserialize, Serialize};

use super::plan::Step;
use crate::error::ErrorKind;

/// How one step went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", content = "detail", rename_all = "snake_case")]
#[non_exhaustive]
pub enum StepStatus {
    /// Done.
    Done,
    /// Shown, not run (dry run).
    Planned,
    /// Failed; the message says why.
    Failed(String),
    /// Not reached.
    NotRun,
}

/// One step of a report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct StepReport {
    /// The step.
    pub step: Step,
    /// How it went.
    pub status: StepStatus,
    /// Attempts made.
    pub attempts: u32,
    /// Time taken, in milliseconds when serialized.
    pub took_ms: u64,
}

/// How a plan's execution ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ExecutionOutcome {
    /// Every step done (or, in a dry run, shown).
    Completed,
    /// Step `step` failed.
    Failed {
        /// Index of the failed step.
        step: usize,
        /// The error's kind.
        kind: ErrorKind,
        /// The error.
        error: String,
    },
    /// The whole-recovery deadline passed during step `step`.
    DeadlineExceeded {
        /// Index of the step that was running.
        step: usize,
    },
}

/// What executing a plan did, step by step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
#[must_use = "a report says whether the plan was carried out"]
pub struct Report {
    /// Every step of the plan, with how it went.
    pub steps: Vec<StepReport>,
    /// How it ended.
    pub outcome: ExecutionOutcome,
    /// Whether nothing was written.
    pub dry_run: bool,
}

impl Report {
    /// Whether every step was done.
    pub fn is_complete(&self) -> bool {
        self.outcome == ExecutionOutcome::Completed
    }
}
