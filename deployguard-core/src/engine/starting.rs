//! Patience from the workload: a pod that is starting is not failing.
//!
//! How long the candidate's pods may take to become ready comes from what the workload declares
//! (its probes, `minReadySeconds`, `progressDeadlineSeconds`) and what it has shown (how long the
//! stable version's pods took). Within that, a pod that is not ready is *starting*; only hard
//! evidence (see [`diagnose`](super::diagnose)) or the budget running out makes it *failing*.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::model::{PodState, RolloutSnapshot};

/// How long pods of the current revision may take to become ready, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct StartBudget {
    /// How long a start is expected to take: the longest of the declared start and the time the
    /// stable version's pods took. A running app that still answers its readiness probe with an
    /// error past it is failing.
    pub expected: Duration,
    /// How long a pod may stay unready, answering nothing, before it is failing: the platform's
    /// progress deadline (or the guard's `unready_after`), never less than `expected`.
    pub budget: Duration,
    /// Where the budget comes from, in words (`progressDeadlineSeconds`).
    pub budget_from: String,
    /// Where the expectation comes from, in words.
    pub expected_from: String,
}

/// Kubernetes' default `progressDeadlineSeconds`: what a budget is when the workload says
/// nothing.
const DEFAULT_PROGRESS_DEADLINE: Duration = Duration::from_secs(600);

impl StartBudget {
    /// The budget of `snapshot`'s current revision; `unready_after` replaces the platform's
    /// progress deadline when given (a guard's setting).
    pub fn of(snapshot: &RolloutSnapshot, unready_after: Option<Duration>) -> Self {
        let declared = snapshot.patience.declared_start;
        let stable = snapshot
            .pods
            .iter()
            .filter(|p| p.revision.is_some() && p.revision != snapshot.current_revision)
            .filter_map(|p| p.ready_after)
            .max();
        let (expected, expected_from) = match stable {
            Some(shown) if shown > declared => (
                shown,
                format!("the stable version's pods became ready in {}", secs(shown)),
            ),
            _ => (declared, format!("its probes declare {}", secs(declared))),
        };
        let (budget, budget_from) = match (unready_after, snapshot.patience.progress_deadline) {
            (Some(limit), _) => (limit, "the guard's unready_after".to_owned()),
            (None, Some(deadline)) => (deadline, "progressDeadlineSeconds".to_owned()),
            (None, None) => (
                DEFAULT_PROGRESS_DEADLINE,
                "Kubernetes' default progress deadline".to_owned(),
            ),
        };
        Self {
            expected,
            budget: budget.max(expected),
            budget_from,
            expected_from,
        }
    }

    /// What `pod` is, by this budget: ready, starting, or failing (and why).
    pub fn judge(&self, pod: &PodState) -> PodProgress {
        if pod.ready {
            return PodProgress::Ready;
        }
        let answered = pod.app_answered_unready();
        match pod.age {
            Some(age) if answered && age >= self.expected => PodProgress::Failing(format!(
                "pod {}: its app answers the readiness probe with an error {} after it was created, past the {} a start takes ({}): {}",
                pod.name,
                secs(age),
                secs(self.expected),
                self.expected_from,
                pod.probe_failure.as_deref().unwrap_or_default()
            )),
            Some(age) if age >= self.budget => PodProgress::Failing(format!(
                "pod {}: not ready {} after it was created, past its {} budget ({})",
                pod.name,
                secs(age),
                secs(self.budget),
                self.budget_from
            )),
            // Age unknown (a backend that cannot tell): an app that answers with an error is
            // failing; one that answers nothing is starting.
            None if answered => PodProgress::Failing(format!(
                "pod {}: {}",
                pod.name,
                pod.probe_failure.as_deref().unwrap_or_default()
            )),
            age => PodProgress::Starting(age),
        }
    }
}

/// One pod, by its start budget.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PodProgress {
    /// Ready.
    Ready,
    /// Not ready, within its budget (how long it has existed, where known).
    Starting(Option<Duration>),
    /// Not ready past its budget, or its running app answers with an error: the evidence.
    Failing(String),
}

/// The current revision's pods that are still starting, within their budget.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Starting {
    /// How many pods are starting.
    pub pods: usize,
    /// How long the oldest of them has existed, where known.
    pub oldest: Option<Duration>,
    /// The budget they are within.
    pub budget: StartBudget,
}

impl Starting {
    /// The current revision's starting pods in `snapshot`, by `budget`; `None` when none is.
    pub fn of(snapshot: &RolloutSnapshot, budget: &StartBudget) -> Option<Self> {
        let ages: Vec<Option<Duration>> = current_pods(snapshot)
            .filter(|p| p.waiting_reason.is_none() || is_creating(p))
            .filter_map(|p| match budget.judge(p) {
                PodProgress::Starting(age) => Some(age),
                _ => None,
            })
            .collect();
        (!ages.is_empty()).then(|| Self {
            pods: ages.len(),
            oldest: ages.iter().flatten().max().copied(),
            budget: budget.clone(),
        })
    }
}

impl fmt::Display for Starting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pods = if self.pods == 1 { "pod" } else { "pods" };
        write!(f, "starting: {} {pods} of the new version", self.pods)?;
        if let Some(oldest) = self.oldest {
            write!(
                f,
                ", the oldest {} of a {} budget ({})",
                secs(oldest),
                secs(self.budget.budget),
                self.budget.budget_from
            )?;
        } else {
            write!(
                f,
                " within a {} budget ({})",
                secs(self.budget.budget),
                self.budget.budget_from
            )?;
        }
        Ok(())
    }
}

/// Pods of the current revision (every pod when the revision is unknown).
pub(crate) fn current_pods(snapshot: &RolloutSnapshot) -> impl Iterator<Item = &PodState> {
    snapshot
        .pods
        .iter()
        .filter(|p| snapshot.current_revision.is_none() || p.revision == snapshot.current_revision)
}

/// Whether a waiting pod is only being created (its image pulled, its sandbox made): starting.
pub(crate) fn is_creating(pod: &PodState) -> bool {
    matches!(
        pod.waiting_reason.as_deref(),
        Some("ContainerCreating" | "PodInitializing")
    )
}

/// A duration as a person reads it: `38 s`, `4 min 10 s`.
pub(crate) fn secs(d: Duration) -> String {
    let s = d.as_secs();
    match (s / 60, s % 60) {
        (0, s) => format!("{s} s"),
        (m, 0) => format!("{m} min"),
        (m, s) => format!("{m} min {s} s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Patience, RevisionId};

    fn snapshot(pods: Vec<PodState>, declared: u64, deadline: Option<u64>) -> RolloutSnapshot {
        let mut s = RolloutSnapshot::new(3);
        s.current_revision = Some(RevisionId(2));
        s.pods = pods;
        s.patience = Patience::new(
            Duration::from_secs(declared),
            deadline.map(Duration::from_secs),
        );
        s
    }

    const REFUSED: &str = "Readiness probe failed: Get \"http://10.244.0.9:8080/healthz\": dial tcp 10.244.0.9:8080: connect: connection refused";
    const ANSWERED: &str = "Readiness probe failed: HTTP probe failed with statuscode: 503";

    #[test]
    fn a_pod_that_answers_nothing_is_starting_until_the_progress_deadline() {
        let young = PodState::running("new-a", RevisionId(2), false)
            .aged(Duration::from_secs(90))
            .with_probe_failure(REFUSED);
        let s = snapshot(vec![young.clone()], 15, Some(600));
        let budget = StartBudget::of(&s, None);
        assert_eq!(budget.budget, Duration::from_secs(600));
        assert_eq!(
            budget.judge(&young),
            PodProgress::Starting(Some(Duration::from_secs(90)))
        );
        assert_eq!(
            Starting::of(&s, &budget).unwrap().to_string(),
            "starting: 1 pod of the new version, the oldest 1 min 30 s of a 10 min budget (progressDeadlineSeconds)"
        );
        let old = young.aged(Duration::from_secs(601));
        assert!(
            matches!(budget.judge(&old), PodProgress::Failing(why) if why.contains("past its 10 min budget"))
        );
    }

    #[test]
    fn a_running_app_that_answers_with_an_error_fails_once_a_start_should_be_over() {
        let answering = PodState::running("new-a", RevisionId(2), false)
            .aged(Duration::from_secs(10))
            .with_probe_failure(ANSWERED);
        let mut stable = PodState::running("old-a", RevisionId(1), true);
        stable.ready_after = Some(Duration::from_secs(40));
        let s = snapshot(vec![answering.clone(), stable], 15, None);
        let budget = StartBudget::of(&s, None);
        // The stable version showed a start takes 40 s: the new one gets as long.
        assert_eq!(budget.expected, Duration::from_secs(40));
        assert!(matches!(budget.judge(&answering), PodProgress::Starting(_)));
        let later = answering.aged(Duration::from_secs(41));
        let PodProgress::Failing(why) = budget.judge(&later) else {
            panic!("not failing")
        };
        assert!(
            why.contains("stable version's pods became ready in 40 s"),
            "{why}"
        );
    }

    #[test]
    fn the_guard_setting_replaces_the_deadline_but_never_undercuts_the_expected_start() {
        let s = snapshot(vec![], 120, Some(600));
        let budget = StartBudget::of(&s, Some(Duration::from_secs(30)));
        assert_eq!(budget.budget, Duration::from_secs(120));
        assert_eq!(budget.budget_from, "the guard's unready_after");
    }
}
