//! The journal: what the guard observed, decided and did, with times — the raw material of the
//! incident report.

use super::decide::{Decision, Phase};
use super::markers::EarlierRecovery;
use super::outcome::GuardOutcome;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::plan::Step;
use crate::analysis::{Judgement, MeasurementOutcome, Verdict};

/// One journal entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JournalEvent {
    /// Time since the guard started (tokio's clock), in milliseconds when serialized.
    #[serde(with = "millis")]
    pub at: Duration,
    /// What happened.
    #[serde(flatten)]
    pub kind: EventKind,
}

/// What happened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
#[non_exhaustive]
pub enum EventKind {
    /// A guard started watching a deployment.
    Started {
        /// The deployment (`deployment default/web`).
        target: String,
        /// Its strategy.
        strategy: super::strategy::StrategyKind,
    },
    /// A rollout observation.
    Observed {
        /// The kubectl rollout-status message.
        status: String,
        /// Ready over desired, when anything is desired.
        healthy_fraction: Option<f64>,
    },
    /// One measurement of a check.
    Measured {
        /// The check.
        check: String,
        /// How it came out.
        outcome: MeasurementOutcome,
        /// What was compared, and why, in words.
        judgement: Judgement,
        /// Whether the check is dry-run (journaled, never acted on).
        dry_run: bool,
    },
    /// A check had nothing to judge yet (no data or too few observations at the start of a
    /// rollout, or a candidate with no ready pod): measured again at its next interval.
    NotYet {
        /// The check.
        check: String,
        /// What it found, in words.
        reason: String,
    },
    /// The combined verdict changed.
    Verdict {
        /// The verdict.
        verdict: Verdict,
    },
    /// A decision other than "keep observing".
    Decision {
        /// What was decided.
        decision: Decision,
        /// The phase it was decided in.
        phase: Phase,
    },
    /// Another actor holds the deployment's lock: this one waits for it.
    WaitingForLock {
        /// Who holds it.
        holder: String,
    },
    /// A recovery marker left for a revision that no longer runs was found and cleared.
    StaleMarkerCleared {
        /// What it said.
        marker: EarlierRecovery,
    },
    /// A recovery plan was made.
    Planned {
        /// The steps.
        steps: Vec<Step>,
        /// Whether it will only be shown.
        dry_run: bool,
    },
    /// A plan step started.
    StepStarted {
        /// Its index in the plan.
        index: usize,
        /// The step.
        step: Step,
    },
    /// A plan step finished.
    StepFinished {
        /// Its index in the plan.
        index: usize,
        /// How long it took.
        #[serde(with = "millis")]
        took: Duration,
        /// How many attempts it took.
        attempts: u32,
    },
    /// An attempt at a plan step failed in a way another attempt may not: it is tried again
    /// after `wait`.
    StepRetrying {
        /// Its index in the plan.
        index: usize,
        /// The attempt that failed (1 for the first).
        attempt: u32,
        /// Why it failed.
        error: String,
        /// How long until the next attempt.
        #[serde(with = "millis")]
        wait: Duration,
    },
    /// A plan step failed for good.
    StepFailed {
        /// Its index in the plan.
        index: usize,
        /// Why.
        error: String,
    },
    /// The rollout completed; the guard judges the new version for `duration` more before it
    /// promotes.
    Baking {
        /// How long the bake lasts.
        #[serde(with = "millis")]
        duration: Duration,
    },
    /// The bake ended with nothing failed.
    Baked {
        /// How long it lasted.
        #[serde(with = "millis")]
        duration: Duration,
    },
    /// The guard ended.
    Finished {
        /// How.
        outcome: GuardOutcome,
    },
}

/// Where journal events go.
pub trait JournalSink: fmt::Debug + Send + Sync + 'static {
    /// Records one event. Must not block: it is called from the guard's loop.
    fn record(&self, event: &JournalEvent);
}

/// Keeps events in memory; clones share them.
#[derive(Debug, Clone, Default)]
pub struct MemoryJournal {
    events: Arc<Mutex<Vec<JournalEvent>>>,
}

impl MemoryJournal {
    /// An empty journal.
    pub fn new() -> Self {
        Self::default()
    }

    /// Every event so far.
    pub fn events(&self) -> Vec<JournalEvent> {
        self.events
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl JournalSink for MemoryJournal {
    fn record(&self, event: &JournalEvent) {
        self.events
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(event.clone());
    }
}

/// Sends events to `tracing` (target `deployguard::journal`): what was observed and measured
/// at DEBUG, decisions, verdicts, steps and outcomes at INFO, failures at WARN; the event's
/// kind as the `kind` field and the whole event as JSON in `event`.
///
/// Every guard and recovery already writes its journal here, whatever sink it was given; use
/// it directly where events are made outside one.
#[derive(Debug, Clone, Copy, Default)]
pub struct TracingJournal;

impl JournalSink for TracingJournal {
    fn record(&self, event: &JournalEvent) {
        let at_ms = event.at.as_millis() as u64;
        let value = serde_json::to_value(&event.kind).unwrap_or_default();
        let kind = value
            .get("event")
            .and_then(serde_json::Value::as_str)
            .unwrap_or("event")
            .to_owned();
        let text = value.to_string();
        match &event.kind {
            EventKind::StepFailed { .. }
            | EventKind::Finished {
                outcome: GuardOutcome::Failed { .. },
            } => {
                tracing::warn!(target: "deployguard::journal", at_ms, kind, event = %text, "{kind}")
            }
            EventKind::Observed { .. } | EventKind::Measured { .. } | EventKind::NotYet { .. } => {
                tracing::debug!(target: "deployguard::journal", at_ms, kind, event = %text, "{kind}")
            }
            _ => {
                tracing::info!(target: "deployguard::journal", at_ms, kind, event = %text, "{kind}")
            }
        }
    }
}

/// The sink a guard writes to: `tracing` always, and the sinks its user gave.
#[derive(Debug, Clone)]
pub(crate) struct Traced(pub(crate) Vec<Arc<dyn JournalSink>>);

impl JournalSink for Traced {
    fn record(&self, event: &JournalEvent) {
        TracingJournal.record(event);
        for sink in &self.0 {
            sink.record(event);
        }
    }
}

mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_millis() as u64)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_millis)
    }
}
