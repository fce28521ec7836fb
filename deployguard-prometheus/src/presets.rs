//! Ready-made queries for the common shapes, over the metric names most HTTP instrumentation
//! and the testkit's simulated traffic export: `http_requests_total{code}` and the histogram
//! `http_request_duration_seconds`, labelled `namespace`, `service` and `version`. For other
//! names, copy the PromQL each preset documents into a [`Query`].

use std::time::Duration;

use crate::probe::Query;

/// A label value quoted for PromQL.
fn quote(value: &str) -> String {
    format!("\"{}\"", value.replace('\\', "\\\\").replace('"', "\\\""))
}

fn window(d: Duration) -> String {
    format!("{}s", d.as_secs().max(1))
}

/// `error_rate` per version, with its counts, over `over`:
///
/// ```text
/// events: sum by (version) (increase(http_requests_total{namespace="NS",service="SVC",code=~"5.."}[60s]))
/// trials: sum by (version) (increase(http_requests_total{namespace="NS",service="SVC"}[60s]))
/// ```
///
/// ```
/// use std::time::Duration;
/// use deployguard_prometheus::{QueryShape, presets};
///
/// let query = presets::error_ratio_by_version("shop", "checkout", Duration::from_secs(60));
/// let QueryShape::Ratio { events, .. } = &query.shape else { unreachable!() };
/// assert_eq!(
///     events,
///     r#"sum by (version) (increase(http_requests_total{namespace="shop",service="checkout",code=~"5.."}[60s]))"#
/// );
/// ```
pub fn error_ratio_by_version(namespace: &str, service: &str, over: Duration) -> Query {
    let selector = format!("namespace={},service={}", quote(namespace), quote(service));
    Query::ratio(
        "error_rate",
        &format!(
            "sum by (version) (increase(http_requests_total{{{selector},code=~\"5..\"}}[{}]))",
            window(over)
        ),
        &format!(
            "sum by (version) (increase(http_requests_total{{{selector}}}[{}]))",
            window(over)
        ),
    )
}

/// `latency_seconds`: the `quantile` (0.99) latency per version over `over`, from the histogram:
///
/// ```text
/// histogram_quantile(0.99, sum by (version, le) (rate(http_request_duration_seconds_bucket{namespace="NS",service="SVC"}[60s])))
/// ```
///
/// A quantile has no samples behind it: judge it by ranges or against the baseline's
/// (`Judge::Compare`), not by Mann-Whitney.
pub fn latency_by_version(namespace: &str, service: &str, quantile: f64, over: Duration) -> Query {
    Query::value(
        "latency_seconds",
        &format!(
            "histogram_quantile({quantile}, sum by (version, le) (rate(http_request_duration_seconds_bucket{{namespace={},service={}}}[{}])))",
            quote(namespace),
            quote(service),
            window(over)
        ),
    )
}
