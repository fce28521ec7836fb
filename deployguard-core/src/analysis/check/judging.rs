//! How a check judges one probe answer: the candidate's and the baseline's readings, by the
//! check's judge, into a [`Judgement`] that names who is at fault.

use super::{AnalysisCheck, MeasurementOutcome};
use crate::analysis::judge::{
    Judge, Judgement, Reading, VersionRef, Versions, format_p, format_value,
};
use crate::analysis::pool::{Pool, Watch};
use crate::analysis::stats::{binomial_greater, fisher_greater, mann_whitney_greater};
use crate::model::{Measurement, Observations, Sample};

/// The measurement of `metric` for `version` in `sample`.
fn series_of<'a>(
    sample: &'a Sample,
    metric: &'a str,
    version: &VersionRef,
) -> Option<&'a Measurement> {
    sample
        .series(metric)
        .find(|m| m.version().is_some_and(|v| version.answers_to(v)))
}

fn reading(version: &VersionRef, m: &Measurement) -> Option<Reading> {
    Some(Reading {
        version: version.name.clone(),
        value: m.value.filter(|v| v.is_finite())?,
        observations: m.observations.as_ref().map(Observations::count),
    })
}

impl AnalysisCheck {
    /// Judges one probe answer for the candidate and baseline of `versions`.
    ///
    /// A probe that labels versions is read per version; one that does not is read as a whole
    /// service, by the check's ranges (the comparing judges then have nothing to compare and
    /// say so: too few observations).
    pub fn judge(&self, sample: Result<&Sample, &crate::Error>, versions: &Versions) -> Judgement {
        let sample = match sample {
            Ok(sample) => sample,
            Err(err) => {
                return Judgement::bare(
                    MeasurementOutcome::Error,
                    format!("the probe could not be read: {err}"),
                );
            }
        };
        let labelled = sample.series(&self.metric).any(|m| m.version().is_some());
        let Some(candidate) = versions.candidate.as_ref().filter(|_| labelled) else {
            return self.judge_whole(sample);
        };
        let metric = &self.metric;
        let candidate_measurement = series_of(sample, metric, candidate);
        let Some((cand_m, candidate_reading)) =
            candidate_measurement.and_then(|m| Some((m, reading(candidate, m)?)))
        else {
            return Judgement::bare(
                MeasurementOutcome::NoData,
                format!("no data for {metric} on {}", candidate.name),
            );
        };
        let baseline_measurement = versions
            .baseline
            .as_ref()
            .and_then(|b| Some((b, series_of(sample, metric, b)?)));
        let baseline_reading = baseline_measurement.and_then(|(b, m)| reading(b, m));
        let mut judgement = Judgement {
            outcome: MeasurementOutcome::NoData,
            candidate: Some(candidate_reading.clone()),
            baseline: baseline_reading.clone(),
            p_value: None,
            reason: String::new(),
        };
        let value = candidate_reading.value;
        let words = |with_p: Option<f64>| {
            let mut text = format!(
                "{metric} {} on {}",
                format_value(metric, value),
                candidate_reading.version
            );
            if let Some(b) = &baseline_reading {
                text.push_str(&format!(
                    " vs {} on {}",
                    format_value(metric, b.value),
                    b.version
                ));
            }
            if let Some(p) = with_p {
                text.push_str(&format!(" ({})", format_p(p)));
            }
            text
        };
        // Whether the baseline is out of range as well: then the candidate is not the cause.
        // Out of range beyond chance, as the candidate must be to fail: a baseline whose p99 is
        // over the bound on two slow requests is not a shared cause.
        let baseline_out_of_range = baseline_measurement.is_some_and(|(_, m)| {
            m.value
                .is_some_and(|v| self.has_success_range() && !self.success.contains(v))
                && !self.breach_is_noise(m, self.judge.confidence())
        });
        // The comparing judges need a baseline and enough observations on each side; short of
        // them the answer is "too few", never a failure.
        if let Some(min) = self.judge.min_observations() {
            judgement.outcome = MeasurementOutcome::TooFew;
            if let Some(reason) = too_few(&candidate_reading, &candidate_reading, min) {
                judgement.reason = reason;
                return judgement;
            }
            let baseline_short = baseline_reading
                .as_ref()
                .and_then(|base| too_few(base, base, min));
            if baseline_reading.is_none() || baseline_short.is_some() {
                // Nothing (or too little) serves beside the candidate (a rolling update that
                // has completed, a quiet service): it alone is measured enough, so it alone
                // answers for the range — over it by more than chance allows.
                if !self.has_success_range() {
                    judgement.reason = format!(
                        "{}; {}",
                        words(None),
                        baseline_short.unwrap_or_else(|| "no baseline to compare with".into())
                    );
                    return judgement;
                }
                judgement.outcome = match self.in_ranges(value) {
                    MeasurementOutcome::Failed(_)
                        if self.breach_is_noise(cand_m, self.judge.confidence()) =>
                    {
                        MeasurementOutcome::Successful(value)
                    }
                    other => other,
                };
                let why = match baseline_short {
                    Some(short) => format!("{short} there"),
                    None => "no baseline serves".into(),
                };
                judgement.reason = format!(
                    "{}; {why}, judged by the range ({})",
                    words(None),
                    self.range_words()
                );
                return judgement;
            }
        }
        match self.judge {
            Judge::Threshold => {
                let outcome = self.in_ranges(value);
                judgement.outcome = match outcome {
                    MeasurementOutcome::Failed(v) if baseline_out_of_range => {
                        MeasurementOutcome::Shared(v)
                    }
                    other => other,
                };
                judgement.reason = words(None);
                if !matches!(judgement.outcome, MeasurementOutcome::Successful(_)) {
                    judgement.reason = format!("{}, not {}", judgement.reason, self.range_words());
                }
            }
            Judge::Compare {
                max_ratio,
                max_increase,
                ..
            } => {
                let Some(base) = baseline_reading.as_ref() else {
                    return judgement;
                };
                let allowed = [
                    max_ratio.map(|r| base.value * r),
                    max_increase.map(|d| base.value + d),
                ]
                .into_iter()
                .flatten()
                .fold(f64::NEG_INFINITY, f64::max);
                judgement.outcome = if value > allowed {
                    MeasurementOutcome::Failed(value)
                } else {
                    self.shared_or_passed(value, baseline_out_of_range)
                };
                judgement.reason = words(None);
            }
            Judge::Sequential { alpha, .. } => {
                // A value with nothing behind it to pool into e-values (a plain gauge, a
                // quantile a histogram gives without its counts): held to the range (beyond
                // chance where counts say how much chance), both versions out of it a shared
                // cause. What has counts or samples is judged by its e-values (anytime.rs).
                let out_of_range = self.has_success_range() && !self.success.contains(value);
                judgement.outcome = if !out_of_range || self.breach_is_noise(cand_m, 1.0 - alpha) {
                    MeasurementOutcome::Successful(value)
                } else if baseline_out_of_range {
                    MeasurementOutcome::Shared(value)
                } else {
                    MeasurementOutcome::Failed(value)
                };
                judgement.reason = words(None);
                if !matches!(judgement.outcome, MeasurementOutcome::Successful(_)) {
                    judgement.reason = format!(
                        "{}: over the range ({}){}",
                        judgement.reason,
                        self.range_words(),
                        if cand_m.observations.is_some() {
                            " beyond chance"
                        } else {
                            ""
                        }
                    );
                }
            }
            Judge::Statistical {
                confidence, margin, ..
            } => {
                let (Some(base), Some((_, base_m))) =
                    (baseline_reading.as_ref(), baseline_measurement)
                else {
                    return judgement;
                };
                let (p, worse_enough) = match (&cand_m.observations, &base_m.observations) {
                    (
                        Some(Observations::Proportion {
                            events: ce,
                            trials: ct,
                        }),
                        Some(Observations::Proportion {
                            events: be,
                            trials: bt,
                        }),
                    ) => (
                        fisher_greater(*ce, *ct, *be, *bt),
                        value - base.value > margin,
                    ),
                    (
                        Some(Observations::Samples { values: cv }),
                        Some(Observations::Samples { values: bv }),
                    ) => (
                        mann_whitney_greater(cv, bv).p_value,
                        median(cv) > median(bv) * (1.0 + margin),
                    ),
                    _ => {
                        judgement.outcome = MeasurementOutcome::TooFew;
                        judgement.reason = format!(
                            "{}; the probe gives no counts or samples to test",
                            words(None)
                        );
                        return judgement;
                    }
                };
                judgement.p_value = Some(p);
                let out_of_range = self.has_success_range() && !self.success.contains(value);
                let mut alone_out_of_range = false;
                judgement.outcome = if p < 1.0 - confidence && worse_enough {
                    MeasurementOutcome::Failed(value)
                } else if self.breach_is_noise(cand_m, confidence) {
                    // Over the bound on a handful of requests (1 error in 78 is 1.3%), yet not
                    // shown to fail more often than the bound allows: noise, not a finding.
                    MeasurementOutcome::Successful(value)
                } else if out_of_range && !baseline_out_of_range && worse_enough {
                    // Over the bound beyond chance, worse than the baseline by more than the
                    // margin, and the baseline within the bound: the candidate's own failure,
                    // even where the baseline's evidence is too thin to test against (a
                    // rollout that completed in seconds).
                    alone_out_of_range = true;
                    MeasurementOutcome::Failed(value)
                } else {
                    self.shared_or_passed(value, baseline_out_of_range)
                };
                judgement.reason = words(Some(p));
                if alone_out_of_range {
                    judgement.reason = format!(
                        "{}: over the range ({}) beyond chance, where the baseline is not",
                        judgement.reason,
                        self.range_words()
                    );
                }
            }
        }
        judgement
    }

    /// Judges one look of a pooled check (see [`pooled`](Self::pooled)): adds it to `pool`,
    /// then judges everything pooled and the last minute of it. A failure in either fails; a
    /// cause both versions share in either is shared; else the whole decides. Before the
    /// candidate has served, the look is judged alone (there is nothing to pool).
    pub(crate) fn judge_pooled(
        &self,
        pool: &mut Pool,
        sample: Result<&Sample, &crate::Error>,
        versions: &Versions,
    ) -> Judgement {
        let Ok(look) = sample else {
            return self.judge(sample, versions);
        };
        if let Judge::Sequential {
            alpha,
            tolerated_ratio,
            ..
        } = self.judge
        {
            let watch = Watch {
                tolerated: tolerated_ratio,
                alpha,
                max: self.success.max,
            };
            pool.add_judged(look, &self.metric, versions, Some(watch));
            if !pool.started() {
                return self.judge(sample, versions);
            }
            return self.judge_anytime(pool, versions, alpha);
        }
        pool.add_judged(look, &self.metric, versions, None);
        if !pool.started() {
            return self.judge(sample, versions);
        }
        let whole = self.judge(Ok(&pool.whole(&self.metric)), versions);
        let min = self.judge.min_observations().unwrap_or(0);
        let recent = self.judge(Ok(&pool.recent(&self.metric, versions, min)), versions);
        let said = |mut judgement: Judgement, over: &str| {
            judgement.reason = format!("{over}: {}", judgement.reason);
            judgement
        };
        const WHOLE: &str = "since the new version first served";
        const RECENT: &str = "over the last minute";
        match (whole.outcome, recent.outcome) {
            (MeasurementOutcome::Failed(_), _) => said(whole, WHOLE),
            (_, MeasurementOutcome::Failed(_)) => said(recent, RECENT),
            (MeasurementOutcome::Shared(_), _) => said(whole, WHOLE),
            (_, MeasurementOutcome::Shared(_)) => said(recent, RECENT),
            _ => said(whole, WHOLE),
        }
    }

    /// The success range in words, values as a person reads them: `at most 1.0%`.
    pub(super) fn range_words(&self) -> String {
        let v = |x: f64| format_value(&self.metric, x);
        match (self.success.min, self.success.max) {
            (Some(min), Some(max)) => format!("between {} and {}", v(min), v(max)),
            (None, Some(max)) => format!("at most {}", v(max)),
            (Some(min), None) => format!("at least {}", v(min)),
            (None, None) => "unbounded".into(),
        }
    }

    pub(super) fn has_success_range(&self) -> bool {
        self.success.min.is_some() || self.success.max.is_some()
    }

    /// Whether the candidate's error counts are over the success range's upper bound by chance
    /// alone: the exact binomial test does not show, at `confidence`, a true proportion above
    /// the bound. Only for counts (a proportion) with an upper bound.
    fn breach_is_noise(&self, candidate: &Measurement, confidence: f64) -> bool {
        let Some(max) = self.success.max else {
            return false;
        };
        let above_min = self
            .success
            .min
            .is_none_or(|min| candidate.value.is_some_and(|v| v >= min));
        match &candidate.observations {
            Some(Observations::Proportion { events, trials }) => {
                above_min && binomial_greater(*events, *trials, max) >= 1.0 - confidence
            }
            // A percentile over the bound (a p99 of 5.2 s on 200 requests is two slow
            // requests): noise unless more samples are over the bound than the percentile's
            // own tail holds, beyond what chance allows.
            Some(Observations::Samples { values }) if !values.is_empty() => {
                let Some(value) = candidate.value else {
                    return false;
                };
                let n = values.len() as u64;
                let below = values.iter().filter(|v| **v < value).count() as u64;
                let tail = (1.0 - below as f64 / n as f64).max(1.0 / n as f64);
                let over = values.iter().filter(|v| **v > max).count() as u64;
                above_min && binomial_greater(over, n, tail) >= 1.0 - confidence
            }
            _ => false,
        }
    }

    /// Not worse than the baseline: passed, unless both are out of range (a shared cause).
    fn shared_or_passed(&self, value: f64, baseline_out_of_range: bool) -> MeasurementOutcome {
        if self.has_success_range() && !self.success.contains(value) {
            if baseline_out_of_range {
                MeasurementOutcome::Shared(value)
            } else {
                // Out of range alone but not measurably worse than the baseline: a human decides.
                MeasurementOutcome::Inconclusive(value)
            }
        } else {
            MeasurementOutcome::Successful(value)
        }
    }

    /// The whole service's value against the ranges.
    fn judge_whole(&self, sample: &Sample) -> Judgement {
        let Some(value) = sample
            .get(&self.metric)
            .and_then(|m| m.value)
            .filter(|v| v.is_finite())
        else {
            return Judgement::bare(
                MeasurementOutcome::NoData,
                format!("no data for {}", self.metric),
            );
        };
        if self.judge.compares() {
            return Judgement::bare(
                MeasurementOutcome::TooFew,
                format!(
                    "{} {}: the probe does not label versions, nothing to compare",
                    self.metric,
                    format_value(&self.metric, value)
                ),
            );
        }
        let outcome = self.in_ranges(value);
        let mut reason = format!("{} {}", self.metric, format_value(&self.metric, value));
        if !matches!(outcome, MeasurementOutcome::Successful(_)) {
            reason = format!("{reason} is not {}", self.range_words());
        }
        let mut judgement = Judgement::bare(outcome, reason);
        judgement.candidate = Some(Reading {
            version: "the service".into(),
            value,
            observations: None,
        });
        judgement
    }
}

fn too_few(candidate: &Reading, baseline: &Reading, min: u64) -> Option<String> {
    for side in [candidate, baseline] {
        if let Some(count) = side.observations
            && count < min
        {
            return Some(format!(
                "too few observations on {}: {count}, {min} needed",
                side.version
            ));
        }
    }
    None
}

fn median(values: &[f64]) -> f64 {
    let mut sorted: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    if sorted.is_empty() {
        return 0.0;
    }
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    if sorted.len().is_multiple_of(2) {
        (sorted[mid - 1] + sorted[mid]) / 2.0
    } else {
        sorted[mid]
    }
}

/// An e-value as a person reads it: `0.68`, `3.1e4`.
pub(super) fn format_e(e: f64) -> String {
    if (0.01..1_000.0).contains(&e) {
        let text = format!("{e:.2}");
        text.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        format!("{e:.1e}")
    }
}
