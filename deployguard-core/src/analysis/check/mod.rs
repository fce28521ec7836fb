//! [`AnalysisCheck`]: what to measure, how often, and what counts as passing.

use std::time::Duration;

use serde::{Deserialize, Serialize};

mod anytime;
mod judging;

use super::judge::{Judge, Versions};
use crate::error::{Error, Result};
use crate::model::Sample;

/// An inclusive range a value must fall in; either bound may be open.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Threshold {
    /// The lowest accepted value.
    pub min: Option<f64>,
    /// The highest accepted value.
    pub max: Option<f64>,
}

impl Threshold {
    /// At most `max` (an error rate, a latency).
    pub fn at_most(max: f64) -> Self {
        Self {
            min: None,
            max: Some(max),
        }
    }

    /// At least `min` (a success rate, a ready fraction).
    pub fn at_least(min: f64) -> Self {
        Self {
            min: Some(min),
            max: None,
        }
    }

    /// Between `min` and `max`.
    pub fn between(min: f64, max: f64) -> Self {
        Self {
            min: Some(min),
            max: Some(max),
        }
    }

    /// Whether `value` is in range.
    pub fn contains(&self, value: f64) -> bool {
        self.min.is_none_or(|min| value >= min) && self.max.is_none_or(|max| value <= max)
    }

    fn validate(&self, field: &str) -> Result<()> {
        for (bound, value) in [("min", self.min), ("max", self.max)] {
            if let Some(value) = value {
                if !value.is_finite() {
                    return Err(Error::invalid_input(
                        &format!("{field}.{bound}"),
                        format!("{value} is not a finite number"),
                    ));
                }
                if value < 0.0 {
                    return Err(Error::invalid_input(
                        &format!("{field}.{bound}"),
                        format!("{value} is negative"),
                    ));
                }
            }
        }
        if let (Some(min), Some(max)) = (self.min, self.max)
            && min > max
        {
            return Err(Error::invalid_input(
                field,
                format!("min {min} is greater than max {max}"),
            ));
        }
        if self.min.is_none() && self.max.is_none() {
            return Err(Error::invalid_input(field, "has neither min nor max"));
        }
        Ok(())
    }
}

impl std::fmt::Display for Threshold {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.min, self.max) {
            (Some(min), Some(max)) => write!(f, "between {min} and {max}"),
            (None, Some(max)) => write!(f, "at most {max}"),
            (Some(min), None) => write!(f, "at least {min}"),
            (None, None) => f.write_str("unbounded"),
        }
    }
}

/// What a check does when a measurement has no data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub enum NoDataPolicy {
    /// Count it as a failed measurement.
    Fail,
    /// Stop and wait for a human: no data is inconclusive.
    #[default]
    Pause,
    /// Skip it: it counts neither way.
    Ignore,
}

/// How one measurement came out.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "outcome", content = "value", rename_all = "snake_case")]
#[non_exhaustive]
pub enum MeasurementOutcome {
    /// In the success range.
    Successful(f64),
    /// Outside the failure range (or the success range, without a failure range).
    Failed(f64),
    /// Outside the success range, inside the failure range.
    Inconclusive(f64),
    /// The probe reported no data.
    NoData,
    /// The probe could not be read; not a failure.
    Error,
    /// The candidate's value is out of range, and the baseline's too: a shared cause
    /// (capacity, a dependency), not the candidate's fault.
    Shared(f64),
    /// Too few observations (requests, samples) to judge; never a failure.
    TooFew,
}

impl std::fmt::Display for MeasurementOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Successful(value) => write!(f, "passed ({})", round(*value)),
            Self::Failed(value) => write!(f, "failed ({})", round(*value)),
            Self::Inconclusive(value) => write!(f, "inconclusive ({})", round(*value)),
            Self::NoData => f.write_str("no data"),
            Self::Error => f.write_str("the probe could not be read"),
            Self::Shared(value) => write!(f, "out of range on both versions ({})", round(*value)),
            Self::TooFew => f.write_str("too few observations"),
        }
    }
}

/// A measured value as a person reads it: at most four significant decimals.
fn round(value: f64) -> String {
    let text = format!("{value:.4}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    if text.is_empty() || text == "-" {
        "0".to_owned()
    } else {
        text.to_owned()
    }
}

/// What a check does when the candidate and the baseline fail alike (a shared cause).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub enum SharedCausePolicy {
    /// Stop and say so: the rollout is not to blame, a human looks at capacity or dependencies.
    #[default]
    Pause,
    /// Keep going: the measurement counts neither way (it is journaled).
    Continue,
}

/// One analysis check: a metric of a probe, its ranges, its cadence and its limits.
///
/// Defaults follow Argo Rollouts: failure limit 0, consecutive-error limit 4, inconclusive
/// limit 0, consecutive-success limit 0 (off).
///
/// ```
/// use std::time::Duration;
/// use deployguard_core::analysis::{AnalysisCheck, Threshold};
///
/// let check = AnalysisCheck::builder("error-rate", "http", "error_rate")
///     .success(Threshold::at_most(0.01))
///     .inconclusive_within(Threshold::at_most(0.05))
///     .interval(Duration::from_secs(10))
///     .count(6)
///     .build()?;
/// assert_eq!(check.failure_limit, 0);
///
/// let err = AnalysisCheck::builder("error-rate", "http", "error_rate")
///     .success(Threshold::between(0.5, 0.1))
///     .build()
///     .unwrap_err();
/// assert_eq!(err.to_string(), "invalid input: check error-rate: success: min 0.5 is greater than max 0.1");
/// # Ok::<(), deployguard_core::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct AnalysisCheck {
    /// The check's name, unique within a guard.
    pub name: String,
    /// The name of the probe it reads.
    pub probe: String,
    /// The measurement it reads from each sample.
    pub metric: String,
    /// How the candidate is judged (default: by the ranges).
    #[serde(default = "default_judge")]
    pub judge: Judge,
    /// What a shared cause does (default: pause).
    #[serde(default)]
    pub shared_cause: SharedCausePolicy,
    /// Values here pass.
    pub success: Threshold,
    /// Values outside `success` but here are inconclusive; outside both, failed. Without it,
    /// everything outside `success` fails.
    pub failure: Option<Threshold>,
    /// Time between measurements.
    pub interval: Duration,
    /// Measurements to take; `None` runs until the rollout ends.
    pub count: Option<u32>,
    /// Wait before the first measurement.
    pub initial_delay: Duration,
    /// Failed measurements tolerated; one more fails the check.
    pub failure_limit: u32,
    /// Consecutive probe errors tolerated; one more errors the check.
    pub consecutive_error_limit: u32,
    /// Inconclusive measurements tolerated; one more pauses for a human.
    pub inconclusive_limit: u32,
    /// Consecutive successes that pass the check early; 0 is off.
    pub consecutive_success_limit: u32,
    /// What no data means.
    pub no_data: NoDataPolicy,
    /// At the start of a rollout no data is expected (the new version has served nothing
    /// yet): until the check has had a value, no data within this long of its start is "not
    /// yet", never a reason to pause or fail (default 60 s).
    #[serde(default = "default_no_data_grace", with = "grace_secs")]
    pub no_data_grace: Duration,
    /// Evaluate and journal, never act.
    pub dry_run: bool,
    /// Judge everything each version served since the candidate first served (and the last
    /// minute of it), not each look alone: the evidence grows until it is enough, and too few
    /// observations is "not yet", never a pause. The probe must report each interval's
    /// requests once (a window equal to the interval). Default off.
    #[serde(default)]
    pub pooled: bool,
}

impl AnalysisCheck {
    /// Starts a check called `name` reading `metric` from `probe` (the probe itself, or its
    /// name: see [`ProbeRef`](crate::ProbeRef)).
    pub fn builder<P: crate::ProbeRef + ?Sized>(
        name: &str,
        probe: &P,
        metric: &str,
    ) -> AnalysisCheckBuilder {
        AnalysisCheckBuilder {
            check: Self {
                name: name.into(),
                probe: probe.probe_name(),
                metric: metric.into(),
                judge: Judge::Threshold,
                shared_cause: SharedCausePolicy::default(),
                success: Threshold {
                    min: None,
                    max: None,
                },
                failure: None,
                interval: Duration::from_secs(60),
                count: None,
                initial_delay: Duration::ZERO,
                failure_limit: 0,
                consecutive_error_limit: 4,
                inconclusive_limit: 0,
                consecutive_success_limit: 0,
                no_data: NoDataPolicy::default(),
                no_data_grace: default_no_data_grace(),
                dry_run: false,
                pooled: false,
            },
        }
    }

    /// Classifies one probe answer as a whole (no versions to compare): see
    /// [`judge`](Self::judge) for the judgement per version.
    pub fn classify(&self, sample: Result<&Sample, &Error>) -> MeasurementOutcome {
        self.judge(sample, &Versions::default()).outcome
    }

    /// Where `value` falls in the check's ranges.
    pub(crate) fn in_ranges(&self, value: f64) -> MeasurementOutcome {
        if self.success.contains(value) {
            MeasurementOutcome::Successful(value)
        } else if self.failure.is_some_and(|failure| failure.contains(value)) {
            MeasurementOutcome::Inconclusive(value)
        } else {
            MeasurementOutcome::Failed(value)
        }
    }
}

/// Builds an [`AnalysisCheck`]; [`build`](Self::build) validates.
#[derive(Debug, Clone)]
pub struct AnalysisCheckBuilder {
    check: AnalysisCheck,
}

impl AnalysisCheckBuilder {
    /// How the candidate is judged: by the ranges (the default), against the baseline, or by a
    /// statistical test ([`Judge`]).
    pub fn judge(mut self, judge: Judge) -> Self {
        self.check.judge = judge;
        self
    }
    /// What a shared cause does (default: pause).
    pub fn shared_cause(mut self, policy: SharedCausePolicy) -> Self {
        self.check.shared_cause = policy;
        self
    }
    /// The success range (required by the threshold judge; for the comparing judges it is
    /// optional and tells a shared cause from a healthy service).
    pub fn success(mut self, range: Threshold) -> Self {
        self.check.success = range;
        self
    }
    /// A tolerance band: a value outside the success range but inside `range` is inconclusive
    /// (a human decides, past the inconclusive limit); beyond it, failed. With a success range
    /// of at most 1% and this at most 5%, 3% is inconclusive and 6% failed.
    pub fn inconclusive_within(mut self, range: Threshold) -> Self {
        self.check.failure = Some(range);
        self
    }

    /// The old name of [`inconclusive_within`](Self::inconclusive_within): the range it takes
    /// is where values are *inconclusive*, not where they fail.
    #[deprecated(
        since = "0.1.0",
        note = "use `inconclusive_within`: the range is the inconclusive band"
    )]
    pub fn failure(self, range: Threshold) -> Self {
        self.inconclusive_within(range)
    }
    /// Time between measurements (default 60 s).
    pub fn interval(mut self, interval: Duration) -> Self {
        self.check.interval = interval;
        self
    }
    /// Measurements to take.
    pub fn count(mut self, count: u32) -> Self {
        self.check.count = Some(count);
        self
    }
    /// Wait before the first measurement.
    pub fn initial_delay(mut self, delay: Duration) -> Self {
        self.check.initial_delay = delay;
        self
    }
    /// Failed measurements tolerated (default 0).
    pub fn failure_limit(mut self, limit: u32) -> Self {
        self.check.failure_limit = limit;
        self
    }
    /// Consecutive probe errors tolerated (default 4).
    pub fn consecutive_error_limit(mut self, limit: u32) -> Self {
        self.check.consecutive_error_limit = limit;
        self
    }
    /// Inconclusive measurements tolerated (default 0).
    pub fn inconclusive_limit(mut self, limit: u32) -> Self {
        self.check.inconclusive_limit = limit;
        self
    }
    /// Consecutive successes that pass the check early (default 0: off).
    pub fn consecutive_success_limit(mut self, limit: u32) -> Self {
        self.check.consecutive_success_limit = limit;
        self
    }
    /// What no data means (default: pause).
    pub fn no_data(mut self, policy: NoDataPolicy) -> Self {
        self.check.no_data = policy;
        self
    }
    /// How long no data at the start is "not yet" (default 60 s; zero applies the no-data
    /// policy from the first measurement).
    pub fn no_data_grace(mut self, grace: Duration) -> Self {
        self.check.no_data_grace = grace;
        self
    }
    /// Pools the evidence over the rollout (see [`AnalysisCheck::pooled`]).
    pub fn pooled(mut self, pooled: bool) -> Self {
        self.check.pooled = pooled;
        self
    }
    /// Evaluate and journal, never act.
    pub fn dry_run(mut self, dry_run: bool) -> Self {
        self.check.dry_run = dry_run;
        self
    }

    /// The check, or `InvalidInput` naming the field that is wrong.
    pub fn build(self) -> Result<AnalysisCheck> {
        self.check.validate()?;
        Ok(self.check)
    }
}

impl AnalysisCheck {
    /// Checks every field; the guard calls this again at its own `build()`, since fields are
    /// public.
    pub fn validate(&self) -> Result<()> {
        let check = self;
        let field = |name: &str| format!("check {}: {name}", check.name);
        if check.name.trim().is_empty() {
            return Err(Error::invalid_input("check name", "is empty"));
        }
        if check.metric.trim().is_empty() {
            return Err(Error::invalid_input(&field("metric"), "is empty"));
        }
        if check.judge == Judge::Threshold
            || check.success.min.is_some()
            || check.success.max.is_some()
        {
            check.success.validate(&field("success"))?;
        }
        check.validate_judge(&field("judge"))?;
        if let Some(failure) = &check.failure {
            failure.validate(&field("failure"))?;
        }
        if check.interval.is_zero() {
            return Err(Error::invalid_input(
                &field("interval"),
                "must be greater than zero",
            ));
        }
        if check.count == Some(0) {
            return Err(Error::invalid_input(&field("count"), "must be at least 1"));
        }
        Ok(())
    }
}

impl AnalysisCheck {
    fn validate_judge(&self, field: &str) -> Result<()> {
        let finite = |name: &str, value: f64| {
            if value.is_finite() && value >= 0.0 {
                Ok(())
            } else {
                Err(Error::invalid_input(
                    &format!("{field}.{name}"),
                    format!("{value} is not a finite, non-negative number"),
                ))
            }
        };
        match self.judge {
            Judge::Threshold => Ok(()),
            Judge::Compare {
                max_ratio,
                max_increase,
                ..
            } => {
                if max_ratio.is_none() && max_increase.is_none() {
                    return Err(Error::invalid_input(
                        field,
                        "a comparison needs max_ratio, max_increase or both",
                    ));
                }
                max_ratio.map_or(Ok(()), |v| finite("max_ratio", v))?;
                max_increase.map_or(Ok(()), |v| finite("max_increase", v))
            }
            Judge::Statistical {
                confidence, margin, ..
            } => {
                if !(confidence > 0.5 && confidence < 1.0) {
                    return Err(Error::invalid_input(
                        &format!("{field}.confidence"),
                        format!("{confidence} is not between 0.5 and 1 (0.99 is 99%)"),
                    ));
                }
                finite("margin", margin)
            }
            Judge::Sequential {
                alpha,
                tolerated_ratio,
                ..
            } => {
                if !(alpha > 0.0 && alpha < 0.5) {
                    return Err(Error::invalid_input(
                        &format!("{field}.alpha"),
                        format!("{alpha} is not between 0 and 0.5 (0.01 fails at e ≥ 100)"),
                    ));
                }
                if !(tolerated_ratio.is_finite() && tolerated_ratio >= 1.0) {
                    return Err(Error::invalid_input(
                        &format!("{field}.tolerated_ratio"),
                        format!("{tolerated_ratio} is not a finite ratio of at least 1"),
                    ));
                }
                Ok(())
            }
        }
    }

    /// Whether the check pools its evidence over the rollout: asked to, or judged by the
    /// sequential judge, which needs every interval.
    pub fn pools(&self) -> bool {
        self.pooled || self.judge.is_sequential()
    }
}

fn default_judge() -> Judge {
    Judge::Threshold
}

fn default_no_data_grace() -> Duration {
    Duration::from_secs(60)
}

mod grace_secs {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64())
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let seconds = f64::deserialize(d)?;
        Duration::try_from_secs_f64(seconds).map_err(serde::de::Error::custom)
    }
}
