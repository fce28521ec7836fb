//! What a [`HealthProbe`](crate::HealthProbe) returns: named measurements, each a value or no data.

use serde::{Deserialize, Serialize};

/// One named measurement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Measurement {
    /// The metric's name (`"error_rate"`, `"p99_latency_seconds"`, `"ready_fraction"`).
    pub name: String,
    /// The value; `None` is *no data*, a verdict of its own, never zero.
    pub value: Option<f64>,
}

impl Measurement {
    /// A measured value.
    pub fn value(name: impl Into<String>, value: f64) -> Self {
        Self {
            name: name.into(),
            value: Some(value),
        }
    }

    /// No data for `name` (an empty query result, zero pods, a NaN).
    pub fn no_data(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            value: None,
        }
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

    /// The measurement called `name`. `None` when the probe did not report it at all; a
    /// reported measurement may still carry no data.
    pub fn get(&self, name: &str) -> Option<&Measurement> {
        self.measurements.iter().find(|m| m.name == name)
    }
}
