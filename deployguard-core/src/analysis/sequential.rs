//! An anytime-valid test of "the candidate fails more often than the baseline": an e-process
//! over every interval both versions served, valid however often the guard looks (Ville's
//! inequality: under the null, `P(E ≥ 1/α ever) ≤ α`).
//!
//! Per interval, with `s` the candidate's share of the requests, each failed request comes from
//! the candidate with probability `q(φ) = sφ / (sφ + 1 − s)` when its rate is `φ` times the
//! baseline's. The e-value is a uniform mixture over a grid of ratios `φ_k` above the tolerated
//! `φ0` of the likelihood ratios `Π (q(φ_k)/q(φ0))^e_c · ((1−q(φ_k))/(1−q(φ0)))^e_b` (Lindon,
//! Sanden and Shirikian, KDD 2022). Slow requests (above a latency threshold) are events too, so
//! latency is judged the same way, one e-process per threshold, averaged.

/// The ratios the mixture is taken over (those above the tolerated ratio).
const GRID: [f64; 6] = [1.25, 1.5, 2.0, 3.0, 5.0, 10.0];

/// One interval's events: the candidate's and the baseline's events (errors, slow requests)
/// and requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Interval {
    /// Events on the candidate.
    pub candidate_events: u64,
    /// Events on the baseline.
    pub baseline_events: u64,
    /// Requests to the candidate.
    pub candidate_requests: u64,
    /// Requests to the baseline.
    pub baseline_requests: u64,
}

impl Interval {
    /// An interval of `(e_c, e_b, r_c, r_b)`.
    pub fn new(
        candidate_events: u64,
        baseline_events: u64,
        candidate_requests: u64,
        baseline_requests: u64,
    ) -> Self {
        Self {
            candidate_events,
            baseline_events,
            candidate_requests,
            baseline_requests,
        }
    }
}

/// The e-process of one kind of event, kept as the log of each grid point's likelihood ratio.
#[derive(Debug, Clone, PartialEq)]
pub struct EProcess {
    tolerated: f64,
    grid: Vec<f64>,
    logs: Vec<f64>,
}

impl EProcess {
    /// An e-process of "the candidate's rate is at most `tolerated` times the baseline's"
    /// (1: no worse), at 1 before any evidence.
    pub fn new(tolerated: f64) -> Self {
        let tolerated = tolerated.max(1.0);
        let grid: Vec<f64> = GRID.iter().copied().filter(|g| *g > tolerated).collect();
        let grid = if grid.is_empty() {
            vec![tolerated * 2.0]
        } else {
            grid
        };
        let logs = vec![0.0; grid.len()];
        Self {
            tolerated,
            grid,
            logs,
        }
    }

    /// Adds one interval. An interval in which either version served nothing says nothing of
    /// which version fails more (every event is the one side's), and changes nothing.
    pub fn add(&mut self, interval: Interval) {
        let (rc, rb) = (interval.candidate_requests, interval.baseline_requests);
        if rc == 0 || rb == 0 {
            return;
        }
        let share = rc as f64 / (rc + rb) as f64;
        let q = |phi: f64| share * phi / (share * phi + 1.0 - share);
        let q0 = q(self.tolerated);
        let (ec, eb) = (
            interval.candidate_events as f64,
            interval.baseline_events as f64,
        );
        for (log, phi) in self.logs.iter_mut().zip(&self.grid) {
            let qk = q(*phi);
            *log += ec * (qk / q0).ln() + eb * ((1.0 - qk) / (1.0 - q0)).ln();
        }
    }

    /// The e-value: the grid's likelihood ratios, averaged.
    pub fn value(&self) -> f64 {
        let max = self.logs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let sum: f64 = self.logs.iter().map(|l| (l - max).exp()).sum();
        (max + (sum / self.logs.len() as f64).ln()).exp()
    }
}

/// The e-value of the candidate failing more often than `tolerated` times the baseline after
/// `intervals`.
///
/// ```
/// use deployguard_core::analysis::sequential::{Interval, e_value};
///
/// // 45 of the 49 errors on the candidate, which took 30% of the requests: overwhelming.
/// let e = e_value(&[Interval::new(45, 4, 300, 700)], 1.0);
/// assert!(e > 1e16);
/// ```
pub fn e_value(intervals: &[Interval], tolerated: f64) -> f64 {
    let mut process = EProcess::new(tolerated);
    for interval in intervals {
        process.add(*interval);
    }
    process.value()
}

/// Averages e-values (an average of e-values is an e-value).
pub fn average(values: &[f64]) -> f64 {
    if values.is_empty() {
        1.0
    } else {
        values.iter().sum::<f64>() / values.len() as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(got: f64, want: f64) {
        assert!(
            ((got - want) / want).abs() < 1e-9,
            "got {got:e}, want {want:e}"
        );
    }

    /// The values `scripts/stats-reference.py` prints (`e1`..`e5`), computed independently from
    /// the formula with Python's floats.
    #[test]
    fn e_values_match_the_reference() {
        let i = Interval::new;
        close(e_value(&[i(3, 5, 300, 700)], 1.0), 0.677_338_381_705_010_3);
        close(
            e_value(&[i(45, 4, 300, 700)], 1.0),
            2.406_525_221_614_817e16,
        );
        close(e_value(&[i(15, 1, 100, 500)], 1.0), 73_042_134.199_209);
        close(
            e_value(&[i(15, 1, 100, 500), i(15, 1, 100, 500)], 1.0),
            3.075_693_037_244_418_8e16,
        );
        close(
            e_value(&[i(10, 10, 500, 500)], 1.5),
            0.138_033_236_790_045_42,
        );
    }

    #[test]
    fn an_interval_one_version_did_not_serve_changes_nothing() {
        let mut process = EProcess::new(1.0);
        process.add(Interval::new(40, 0, 300, 0));
        assert_eq!(process.value(), 1.0);
    }

    /// Under the null (both versions fail alike), looking every interval of a long rollout, the
    /// e-process passes 1/α in at most α of runs. The observed rate is printed.
    #[test]
    fn looking_every_interval_keeps_false_alarms_under_alpha() {
        let alpha = 0.01;
        let runs = 4_000;
        let looks = 90;
        let mut rng = fastrand::Rng::with_seed(7);
        let mut alarms = 0;
        for _ in 0..runs {
            let mut process = EProcess::new(1.0);
            for look in 0..looks {
                // The candidate's share grows as a rolling update moves pods.
                let share = (f64::from(look) / 30.0).clamp(0.1, 0.9);
                let requests = 200u64;
                let rc = (requests as f64 * share) as u64;
                let rb = requests - rc;
                let errors = |n: u64, rng: &mut fastrand::Rng| {
                    (0..n).filter(|_| rng.f64() < 0.05).count() as u64
                };
                let (ec, eb) = (errors(rc, &mut rng), errors(rb, &mut rng));
                process.add(Interval::new(ec, eb, rc, rb));
                if process.value() >= 1.0 / alpha {
                    alarms += 1;
                    break;
                }
            }
        }
        let rate = f64::from(alarms) / f64::from(runs);
        println!("false alarms under the null: {alarms} of {runs} runs ({rate:.4}), alpha {alpha}");
        assert!(rate <= alpha, "{rate}");
    }
}
