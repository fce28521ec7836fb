//! [`CheckRun`]: the counters of one check over a rollout, and the status they add up to.

use serde::{Deserialize, Serialize};

use super::check::{AnalysisCheck, MeasurementOutcome, NoDataPolicy, SharedCausePolicy};
use super::judge::Judgement;

/// Where a check stands.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(tag = "status", content = "reason", rename_all = "snake_case")]
#[non_exhaustive]
pub enum CheckStatus {
    /// Still measuring.
    #[default]
    Running,
    /// Passed.
    Successful,
    /// Failed: more failed measurements than the limit.
    Failed(String),
    /// Errored: more consecutive probe errors than the limit. Not the candidate's fault: the
    /// guard pauses for a human, never rolls back for it.
    Errored(String),
    /// Inconclusive: a human must decide.
    Inconclusive(String),
    /// The candidate and the baseline fail alike: a shared cause, not the candidate's fault.
    SharedCause(String),
}

impl CheckStatus {
    /// Whether the check has finished.
    pub fn is_terminal(&self) -> bool {
        !matches!(self, Self::Running)
    }
}

/// The counters of one check. Pure: feed it outcomes, read its status.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct CheckRun {
    /// Probe answers recorded, whatever they were.
    pub evaluations: u32,
    /// Measurements counted (no data that is ignored and errors do not count).
    pub measurements: u32,
    /// No-data answers skipped under the ignore policy; they count towards `count`, so a
    /// check with a count always ends.
    pub ignored: u32,
    /// Successful measurements.
    pub successes: u32,
    /// Failed measurements.
    pub failures: u32,
    /// Inconclusive measurements.
    pub inconclusive: u32,
    /// Probe errors in a row.
    pub consecutive_errors: u32,
    /// Successes in a row.
    pub consecutive_successes: u32,
    /// The status; once terminal it does not change.
    pub status: CheckStatus,
    /// A pooled check's latest look, when it was inconclusive: what a decision point (the end
    /// of the bake) pauses on if the evidence has not decided by then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending: Option<String>,
}

impl CheckRun {
    /// Records one outcome of `check` and returns the status after it.
    pub fn record(&mut self, check: &AnalysisCheck, outcome: MeasurementOutcome) -> &CheckStatus {
        self.record_with(check, outcome, None)
    }

    /// Records a judgement of `check`: as [`record`](Self::record), with the judgement's words
    /// in the status.
    pub fn record_judgement(
        &mut self,
        check: &AnalysisCheck,
        judgement: &Judgement,
    ) -> &CheckStatus {
        self.record_with(check, judgement.outcome, Some(&judgement.reason))
    }

    fn record_with(
        &mut self,
        check: &AnalysisCheck,
        outcome: MeasurementOutcome,
        reason: Option<&str>,
    ) -> &CheckStatus {
        if self.status.is_terminal() {
            return &self.status;
        }
        self.evaluations += 1;
        match outcome {
            MeasurementOutcome::Error => {
                self.consecutive_errors += 1;
                if self.consecutive_errors > check.consecutive_error_limit {
                    self.status = CheckStatus::Errored(format!(
                        "{} consecutive errors reading {} (limit {})",
                        self.consecutive_errors, check.metric, check.consecutive_error_limit
                    ));
                }
                return &self.status;
            }
            MeasurementOutcome::NoData => match check.no_data {
                NoDataPolicy::Ignore => self.ignored += 1,
                NoDataPolicy::Pause => {
                    self.status =
                        CheckStatus::Inconclusive(format!("no data for {}", check.metric));
                    return &self.status;
                }
                NoDataPolicy::Fail => {
                    self.count_failure(check, format!("no data for {}", check.metric));
                }
            },
            MeasurementOutcome::Failed(value) => {
                let why = match reason {
                    Some(reason) => reason.to_owned(),
                    None => format!(
                        "{} = {} is not {}",
                        check.metric,
                        round(value),
                        check.success
                    ),
                };
                self.count_failure(check, why);
            }
            MeasurementOutcome::Shared(value) => match check.shared_cause {
                SharedCausePolicy::Continue => self.ignored += 1,
                SharedCausePolicy::Pause => {
                    let why = match reason {
                        Some(reason) => reason.to_owned(),
                        None => format!("{} = {}", check.metric, round(value)),
                    };
                    self.status = CheckStatus::SharedCause(format!(
                        "{why}: both versions are out of range ({}), so the cause is shared (capacity, a dependency), not the new version",
                        check.success
                    ));
                    return &self.status;
                }
            },
            MeasurementOutcome::TooFew if check.pools() => {
                // The evidence is kept and grows: not yet, never a verdict.
                self.consecutive_successes = 0;
                self.consecutive_errors = 0;
                self.pending = None;
                return &self.status;
            }
            MeasurementOutcome::Inconclusive(value) if check.pools() => {
                // Out of range, not (yet) shown worse than the baseline: the evidence grows
                // and may yet decide. Said at the decision point if it has not.
                self.consecutive_successes = 0;
                self.consecutive_errors = 0;
                self.pending = Some(format!(
                    "{} is neither passing nor failing",
                    reason.map_or_else(
                        || format!("{} = {}", check.metric, round(value)),
                        str::to_owned
                    )
                ));
                return &self.status;
            }
            MeasurementOutcome::TooFew => {
                self.measurements += 1;
                self.inconclusive += 1;
                self.consecutive_successes = 0;
                if self.inconclusive > check.inconclusive_limit {
                    self.status = CheckStatus::Inconclusive(
                        reason.unwrap_or("too few observations to judge").to_owned(),
                    );
                }
            }
            MeasurementOutcome::Inconclusive(value) => {
                self.measurements += 1;
                self.inconclusive += 1;
                self.consecutive_successes = 0;
                if self.inconclusive > check.inconclusive_limit {
                    self.status = CheckStatus::Inconclusive(format!(
                        "{} is neither passing nor failing ({} inconclusive, limit {})",
                        reason.map_or_else(
                            || format!("{} = {}", check.metric, round(value)),
                            str::to_owned
                        ),
                        self.inconclusive,
                        check.inconclusive_limit
                    ));
                }
            }
            MeasurementOutcome::Successful(_) => {
                self.measurements += 1;
                self.successes += 1;
                self.consecutive_successes += 1;
                if check.consecutive_success_limit > 0
                    && self.consecutive_successes >= check.consecutive_success_limit
                {
                    self.status = CheckStatus::Successful;
                }
            }
        }
        self.consecutive_errors = 0;
        self.pending = None;
        if !self.status.is_terminal()
            && check
                .count
                .is_some_and(|count| self.measurements + self.ignored >= count)
        {
            self.status = CheckStatus::Successful;
        }
        &self.status
    }

    fn count_failure(&mut self, check: &AnalysisCheck, why: String) {
        self.measurements += 1;
        self.failures += 1;
        self.consecutive_successes = 0;
        if self.failures > check.failure_limit {
            self.status = CheckStatus::Failed(format!(
                "{why} ({} failed, limit {})",
                self.failures, check.failure_limit
            ));
        }
    }
}

/// A measured value rounded for messages: four decimals are plenty for a verdict.
fn round(value: f64) -> f64 {
    (value * 10_000.0).round() / 10_000.0
}
