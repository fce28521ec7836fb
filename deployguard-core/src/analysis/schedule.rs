//! [`CheckSchedule`]: which check is due when, and what the checks of one phase say together.

use std::time::Duration;

use tokio::time::Instant;

use super::pool::Pool;
use super::{AnalysisCheck, CheckRun, CheckStatus, MeasurementOutcome, Verdict};

/// The analysis state of the checks that apply in one phase: each check's run so far and when
/// it is next due.
pub(crate) struct CheckSchedule {
    pub(crate) checks: Vec<AnalysisCheck>,
    pub(crate) runs: Vec<CheckRun>,
    pub(crate) due: Vec<Instant>,
    /// When the phase's checks started.
    pub(crate) started: Instant,
    /// Per check, whether it has had a value yet.
    pub(crate) seen_value: Vec<bool>,
    /// Per check, its pooled evidence (used by pooled checks only).
    pub(crate) pools: Vec<Pool>,
}

impl CheckSchedule {
    pub(crate) fn new(checks: Vec<AnalysisCheck>) -> Self {
        let now = Instant::now();
        let due = checks.iter().map(|c| now + c.initial_delay).collect();
        let runs = vec![CheckRun::default(); checks.len()];
        let seen_value = vec![false; checks.len()];
        let pools = vec![Pool::default(); checks.len()];
        Self {
            checks,
            runs,
            due,
            started: now,
            seen_value,
            pools,
        }
    }

    /// Whether `outcome` of check `index` is "not yet": no data (or too few observations)
    /// before the check ever had a value, within its grace, or while no pod of the candidate
    /// is ready — a version that serves nothing has nothing to measure; its pods are judged
    /// instead.
    pub(crate) fn not_yet(
        &mut self,
        index: usize,
        outcome: MeasurementOutcome,
        candidate_serves: bool,
    ) -> bool {
        match outcome {
            MeasurementOutcome::NoData | MeasurementOutcome::TooFew => {
                !candidate_serves
                    || (!self.seen_value[index]
                        && Instant::now() < self.started + self.checks[index].no_data_grace)
            }
            MeasurementOutcome::Error => false,
            _ => {
                self.seen_value[index] = true;
                false
            }
        }
    }

    pub(crate) fn verdict(&self) -> Verdict {
        Verdict::combine(self.checks.iter().zip(&self.runs))
    }

    /// Whether every acting check is satisfied: finished and passed, or — for a check that runs
    /// until the rollout ends — evaluated at least once, without failing, by the time the
    /// rollout is done (a no-data answer under the ignore policy counts as evaluated, a probe
    /// error does not).
    pub(crate) fn satisfied(&self, rolled_out: bool) -> bool {
        self.checks
            .iter()
            .zip(&self.runs)
            .filter(|(c, _)| !c.dry_run)
            .all(|(check, run)| match run.status {
                CheckStatus::Successful => true,
                CheckStatus::Running => {
                    check.count.is_none()
                        && check.consecutive_success_limit == 0
                        && rolled_out
                        // A probe that cannot be read now has not judged what runs now.
                        && run.consecutive_errors == 0
                        // A probe error is no evaluation: a check whose probe never answered
                        // has judged nothing. A pooled check is satisfied by its latest
                        // judgement of everything pooled: passed, on enough evidence.
                        && if check.pools() {
                            run.consecutive_successes > 0
                        } else {
                            run.measurements + run.ignored > 0
                        }
                }
                _ => false,
            })
    }

    /// Why a pooled check has not decided, when its latest look was inconclusive: what the
    /// guard pauses on at a decision point.
    pub(crate) fn pending(&self) -> Option<String> {
        self.checks
            .iter()
            .zip(&self.runs)
            .filter(|(c, r)| !c.dry_run && !r.status.is_terminal())
            .find_map(|(c, r)| {
                r.pending
                    .as_ref()
                    .map(|why| format!("check {}: {why}", c.name))
            })
    }

    pub(crate) fn next_wake(&self, poll: Duration) -> Instant {
        let pending = self
            .runs
            .iter()
            .zip(&self.due)
            .filter(|(r, _)| !r.status.is_terminal())
            .map(|(_, d)| *d);
        pending.fold(Instant::now() + poll, Instant::min)
    }
}
