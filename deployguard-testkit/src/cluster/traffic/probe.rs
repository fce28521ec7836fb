//! [`TrafficProbe`]: a Service's simulated traffic as a health probe, per version.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use deployguard_core::{HealthProbe, Measurement, Sample};

use deployguard_kube_sim::FakeCluster;

use super::SimulatedTraffic;

/// A [`HealthProbe`] over a Service's simulated traffic over the last `window`, named
/// `traffic:<service>`. Each metric comes once for the whole service (no labels) and once per
/// version, labelled `version=<image>`, with the counts or samples behind it, so a check can
/// judge the candidate against the baseline (see [`TrafficProbe::METRICS`]):
///
/// | metric | what |
/// |---|---|
/// | `error_rate` | failed over sent requests, with the counts (no data without requests) |
/// | `latency_seconds` | the p99 latency, with every request's latency as samples |
/// | `p99_latency_seconds` | the worst per-second p99 latency |
/// | `requests_per_second` | requests per simulated second (whole service only) |
///
/// Checks take the probe itself: `AnalysisCheck::builder("error-rate", &probe, "error_rate")`.
#[derive(Debug, Clone)]
pub struct TrafficProbe {
    cluster: FakeCluster,
    namespace: String,
    service: String,
    window: Duration,
}

impl TrafficProbe {
    /// The metrics every sample reports.
    pub const METRICS: [&'static str; 4] = [
        "error_rate",
        "latency_seconds",
        "p99_latency_seconds",
        "requests_per_second",
    ];

    /// A probe of `namespace/service` over the last `window`.
    pub fn new(cluster: &FakeCluster, namespace: &str, service: &str, window: Duration) -> Self {
        Self {
            cluster: cluster.clone(),
            namespace: namespace.into(),
            service: service.into(),
            window,
        }
    }
}

#[derive(Default)]
struct Totals {
    requests: u64,
    errors: u64,
    worst_p99: Option<f64>,
    latencies: Vec<f64>,
}

impl Totals {
    fn add(&mut self, requests: u64, errors: u64, p99: Option<f64>, latencies: &[f64]) {
        self.requests += requests;
        self.errors += errors;
        if let Some(p99) = p99 {
            self.worst_p99 = Some(self.worst_p99.map_or(p99, |w: f64| w.max(p99)));
        }
        self.latencies.extend_from_slice(latencies);
    }

    fn measurements(self, version: Option<&str>) -> Vec<Measurement> {
        let label = |m: Measurement| match version {
            Some(v) => m.with_label("version", v),
            None => m,
        };
        vec![
            label(Measurement::proportion(
                "error_rate",
                self.errors,
                self.requests,
            )),
            label(Measurement::percentile(
                "latency_seconds",
                0.99,
                self.latencies,
            )),
            label(self.worst_p99.map_or_else(
                || Measurement::no_data("p99_latency_seconds"),
                |v| Measurement::value("p99_latency_seconds", v),
            )),
        ]
    }
}

#[async_trait]
impl HealthProbe for TrafficProbe {
    fn name(&self) -> String {
        format!("traffic:{}", self.service)
    }

    fn metrics(&self) -> Vec<String> {
        Self::METRICS.iter().map(|m| (*m).to_owned()).collect()
    }

    async fn sample(&self) -> deployguard_core::Result<Sample> {
        let seconds = self
            .cluster
            .traffic_window(&self.namespace, &self.service, self.window);
        let mut whole = Totals::default();
        let mut per_version: BTreeMap<String, Totals> = BTreeMap::new();
        for second in &seconds {
            let latencies: Vec<f64> = second
                .versions
                .iter()
                .flat_map(|v| v.latencies.iter().copied())
                .collect();
            whole.add(second.requests, second.errors, second.p99, &latencies);
            for v in &second.versions {
                per_version.entry(v.image.clone()).or_default().add(
                    v.requests,
                    v.errors,
                    (v.requests > 0).then_some(v.p99),
                    &v.latencies,
                );
            }
        }
        let evidence = format!(
            "{} requests, {} errors over {}s to service {}/{}{}",
            whole.requests,
            whole.errors,
            seconds.len(),
            self.namespace,
            self.service,
            per_version
                .iter()
                .map(|(image, t)| format!("; {image}: {} of {}", t.errors, t.requests))
                .collect::<String>()
        );
        let per_second =
            (!seconds.is_empty()).then(|| whole.requests as f64 / seconds.len() as f64);
        let mut measurements = whole.measurements(None);
        measurements.push(per_second.map_or_else(
            || Measurement::no_data("requests_per_second"),
            |v| Measurement::value("requests_per_second", v),
        ));
        for (image, totals) in per_version {
            measurements.extend(totals.measurements(Some(&image)));
        }
        Ok(Sample::new(measurements, evidence))
    }
}
