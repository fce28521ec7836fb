//! What a [`HealthProbe`](crate::HealthProbe) returns: named measurements, each a value or no data,
//! optionally labelled by version and carrying the observations behind it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The label that says which version a measurement belongs to. Its value is matched against
/// what the guard knows of each side: an image (`app:v2.4.0`), an image tag (`v2.4.0`), or a
/// fingerprint (the pod-template-hash).
pub const VERSION_LABEL: &str = "version";

/// What a value was computed from, for judges that compare two versions statistically.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Observations {
    /// `events` of `trials`: errors of requests. The value is `events / trials`.
    Proportion {
        /// Events counted (failed requests).
        events: u64,
        /// Trials counted (requests).
        trials: u64,
    },
    /// Individual observations (latencies, in seconds); the value summarises them.
    Samples {
        /// The observations.
        values: Vec<f64>,
    },
}

impl Observations {
    /// How many observations there are (trials, or samples).
    pub fn count(&self) -> u64 {
        match self {
            Self::Proportion { trials, .. } => *trials,
            Self::Samples { values } => values.len() as u64,
        }
    }
}

/// One named measurement.
///
/// ```
/// use deployguard_core::{Measurement, Observations};
///
/// let errors = Measurement::proportion("error_rate", 20, 130).with_label("version", "app:v2.4.0");
/// assert_eq!(errors.value.map(|v| (v * 1000.0).round()), Some(154.0));
/// assert_eq!(errors.version(), Some("app:v2.4.0"));
/// assert_eq!(errors.observations.as_ref().map(Observations::count), Some(130));
/// assert_eq!(Measurement::proportion("error_rate", 0, 0).value, None); // no requests: no data
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Measurement {
    /// The metric's name (`"error_rate"`, `"p99_latency_seconds"`, `"ready_fraction"`).
    pub name: String,
    /// Labels that say what was measured (`version`, `pod`); empty for a whole-service value.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// The value; `None` is *no data*, a verdict of its own, never zero.
    pub value: Option<f64>,
    /// What the value was computed from, where the probe knows it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observations: Option<Observations>,
    /// Which quantile of the samples the value is (0.99 for a p99), where the probe says: a
    /// judge of a bound on it then knows how many samples may lie beyond the bound.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quantile: Option<f64>,
}

impl Measurement {
    /// A measured value.
    pub fn value(name: impl Into<String>, value: f64) -> Self {
        Self {
            name: name.into(),
            labels: BTreeMap::new(),
            value: Some(value),
            observations: None,
            quantile: None,
        }
    }

    /// No data for `name` (an empty query result, zero pods, a NaN).
    pub fn no_data(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            labels: BTreeMap::new(),
            value: None,
            observations: None,
            quantile: None,
        }
    }

    /// `events` of `trials` (errors of requests): the value is their ratio, no data without
    /// trials.
    pub fn proportion(name: impl Into<String>, events: u64, trials: u64) -> Self {
        Self {
            name: name.into(),
            labels: BTreeMap::new(),
            value: (trials > 0).then(|| events as f64 / trials as f64),
            observations: Some(Observations::Proportion { events, trials }),
            quantile: None,
        }
    }

    /// A value `summary` computed from the samples `values` (a percentile of latencies); no data
    /// without samples.
    pub fn samples(name: impl Into<String>, summary: Option<f64>, values: Vec<f64>) -> Self {
        Self {
            name: name.into(),
            labels: BTreeMap::new(),
            value: if values.is_empty() { None } else { summary },
            observations: Some(Observations::Samples { values }),
            quantile: None,
        }
    }

    /// The `q` quantile (nearest rank) of `values`, with the values behind it: a p99 of
    /// latencies is `percentile("latency_seconds", 0.99, latencies)`.
    ///
    /// ```
    /// use deployguard_core::Measurement;
    ///
    /// let latencies: Vec<f64> = (1..=100).map(|ms| f64::from(ms) / 1000.0).collect();
    /// let p99 = Measurement::percentile("latency_seconds", 0.99, latencies);
    /// assert_eq!(p99.value, Some(0.099));
    /// assert_eq!(p99.quantile, Some(0.99));
    /// ```
    pub fn percentile(name: impl Into<String>, q: f64, mut values: Vec<f64>) -> Self {
        let summary = (!values.is_empty()).then(|| {
            values.sort_by(f64::total_cmp);
            let rank = ((q * values.len() as f64).ceil() as usize).clamp(1, values.len());
            values[rank - 1]
        });
        Self {
            quantile: Some(q),
            ..Self::samples(name, summary, values)
        }
    }

    /// Adds the label `key = value`.
    pub fn with_label(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.labels.insert(key.into(), value.into());
        self
    }

    /// The version this measurement belongs to (its [`VERSION_LABEL`]).
    pub fn version(&self) -> Option<&str> {
        self.labels.get(VERSION_LABEL).map(String::as_str)
    }
}

/// One sample of a probe: measurements plus evidence text for the journal.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Sample {
    /// The measurements, by name.
    pub measurements: Vec<Measurement>,
    /// What the probe saw, in words (the query, the pods counted).
    pub evidence: String,
}

impl Sample {
    /// A sample of measurements with evidence.
    pub fn new(measurements: Vec<Measurement>, evidence: impl Into<String>) -> Self {
        Self {
            measurements,
            evidence: evidence.into(),
        }
    }

    /// The measurement called `name`: the one without a version label if there is one (the
    /// whole service), else the first. `None` when the probe did not report it at all; a
    /// reported measurement may still carry no data.
    pub fn get(&self, name: &str) -> Option<&Measurement> {
        let mut named = self.measurements.iter().filter(|m| m.name == name);
        let first = named.clone().next();
        named.find(|m| m.version().is_none()).or(first)
    }

    /// Every measurement called `name`, whatever its labels.
    pub fn series<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Measurement> + 'a {
        self.measurements.iter().filter(move |m| m.name == name)
    }
}
