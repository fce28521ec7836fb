//! What a guard does, in words on standard error as it happens.

use deployguard_core::engine::{EventKind, JournalEvent, JournalSink};

/// Prints each event a person watching needs: measurements and their reasons, decisions, steps,
/// the rollout's state, the bake and the outcome.
#[derive(Debug, Clone, Copy, Default)]
pub struct Words;

impl JournalSink for Words {
    fn record(&self, event: &JournalEvent) {
        let line = match &event.kind {
            EventKind::Measured {
                check, judgement, ..
            } => format!("{check}: {}", judgement.reason),
            EventKind::NotYet { check, reason } => format!("{check}: not yet: {reason}"),
            EventKind::Decision { decision, .. } => format!("decision: {decision}"),
            EventKind::StepStarted { index, step } => format!("step {}: {step}", index + 1),
            EventKind::StepRetrying {
                index,
                attempt,
                error,
                wait,
            } => format!(
                "step {}: attempt {attempt} failed ({error}); trying again in {:.1}s",
                index + 1,
                wait.as_secs_f64()
            ),
            EventKind::StepFailed { index, error } => format!("step {} failed: {error}", index + 1),
            EventKind::Observed { status, .. } => status.clone(),
            EventKind::Baking { duration } => format!(
                "baking: the rollout completed; judged {} more before it is promoted",
                humantime::format_duration(*duration)
            ),
            EventKind::Baked { .. } => "baked: nothing failed".to_owned(),
            EventKind::Finished { outcome } => outcome.to_string(),
            _ => return,
        };
        eprintln!("+{:>4}s {line}", event.at.as_secs());
    }
}
