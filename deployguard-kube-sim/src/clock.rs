//! Cluster time: an epoch plus tokio's elapsed time, so a paused clock pauses the cluster too.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::time::Instant;

/// Simulated wall-clock time.
#[derive(Debug, Clone)]
pub(crate) struct Clock {
    epoch: SystemTime,
    start: Instant,
    scale: f64,
}

impl Clock {
    /// Cluster time starts at `epoch` and runs `scale` times as fast as tokio's clock.
    pub(crate) fn new(epoch: SystemTime, scale: f64) -> Self {
        Self {
            epoch,
            start: Instant::now(),
            scale,
        }
    }

    pub(crate) fn now(&self) -> SystemTime {
        self.epoch + self.start.elapsed().mul_f64(self.scale)
    }

    /// From now on, runs `scale` times as fast as tokio's clock (cluster time goes on from
    /// where it is: never backwards).
    pub(crate) fn set_scale(&mut self, scale: f64) {
        self.epoch = self.now();
        self.start = Instant::now();
        self.scale = scale;
    }

    /// How long tokio's clock takes to cover `cluster_time`.
    pub(crate) fn to_real(&self, cluster_time: Duration) -> Duration {
        cluster_time.div_f64(self.scale)
    }

    /// RFC 3339 with second precision (`2026-11-26T06:23:59Z`), as Kubernetes writes timestamps.
    pub(crate) fn rfc3339(&self) -> String {
        rfc3339(self.now())
    }
}

/// `time` as the API server writes timestamps: RFC 3339 in UTC, to the second.
pub(crate) fn rfc3339(time: SystemTime) -> String {
    formatted(time, "%Y-%m-%dT%H:%M:%SZ")
}

/// `time` as the kubelet timestamps log lines: RFC 3339 in UTC, to the nanosecond
/// (`2026-12-04T21:50:07.123456789Z`).
pub(crate) fn rfc3339_nanos(time: SystemTime) -> String {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
    format!(
        "{}.{:09}Z",
        formatted(time, "%Y-%m-%dT%H:%M:%S"),
        since.subsec_nanos()
    )
}

/// `time` as an HTTP `Date` header says it (`Fri, 04 Dec 2026 07:40:29 GMT`).
pub(crate) fn http_date(time: SystemTime) -> String {
    formatted(time, "%a, %d %b %Y %H:%M:%S GMT")
}

/// `time` in UTC, to the second, as `format` (strftime) says.
fn formatted(time: SystemTime, format: &str) -> String {
    let secs = time
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs();
    jiff::Timestamp::from_second(i64::try_from(secs).unwrap_or(i64::MAX))
        .unwrap_or(jiff::Timestamp::MAX)
        .strftime(format)
        .to_string()
}

/// Parses an RFC 3339 timestamp (what [`rfc3339`] writes, and any other offset or precision).
pub(crate) fn parse_rfc3339(text: &str) -> Option<SystemTime> {
    text.parse::<jiff::Timestamp>().ok().map(SystemTime::from)
}

/// kubectl's `HumanDuration`, as server-side tables print ages.
pub(crate) fn human_duration(d: Duration) -> String {
    let s = d.as_secs();
    let (m, h, days) = (s / 60, s / 3600, s / 86_400);
    if s < 120 {
        format!("{s}s")
    } else if m < 10 {
        if s.is_multiple_of(60) {
            format!("{m}m")
        } else {
            format!("{m}m{}s", s % 60)
        }
    } else if m < 180 {
        format!("{m}m")
    } else if h < 8 {
        if m.is_multiple_of(60) {
            format!("{h}h")
        } else {
            format!("{h}h{}m", m % 60)
        }
    } else if h < 48 {
        format!("{h}h")
    } else if h < 24 * 8 {
        if h.is_multiple_of(24) {
            format!("{days}d")
        } else {
            format!("{days}d{}h", h % 24)
        }
    } else if days < 365 * 2 {
        format!("{days}d")
    } else if days < 365 * 8 {
        format!("{}y{}d", days / 365, days % 365)
    } else {
        format!("{}y", days / 365)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_round_trip_and_ages_read_like_kubectl() {
        let t = UNIX_EPOCH + Duration::from_secs(1_795_674_239);
        let text = rfc3339(t);
        assert_eq!(text, "2026-11-26T06:23:59Z");
        assert_eq!(parse_rfc3339(&text), Some(t));
        let ages: Vec<String> = [5, 119, 150, 600, 7_200, 30_000, 200_000, 2_000_000]
            .iter()
            .map(|s| human_duration(Duration::from_secs(*s)))
            .collect();
        assert_eq!(
            ages,
            ["5s", "119s", "2m30s", "10m", "120m", "8h", "2d7h", "23d"]
        );
    }
}
