//! What a Deployment says about its pods' start, and the API server's clock: the facts a start
//! budget is made of (see `deployguard_core::engine::StartBudget`). Pure, no I/O.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use deployguard_core::Patience;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Pod, Probe};

/// What the API server defaults `progressDeadlineSeconds` to.
const DEFAULT_PROGRESS_DEADLINE: u64 = 600;

/// How long the pods of `deployment` may take to start, as its spec declares: per container,
/// the startup probe's budget then the readiness probe's initial delay and failure threshold
/// (probe defaults as the API server sets them: period 10 s, threshold 3), the longest
/// container, plus `minReadySeconds`; and the progress deadline.
pub(crate) fn declared(deployment: &Deployment) -> Patience {
    let spec = deployment.spec.as_ref();
    let secs = |v: Option<i32>, default: u64| v.map_or(default, |v| u64::try_from(v).unwrap_or(0));
    let budget = |probe: Option<&Probe>| {
        probe.map_or(0, |p| {
            secs(p.initial_delay_seconds, 0)
                + secs(p.failure_threshold, 3) * secs(p.period_seconds, 10).max(1)
        })
    };
    let containers = spec
        .and_then(|s| s.template.spec.as_ref())
        .map(|p| p.containers.as_slice())
        .unwrap_or_default();
    let start = containers
        .iter()
        .map(|c| budget(c.startup_probe.as_ref()) + budget(c.readiness_probe.as_ref()))
        .max()
        .unwrap_or(0)
        + secs(spec.and_then(|s| s.min_ready_seconds), 0);
    let deadline = secs(
        spec.and_then(|s| s.progress_deadline_seconds),
        DEFAULT_PROGRESS_DEADLINE,
    );
    Patience::new(
        Duration::from_secs(start),
        Some(Duration::from_secs(deadline)),
    )
}

/// How long `pod` has existed at `now`, and how long after its creation it became ready (a
/// ready pod's `Ready` condition's last transition), both on the API server's clock.
pub(crate) fn ages(pod: &Pod, now: Option<SystemTime>) -> (Option<Duration>, Option<Duration>) {
    let Some(created) = pod
        .metadata
        .creation_timestamp
        .as_ref()
        .map(|t| SystemTime::from(t.0))
    else {
        return (None, None);
    };
    let age = now.map(|now| now.duration_since(created).unwrap_or_default());
    let ready_after = pod
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.type_ == "Ready" && c.status == "True"))
        .and_then(|c| c.last_transition_time.as_ref())
        .map(|t| {
            SystemTime::from(t.0)
                .duration_since(created)
                .unwrap_or_default()
        });
    (age, ready_after)
}

/// An HTTP `Date` header (`Fri, 04 Dec 2026 07:40:29 GMT`, the form every server sends).
pub(crate) fn http_date(text: &str) -> Option<SystemTime> {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let mut parts = text.split_whitespace().skip(1);
    let day: i64 = parts.next()?.parse().ok()?;
    let month = parts.next()?;
    let month = i64::try_from(MONTHS.iter().position(|m| *m == month)? + 1).ok()?;
    let year: i64 = parts.next()?.parse().ok()?;
    let mut clock = parts.next()?.split(':').map(str::parse::<i64>);
    let (h, m, s) = (
        clock.next()?.ok()?,
        clock.next()?.ok()?,
        clock.next()?.ok()?,
    );
    // Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's days_from_civil).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = u64::try_from(days * 86_400 + h * 3600 + m * 60 + s).ok()?;
    Some(UNIX_EPOCH + Duration::from_secs(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_dates_read_as_servers_write_them() {
        let at = http_date("Fri, 04 Dec 2026 07:40:29 GMT").unwrap();
        assert_eq!(
            at.duration_since(UNIX_EPOCH).unwrap().as_secs(),
            1_796_370_029
        );
        assert_eq!(http_date("Thu, 01 Jan 1970 00:00:00 GMT"), Some(UNIX_EPOCH));
        assert_eq!(http_date("yesterday"), None);
    }
}
