//! The Prometheus exposition of simulated traffic, as a service behind a mesh exports it:
//! request counters by response code and latency histograms, labelled by namespace, service,
//! pod, version (the image tag) and pod-template-hash, with the counter and histogram
//! conventions (`_total`, `_bucket{le=…}`, `_sum`, `_count`) a real Prometheus scrapes.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::simulate::PodSecond;

/// Histogram bucket bounds, in seconds: the Prometheus client libraries' defaults.
pub(crate) const BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

#[derive(Debug, Clone, Default)]
struct Series {
    ok: u64,
    errors: u64,
    /// Cumulative counts per bucket bound, then +Inf.
    buckets: [u64; BUCKETS.len() + 1],
    sum: f64,
}

/// Counters of one Service since its traffic started, per (pod, image, hash).
#[derive(Debug, Default)]
pub(crate) struct Counters {
    series: BTreeMap<(String, String, String), Series>,
}

impl Counters {
    pub(crate) fn add(&mut self, pods: &[PodSecond]) {
        for pod in pods {
            let e = &pod.endpoint;
            let series = self
                .series
                .entry((e.pod.clone(), e.image.clone(), e.hash.clone()))
                .or_default();
            series.ok += pod.ok;
            series.errors += pod.errors;
            for latency in &pod.latencies {
                series.sum += latency;
                for (i, bound) in BUCKETS.iter().enumerate() {
                    if latency <= bound {
                        series.buckets[i] += 1;
                    }
                }
                series.buckets[BUCKETS.len()] += 1;
            }
        }
    }
}

/// The tag of `image` (`app:v2.4.0` → `v2.4.0`), or the image when it has none.
fn tag(image: &str) -> &str {
    deployguard_core::analysis::image_tag(image).unwrap_or(image)
}

pub(crate) fn render<'a>(
    services: impl Iterator<Item = (&'a str, &'a str, &'a Counters)>,
) -> String {
    let services: Vec<_> = services.collect();
    let mut out = String::new();
    out.push_str("# HELP http_requests_total Requests served, by response code.\n");
    out.push_str("# TYPE http_requests_total counter\n");
    for (ns, svc, counters) in &services {
        for ((pod, image, hash), s) in &counters.series {
            let labels = labels(ns, svc, pod, image, hash);
            for (code, count) in [("200", s.ok), ("503", s.errors)] {
                let _ = writeln!(
                    out,
                    "http_requests_total{{{labels},code=\"{code}\"}} {count}"
                );
            }
        }
    }
    out.push_str("# HELP http_request_duration_seconds Request latency.\n");
    out.push_str("# TYPE http_request_duration_seconds histogram\n");
    for (ns, svc, counters) in &services {
        for ((pod, image, hash), s) in &counters.series {
            let labels = labels(ns, svc, pod, image, hash);
            for (i, bound) in BUCKETS.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "http_request_duration_seconds_bucket{{{labels},le=\"{bound}\"}} {}",
                    s.buckets[i]
                );
            }
            let count = s.buckets[BUCKETS.len()];
            let _ = writeln!(
                out,
                "http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {count}"
            );
            let _ = writeln!(
                out,
                "http_request_duration_seconds_sum{{{labels}}} {}",
                s.sum
            );
            let _ = writeln!(
                out,
                "http_request_duration_seconds_count{{{labels}}} {count}"
            );
        }
    }
    out
}

fn labels(ns: &str, svc: &str, pod: &str, image: &str, hash: &str) -> String {
    format!(
        "namespace=\"{ns}\",service=\"{svc}\",pod=\"{pod}\",version=\"{}\",pod_template_hash=\"{hash}\"",
        tag(image)
    )
}
