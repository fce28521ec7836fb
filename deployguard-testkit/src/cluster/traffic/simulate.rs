//! One simulated second: arrivals spread over the ready endpoints, each request answered by
//! its pod.

use std::collections::BTreeMap;
use std::time::SystemTime;

use deployguard_kube_sim::Endpoint;

use super::{ServingProfile, TrafficConfig, TrafficSecond, VersionSecond};
use deployguard_kube_sim::rng::Rng;

/// What one pod served in one second, for the exported counters.
#[derive(Debug, Clone)]
pub(crate) struct PodSecond {
    pub(crate) endpoint: Endpoint,
    pub(crate) ok: u64,
    pub(crate) errors: u64,
    pub(crate) latencies: Vec<f64>,
}

/// The latency of a request the load balancer gave up on.
const TIMEOUT: f64 = 5.2;

/// z of the 99th percentile of a standard normal.
const Z99: f64 = 2.326_347_874;

/// Where a share of a Service's requests goes: a mesh route's destination (or, without a mesh
/// route, the whole Service) and its ready endpoints.
#[derive(Debug, Clone)]
pub(crate) struct Group {
    /// The share, relative to the other groups' weights.
    pub(crate) weight: u64,
    /// Its ready endpoints, each with how its image serves.
    pub(crate) endpoints: Vec<(Endpoint, ServingProfile)>,
}

/// One second of `config`'s traffic, `requests` arriving, split over `groups` by weight (each
/// request drawn on its own when there are several) and spread over each group's endpoints. A
/// group without endpoints fails its requests at once, as a proxy with no healthy upstream
/// does.
pub(crate) fn second(
    config: TrafficConfig,
    requests: u64,
    groups: &[Group],
    rng: &mut Rng,
    at: SystemTime,
) -> (TrafficSecond, Vec<PodSecond>) {
    if groups.iter().all(|g| g.endpoints.is_empty()) {
        // Nothing ready: every request is refused.
        let second = TrafficSecond {
            at,
            requests,
            errors: requests,
            p50: None,
            p99: None,
            versions: Vec::new(),
        };
        return (second, Vec::new());
    }
    let mut shares = vec![0u64; groups.len()];
    let total: u64 = groups.iter().map(|g| g.weight).sum();
    match groups {
        [_] => shares[0] = requests,
        _ if total == 0 => {}
        _ => {
            for _ in 0..requests {
                let mut pick = (rng.unit() * total as f64) as u64;
                for (share, group) in shares.iter_mut().zip(groups) {
                    if pick < group.weight {
                        *share += 1;
                        break;
                    }
                    pick -= group.weight;
                }
            }
        }
    }
    let mut unrouted = requests - shares.iter().sum::<u64>();
    let mut pods = Vec::new();
    for (group, share) in groups.iter().zip(shares) {
        if group.endpoints.is_empty() {
            unrouted += share;
        } else if share > 0 {
            spread(config, share, &group.endpoints, rng, &mut pods);
        }
    }
    let mut all_latencies: Vec<f64> = pods
        .iter()
        .flat_map(|p| p.latencies.iter().copied())
        .collect();
    let mut versions: BTreeMap<(&str, &str), VersionSecond> = BTreeMap::new();
    for pod in &pods {
        let version = versions
            .entry((&pod.endpoint.image, &pod.endpoint.hash))
            .or_insert_with(|| VersionSecond {
                image: pod.endpoint.image.clone(),
                hash: pod.endpoint.hash.clone(),
                ready_pods: 0,
                requests: 0,
                errors: 0,
                p99: 0.0,
                latencies: Vec::new(),
            });
        version.ready_pods += 1;
        version.requests += pod.ok + pod.errors;
        version.errors += pod.errors;
        version.latencies.extend_from_slice(&pod.latencies);
    }
    let versions = versions
        .into_values()
        .map(|mut v| {
            v.p99 = quantile(&mut v.latencies.clone(), 0.99).unwrap_or(0.0);
            v
        })
        .collect();
    let errors = pods.iter().map(|p| p.errors).sum::<u64>() + unrouted;
    let second = TrafficSecond {
        at,
        requests,
        errors,
        p50: quantile(&mut all_latencies.clone(), 0.5),
        p99: quantile(&mut all_latencies, 0.99),
        versions,
    };
    (second, pods)
}

/// `requests` over `endpoints` by a balanced spread (a mesh's least-request, kube-proxy over
/// many connections): each pod gets its share, the remainder to pods picked at random; each
/// request answered as its pod's image serves and as loaded as the pod is.
fn spread(
    config: TrafficConfig,
    requests: u64,
    endpoints: &[(Endpoint, ServingProfile)],
    rng: &mut Rng,
    pods: &mut Vec<PodSecond>,
) {
    let n = endpoints.len() as u64;
    let offset = rng.below(endpoints.len()) as u64;
    for (i, (endpoint, profile)) in endpoints.iter().enumerate() {
        let extra = u64::from((i as u64 + n - offset) % n < requests % n);
        let sent = requests / n + extra;
        let capacity = config.capacity_per_pod.max(1.0);
        let load = sent as f64 / capacity;
        let served = sent.min(capacity.floor() as u64);
        let overflow = sent - served;
        // Queueing slows a busy pod down before it saturates.
        let slowdown = 1.0 + load.min(1.0).powi(2);
        let sigma = (profile.p99 / profile.p50).max(1.0).ln() / Z99;
        let mut pod = PodSecond {
            endpoint: endpoint.clone(),
            ok: 0,
            errors: overflow,
            latencies: Vec::with_capacity(sent as usize),
        };
        for _ in 0..served {
            let latency = (profile.p50 * slowdown * (sigma * rng.normal()).exp()).min(TIMEOUT);
            if rng.unit() < profile.error_rate {
                pod.errors += 1;
            } else {
                pod.ok += 1;
            }
            pod.latencies.push(latency);
        }
        pod.latencies
            .extend(std::iter::repeat_n(TIMEOUT, overflow as usize));
        pods.push(pod);
    }
}

/// The `q` quantile (nearest rank) of `values`.
pub(crate) fn quantile(values: &mut [f64], q: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let rank = ((q * values.len() as f64).ceil() as usize).clamp(1, values.len());
    Some(values[rank - 1])
}
