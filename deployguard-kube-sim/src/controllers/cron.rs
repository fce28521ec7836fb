//! Cron schedules as the CronJob controller reads them (robfig/cron's standard parser): five
//! fields — minute, hour, day of month, month, day of week — each `*`, a number, a range `a-b`,
//! a step `*/n` or `a-b/n`, a list of those, or (month, weekday) a name (`jan`, `mon`); `?` as
//! `*`; and `@yearly`, `@annually`, `@monthly`, `@weekly`, `@daily`, `@midnight`, `@hourly`.
//! When both the day of month and the day of week are restricted, either matching is enough.

use jiff::civil::DateTime;

/// A parsed schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Schedule {
    minutes: u64,
    hours: u64,
    days: u64,
    months: u64,
    weekdays: u64,
    /// Whether day of month and day of week were both restricted (then either matches).
    either_day: bool,
}

const MONTHS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];
const WEEKDAYS: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

fn field(text: &str, min: u32, max: u32, names: &[&str], offset: u32) -> Result<u64, String> {
    let value = |t: &str| -> Result<u32, String> {
        if let Some(i) = names.iter().position(|n| n.eq_ignore_ascii_case(t)) {
            return Ok(i as u32 + offset);
        }
        t.parse::<u32>().map_err(|_| {
            format!("failed to parse int from {t}: strconv.Atoi: parsing \"{t}\": invalid syntax")
        })
    };
    let mut bits = 0u64;
    for part in text.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((r, s)) => (
                r,
                s.parse::<u32>()
                    .map_err(|_| format!("failed to parse int from {s}"))?,
            ),
            None => (part, 1),
        };
        let (low, high) = if range == "*" || range == "?" {
            (min, max)
        } else if let Some((a, b)) = range.split_once('-') {
            (value(a)?, value(b)?)
        } else {
            let v = value(range)?;
            (v, if part.contains('/') { max } else { v })
        };
        if low < min || high > max || low > high {
            return Err(format!(
                "end of range ({high}) above maximum ({max}): {part}"
            ));
        }
        if step == 0 {
            return Err(format!("step of range should be a positive number: {part}"));
        }
        let mut v = low;
        while v <= high {
            bits |= 1 << v;
            v += step;
        }
    }
    Ok(bits)
}

impl Schedule {
    pub(crate) fn parse(text: &str) -> Result<Self, String> {
        let text = match text.trim() {
            "@yearly" | "@annually" => "0 0 1 1 *",
            "@monthly" => "0 0 1 * *",
            "@weekly" => "0 0 * * 0",
            "@daily" | "@midnight" => "0 0 * * *",
            "@hourly" => "0 * * * *",
            other => other,
        };
        let fields: Vec<&str> = text.split_whitespace().collect();
        if fields.len() != 5 {
            return Err(format!(
                "expected exactly 5 fields, found {}: {text}",
                fields.len()
            ));
        }
        let mut weekdays = field(fields[4], 0, 7, &WEEKDAYS, 0)?;
        // 7 is Sunday too.
        if weekdays & (1 << 7) != 0 {
            weekdays |= 1;
        }
        Ok(Self {
            minutes: field(fields[0], 0, 59, &[], 0)?,
            hours: field(fields[1], 0, 23, &[], 0)?,
            days: field(fields[2], 1, 31, &[], 0)?,
            months: field(fields[3], 1, 12, &MONTHS, 1)?,
            weekdays,
            either_day: !fields[2].starts_with('*')
                && !fields[2].starts_with('?')
                && !fields[4].starts_with('*')
                && !fields[4].starts_with('?'),
        })
    }

    fn day_matches(&self, t: DateTime) -> bool {
        let day = self.days & (1 << t.day()) != 0;
        let weekday = self.weekdays & (1 << t.weekday().to_sunday_zero_offset()) != 0;
        if self.either_day {
            day || weekday
        } else {
            day && weekday
        }
    }

    /// The first time strictly after `after` (a wall-clock time, in the schedule's zone) the
    /// schedule fires; `None` if none within five years.
    pub(crate) fn next(&self, after: DateTime) -> Option<DateTime> {
        let mut t = after
            .with()
            .second(0)
            .subsec_nanosecond(0)
            .build()
            .ok()?
            .checked_add(jiff::Span::new().minutes(1))
            .ok()?;
        let limit = after.checked_add(jiff::Span::new().years(5)).ok()?;
        while t <= limit {
            if self.months & (1 << t.month()) == 0 {
                t = t
                    .first_of_month()
                    .checked_add(jiff::Span::new().months(1))
                    .ok()?;
                t = t.with().hour(0).minute(0).build().ok()?;
                continue;
            }
            if !self.day_matches(t) {
                t = t
                    .with()
                    .hour(0)
                    .minute(0)
                    .build()
                    .ok()?
                    .checked_add(jiff::Span::new().days(1))
                    .ok()?;
                continue;
            }
            if self.hours & (1 << t.hour()) == 0 {
                t = t
                    .with()
                    .minute(0)
                    .build()
                    .ok()?
                    .checked_add(jiff::Span::new().hours(1))
                    .ok()?;
                continue;
            }
            if self.minutes & (1 << t.minute()) == 0 {
                t = t.checked_add(jiff::Span::new().minutes(1)).ok()?;
                continue;
            }
            return Some(t);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime {
        text.parse().unwrap()
    }

    #[test]
    fn schedules_fire_when_cron_says() {
        let every_five = Schedule::parse("*/5 * * * *").unwrap();
        assert_eq!(
            every_five.next(at("2026-12-04T10:03:20")),
            Some(at("2026-12-04T10:05"))
        );
        let nightly = Schedule::parse("0 3 * * *").unwrap();
        assert_eq!(
            nightly.next(at("2026-12-04T03:00")),
            Some(at("2026-12-05T03:00"))
        );
        let weekdays = Schedule::parse("30 9 * * mon-fri").unwrap();
        assert_eq!(
            weekdays.next(at("2026-12-04T10:00")),
            Some(at("2026-12-07T09:30"))
        );
        let monthly = Schedule::parse("@monthly").unwrap();
        assert_eq!(
            monthly.next(at("2026-12-04T10:00")),
            Some(at("2027-01-01T00:00"))
        );
        // Day of month or day of week, when both are given.
        let either = Schedule::parse("0 0 13 * fri").unwrap();
        assert_eq!(
            either.next(at("2026-12-04T10:00")),
            Some(at("2026-12-11T00:00"))
        );
    }

    #[test]
    fn a_bad_schedule_says_what_is_wrong() {
        assert!(
            Schedule::parse("* * * *")
                .unwrap_err()
                .contains("expected exactly 5 fields")
        );
        assert!(Schedule::parse("61 * * * *").is_err());
        assert!(Schedule::parse("* * * * funday").is_err());
    }
}
