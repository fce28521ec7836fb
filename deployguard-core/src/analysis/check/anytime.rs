//! The sequential judge's verdict on a pooled check: its e-values, not a test of one look.
//!
//! Two tests may fail the candidate, each at half the level, so that together they keep the
//! judge's false alarms under α however often it looks: the candidate failing more often than
//! the baseline beside it (the e-process of [`sequential`](crate::analysis::sequential), with the
//! range as its floor: a candidate inside the range is not failed), and the candidate breaking
//! the range on its own (the e-detector of [`breach`](crate::analysis::breach), which also judges
//! the bake, when no baseline serves, and a version that turns bad late). Both versions breaking
//! the range is a cause they share, not the candidate's failure.

use super::judging::format_e;
use super::{AnalysisCheck, MeasurementOutcome};
use crate::analysis::judge::{Judgement, Versions, format_value};
use crate::analysis::pool::Pool;

impl AnalysisCheck {
    /// Judges everything `pool`ed by its e-values at level `alpha`.
    pub(crate) fn judge_anytime(&self, pool: &Pool, versions: &Versions, alpha: f64) -> Judgement {
        let mut judgement = self.judge(Ok(&pool.whole(&self.metric)), versions);
        const WHOLE: &str = "since the new version first served";
        let Some(candidate) = judgement.candidate.clone().filter(|_| {
            !matches!(
                judgement.outcome,
                MeasurementOutcome::NoData | MeasurementOutcome::Error
            )
        }) else {
            judgement.reason = format!("{WHOLE}: {}", judgement.reason);
            return judgement;
        };
        let compared = pool.e_value();
        let breach = pool.breach();
        if compared.is_none() && breach.is_none() {
            // Nothing to test sequentially yet, or ever (a plain value): the range decides.
            if matches!(judgement.outcome, MeasurementOutcome::TooFew) {
                judgement.outcome = MeasurementOutcome::Successful(candidate.value);
            }
            judgement.reason = format!("{WHOLE}: {}", judgement.reason);
            return judgement;
        }
        let metric = &self.metric;
        let mut words = format!(
            "{metric} {} on {}",
            format_value(metric, candidate.value),
            candidate.version
        );
        if let Some(b) = &judgement.baseline {
            words.push_str(&format!(
                " vs {} on {}",
                format_value(metric, b.value),
                b.version
            ));
        }
        let threshold = 2.0 / alpha;
        let bar = format_e(threshold);
        let range = self.range_words();
        let in_range = !self.has_success_range() || self.success.contains(candidate.value);
        let worse = compared.as_ref().is_some_and(|(e, _)| *e >= threshold);
        let (outcome, why) = match (&compared, breach) {
            (Some((e, over)), _) if worse && !in_range => (
                MeasurementOutcome::Failed(candidate.value),
                format!(
                    "worse than the baseline beyond chance (e = {} ≥ {bar} on {over}, after {} requests on {})",
                    format_e(*e),
                    candidate.observations.unwrap_or(0),
                    candidate.version
                ),
            ),
            (_, Some(b)) if b.candidate >= threshold && b.baseline >= threshold => (
                MeasurementOutcome::Shared(candidate.value),
                format!(
                    "both versions over the range ({range}) beyond chance (e = {} and {} ≥ {bar})",
                    format_e(b.candidate),
                    format_e(b.baseline)
                ),
            ),
            (_, Some(b)) if b.candidate >= threshold => (
                MeasurementOutcome::Failed(candidate.value),
                format!(
                    "over the range ({range}) beyond chance, where the baseline is not (e = {} ≥ {bar} from its minute {} on: {} of {} over the bound on {})",
                    format_e(b.candidate),
                    b.minute,
                    b.events,
                    b.trials,
                    candidate.version
                ),
            ),
            _ => {
                let mut said = Vec::new();
                if let Some((e, over)) = &compared {
                    said.push(format!(
                        "e = {} < {bar} worse than the baseline on {over}",
                        format_e(*e)
                    ));
                }
                if let Some(b) = breach {
                    said.push(format!(
                        "e = {} < {bar} over the range ({range})",
                        format_e(b.candidate)
                    ));
                }
                let mut why = if said.is_empty() {
                    "no evidence against it yet".to_owned()
                } else {
                    said.join(", ")
                };
                if worse {
                    why.push_str(&format!(
                        "; worse than the baseline beyond chance but inside the range ({range}), so not failed"
                    ));
                }
                (MeasurementOutcome::Successful(candidate.value), why)
            }
        };
        judgement.outcome = outcome;
        judgement.p_value = None;
        judgement.reason = format!("{WHOLE}: {words}: {why}");
        judgement
    }
}
