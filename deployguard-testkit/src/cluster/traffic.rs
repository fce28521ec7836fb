//! Traffic simulation: requests per second spread over a Service's ready endpoints, each pod
//! answering as its image behaves and as loaded as it is, giving error rate and latency
//! percentiles second by second — the signals an incident shows (the seed's: 15% errors,
//! p99 5.2 s while a stalled rollout leaves too few pods serving).

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use deployguard_core::{HealthProbe, Measurement, Sample};
use serde_json::Value;

use super::controllers::{Behaviours, ImageBehaviour};
use super::{FakeCluster, Shared, lock};

/// How much traffic a Service gets and how much each pod can take.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrafficConfig {
    /// Requests per second sent to the Service.
    pub requests_per_second: f64,
    /// Requests per second one pod serves before it saturates.
    pub capacity_per_pod: f64,
}

impl Default for TrafficConfig {
    fn default() -> Self {
        Self {
            requests_per_second: 100.0,
            capacity_per_pod: 20.0,
        }
    }
}

/// One version's share of one simulated second: the requests its ready pods served.
#[derive(Debug, Clone, PartialEq)]
pub struct VersionSecond {
    /// The image its pods run (`app:v2.4.0`).
    pub image: String,
    /// Ready pods of this image behind the Service.
    pub ready_pods: u32,
    /// Requests its pods were sent.
    pub requests: f64,
    /// Requests its pods failed.
    pub errors: f64,
    /// Its 99th-percentile latency, in seconds.
    pub p99: f64,
}

/// One simulated second of one Service.
#[derive(Debug, Clone, PartialEq)]
pub struct TrafficSecond {
    /// When the second ended (cluster time).
    pub at: SystemTime,
    /// Requests sent.
    pub requests: f64,
    /// Requests that failed (5xx, refused, timed out).
    pub errors: f64,
    /// Median latency of answered requests, in seconds (`None`: nothing answered).
    pub p50: Option<f64>,
    /// 99th-percentile latency, in seconds.
    pub p99: Option<f64>,
    /// The same second per version (image), in image order; empty when no pod was ready.
    pub versions: Vec<VersionSecond>,
}

#[derive(Debug)]
struct ServiceTraffic {
    config: TrafficConfig,
    last: SystemTime,
    seconds: VecDeque<TrafficSecond>,
    requests_total: f64,
    errors_total: f64,
}

/// Traffic state of every Service with traffic.
#[derive(Debug, Default)]
pub(crate) struct Traffic {
    services: BTreeMap<(String, String), ServiceTraffic>,
}

/// How long the per-second history is kept.
const KEEP: usize = 3600;

/// The latency of a saturated pod: requests wait until the load balancer gives up.
const SATURATED_P99: f64 = 5.2;

impl Traffic {
    pub(crate) fn enable(
        &mut self,
        namespace: &str,
        service: &str,
        config: TrafficConfig,
        now: SystemTime,
    ) {
        self.services.insert(
            (namespace.into(), service.into()),
            ServiceTraffic {
                config,
                last: now,
                seconds: VecDeque::new(),
                requests_total: 0.0,
                errors_total: 0.0,
            },
        );
    }

    pub(crate) fn is_active(&self) -> bool {
        !self.services.is_empty()
    }

    /// Advances every Service to `now`, one simulated second at a time. `ready_pods` lists, per
    /// Service, the images of its ready endpoints.
    pub(crate) fn tick(
        &mut self,
        now: SystemTime,
        ready_images: impl Fn(&str, &str) -> Vec<String>,
        behaviours: &Behaviours,
    ) {
        for ((namespace, service), traffic) in &mut self.services {
            let elapsed = now
                .duration_since(traffic.last)
                .unwrap_or(Duration::ZERO)
                .as_secs();
            if elapsed == 0 {
                continue;
            }
            let images = ready_images(namespace, service);
            let second = simulate(traffic.config, &images, behaviours);
            for step in 1..=elapsed.min(KEEP as u64) {
                let at = traffic.last + Duration::from_secs(step);
                traffic.seconds.push_back(TrafficSecond {
                    at,
                    ..second.clone()
                });
                traffic.requests_total += second.requests;
                traffic.errors_total += second.errors;
            }
            while traffic.seconds.len() > KEEP {
                traffic.seconds.pop_front();
            }
            traffic.last += Duration::from_secs(elapsed);
        }
    }

    pub(crate) fn window(
        &self,
        namespace: &str,
        service: &str,
        since: SystemTime,
    ) -> Vec<TrafficSecond> {
        self.services
            .get(&(namespace.to_owned(), service.to_owned()))
            .map(|t| t.seconds.iter().filter(|s| s.at > since).cloned().collect())
            .unwrap_or_default()
    }

    /// Prometheus text exposition of every Service's totals and last-second latency.
    pub(crate) fn prometheus(&self) -> String {
        let mut out = String::new();
        out.push_str("# HELP deployguard_sim_requests_total Requests sent to the Service.\n# TYPE deployguard_sim_requests_total counter\n");
        for ((ns, svc), t) in &self.services {
            out.push_str(&format!(
                "deployguard_sim_requests_total{{namespace=\"{ns}\",service=\"{svc}\"}} {:.0}\n",
                t.requests_total
            ));
        }
        out.push_str("# HELP deployguard_sim_errors_total Requests that failed.\n# TYPE deployguard_sim_errors_total counter\n");
        for ((ns, svc), t) in &self.services {
            out.push_str(&format!(
                "deployguard_sim_errors_total{{namespace=\"{ns}\",service=\"{svc}\"}} {:.0}\n",
                t.errors_total
            ));
        }
        out.push_str("# HELP deployguard_sim_latency_seconds Latency over the last simulated second.\n# TYPE deployguard_sim_latency_seconds gauge\n");
        for ((ns, svc), t) in &self.services {
            if let Some(last) = t.seconds.back() {
                for (quantile, value) in [("0.5", last.p50), ("0.99", last.p99)] {
                    if let Some(value) = value {
                        out.push_str(&format!("deployguard_sim_latency_seconds{{namespace=\"{ns}\",service=\"{svc}\",quantile=\"{quantile}\"}} {value}\n"));
                    }
                }
            }
        }
        out
    }
}

/// One second of traffic over pods running `images`.
fn simulate(config: TrafficConfig, images: &[String], behaviours: &Behaviours) -> TrafficSecond {
    let requests = config.requests_per_second;
    if images.is_empty() {
        return TrafficSecond {
            at: SystemTime::UNIX_EPOCH,
            requests,
            errors: requests,
            p50: None,
            p99: None,
            versions: Vec::new(),
        };
    }
    let per_pod = requests / images.len() as f64;
    let (mut errors, mut p50, mut p99) = (0.0, 0.0f64, 0.0f64);
    let mut versions: BTreeMap<&str, VersionSecond> = BTreeMap::new();
    for image in images {
        let (base_error, base_p50, base_p99) = match behaviours.of(image) {
            ImageBehaviour::Flapping { .. } => (0.20, 0.25, 2.5),
            _ => (0.001, 0.04, 0.12),
        };
        let load = per_pod / config.capacity_per_pod.max(1.0);
        let overflow = (per_pod - config.capacity_per_pod).max(0.0);
        let pod_errors = overflow + (per_pod - overflow) * base_error;
        errors += pod_errors;
        let pod_p99 = if load >= 1.0 {
            p50 = p50.max(base_p50 * (1.0 + load));
            SATURATED_P99
        } else {
            p50 = p50.max(base_p50 * (1.0 + load / 2.0));
            base_p99 * (1.0 + load)
        };
        p99 = p99.max(pod_p99);
        let version = versions.entry(image).or_insert_with(|| VersionSecond {
            image: image.clone(),
            ready_pods: 0,
            requests: 0.0,
            errors: 0.0,
            p99: 0.0,
        });
        version.ready_pods += 1;
        version.requests += per_pod;
        version.errors += pod_errors;
        version.p99 = version.p99.max(pod_p99);
    }
    let round = |x: f64| (x * 1000.0).round() / 1000.0;
    TrafficSecond {
        at: SystemTime::UNIX_EPOCH,
        requests,
        errors: round(errors),
        p50: Some(round(p50)),
        p99: Some(round(p99)),
        versions: versions
            .into_values()
            .map(|v| VersionSecond {
                errors: round(v.errors),
                p99: round(v.p99),
                ..v
            })
            .collect(),
    }
}

/// The images of the ready endpoints of Service `namespace/service`.
pub(crate) fn ready_images(shared: &Shared, namespace: &str, service: &str) -> Vec<String> {
    let store = lock(&shared.store);
    let types = lock(&shared.types).clone();
    let (Some(endpoints_rt), Some(pods_rt)) = (
        types
            .iter()
            .find(|t| t.group.is_empty() && t.kind == "Endpoints"),
        types.iter().find(|t| t.group.is_empty() && t.kind == "Pod"),
    ) else {
        return Vec::new();
    };
    let Ok(endpoints) = store.get(endpoints_rt, namespace, service) else {
        return Vec::new();
    };
    let mut images = Vec::new();
    for subset in endpoints
        .get("subsets")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        for address in subset
            .get("addresses")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let pod_name = address
                .pointer("/targetRef/name")
                .and_then(Value::as_str)
                .unwrap_or("");
            if let Ok(pod) = store.get(pods_rt, namespace, pod_name) {
                let image = pod
                    .pointer("/spec/containers/0/image")
                    .and_then(Value::as_str)
                    .unwrap_or("");
                images.push(image.to_owned());
            }
        }
    }
    images
}

/// A [`HealthProbe`] over a Service's simulated traffic over the last `window`, named
/// `traffic:<service>`. It reports (see [`TrafficProbe::METRICS`]):
///
/// | metric | what |
/// |---|---|
/// | `error_rate` | failed requests over all requests (no data without requests) |
/// | `p99_latency_seconds` | the worst per-second p99 latency |
/// | `requests_per_second` | requests per simulated second |
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
    pub const METRICS: [&'static str; 3] =
        ["error_rate", "p99_latency_seconds", "requests_per_second"];

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
        let requests: f64 = seconds.iter().map(|s| s.requests).sum();
        let errors: f64 = seconds.iter().map(|s| s.errors).sum();
        let p99 = seconds
            .iter()
            .filter_map(|s| s.p99)
            .fold(None, |max: Option<f64>, v| {
                Some(max.map_or(v, |m| m.max(v)))
            });
        let per_second = if seconds.is_empty() {
            None
        } else {
            Some(requests / seconds.len() as f64)
        };
        let error_rate = (requests > 0.0).then(|| errors / requests);
        let measure = |name: &str, value: Option<f64>| {
            value.map_or_else(
                || Measurement::no_data(name),
                |v| Measurement::value(name, v),
            )
        };
        let measurements = vec![
            measure("error_rate", error_rate),
            measure("p99_latency_seconds", p99),
            measure("requests_per_second", per_second),
        ];
        let evidence = format!(
            "{requests:.0} requests, {errors:.0} errors over {}s to service {}/{}",
            seconds.len(),
            self.namespace,
            self.service
        );
        Ok(Sample::new(measurements, evidence))
    }
}

/// Shared handle used by the controller loop.
pub(crate) fn tick(shared: &Arc<Shared>) {
    let now = lock(&shared.store).clock.now();
    let behaviours = lock(&shared.behaviours).clone();
    let mut traffic = lock(&shared.traffic);
    if !traffic.is_active() {
        return;
    }
    traffic.tick(now, |ns, svc| ready_images(shared, ns, svc), &behaviours);
}
