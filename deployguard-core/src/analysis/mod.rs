//! Analysis: measurements in, verdicts out. Pure; nothing here does I/O.
//!
//! An [`AnalysisCheck`] classifies each probe answer ([`MeasurementOutcome`]); a [`CheckRun`]
//! counts outcomes against the check's limits; [`Verdict::combine`] folds the checks that are not
//! dry-run into one verdict the decision reads. A check may [`judge`](AnalysisCheck::judge) the
//! candidate against the baseline ([`Judge`], with the tests of [`stats`]), and a verdict names who
//! is at fault: a failure is the candidate's, a [`Verdict::SharedCause`] is not. [`rollout_status`] is the kubectl ladder, the
//! check every rollout gets for free.

pub mod breach;
mod check;
mod judge;
mod ladder;
mod pool;
mod run;
mod schedule;
pub mod sequential;
pub mod stats;

use serde::{Deserialize, Serialize};

pub use check::{
    AnalysisCheck, AnalysisCheckBuilder, MeasurementOutcome, NoDataPolicy, SharedCausePolicy,
    Threshold,
};
pub use judge::{Judge, Judgement, Reading, VersionRef, Versions, format_value, image_tag};
pub use ladder::{RolloutStatus, rollout_status};
pub use run::{CheckRun, CheckStatus};
pub(crate) use schedule::CheckSchedule;

/// What all checks together say.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "verdict", content = "reason", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Verdict {
    /// Some check still measures, none failed.
    Running,
    /// Every check passed.
    Successful,
    /// A check failed: the candidate is at fault; abort.
    Failed(String),
    /// A check is inconclusive: pause for a human.
    Inconclusive(String),
    /// The candidate and the baseline fail alike: not the candidate's fault; pause and say so.
    SharedCause(String),
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Running => f.write_str("analysis running"),
            Self::Successful => f.write_str("analysis passed"),
            Self::Failed(why) => write!(f, "analysis failed: {why}"),
            Self::Inconclusive(why) => write!(f, "analysis inconclusive: {why}"),
            Self::SharedCause(why) => write!(f, "not the new version: {why}"),
        }
    }
}

impl Verdict {
    /// Folds check statuses into one verdict; dry-run checks are left out. Failure wins over
    /// inconclusive, inconclusive over running.
    pub fn combine<'a>(
        checks: impl IntoIterator<Item = (&'a AnalysisCheck, &'a CheckRun)>,
    ) -> Self {
        let mut verdict = Self::Successful;
        for (check, run) in checks {
            if check.dry_run {
                continue;
            }
            let next = match &run.status {
                CheckStatus::Failed(why) => {
                    return Self::Failed(format!("check {}: {why}", check.name));
                }
                // A probe that cannot be read says nothing about the version: a human looks.
                CheckStatus::Errored(why) => Self::Inconclusive(format!(
                    "check {}: {why}; the probe's errors say nothing about the new version",
                    check.name
                )),
                CheckStatus::Inconclusive(why) => {
                    Self::Inconclusive(format!("check {}: {why}", check.name))
                }
                CheckStatus::SharedCause(why) => {
                    Self::SharedCause(format!("check {}: {why}", check.name))
                }
                CheckStatus::Running => Self::Running,
                CheckStatus::Successful => Self::Successful,
            };
            verdict = match (verdict, next) {
                (Self::SharedCause(why), _) | (_, Self::SharedCause(why)) => Self::SharedCause(why),
                (Self::Inconclusive(why), _) | (_, Self::Inconclusive(why)) => {
                    Self::Inconclusive(why)
                }
                (Self::Running, _) | (_, Self::Running) => Self::Running,
                _ => Self::Successful,
            };
        }
        verdict
    }
}

#[cfg(test)]
mod tests;
