//! An anytime-valid test of "this version breaks the check's range": an e-detector of one
//! version's event rate (errors, or requests slower than a latency bound) above the rate the
//! range allows, valid however often the guard looks, and quick to notice a version that turns
//! bad late.
//!
//! Each test is confseq's one-sided beta-binomial mixture (Howard, Ramdas, McAuliffe and Sekhon,
//! "Time-uniform, nonparametric, nonasymptotic confidence sequences", 2021; `confseq`'s
//! `beta_binomial_log_mixture`): with `p0` the allowed rate, each request adds `X − p0` (X = 1
//! for an event) to `s` and `p0(1 − p0)` to `v`, and the mixture over the exponential
//! supermartingales' bets is closed form. A [`Breach`] starts one such test each minute of
//! looks and weighs the k-th by `1/(k(k+1))`: the weighted sum (untested starts count 1) is
//! itself a test supermartingale, so Ville's inequality bounds its false alarms by α, and a leak
//! that begins late is judged from the minute it began, not diluted by the good ones before.

/// confseq's one-sided beta-binomial mixture of `X − p0` for events at rate at most `p0`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BetaBinomial {
    g: f64,
    h: f64,
    r: f64,
    normalizer: f64,
}

impl BetaBinomial {
    /// The mixture for events allowed at rate `p0`, tuned (as confseq's `v_opt`, `alpha_opt`)
    /// to be tightest after `n_opt` observations at level `alpha_opt`.
    pub fn new(p0: f64, n_opt: f64, alpha_opt: f64) -> Self {
        let p0 = p0.clamp(1e-9, 1.0 - 1e-9);
        let (g, h) = (p0, 1.0 - p0);
        let v_opt = n_opt.max(1.0) * g * h;
        // OneSidedNormalMixture::best_rho: the two-sided one at twice alpha.
        let l = (1.0 / (2.0 * alpha_opt)).ln();
        let rho = v_opt / (2.0 * l + (1.0 + 2.0 * l).ln());
        let r = (rho - g * h).max(1e-3 * g * h);
        let normalizer = ln_incomplete_beta(r / (g * (g + h)), r / (h * (g + h)), h / (g + h));
        Self {
            g,
            h,
            r,
            normalizer,
        }
    }

    /// The log e-value after `events` of `trials`.
    pub fn ln_e(&self, events: u64, trials: u64) -> f64 {
        let (g, h, r) = (self.g, self.h, self.r);
        let s = events as f64 - trials as f64 * g;
        let v = trials as f64 * g * h;
        v / (g * h) * (g + h).ln()
            - ((v + h * s) / (h * (g + h))) * g.ln()
            - ((v - g * s) / (g * (g + h))) * h.ln()
            + ln_incomplete_beta(
                (r + v - g * s) / (g * (g + h)),
                (r + v + h * s) / (h * (g + h)),
                h / (g + h),
            )
            - self.normalizer
    }
}

/// The observations a mixture is tuned for (its bound is tightest there): about two minutes of
/// a quiet service's requests. A busy service's breach is plain long before, and tuning for a
/// thousand costs a quiet service a quarter of its evidence (`scripts/confseq-reference.sh`
/// computes both: at 10% errors over a 1% bound, e = 400 after 52 requests tuned for 100, after
/// 65 tuned for 1,000; at 2% over 1%, 2,340 requests give ln e = 7.2 and 7.8).
const TUNED_FOR: f64 = 100.0;

/// One version's e-detector of a breach of the range: a [`BetaBinomial`] test started every
/// `every` looks, weighted `1/(k(k+1))`.
#[derive(Debug, Clone, PartialEq)]
pub struct Breach {
    mixture: BetaBinomial,
    every: u32,
    looks: u32,
    /// Each started test's events and trials, oldest first.
    starts: Vec<(u64, u64)>,
}

impl Breach {
    /// A detector of events above rate `p0`, at level `alpha`, starting a test every `every`
    /// looks.
    pub fn new(p0: f64, alpha: f64, every: u32) -> Self {
        Self {
            mixture: BetaBinomial::new(p0, TUNED_FOR, alpha),
            every: every.max(1),
            looks: 0,
            starts: Vec::new(),
        }
    }

    /// Adds one look: `events` of `trials`. A look with no trials is not a look.
    pub fn add(&mut self, events: u64, trials: u64) {
        if trials == 0 {
            return;
        }
        if self.looks.is_multiple_of(self.every) {
            self.starts.push((0, 0));
        }
        self.looks += 1;
        for (e, t) in &mut self.starts {
            *e += events;
            *t += trials;
        }
    }

    /// The e-value (the weighted sum), and the minute (1-based start) that weighs most in it.
    pub fn value(&self) -> (f64, usize) {
        let started = self.starts.len();
        let mut best = (f64::NEG_INFINITY, 1);
        let mut terms = Vec::with_capacity(started + 1);
        for (k, (events, trials)) in self.starts.iter().enumerate() {
            let k1 = (k + 1) as f64;
            let term = self.mixture.ln_e(*events, *trials) - (k1 * (k1 + 1.0)).ln();
            if term > best.0 {
                best = (term, k + 1);
            }
            terms.push(term);
        }
        // The tests not started yet count 1 each: their weights sum to 1/(K+1).
        terms.push(-((started + 1) as f64).ln());
        let max = terms.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let sum: f64 = terms.iter().map(|t| (t - max).exp()).sum();
        ((max + sum.ln()).exp(), best.1)
    }

    /// Events and trials since the `minute`-th test started (1-based, as [`value`](Self::value)
    /// names it).
    pub fn since(&self, minute: usize) -> (u64, u64) {
        self.starts
            .get(minute.saturating_sub(1))
            .copied()
            .unwrap_or((0, 0))
    }
}

/// `ln Γ(x)` for `x > 0`: Stirling's series, shifted up to `x ≥ 10`.
fn ln_gamma(x: f64) -> f64 {
    let mut shift = 0.0;
    let mut x = x;
    while x < 10.0 {
        shift += x.ln();
        x += 1.0;
    }
    let x2 = x * x;
    let series = 1.0 / (12.0 * x) - 1.0 / (360.0 * x * x2) + 1.0 / (1260.0 * x * x2 * x2)
        - 1.0 / (1680.0 * x * x2 * x2 * x2);
    (x - 0.5) * x.ln() - x + 0.5 * (2.0 * std::f64::consts::PI).ln() + series - shift
}

fn ln_beta(a: f64, b: f64) -> f64 {
    ln_gamma(a) + ln_gamma(b) - ln_gamma(a + b)
}

/// `ln B(x; a, b)`, the log of the (unregularised) incomplete beta function, as confseq's
/// `log_incomplete_beta` (`x = 1`: the complete one).
fn ln_incomplete_beta(a: f64, b: f64, x: f64) -> f64 {
    let complete = ln_beta(a, b);
    if x >= 1.0 {
        return complete;
    }
    complete + ln_regularised_beta(a, b, x)
}

/// `ln I_x(a, b)`: the continued fraction (Lentz) on the side of `x` where it converges.
fn ln_regularised_beta(a: f64, b: f64, x: f64) -> f64 {
    if x <= 0.0 {
        return f64::NEG_INFINITY;
    }
    let ln_front = a * x.ln() + b * (1.0 - x).ln() - ln_beta(a, b);
    if x < (a + 1.0) / (a + b + 2.0) {
        ln_front + continued_fraction(a, b, x).ln() - a.ln()
    } else {
        let other = (ln_front + continued_fraction(b, a, 1.0 - x).ln() - b.ln()).exp();
        (-other).ln_1p()
    }
}

fn continued_fraction(a: f64, b: f64, x: f64) -> f64 {
    const TINY: f64 = 1e-300;
    let fix = |v: f64| if v.abs() < TINY { TINY } else { v };
    let (qab, qap, qam) = (a + b, a + 1.0, a - 1.0);
    let mut c = 1.0;
    let mut d = 1.0 / fix(1.0 - qab * x / qap);
    let mut h = d;
    for m in 1..200_000 {
        let m = f64::from(m);
        let m2 = 2.0 * m;
        let aa = m * (b - m) * x / ((qam + m2) * (a + m2));
        d = 1.0 / fix(1.0 + aa * d);
        c = fix(1.0 + aa / c);
        h *= d * c;
        let aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2));
        d = 1.0 / fix(1.0 + aa * d);
        c = fix(1.0 + aa / c);
        let step = d * c;
        h *= step;
        if (step - 1.0).abs() < 1e-15 {
            break;
        }
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    /// confseq 0.0.11's own `beta_binomial_log_mixture` (its C++ header, compiled by
    /// `scripts/confseq-reference.sh`): events, trials, p0, n_opt, alpha_opt → ln e.
    #[test]
    fn matches_confseq() {
        let cases = [
            (25, 1000, 0.01, 6.778_563_901_220_435),
            (5, 1000, 0.01, -1.950_778_801_064_290_1),
            (1300, 100_000, 0.01, 38.763_683_343_407_51),
            (0, 50, 0.01, -0.438_550_152_237_125_35),
            (12, 100, 0.05, 2.428_733_877_593_515_4),
            (150, 780, 0.01, 299.887_751_518_339_2),
        ];
        for (events, trials, p0, want) in cases {
            let got = BetaBinomial::new(p0, 1000.0, 0.005).ln_e(events, trials);
            assert!(
                (got - want).abs() < 1e-6 * want.abs().max(1.0),
                "{events} of {trials} at {p0}: got {got}, confseq {want}"
            );
        }
    }

    #[test]
    fn ln_gamma_matches_known_values() {
        assert!(ln_gamma(1.0).abs() < 1e-12, "{}", ln_gamma(1.0));
        assert!((ln_gamma(0.5) - std::f64::consts::PI.sqrt().ln()).abs() < 1e-12);
        assert!((ln_gamma(171.0) - 706.573_062_245_787_4).abs() < 1e-9);
    }

    #[test]
    fn a_late_leak_is_judged_from_its_minute() {
        let mut late = Breach::new(0.01, 0.005, 6);
        let mut always_good = late.clone();
        // Twenty minutes of 0.2% errors at 780 requests a look, then 3%.
        for _ in 0..120 {
            late.add(2, 780);
            always_good.add(2, 780);
        }
        assert!(always_good.value().0 < 1.0);
        let mut looks = 0;
        while late.value().0 < 200.0 {
            late.add(23, 780);
            looks += 1;
            assert!(looks < 12, "the leak is not seen within two minutes");
        }
        assert_eq!(late.value().1, 21, "judged from the minute it began");
        // Its words count from that minute: only the leak's looks.
        let (events, trials) = late.since(21);
        assert_eq!((events, trials), (23 * looks, 780 * looks));
    }

    /// Under the null (a version exactly at its allowed rate), looking every interval of long
    /// rollouts, the detector passes 1/α in at most α of runs.
    #[test]
    fn looking_every_interval_keeps_false_alarms_under_alpha() {
        let alpha = 0.01;
        let runs = 2_000;
        let mut rng = fastrand::Rng::with_seed(11);
        let mut alarms = 0;
        for _ in 0..runs {
            let mut breach = Breach::new(0.01, alpha, 6);
            for _ in 0..90 {
                let errors = (0..300).filter(|_| rng.f64() < 0.01).count() as u64;
                breach.add(errors, 300);
                if breach.value().0 >= 1.0 / alpha {
                    alarms += 1;
                    break;
                }
            }
        }
        let rate = f64::from(alarms) / f64::from(runs);
        println!("breach false alarms at the allowed rate: {alarms} of {runs} ({rate:.4})");
        assert!(rate <= alpha, "{rate}");
    }
}
