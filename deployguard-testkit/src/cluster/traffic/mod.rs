//! Traffic simulation: requests arriving at a Service, each served by one ready endpoint as a
//! mesh spreads them, each answered as that pod's image serves and as loaded as the pod is.
//! Every request belongs to a pod, a ReplicaSet (pod-template-hash) and an image, so the
//! evidence of a bad version comes from that version, and a full service shows on every
//! version alike. Arrivals, errors and latencies are drawn from a seeded generator: a run is
//! reproducible, and a judge has realistic noise to cope with.
//!
//! Pods use CPU as they serve: 5 millicores idle, plus a whole CPU at their capacity
//! ([`TrafficConfig::capacity_per_pod`]) in proportion to the requests they serve, averaged over
//! the last 30 seconds as a metrics server reports it. A HorizontalPodAutoscaler on the
//! simulated cluster scales on it.

mod export;
mod probe;
mod simulate;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use deployguard_kube_sim::rng::Rng;
use deployguard_kube_sim::{Extension, FakeCluster, ImageBehaviour, Route};

pub use probe::TrafficProbe;

use crate::controls::lock;

/// How much traffic a Service gets, how much each pod can take, and the seed of its noise.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrafficConfig {
    /// Mean requests per second sent to the Service (arrivals are Poisson around it).
    pub requests_per_second: f64,
    /// Requests per second one pod serves before it saturates; beyond it, requests fail
    /// (503 after the load balancer's timeout).
    pub capacity_per_pod: f64,
    /// The seed of arrivals, errors and latencies.
    pub seed: u64,
}

impl Default for TrafficConfig {
    fn default() -> Self {
        Self {
            requests_per_second: 100.0,
            capacity_per_pod: 20.0,
            seed: 1,
        }
    }
}

impl TrafficConfig {
    /// The same load with another seed.
    pub fn with_seed(self, seed: u64) -> Self {
        Self { seed, ..self }
    }

    /// The same pods and seed under another load, in mean requests per second.
    pub fn with_rate(self, requests_per_second: f64) -> Self {
        Self {
            requests_per_second,
            ..self
        }
    }
}

/// How a ready pod of an image answers the requests it is sent, below saturation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ServingProfile {
    /// Probability a request fails (5xx).
    pub error_rate: f64,
    /// Median latency, in seconds, of an unloaded pod.
    pub p50: f64,
    /// 99th-percentile latency, in seconds, of an unloaded pod.
    pub p99: f64,
    /// When set, the pod serves as a healthy version would for this long after it first
    /// becomes ready, and as this profile says after it (a leak, a cache that fills).
    pub errors_after: Option<Duration>,
}

impl ServingProfile {
    /// A healthy version: 0.2% errors (baseline noise), median 40 ms, p99 150 ms.
    pub const HEALTHY: Self = Self {
        error_rate: 0.002,
        p50: 0.040,
        p99: 0.150,
        errors_after: None,
    };

    /// The seed incident's bad version: 15% 503s, requests that hang to a 5.2 s p99.
    pub const SEED_BAD: Self = Self {
        error_rate: 0.15,
        p50: 0.30,
        p99: 5.2,
        errors_after: None,
    };

    /// A version that fails `error_rate` of its requests, as fast as a healthy one.
    pub fn failing(error_rate: f64) -> Self {
        Self {
            error_rate,
            ..Self::HEALTHY
        }
    }

    /// A version that answers correctly but slowly: median and tail `factor` times the healthy.
    pub fn slow(factor: f64) -> Self {
        Self {
            p50: Self::HEALTHY.p50 * factor,
            p99: Self::HEALTHY.p99 * factor,
            ..Self::HEALTHY
        }
    }
}

/// One version's share of one simulated second: the requests its ready pods served.
#[derive(Debug, Clone, PartialEq)]
pub struct VersionSecond {
    /// The image its pods run (`app:v2.4.0`).
    pub image: String,
    /// Its pods' `pod-template-hash`.
    pub hash: String,
    /// Ready pods of this version behind the Service.
    pub ready_pods: u32,
    /// Requests its pods were sent.
    pub requests: u64,
    /// Requests its pods failed.
    pub errors: u64,
    /// Its 99th-percentile latency, in seconds (0 without requests).
    pub p99: f64,
    /// The latency of each request it answered or failed, in seconds.
    pub latencies: Vec<f64>,
}

/// One simulated second of one Service.
#[derive(Debug, Clone, PartialEq)]
pub struct TrafficSecond {
    /// When the second ended (cluster time).
    pub at: SystemTime,
    /// Requests sent.
    pub requests: u64,
    /// Requests that failed (5xx, refused, timed out).
    pub errors: u64,
    /// Median latency of the requests, in seconds (`None`: no endpoint to answer).
    pub p50: Option<f64>,
    /// 99th-percentile latency, in seconds.
    pub p99: Option<f64>,
    /// The same second per version, in image order; empty when no pod was ready.
    pub versions: Vec<VersionSecond>,
}

#[derive(Debug)]
struct ServiceTraffic {
    config: TrafficConfig,
    /// Arrivals have a generator of their own, so that a guarded and an unguarded run with
    /// one seed send the same requests, however differently they are served.
    arrivals: Rng,
    outcomes: Rng,
    last: SystemTime,
    seconds: VecDeque<TrafficSecond>,
    counters: export::Counters,
}

/// Traffic state of every Service with traffic.
#[derive(Debug, Default)]
pub(crate) struct Traffic {
    services: BTreeMap<(String, String), ServiceTraffic>,
    /// When each pod was first seen ready (for profiles that start failing after a while).
    first_ready: HashMap<String, SystemTime>,
    profiles: HashMap<String, ServingProfile>,
    /// CPU each pod used, in millicores, per second of the last [`CPU_WINDOW`].
    cpu: HashMap<(String, String), VecDeque<(SystemTime, f64)>>,
    /// The end of the last second charged to any Service.
    charged_until: Option<SystemTime>,
}

/// What a pod uses serving nothing, in millicores.
const IDLE_MILLICORES: f64 = 5.0;

/// What a pod serving its whole capacity uses, in millicores.
const BUSY_MILLICORES: f64 = 1000.0;

/// The window a metrics server averages a pod's CPU over.
const CPU_WINDOW: Duration = Duration::from_secs(30);

/// How long the per-second history is kept.
const KEEP: usize = 3600;

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
                arrivals: Rng::new(config.seed),
                outcomes: Rng::new(config.seed.wrapping_mul(0x2545_F491_4F6C_DD1D) ^ 1),
                last: now,
                seconds: VecDeque::new(),
                counters: export::Counters::default(),
            },
        );
    }

    pub(crate) fn set_profile(&mut self, image: &str, profile: ServingProfile) {
        self.profiles.insert(image.into(), profile);
    }

    pub(crate) fn is_active(&self) -> bool {
        !self.services.is_empty()
    }

    /// How `image` serves: its profile, else by its kubelet behaviour (a flapping version
    /// answers badly while it is up), else healthy.
    fn profile(&self, image: &str, behaviour: impl Fn(&str) -> ImageBehaviour) -> ServingProfile {
        if let Some(profile) = self.profiles.get(image) {
            return *profile;
        }
        match behaviour(image) {
            ImageBehaviour::Flapping { .. } => ServingProfile {
                error_rate: 0.20,
                p50: 0.25,
                p99: 2.5,
                errors_after: None,
            },
            _ => ServingProfile::HEALTHY,
        }
    }

    /// Charges every Service's seconds up to `now` to the endpoints it has had since the last
    /// charge: endpoints (and applied mesh routes) only change in a controller pass, and the
    /// controllers charge traffic before each pass, so every second goes to the pods that
    /// really served it.
    pub(crate) fn tick(
        &mut self,
        now: SystemTime,
        routes: impl Fn(&str, &str) -> Vec<Route>,
        behaviour: impl Fn(&str) -> ImageBehaviour,
    ) {
        let keys: Vec<(String, String)> = self.services.keys().cloned().collect();
        for key in keys {
            let (namespace, service) = (&key.0, &key.1);
            let last = self.services[&key].last;
            let elapsed = now.duration_since(last).unwrap_or(Duration::ZERO).as_secs();
            if elapsed == 0 {
                continue;
            }
            let routed = routes(namespace, service);
            for endpoint in routed.iter().flat_map(|r| &r.endpoints) {
                self.first_ready.entry(endpoint.pod.clone()).or_insert(last);
            }
            let served: Vec<simulate::Group> = routed
                .into_iter()
                .map(|route| simulate::Group {
                    weight: route.weight,
                    endpoints: route
                        .endpoints
                        .into_iter()
                        .map(|endpoint| {
                            if endpoint.stopped {
                                // Routed to by a proxy that has not caught up, after the
                                // process stopped: every request fails.
                                return (endpoint, ServingProfile::failing(1.0));
                            }
                            let mut profile = self.profile(&endpoint.image, &behaviour);
                            if let Some(after) = profile.errors_after {
                                let since =
                                    self.first_ready.get(&endpoint.pod).copied().unwrap_or(last);
                                if last.duration_since(since).unwrap_or_default() < after {
                                    profile = ServingProfile::HEALTHY;
                                }
                            }
                            (endpoint, profile)
                        })
                        .collect(),
                })
                .collect();
            let Some(traffic) = self.services.get_mut(&key) else {
                continue;
            };
            let mut busy = Vec::new();
            for step in 1..=elapsed.min(KEEP as u64) {
                let at = traffic.last + Duration::from_secs(step);
                let requests = traffic.arrivals.poisson(traffic.config.requests_per_second);
                let (second, pods) =
                    simulate::second(traffic.config, requests, &served, &mut traffic.outcomes, at);
                traffic.counters.add(&pods);
                traffic.seconds.push_back(second);
                let capacity = traffic.config.capacity_per_pod.max(1.0);
                for pod in pods {
                    let sent = (pod.ok + pod.errors) as f64;
                    busy.push((pod.endpoint.pod, at, sent.min(capacity) / capacity));
                }
            }
            while traffic.seconds.len() > KEEP {
                traffic.seconds.pop_front();
            }
            traffic.last += Duration::from_secs(elapsed);
            let charged = traffic.last;
            self.charge_cpu(namespace, busy, charged);
        }
    }

    /// Records what each pod's share of a second cost it, and forgets what is older than the
    /// window.
    fn charge_cpu(
        &mut self,
        namespace: &str,
        busy: Vec<(String, SystemTime, f64)>,
        now: SystemTime,
    ) {
        for (pod, at, load) in busy {
            let seconds = self.cpu.entry((namespace.to_owned(), pod)).or_default();
            match seconds.back_mut() {
                // Two Services sending to one pod add up.
                Some((last, used)) if *last == at => *used += load * BUSY_MILLICORES,
                _ => seconds.push_back((at, load * BUSY_MILLICORES)),
            }
        }
        self.charged_until = self.charged_until.max(Some(now));
        let since = now.checked_sub(CPU_WINDOW).unwrap_or(now);
        self.cpu.retain(|_, seconds| {
            while seconds.front().is_some_and(|(at, _)| *at <= since) {
                seconds.pop_front();
            }
            !seconds.is_empty()
        });
    }

    /// A pod's CPU in millicores averaged over the window (or over the part of it since the
    /// pod first served), `None` for a pod that served nothing within it.
    fn pod_cpu(&self, namespace: &str, pod: &str) -> Option<i64> {
        let seconds = self.cpu.get(&(namespace.to_owned(), pod.to_owned()))?;
        let now = self.charged_until?;
        let first = seconds.front()?.0;
        let span = now
            .duration_since(first)
            .unwrap_or_default()
            .as_secs()
            .saturating_add(1)
            .min(CPU_WINDOW.as_secs());
        let used: f64 = seconds.iter().map(|(_, used)| used).sum();
        Some((IDLE_MILLICORES + used / span as f64).round() as i64)
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

    /// Prometheus text exposition of every Service's counters and histograms.
    pub(crate) fn prometheus(&self) -> String {
        export::render(
            self.services
                .iter()
                .map(|((ns, svc), t)| (ns.as_str(), svc.as_str(), &t.counters)),
        )
    }
}

/// The cluster's traffic: an [`Extension`] of the simulated server, charged before each
/// controller pass.
#[derive(Debug, Default)]
pub(crate) struct TrafficExtension(Mutex<Traffic>);

impl Extension for TrafficExtension {
    /// Charges traffic up to the cluster's now to the endpoints as they are (the controllers
    /// have not yet moved them).
    fn advance(&self, cluster: &FakeCluster) {
        if !lock(&self.0).is_active() {
            return;
        }
        let now = cluster.now();
        // Routes are read before the traffic lock is taken: one lock at a time.
        let services: Vec<(String, String)> = lock(&self.0).services.keys().cloned().collect();
        let routed: BTreeMap<(String, String), Vec<Route>> = services
            .into_iter()
            .map(|(ns, svc)| {
                let routed = cluster.routes(&ns, &svc);
                ((ns, svc), routed)
            })
            .collect();
        let mut behaviours = HashMap::new();
        for route in routed.values().flatten() {
            for endpoint in &route.endpoints {
                behaviours
                    .entry(endpoint.image.clone())
                    .or_insert_with(|| cluster.image_behaviour(&endpoint.image));
            }
        }
        lock(&self.0).tick(
            now,
            |ns, svc| {
                routed
                    .get(&(ns.to_owned(), svc.to_owned()))
                    .cloned()
                    .unwrap_or_default()
            },
            |image| {
                behaviours
                    .get(image)
                    .cloned()
                    .unwrap_or_else(|| cluster.image_behaviour(image))
            },
        );
    }

    fn wants_every_second(&self) -> bool {
        lock(&self.0).is_active()
    }

    fn pod_cpu(&self, namespace: &str, pod: &str) -> Option<i64> {
        lock(&self.0).pod_cpu(namespace, pod)
    }

    fn metrics(&self, name: &str) -> Option<String> {
        (name == "traffic").then(|| lock(&self.0).prometheus())
    }
}

/// Simulated traffic on a [`FakeCluster`]: requests sent to a Service, each served by one of
/// its ready pods as that pod's image serves. Every request belongs to a pod, a ReplicaSet and
/// an image, so the evidence of a bad version comes from that version; arrivals, errors and
/// latencies come from a seeded generator, so a run is reproducible.
pub trait SimulatedTraffic {
    /// Sends simulated traffic to Service `namespace/service` from now on (needs the
    /// controllers, which advance it second by second).
    fn enable_traffic(&self, namespace: &str, service: &str, config: TrafficConfig);

    /// How ready pods of `image` answer requests from now on (default:
    /// [`ServingProfile::HEALTHY`], or badly for a flapping image).
    fn set_serving(&self, image: &str, profile: ServingProfile);

    /// The simulated seconds of a Service's traffic within the last `window`.
    fn traffic_window(
        &self,
        namespace: &str,
        service: &str,
        window: Duration,
    ) -> Vec<TrafficSecond>;

    /// A health probe over a Service's simulated traffic.
    fn traffic_probe(&self, namespace: &str, service: &str, window: Duration) -> TrafficProbe;

    /// The traffic metrics in Prometheus text format (no series before any traffic). The cluster
    /// serves them at `/metrics/traffic` from the first use of any of these methods on.
    fn traffic_metrics(&self) -> String;
}

fn traffic_of(cluster: &FakeCluster) -> Arc<TrafficExtension> {
    cluster.extension_or_insert_with(TrafficExtension::default)
}

impl SimulatedTraffic for FakeCluster {
    fn enable_traffic(&self, namespace: &str, service: &str, config: TrafficConfig) {
        let now = self.now();
        lock(&traffic_of(self).0).enable(namespace, service, config, now);
    }

    fn set_serving(&self, image: &str, profile: ServingProfile) {
        let traffic = traffic_of(self);
        traffic.advance(self);
        lock(&traffic.0).set_profile(image, profile);
    }

    fn traffic_window(
        &self,
        namespace: &str,
        service: &str,
        window: Duration,
    ) -> Vec<TrafficSecond> {
        let now = self.now();
        let traffic = traffic_of(self);
        traffic.advance(self);
        lock(&traffic.0).window(namespace, service, now - window)
    }

    fn traffic_probe(&self, namespace: &str, service: &str, window: Duration) -> TrafficProbe {
        TrafficProbe::new(self, namespace, service, window)
    }

    fn traffic_metrics(&self) -> String {
        let traffic = traffic_of(self);
        traffic.advance(self);
        lock(&traffic.0).prometheus()
    }
}
