//! Judges: how a check turns a labelled sample into an outcome that names who is at fault —
//! the candidate alone, the baseline too (a shared cause: capacity, a dependency), or nobody.

use serde::{Deserialize, Serialize};

use super::check::MeasurementOutcome;
use crate::model::Revision;

/// How a check judges the candidate. For the comparing judges, higher values are worse (error
/// rates, latencies).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "judge", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Judge {
    /// The candidate's value against the check's success (and failure) ranges. When the probe
    /// labels versions and the baseline is outside the success range too, the cause is shared,
    /// not the candidate's.
    Threshold,
    /// The candidate's value against the baseline's: it fails when it is above the baseline's
    /// by more than every bound given (`max_ratio` times it, `max_increase` above it).
    Compare {
        /// How many times the baseline's value the candidate's may be.
        max_ratio: Option<f64>,
        /// How far above the baseline's value the candidate's may be.
        max_increase: Option<f64>,
        /// Observations (requests, samples) each side needs; fewer is "too few", never a failure.
        min_observations: u64,
    },
    /// A statistical test, as Kayenta judges a canary: Fisher's exact test on error counts,
    /// Mann-Whitney U on latency samples. The candidate fails when it is worse with
    /// `confidence` (0.99: p < 0.01) *and* by more than `margin` — an absolute difference of
    /// proportions, or a relative increase of the median sample — so that a large sample does
    /// not turn a harmless difference into a rollback.
    Statistical {
        /// The confidence the candidate is worse (between 0.5 and 1).
        confidence: f64,
        /// How much worse is still acceptable.
        margin: f64,
        /// Observations each side needs; fewer is "too few", never a failure.
        min_observations: u64,
    },
    /// An anytime-valid sequential test (see [`sequential`](super::sequential)): an e-process
    /// over every interval both versions served since the candidate first served — errors, or
    /// for samples (latencies) requests slower than the baseline's median, 90th and 99th
    /// percentiles — that fails the candidate when it passes `1/alpha`. Its guarantee holds
    /// however often the guard looks: a healthy candidate is failed in at most `alpha` of
    /// rollouts. The check's range is a floor (a candidate inside it is not failed) and both
    /// versions out of it are a shared cause. Implies a pooled check.
    Sequential {
        /// The false-alarm bound over the whole rollout (0.01: fail at e ≥ 100).
        alpha: f64,
        /// How many times the baseline's rate the candidate's may be (1: no worse).
        tolerated_ratio: f64,
        /// Observations the candidate needs before it is judged at all.
        min_observations: u64,
    },
}

impl Judge {
    /// The sequential judge at α = 0.01, tolerating 1.5 times the baseline's rate, 50
    /// observations before a verdict.
    pub fn sequential() -> Self {
        Self::Sequential {
            alpha: 0.01,
            tolerated_ratio: 1.5,
            min_observations: 50,
        }
    }

    /// Whether this is the sequential judge (whose checks pool their evidence).
    pub fn is_sequential(&self) -> bool {
        matches!(self, Self::Sequential { .. })
    }

    /// The statistical judge at 99% confidence, margin 0.01, 50 observations a side.
    pub fn statistical() -> Self {
        Self::Statistical {
            confidence: 0.99,
            margin: 0.01,
            min_observations: 50,
        }
    }

    /// How sure a comparing judge must be that the candidate is worse (0.99 for the ranges and
    /// the comparison, which state none).
    pub fn confidence(&self) -> f64 {
        match self {
            Self::Statistical { confidence, .. } => *confidence,
            Self::Sequential { alpha, .. } => 1.0 - alpha,
            _ => 0.99,
        }
    }

    /// Whether this judge compares the candidate with the baseline.
    pub fn compares(&self) -> bool {
        self.min_observations().is_some()
    }

    /// The observations each side needs, for a comparing judge.
    pub fn min_observations(&self) -> Option<u64> {
        match self {
            Self::Threshold => None,
            Self::Compare {
                min_observations, ..
            }
            | Self::Statistical {
                min_observations, ..
            }
            | Self::Sequential {
                min_observations, ..
            } => Some(*min_observations),
        }
    }
}

/// One side of a comparison: the version's name as a person reads it (its image) and every name
/// a probe may label it with.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub struct VersionRef {
    /// How reports name it (`app:v2.4.0`).
    pub name: String,
    /// Labels that mean this version: images, image tags, the fingerprint.
    pub aliases: Vec<String>,
}

impl VersionRef {
    /// A version known by `name` and `aliases`.
    pub fn new(name: impl Into<String>, aliases: Vec<String>) -> Self {
        Self {
            name: name.into(),
            aliases,
        }
    }

    /// The version a revision runs: named by its first image, answering to each image, each
    /// image's tag and the fingerprint.
    pub fn of_revision(revision: &Revision) -> Self {
        let mut aliases = vec![revision.fingerprint.as_str().to_owned()];
        for image in &revision.images {
            aliases.push(image.clone());
            if let Some(tag) = image_tag(image) {
                aliases.push(tag.to_owned());
            }
        }
        let name = revision
            .images
            .first()
            .cloned()
            .unwrap_or_else(|| revision.fingerprint.to_string());
        Self { name, aliases }
    }

    /// Whether a measurement labelled `label` belongs to this version.
    pub fn answers_to(&self, label: &str) -> bool {
        self.name == label || self.aliases.iter().any(|a| a == label)
    }
}

/// The tag of an image reference (`registry:5000/app:v2.4.0` → `v2.4.0`), the label a
/// mesh or an exporter usually names a version by; `None` without one (a registry port is not
/// a tag).
///
/// ```
/// use deployguard_core::analysis::image_tag;
///
/// assert_eq!(image_tag("registry:5000/app:v2.4.0"), Some("v2.4.0"));
/// assert_eq!(image_tag("registry:5000/app"), None);
/// ```
pub fn image_tag(image: &str) -> Option<&str> {
    let (_, tag) = image.rsplit_once(':')?;
    (!tag.contains('/')).then_some(tag)
}

/// The two versions a guard compares: the candidate it watches, and the baseline it would roll
/// back to (or the stable side of a canary or blue-green).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Versions {
    /// The version being rolled out.
    pub candidate: Option<VersionRef>,
    /// The version it is compared with.
    pub baseline: Option<VersionRef>,
}

impl Versions {
    /// The candidate and the baseline.
    pub fn new(candidate: Option<VersionRef>, baseline: Option<VersionRef>) -> Self {
        Self {
            candidate,
            baseline,
        }
    }
}

/// One version's reading of a metric.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Reading {
    /// The version, as reports name it.
    pub version: String,
    /// Its value.
    pub value: f64,
    /// How many observations the value stands on, where known.
    pub observations: Option<u64>,
}

/// A check's judgement of one sample: the outcome, the readings it compared and why, in words.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Judgement {
    /// The outcome.
    pub outcome: MeasurementOutcome,
    /// The candidate's reading (or the whole service's, when the probe does not label versions).
    pub candidate: Option<Reading>,
    /// The baseline's reading, when compared.
    pub baseline: Option<Reading>,
    /// The statistical test's p-value, when one was run.
    pub p_value: Option<f64>,
    /// Why, as a person writes it: `error_rate 15.3% on app:v2.4.0 vs 0.4% on app:v2.3.1 (p < 0.001)`.
    pub reason: String,
}

impl Judgement {
    pub(crate) fn bare(outcome: MeasurementOutcome, reason: String) -> Self {
        Self {
            outcome,
            candidate: None,
            baseline: None,
            p_value: None,
            reason,
        }
    }
}

/// A value as a person reads it: rates in percent, seconds with a unit, else four decimals.
pub fn format_value(metric: &str, value: f64) -> String {
    let metric = metric.to_ascii_lowercase();
    if metric.contains("rate") || metric.contains("ratio") || metric.contains("fraction") {
        let percent = value * 100.0;
        if percent != 0.0 && percent.abs() < 0.1 {
            format!("{percent:.2}%")
        } else {
            format!("{percent:.1}%")
        }
    } else if metric.contains("second") || metric.contains("latency") {
        if value < 1.0 {
            format!("{:.0} ms", value * 1000.0)
        } else {
            format!("{value:.2} s")
        }
    } else {
        let text = format!("{value:.4}");
        text.trim_end_matches('0').trim_end_matches('.').to_owned()
    }
}

pub(crate) fn format_p(p: f64) -> String {
    if p < 0.001 {
        "p < 0.001".to_owned()
    } else {
        format!("p = {p:.3}")
    }
}
