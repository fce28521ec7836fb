//! Prometheus for deployguard: a [`HealthProbe`](deployguard_core::HealthProbe) that runs PromQL
//! instant queries against the Prometheus HTTP API (`/api/v1/query`) and turns each answer into
//! measurements labelled by version, so a check can judge the candidate against the baseline
//! from the metrics a team already keeps.
//!
//! ```no_run
//! use std::time::Duration;
//! use deployguard_core::analysis::{AnalysisCheck, Judge, Threshold};
//! use deployguard_prometheus::{PrometheusConfig, PrometheusProbe, presets};
//!
//! let config = PrometheusConfig::new("http://prometheus.monitoring:9090")?
//!     .bearer_token(std::env::var("PROM_TOKEN").unwrap_or_default())
//!     .header("X-Scope-OrgID", "team-a")?
//!     .timeout(Duration::from_secs(5));
//! let probe = PrometheusProbe::new("prometheus", config)?
//!     .with(presets::error_ratio_by_version("shop", "checkout", Duration::from_secs(60)))
//!     .with(presets::latency_by_version("shop", "checkout", 0.99, Duration::from_secs(60)));
//! let check = AnalysisCheck::builder("errors", &probe, "error_rate")
//!     .judge(Judge::statistical())
//!     .success(Threshold::at_most(0.01))
//!     .build()?;
//! # Ok::<(), deployguard_core::Error>(())
//! ```
//!
//! What an answer means: a vector becomes one measurement per series (labelled by the series'
//! `version` label, when it has one); an empty vector, or NaN, is *no data*; a scalar is one
//! value. A query error (`bad_data`, `execution`), an HTTP error, a timeout or an unreachable
//! server is an [`Error`](deployguard_core::Error) of the right kind — retryable where retrying
//! can help — never a failed measurement. Warnings in an answer reach the sample's evidence, and
//! so the journal.
//!
//! [`WebProbe`] reads health from any HTTP endpoint's JSON by JSONPath (Argo Rollouts' `web`
//! metric), with the same error kinds and secret redaction.

mod config;
mod http;
mod metrics;
mod notify;
pub mod presets;
mod probe;
mod response;
mod web;

pub use config::{Auth, PrometheusConfig};
pub use metrics::GuardMetrics;
pub use notify::WebhookNotifier;
pub use probe::{PrometheusProbe, Query, QueryShape};
/// The `prometheus-client` the metrics are registered with.
pub use prometheus_client;
pub use web::{WebProbe, WebProbeBuilder};
