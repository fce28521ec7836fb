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

    /// How long tokio's clock takes to cover `cluster_time`.
    pub(crate) fn to_real(&self, cluster_time: Duration) -> Duration {
        cluster_time.div_f64(self.scale)
    }

    /// RFC 3339 with second precision (`2026-11-26T06:23:59Z`), as Kubernetes writes timestamps.
    pub(crate) fn rfc3339(&self) -> String {
        rfc3339(self.now())
    }
}

pub(crate) fn rfc3339(time: SystemTime) -> String {
    let secs = time
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Parses what [`rfc3339`] writes (and any `…Z` second-precision timestamp).
pub(crate) fn parse_rfc3339(text: &str) -> Option<SystemTime> {
    let b = text.as_bytes();
    if b.len() < 20 {
        return None;
    }
    let num = |r: std::ops::Range<usize>| text.get(r)?.parse::<i64>().ok();
    let days = days_from_civil(num(0..4)?, num(5..7)?, num(8..10)?);
    let secs = days * 86_400 + num(11..13)? * 3600 + num(14..16)? * 60 + num(17..19)?;
    Some(UNIX_EPOCH + Duration::from_secs(u64::try_from(secs).ok()?))
}

// Howard Hinnant's civil-date algorithms.
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
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
