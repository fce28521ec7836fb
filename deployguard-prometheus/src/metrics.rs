//! [`GuardMetrics`]: the guard's own metrics, for Prometheus to scrape. A journal sink: give it
//! to each guard (`GuardBuilder::journal`) and serve the registry it was registered in.
//!
//! ```
//! use std::sync::Arc;
//! use deployguard_prometheus::GuardMetrics;
//! use deployguard_prometheus::prometheus_client::{self, registry::Registry};
//!
//! let mut registry = Registry::default();
//! let metrics = GuardMetrics::register(&mut registry);
//! // Guard::builder(..).journal(Arc::new(metrics.clone())) for each guard, then serve:
//! let mut text = String::new();
//! prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
//! assert!(text.contains("deployguard_guards_running"));
//! # let _ = Arc::new(metrics);
//! ```

use deployguard_core::analysis::MeasurementOutcome;
use deployguard_core::engine::{Decision, EventKind, GuardOutcome, JournalEvent, JournalSink};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DecisionLabels {
    decision: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MeasurementLabels {
    check: String,
    outcome: &'static str,
}

/// Counters, a gauge and histograms of what guards decided, fed by their journals. Clones share
/// the same metrics.
#[derive(Clone, Debug)]
pub struct GuardMetrics {
    decisions: Family<DecisionLabels, Counter>,
    outcomes: Family<OutcomeLabels, Counter>,
    measurements: Family<MeasurementLabels, Counter>,
    running: Gauge,
    time_to_detect: Histogram,
    recovery_duration: Histogram,
    /// When (since its guard started) the latest abort was decided, in milliseconds: the start
    /// of the recovery that follows. One guard per sink, or a recovery's duration is a guess.
    aborted_at_ms: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl GuardMetrics {
    /// Registers the metrics in `registry` (names prefixed `deployguard_`).
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = Self {
            decisions: Family::default(),
            outcomes: Family::default(),
            measurements: Family::default(),
            running: Gauge::default(),
            // 1 s to about 34 min.
            time_to_detect: Histogram::new(exponential_buckets(1.0, 2.0, 12)),
            // 0.5 s to about 17 min.
            recovery_duration: Histogram::new(exponential_buckets(0.5, 2.0, 12)),
            aborted_at_ms: Default::default(),
        };
        let sub = registry.sub_registry_with_prefix("deployguard");
        sub.register(
            "decisions",
            "Decisions guards made: advance, promote, pause, abort",
            metrics.decisions.clone(),
        );
        sub.register(
            "guard_outcomes",
            "How guard runs ended: promoted, rolled_back, paused, failed",
            metrics.outcomes.clone(),
        );
        sub.register(
            "measurements",
            "Measurements judged, by check and outcome",
            metrics.measurements.clone(),
        );
        sub.register(
            "guards_running",
            "Guards watching a rollout now",
            metrics.running.clone(),
        );
        sub.register(
            "time_to_detect_seconds",
            "From a guard's start to its decision to abort",
            metrics.time_to_detect.clone(),
        );
        sub.register(
            "recovery_duration_seconds",
            "From the decision to abort to the recovery's end",
            metrics.recovery_duration.clone(),
        );
        metrics
    }
}

impl JournalSink for GuardMetrics {
    fn record(&self, event: &JournalEvent) {
        use std::sync::atomic::Ordering;
        match &event.kind {
            EventKind::Started { .. } => {
                self.running.inc();
            }
            EventKind::Decision { decision, .. } => {
                let name = match decision {
                    Decision::Wait => return,
                    Decision::Advance => "advance",
                    Decision::Promote => "promote",
                    Decision::Abort(_) => "abort",
                    Decision::Pause(_) => "pause",
                    _ => "other",
                };
                self.decisions
                    .get_or_create(&DecisionLabels { decision: name })
                    .inc();
                if matches!(decision, Decision::Abort(_)) {
                    self.time_to_detect.observe(event.at.as_secs_f64());
                    self.aborted_at_ms
                        .store(event.at.as_millis() as u64, Ordering::Relaxed);
                }
            }
            EventKind::Measured { check, outcome, .. } => {
                let outcome = match outcome {
                    MeasurementOutcome::Successful(_) => "successful",
                    MeasurementOutcome::Failed(_) => "failed",
                    MeasurementOutcome::Inconclusive(_) => "inconclusive",
                    MeasurementOutcome::Shared(_) => "shared_cause",
                    MeasurementOutcome::NoData => "no_data",
                    MeasurementOutcome::TooFew => "too_few",
                    MeasurementOutcome::Error => "error",
                    _ => "other",
                };
                self.measurements
                    .get_or_create(&MeasurementLabels {
                        check: check.clone(),
                        outcome,
                    })
                    .inc();
            }
            EventKind::Finished { outcome } => {
                self.running.dec();
                let name = match outcome {
                    GuardOutcome::Promoted { .. } => "promoted",
                    GuardOutcome::RolledBack { .. } => {
                        let from = self.aborted_at_ms.swap(0, Ordering::Relaxed);
                        let took = (event.at.as_millis() as u64).saturating_sub(from);
                        self.recovery_duration.observe(took as f64 / 1000.0);
                        "rolled_back"
                    }
                    GuardOutcome::Paused { .. } => "paused",
                    GuardOutcome::Failed { .. } => "failed",
                    _ => "other",
                };
                self.outcomes
                    .get_or_create(&OutcomeLabels { outcome: name })
                    .inc();
            }
            _ => {}
        }
    }
}
