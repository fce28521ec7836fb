//! [`PrometheusProbe`]: named PromQL queries, each answer a set of labelled measurements.

use std::collections::BTreeMap;

use async_trait::async_trait;
use deployguard_core::model::VERSION_LABEL;
use deployguard_core::{Error, HealthProbe, Measurement, Result, Sample};

use crate::config::PrometheusConfig;
use crate::http::{HttpClient, client, query};
use crate::response::{Answer, read};

/// What a query computes.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum QueryShape {
    /// One PromQL expression; each series of the answer is a measurement.
    Value {
        /// The expression.
        promql: String,
    },
    /// Two expressions counting events and trials (failed and all requests, as `increase()`
    /// over the window), joined by version: each version a proportion with its counts, which
    /// the statistical judge can test.
    Ratio {
        /// Events (errors).
        events: String,
        /// Trials (requests).
        trials: String,
    },
}

/// A named query: the metric a check reads, how it is computed, and which label of the answer
/// names the version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    /// The measurement's name (what `AnalysisCheck::builder(_, _, metric)` reads).
    pub metric: String,
    /// How it is computed.
    pub shape: QueryShape,
    /// The answer's label that names the version (default `version`).
    pub version_label: String,
}

impl Query {
    /// `metric` is the value of `promql`, one measurement per series.
    pub fn value(metric: &str, promql: &str) -> Self {
        Self {
            metric: metric.into(),
            shape: QueryShape::Value {
                promql: promql.into(),
            },
            version_label: VERSION_LABEL.into(),
        }
    }

    /// `metric` is `events / trials`, per version, with the counts.
    pub fn ratio(metric: &str, events: &str, trials: &str) -> Self {
        Self {
            metric: metric.into(),
            shape: QueryShape::Ratio {
                events: events.into(),
                trials: trials.into(),
            },
            version_label: VERSION_LABEL.into(),
        }
    }

    /// Reads the version from `label` instead of `version` (`destination_version` for Istio's
    /// metrics, `pod_template_hash`).
    pub fn version_label(mut self, label: &str) -> Self {
        self.version_label = label.into();
        self
    }
}

/// A [`HealthProbe`] over Prometheus: each sample runs every query once, at the current time
/// or at the fixed instant [`at`](Self::at) sets.
#[derive(Clone)]
pub struct PrometheusProbe {
    name: String,
    config: PrometheusConfig,
    client: HttpClient,
    queries: Vec<Query>,
    at: Option<f64>,
}

impl std::fmt::Debug for PrometheusProbe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PrometheusProbe")
            .field("name", &self.name)
            .field("config", &self.config)
            .field("queries", &self.queries)
            .field("at", &self.at)
            .finish_non_exhaustive()
    }
}

impl PrometheusProbe {
    /// A probe called `name` (how checks name it) over the Prometheus `config` points at.
    pub fn new(name: &str, config: PrometheusConfig) -> Result<Self> {
        if name.trim().is_empty() {
            return Err(Error::invalid_input("probe name", "is empty"));
        }
        Ok(Self {
            name: name.into(),
            config,
            client: client()?,
            queries: Vec::new(),
            at: None,
        })
    }

    /// Adds a query.
    pub fn with(mut self, query: Query) -> Self {
        self.queries.push(query);
        self
    }

    /// Evaluates every query at `unix_seconds` instead of now (`time=` of the API).
    pub fn at(mut self, unix_seconds: f64) -> Self {
        self.at = Some(unix_seconds);
        self
    }

    async fn run(&self, promql: &str) -> Result<Answer> {
        let (status, body) = query(&self.client, &self.config, promql, self.at).await?;
        read(status, &body, promql)
    }

    fn version_of(labels: &BTreeMap<String, String>, query: &Query) -> Option<String> {
        labels.get(&query.version_label).cloned()
    }

    async fn measure(&self, query: &Query, warnings: &mut Vec<String>) -> Result<Vec<Measurement>> {
        let label = |m: Measurement, version: Option<String>| match version {
            Some(version) => m.with_label(VERSION_LABEL, version),
            None => m,
        };
        let mut measurements = Vec::new();
        match &query.shape {
            QueryShape::Value { promql } => {
                let answer = self.run(promql).await?;
                warnings.extend(answer.warnings);
                for series in answer.series {
                    let m = match series.value {
                        Some(value) => Measurement::value(&query.metric, value),
                        None => Measurement::no_data(&query.metric),
                    };
                    measurements.push(label(m, Self::version_of(&series.labels, query)));
                }
            }
            QueryShape::Ratio { events, trials } => {
                let trials_answer = self.run(trials).await?;
                let events_answer = self.run(events).await?;
                warnings.extend(trials_answer.warnings);
                warnings.extend(events_answer.warnings);
                let events_by: BTreeMap<Option<String>, f64> = events_answer
                    .series
                    .iter()
                    .map(|s| (Self::version_of(&s.labels, query), s.value.unwrap_or(0.0)))
                    .collect();
                for series in trials_answer.series {
                    let version = Self::version_of(&series.labels, query);
                    // Counts from increase() are extrapolated floats: rounded to whole requests.
                    let trials = series.value.unwrap_or(0.0).round().max(0.0) as u64;
                    let events = events_by
                        .get(&version)
                        .copied()
                        .unwrap_or(0.0)
                        .round()
                        .clamp(0.0, trials as f64) as u64;
                    measurements.push(label(
                        Measurement::proportion(&query.metric, events, trials),
                        version,
                    ));
                }
            }
        }
        if measurements.is_empty() {
            // An empty vector: nothing matched, which is no data, never zero.
            measurements.push(Measurement::no_data(&query.metric));
        }
        Ok(measurements)
    }
}

#[async_trait]
impl HealthProbe for PrometheusProbe {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn metrics(&self) -> Vec<String> {
        self.queries.iter().map(|q| q.metric.clone()).collect()
    }

    async fn sample(&self) -> Result<Sample> {
        let mut measurements = Vec::new();
        let mut warnings = Vec::new();
        for query in &self.queries {
            measurements.extend(self.measure(query, &mut warnings).await?);
        }
        let mut evidence = format!(
            "{} quer{} to prometheus at {}",
            self.queries.len(),
            if self.queries.len() == 1 { "y" } else { "ies" },
            self.config.base_url()
        );
        if !warnings.is_empty() {
            evidence.push_str(&format!("; prometheus warns: {}", warnings.join("; ")));
        }
        Ok(Sample::new(measurements, evidence))
    }
}
