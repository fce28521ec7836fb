//! [`Pool`]: the evidence of a pooled check, kept over the rollout. A check that judges one
//! window at a time cannot judge a service with a few requests a second (no window holds enough)
//! nor a moderate regression (no window holds enough to tell it from noise); pooled, the
//! evidence grows with every look until it is enough.
//!
//! The pool starts at the first look in which the candidate served anything, so that both
//! versions are pooled over the same period (a cause both share, such as an overload, shows on
//! both). Besides the whole, the pool keeps the last [`RECENT_LOOKS`] looks, so that a version that
//! turns bad late (a leak) is not hidden by its good start. Each look must report what happened
//! since the previous one (a probe window equal to the check's interval), or requests are counted
//! twice.

use std::collections::{BTreeMap, VecDeque};

use super::breach::Breach;
use super::judge::Versions;
use super::sequential::{EProcess, Interval, average};
use crate::model::{Measurement, Observations, Sample};

/// How many looks the recent view covers (six 10 s intervals: a minute).
pub(crate) const RECENT_LOOKS: usize = 6;

/// Latency samples kept per version: a uniform reservoir of them, so a long rollout's tests
/// cost the same as a short one's.
const RESERVOIR: usize = 2_000;

/// One version's evidence (or the whole service's: label `None`).
#[derive(Debug, Clone, Default)]
struct Evidence {
    events: u64,
    trials: u64,
    proportion: bool,
    samples: Reservoir,
    /// Which quantile the probe summarised samples by (as it says, or its value's rank among
    /// them).
    quantile: Option<f64>,
    /// Whether the probe said which quantile (else it was read off a look's samples).
    declared: bool,
    /// The latest plain value, for a measurement with nothing behind it to pool.
    latest: Option<f64>,
}

impl Evidence {
    fn add(&mut self, m: &Measurement) {
        match &m.observations {
            Some(Observations::Proportion { events, trials }) => {
                self.proportion = true;
                self.events += events;
                self.trials += trials;
            }
            Some(Observations::Samples { values }) => {
                if let Some(q) = m.quantile.filter(|_| !self.declared) {
                    self.quantile = Some(q);
                    self.declared = true;
                } else if self.quantile.is_none()
                    && let Some(summary) = m.value
                    && !values.is_empty()
                {
                    let below = values.iter().filter(|v| **v <= summary).count();
                    self.quantile = Some(below as f64 / values.len() as f64);
                }
                for value in values {
                    self.samples.push(*value);
                }
            }
            None => self.latest = m.value,
        }
    }

    fn merge(&mut self, other: &Self) {
        self.proportion |= other.proportion;
        self.events += other.events;
        self.trials += other.trials;
        if other.declared && !self.declared {
            self.quantile = other.quantile;
            self.declared = true;
        } else {
            self.quantile = self.quantile.or(other.quantile);
        }
        for value in &other.samples.values {
            self.samples.push(*value);
        }
        self.latest = other.latest.or(self.latest);
    }

    fn count(&self) -> u64 {
        if self.proportion {
            self.trials
        } else {
            self.samples.values.len() as u64
        }
    }

    fn measurement(&self, metric: &str, label: Option<&str>) -> Measurement {
        let m = if self.proportion {
            Measurement::proportion(metric, self.events, self.trials)
        } else if !self.samples.values.is_empty() || self.quantile.is_some() {
            // One copy, sorted for the summary; the judges do not mind the order.
            let mut values = self.samples.values.clone();
            let summary = quantile(&mut values, self.quantile.unwrap_or(0.5));
            Measurement::samples(metric, summary, values)
        } else {
            match self.latest {
                Some(v) => Measurement::value(metric, v),
                None => Measurement::no_data(metric),
            }
        };
        match label {
            Some(label) => m.with_label(crate::model::VERSION_LABEL, label),
            None => m,
        }
    }
}

/// A uniform sample of at most [`RESERVOIR`] values (Vitter's algorithm R), drawn from a fixed
/// sequence so that a replay is reproducible.
#[derive(Debug, Clone, Default)]
struct Reservoir {
    values: Vec<f64>,
    seen: u64,
    state: u64,
}

impl Reservoir {
    fn push(&mut self, value: f64) {
        self.seen += 1;
        if self.values.len() < RESERVOIR {
            self.values.push(value);
            return;
        }
        // SplitMix64: a fixed, cheap sequence.
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        let slot = z % self.seen;
        if let Ok(slot) = usize::try_from(slot)
            && slot < RESERVOIR
        {
            self.values[slot] = value;
        }
    }
}

type Looks = BTreeMap<Option<String>, Evidence>;

/// The pooled evidence of one check's metric.
#[derive(Debug, Clone, Default)]
pub(crate) struct Pool {
    /// Everything since the candidate first served.
    whole: Looks,
    /// The last looks, newest last.
    recent: VecDeque<Looks>,
    /// Looks pooled.
    pub(crate) looks: u32,
    /// For the sequential judge: the e-process of errors, or one per latency threshold.
    sequential: Option<Sequential>,
}

/// What the sequential judge watches for: the candidate worse than `tolerated` times the
/// baseline, and either version over the range's upper bound `max`, each at level `alpha`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Watch {
    pub(crate) tolerated: f64,
    pub(crate) alpha: f64,
    pub(crate) max: Option<f64>,
}

/// The sequential judge's state: e-processes over every look.
#[derive(Debug, Clone)]
struct Sequential {
    /// Errors (a proportion's events).
    errors: EProcess,
    /// Latency thresholds (the baseline's median, 90th and 99th percentiles when it first had
    /// enough samples), each with the e-process of requests slower than it.
    slow: Vec<(f64, EProcess)>,
    watch: Watch,
    /// Whether the metric is a proportion (else samples).
    proportion: Option<bool>,
    /// Each version's breaches of the range's upper bound, once the rate it allows is known.
    breaches: Option<Breaches>,
}

/// The candidate's and the baseline's e-detectors of breaching the range's upper bound.
#[derive(Debug, Clone)]
struct Breaches {
    candidate: Breach,
    baseline: Breach,
}

/// What the range's e-detectors say: each version's e-value, the minute of the look the
/// candidate's is judged from, and the candidate's events and observations over the bound.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct BreachReading {
    pub(crate) candidate: f64,
    pub(crate) minute: usize,
    pub(crate) baseline: f64,
    pub(crate) events: u64,
    pub(crate) trials: u64,
}

/// Samples a look needs before a quantile is read off their ranks.
const RANK_SAMPLES: usize = 100;

/// Baseline samples needed before latency thresholds are read from them.
const THRESHOLD_SAMPLES: usize = 50;

impl Pool {
    /// Adds one look of `metric`; nothing until the candidate of `versions` has served.
    #[cfg(test)]
    pub(crate) fn add(&mut self, sample: &Sample, metric: &str, versions: &Versions) {
        self.add_judged(sample, metric, versions, None);
    }

    /// [`add`](Self::add), feeding the sequential judge's e-processes too when it `watch`es.
    pub(crate) fn add_judged(
        &mut self,
        sample: &Sample,
        metric: &str,
        versions: &Versions,
        watch: Option<Watch>,
    ) {
        if self.looks == 0 {
            let served = versions.candidate.as_ref().is_some_and(|candidate| {
                sample.series(metric).any(|m| {
                    m.version().is_some_and(|v| candidate.answers_to(v))
                        && m.observations.as_ref().is_some_and(|o| o.count() > 0)
                })
            });
            if !served {
                return;
            }
        }
        let mut look = Looks::new();
        for m in sample.series(metric) {
            look.entry(m.version().map(str::to_owned))
                .or_default()
                .add(m);
        }
        if let Some(watch) = watch {
            self.feed(&look, versions, watch);
        }
        for (label, evidence) in &look {
            self.whole.entry(label.clone()).or_default().merge(evidence);
        }
        self.recent.push_back(look);
        while self.recent.len() > RECENT_LOOKS {
            self.recent.pop_front();
        }
        self.looks += 1;
    }

    /// Feeds one look to the sequential judge's e-processes.
    fn feed(&mut self, look: &Looks, versions: &Versions, watch: Watch) {
        let side = |version: Option<&super::VersionRef>| {
            let version = version?;
            let mut merged = Evidence::default();
            let mut any = false;
            for (label, evidence) in look {
                if label.as_deref().is_some_and(|l| version.answers_to(l)) {
                    merged.merge(evidence);
                    any = true;
                }
            }
            any.then_some(merged)
        };
        let candidate = side(versions.candidate.as_ref());
        let baseline = side(versions.baseline.as_ref());
        let state = self.sequential.get_or_insert_with(|| Sequential {
            errors: EProcess::new(watch.tolerated),
            slow: Vec::new(),
            watch,
            proportion: None,
            breaches: None,
        });
        state.watch_range(candidate.as_ref(), baseline.as_ref());
        let (Some(candidate), Some(baseline)) = (candidate, baseline) else {
            return;
        };
        let proportion = *state
            .proportion
            .get_or_insert(candidate.proportion || baseline.proportion);
        if proportion {
            state.errors.add(Interval::new(
                candidate.events,
                baseline.events,
                candidate.trials,
                baseline.trials,
            ));
            return;
        }
        if state.slow.is_empty() && baseline.samples.values.len() >= THRESHOLD_SAMPLES {
            let mut values = baseline.samples.values.clone();
            for q in [0.5, 0.9, 0.99] {
                if let Some(threshold) = quantile(&mut values, q) {
                    state
                        .slow
                        .push((threshold, EProcess::new(state.watch.tolerated)));
                }
            }
        }
        let slower = |e: &Evidence, t: f64| e.samples.values.iter().filter(|v| **v > t).count();
        for (threshold, process) in &mut state.slow {
            process.add(Interval::new(
                slower(&candidate, *threshold) as u64,
                slower(&baseline, *threshold) as u64,
                candidate.samples.values.len() as u64,
                baseline.samples.values.len() as u64,
            ));
        }
    }

    /// The sequential judge's e-value so far (latency: the thresholds' average), with what it
    /// stands on in words; `None` before both versions have served together.
    pub(crate) fn e_value(&self) -> Option<(f64, String)> {
        let state = self.sequential.as_ref()?;
        if state.proportion == Some(true) {
            return Some((state.errors.value(), "errors".into()));
        }
        if state.slow.is_empty() {
            return None;
        }
        let values: Vec<f64> = state.slow.iter().map(|(_, p)| p.value()).collect();
        let thresholds: Vec<String> = state
            .slow
            .iter()
            .map(|(t, _)| super::judge::format_value("seconds", *t))
            .collect();
        Some((
            average(&values),
            format!("requests slower than {}", thresholds.join(", ")),
        ))
    }

    /// What the range's e-detectors say; `None` where the range has no upper bound or the rate
    /// it allows is not known (samples whose quantile is neither said nor readable).
    pub(crate) fn breach(&self) -> Option<BreachReading> {
        let breaches = self.sequential.as_ref()?.breaches.as_ref()?;
        let (candidate, minute) = breaches.candidate.value();
        // The evidence the words name: since the minute that weighs most.
        let (events, trials) = breaches.candidate.since(minute);
        Some(BreachReading {
            candidate,
            minute,
            baseline: breaches.baseline.value().0,
            events,
            trials,
        })
    }

    /// Whether the candidate has served (the pool has started).
    pub(crate) fn started(&self) -> bool {
        self.looks > 0
    }

    /// Everything pooled, as one sample.
    pub(crate) fn whole(&self, metric: &str) -> Sample {
        sample_of(
            &self.whole,
            metric,
            "everything since the new version first served",
        )
    }

    /// The recent looks, as one sample; a baseline with fewer than `min` recent observations
    /// (it no longer serves: the rollout is complete) is taken whole — its history is what the
    /// candidate is held to.
    pub(crate) fn recent(&self, metric: &str, versions: &Versions, min: u64) -> Sample {
        let mut looks = Looks::new();
        for look in &self.recent {
            for (label, evidence) in look {
                looks.entry(label.clone()).or_default().merge(evidence);
            }
        }
        if let Some(baseline) = &versions.baseline {
            for (label, evidence) in &self.whole {
                let is_baseline = label.as_deref().is_some_and(|l| baseline.answers_to(l));
                let recent = looks.get(label).map_or(0, Evidence::count);
                if is_baseline && recent < min {
                    looks.insert(label.clone(), evidence.clone());
                }
            }
        }
        sample_of(&looks, metric, "the last minute")
    }
}

impl Sequential {
    /// Feeds each version's look to its e-detector of breaching the range's upper bound: its
    /// events (errors), or its samples over the bound against the share the quantile allows
    /// (a p99 at most 300 ms lets 1% of requests be slower).
    fn watch_range(&mut self, candidate: Option<&Evidence>, baseline: Option<&Evidence>) {
        let Some(max) = self.watch.max else {
            return;
        };
        let over = |e: &Evidence| -> (u64, u64) {
            if e.proportion {
                (e.events, e.trials)
            } else {
                let values = &e.samples.values;
                (
                    values.iter().filter(|v| **v > max).count() as u64,
                    values.len() as u64,
                )
            }
        };
        if self.breaches.is_none() {
            let allowed = [candidate, baseline].into_iter().flatten().find_map(|e| {
                if e.proportion {
                    Some(max)
                } else if e.declared || e.samples.values.len() >= RANK_SAMPLES {
                    e.quantile.map(|q| 1.0 - q)
                } else {
                    None
                }
            });
            let Some(allowed) = allowed.filter(|p| *p > 0.0 && *p < 1.0) else {
                return;
            };
            // Half the level each: the comparison and the range may each fail the candidate.
            let breach = Breach::new(allowed, self.watch.alpha / 2.0, RECENT_LOOKS as u32);
            self.breaches = Some(Breaches {
                candidate: breach.clone(),
                baseline: breach,
            });
        }
        if let Some(breaches) = &mut self.breaches {
            if let Some(c) = candidate {
                let (events, trials) = over(c);
                breaches.candidate.add(events, trials);
            }
            if let Some(b) = baseline {
                let (events, trials) = over(b);
                breaches.baseline.add(events, trials);
            }
        }
    }
}

fn sample_of(looks: &Looks, metric: &str, what: &str) -> Sample {
    let measurements = looks
        .iter()
        .map(|(label, evidence)| evidence.measurement(metric, label.as_deref()))
        .collect();
    Sample::new(measurements, what)
}

/// The `q` quantile (nearest rank) of `values`.
fn quantile(values: &mut [f64], q: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let rank = ((q * values.len() as f64).ceil() as usize).clamp(1, values.len());
    Some(values[rank - 1])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::VersionRef;

    fn versions() -> Versions {
        Versions::new(
            Some(VersionRef::new("app:v2", vec![])),
            Some(VersionRef::new("app:v1", vec![])),
        )
    }

    fn look(candidate: (u64, u64), baseline: (u64, u64)) -> Sample {
        Sample::new(
            vec![
                Measurement::proportion("error_rate", candidate.0, candidate.1)
                    .with_label("version", "app:v2"),
                Measurement::proportion("error_rate", baseline.0, baseline.1)
                    .with_label("version", "app:v1"),
            ],
            "",
        )
    }

    fn counts(sample: &Sample, version: &str) -> Option<Observations> {
        sample
            .series("error_rate")
            .find(|m| m.version() == Some(version))
            .and_then(|m| m.observations.clone())
    }

    #[test]
    fn counts_pool_from_the_candidates_first_request() {
        let mut pool = Pool::default();
        pool.add(&look((0, 0), (1, 40)), "error_rate", &versions());
        assert!(!pool.started(), "the candidate served nothing yet");
        for _ in 0..10 {
            pool.add(&look((1, 5), (0, 35)), "error_rate", &versions());
        }
        let whole = pool.whole("error_rate");
        assert_eq!(
            counts(&whole, "app:v2"),
            Some(Observations::Proportion {
                events: 10,
                trials: 50
            })
        );
        assert_eq!(
            counts(&whole, "app:v1"),
            Some(Observations::Proportion {
                events: 0,
                trials: 350
            })
        );
        // The recent view holds the last six looks.
        let recent = pool.recent("error_rate", &versions(), 50);
        assert_eq!(
            counts(&recent, "app:v2"),
            Some(Observations::Proportion {
                events: 6,
                trials: 30
            })
        );
    }

    #[test]
    fn a_baseline_that_no_longer_serves_is_held_whole_in_the_recent_view() {
        let mut pool = Pool::default();
        pool.add(&look((0, 10), (0, 300)), "error_rate", &versions());
        for _ in 0..RECENT_LOOKS {
            pool.add(&look((3, 20), (0, 0)), "error_rate", &versions());
        }
        let recent = pool.recent("error_rate", &versions(), 50);
        assert_eq!(
            counts(&recent, "app:v1"),
            Some(Observations::Proportion {
                events: 0,
                trials: 300
            })
        );
    }

    #[test]
    fn samples_keep_their_quantile_and_a_bounded_reservoir() {
        let mut pool = Pool::default();
        let versions = versions();
        for i in 0..30 {
            let values: Vec<f64> = (0..200).map(|j| f64::from(i * 200 + j)).collect();
            let p99 = values[197];
            let sample = Sample::new(
                vec![
                    Measurement::samples("latency", Some(p99), values.clone())
                        .with_label("version", "app:v2"),
                ],
                "",
            );
            pool.add(&sample, "latency", &versions);
        }
        let whole = pool.whole("latency");
        let m = whole.series("latency").next().unwrap();
        assert_eq!(m.observations.as_ref().unwrap().count(), RESERVOIR as u64);
        // The 99th percentile of 0..6000, near enough from a uniform reservoir.
        let value = m.value.unwrap();
        assert!((5800.0..6000.0).contains(&value), "{value}");
    }
}
