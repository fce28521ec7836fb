//! Probes as data: what each kind needs, named once and referred to by checks. The program that
//! runs a guard turns each into a probe of its backend crates through a [`ProbeResolver`].

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::duration;
use crate::error::Result;
use crate::traits::HealthProbe;

/// One probe: `{name: http, kind: prometheus, …}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "camelCase")]
#[non_exhaustive]
pub enum ProbeSpec {
    /// Queries a Prometheus server.
    Prometheus(PrometheusSpec),
    /// The ready fraction of the Deployment's pods per version.
    PodReadiness(PodReadinessSpec),
    /// The healthy fraction of AWS ALB target groups.
    AlbTargetHealth(AlbTargetHealthSpec),
    /// The simulated cluster's traffic to a Service (deployguard-testkit only).
    SimulatedTraffic(SimulatedTrafficSpec),
    /// An HTTP endpoint's JSON, read by JSONPath.
    Web(WebSpec),
}

impl ProbeSpec {
    /// The name checks refer to it by.
    pub fn name(&self) -> &str {
        match self {
            Self::Prometheus(p) => &p.name,
            Self::PodReadiness(p) => &p.name,
            Self::AlbTargetHealth(p) => &p.name,
            Self::SimulatedTraffic(p) => &p.name,
            Self::Web(p) => &p.name,
        }
    }

    /// Its kind, as the spec spells it.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Prometheus(_) => "prometheus",
            Self::PodReadiness(_) => "podReadiness",
            Self::AlbTargetHealth(_) => "albTargetHealth",
            Self::SimulatedTraffic(_) => "simulatedTraffic",
            Self::Web(_) => "web",
        }
    }
}

/// A Prometheus probe: presets for the usual metrics, or queries of your own.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[non_exhaustive]
pub struct PrometheusSpec {
    /// The probe's name.
    pub name: String,
    /// Prometheus' base URL.
    pub url: String,
    /// The environment variable holding a bearer token (never the token itself).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bearer_token_env: Option<String>,
    /// `error_rate` per version, from `http_requests_total` of a Service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_ratio: Option<ErrorRatioSpec>,
    /// A latency quantile per version, from `http_request_duration_seconds` of a Service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency: Option<LatencySpec>,
    /// Metrics of your own: metric name → PromQL returning one value.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub queries: BTreeMap<String, String>,
}

/// The error ratio preset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[non_exhaustive]
pub struct ErrorRatioSpec {
    /// The Service (its `service` label).
    pub service: String,
    /// The window each measurement covers (default: the check's interval, 1m).
    #[serde(default = "minute", with = "duration")]
    #[schemars(with = "duration::Schema")]
    pub window: Duration,
}

/// The latency preset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[non_exhaustive]
pub struct LatencySpec {
    /// The Service (its `service` label).
    pub service: String,
    /// The quantile (default 0.99).
    #[serde(default = "p99")]
    pub quantile: f64,
    /// The window each measurement covers (default 1m).
    #[serde(default = "minute", with = "duration")]
    #[schemars(with = "duration::Schema")]
    pub window: Duration,
}

/// The pod readiness probe.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[non_exhaustive]
pub struct PodReadinessSpec {
    /// The probe's name.
    pub name: String,
}

/// The ALB target health probe.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[non_exhaustive]
pub struct AlbTargetHealthSpec {
    /// The probe's name.
    pub name: String,
    /// Version label → target group (name or ARN).
    pub target_groups: BTreeMap<String, String>,
}

/// The simulated cluster's traffic probe.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[non_exhaustive]
pub struct SimulatedTrafficSpec {
    /// The probe's name.
    pub name: String,
    /// The Service whose traffic is measured.
    pub service: String,
    /// The window each measurement covers (default 1m).
    #[serde(default = "minute", with = "duration")]
    #[schemars(with = "duration::Schema")]
    pub window: Duration,
}

/// A web probe: GET (or POST `body` to) `url`, read each metric by JSONPath. A metric that
/// is an object of numbers is read per version (keys are versions); `{version}` in the URL or
/// a path asks once per version of `versions`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[non_exhaustive]
pub struct WebSpec {
    /// The probe's name.
    pub name: String,
    /// The URL (http:// or https://).
    pub url: String,
    /// A JSON body to POST (default: a GET).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// Headers whose values come from environment variables (header → variable), so no
    /// credential is written in the spec.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers_from_env: BTreeMap<String, String>,
    /// Metric name → JSONPath (`$.checks.error_rate`).
    pub metrics: BTreeMap<String, String>,
    /// The versions to ask for when the URL or a path holds `{version}`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub versions: Vec<String>,
    /// How long an answer may take (default 10s).
    #[serde(default = "ten_seconds", with = "duration")]
    #[schemars(with = "duration::Schema")]
    pub timeout: Duration,
}

fn ten_seconds() -> Duration {
    Duration::from_secs(10)
}

fn minute() -> Duration {
    Duration::from_secs(60)
}

fn p99() -> f64 {
    0.99
}

/// Turns a [`ProbeSpec`] into a probe: implemented by the program that runs the guard, which
/// has the backend crates (Prometheus, Kubernetes, AWS) and their clients. A kind it does not
/// serve is an `Unsupported` error, which the spec reports at the probe's path.
pub trait ProbeResolver: Send + Sync {
    /// The probe `spec` describes, named `spec.name()`.
    fn resolve(&self, spec: &ProbeSpec) -> Result<Arc<dyn HealthProbe>>;
}
