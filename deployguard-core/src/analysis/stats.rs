//! The statistics of the built-in judge: is the candidate worse than the baseline, or is the
//! difference noise? One-sided tests, as Kayenta asks them ("is the experiment worse than the
//! control?"), with no external service.
//!
//! - [`fisher_greater`]: Fisher's exact test on error counts, the p-value that the candidate's
//!   error proportion is this much higher by chance. Exact at any size (a hypergeometric tail
//!   summed in log space), so small counts are never over-trusted.
//! - [`mann_whitney_greater`]: the Mann-Whitney U test on latency samples, the p-value that the
//!   candidate's latencies rank this much higher by chance. Exact distribution for small samples
//!   without ties, the normal approximation with tie and continuity corrections otherwise (what
//!   `scipy.stats.mannwhitneyu(x, y, alternative="greater")` does for two samples of at most 8,
//!   or larger ones).

/// `ln(n!)`: exact by table up to 255, Stirling's series beyond (error below 1e-15 relative).
fn ln_factorial(n: u64) -> f64 {
    const TABLE: usize = 256;
    static CACHE: std::sync::OnceLock<[f64; TABLE]> = std::sync::OnceLock::new();
    let table = CACHE.get_or_init(|| {
        let mut t = [0.0; TABLE];
        for i in 1..TABLE {
            t[i] = t[i - 1] + (i as f64).ln();
        }
        t
    });
    if (n as usize) < TABLE {
        return table[n as usize];
    }
    let x = n as f64;
    let inv = 1.0 / x;
    let inv2 = inv * inv;
    x * x.ln() - x
        + 0.5 * (2.0 * std::f64::consts::PI * x).ln()
        + inv * (1.0 / 12.0 - inv2 * (1.0 / 360.0 - inv2 / 1260.0))
}

fn ln_choose(n: u64, k: u64) -> f64 {
    ln_factorial(n) - ln_factorial(k) - ln_factorial(n - k)
}

/// Fisher's exact test, one-sided: the probability of seeing at least `candidate_events` of
/// `candidate_trials` (errors of requests) on the candidate, given the two sides' events
/// together, if both sides had the same error proportion. Small is evidence the candidate is
/// worse.
///
/// Events greater than trials are clamped to trials; with no trials on a side the answer is 1
/// (no evidence).
///
/// ```
/// use deployguard_core::analysis::stats::fisher_greater;
///
/// // Fisher's lady tasting tea: 3 of 4 right against 1 of 4, p = 17/70.
/// assert!((fisher_greater(3, 4, 1, 4) - 17.0 / 70.0).abs() < 1e-12);
/// ```
pub fn fisher_greater(
    candidate_events: u64,
    candidate_trials: u64,
    baseline_events: u64,
    baseline_trials: u64,
) -> f64 {
    let (n1, n2) = (candidate_trials, baseline_trials);
    let a = candidate_events.min(n1);
    let c = baseline_events.min(n2);
    if n1 == 0 || n2 == 0 {
        return 1.0;
    }
    let events = a + c;
    let total = n1 + n2;
    let denominator = ln_choose(total, n1);
    let high = events.min(n1);
    // P(X = x) for X hypergeometric: choose(events, x) choose(total - events, n1 - x) / choose(total, n1).
    // x below n1 - (total - events) is impossible.
    let mut p = 0.0;
    for x in a..=high {
        if n1 - x > total - events {
            continue;
        }
        let term = ln_choose(events, x) + ln_choose(total - events, n1 - x) - denominator;
        let term = term.exp();
        p += term;
        // The tail decreases past the mode; once a term is negligible, so is the rest.
        if term < p * 1e-17 && x as f64 > (n1 as f64 * events as f64 / total as f64) {
            break;
        }
    }
    p.min(1.0)
}

/// The exact binomial test, one-sided: the probability of at least `events` of `trials` if
/// each trial were an event with probability `rate`. Small is evidence the true proportion is
/// above `rate`: a candidate with 1 error in 78 requests is not shown to fail more than 1%.
///
/// With no trials, or a `rate` of 1 or more, the answer is 1 (no evidence); with a `rate` of 0
/// or less, any event is certain evidence (0).
///
/// ```
/// use deployguard_core::analysis::stats::binomial_greater;
///
/// // 1 error in 78 requests against a 1% bound: 1 - 0.99^78.
/// assert!((binomial_greater(1, 78, 0.01) - (1.0 - 0.99f64.powi(78))).abs() < 1e-12);
/// assert!(binomial_greater(12, 78, 0.01) < 1e-9);
/// ```
pub fn binomial_greater(events: u64, trials: u64, rate: f64) -> f64 {
    let events = events.min(trials);
    if trials == 0 || rate >= 1.0 || events == 0 {
        return 1.0;
    }
    if rate <= 0.0 {
        return 0.0;
    }
    let (ln_p, ln_q) = (rate.ln(), (1.0 - rate).ln());
    let mut p = 0.0;
    for k in events..=trials {
        let term = (ln_choose(trials, k) + k as f64 * ln_p + (trials - k) as f64 * ln_q).exp();
        p += term;
        // Past the mean the terms only shrink; once one is negligible, so is the rest.
        if term < p * 1e-17 && k as f64 > trials as f64 * rate {
            break;
        }
    }
    p.min(1.0)
}

/// The result of a Mann-Whitney U test.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MannWhitney {
    /// U of the candidate: how many (candidate, baseline) pairs the candidate's value exceeds,
    /// ties counting one half.
    pub u: f64,
    /// The one-sided p-value that the candidate's values rank this high by chance.
    pub p_value: f64,
}

/// Sample size up to which (both sides), without ties, the exact distribution of U is used.
/// scipy's `method="auto"` also goes exact with one side this small and the other large; here
/// that case takes the normal approximation, which at such sizes differs in the third decimal.
const EXACT_MAX_SIDE: usize = 8;

/// The Mann-Whitney U test, one-sided (the candidate's values are greater). Empty sides, or
/// all values tied, give p = 1 (no evidence). Non-finite values are left out.
///
/// ```
/// use deployguard_core::analysis::stats::mann_whitney_greater;
///
/// let slow = [0.30, 0.31, 0.35, 0.40, 0.42];
/// let fast = [0.10, 0.11, 0.12, 0.13, 0.14];
/// let test = mann_whitney_greater(&slow, &fast);
/// assert_eq!(test.u, 25.0);
/// assert!((test.p_value - 1.0 / 252.0).abs() < 1e-12); // 1 arrangement in C(10, 5)
/// ```
pub fn mann_whitney_greater(candidate: &[f64], baseline: &[f64]) -> MannWhitney {
    let mut all: Vec<(f64, bool)> = candidate
        .iter()
        .filter(|v| v.is_finite())
        .map(|v| (*v, true))
        .chain(
            baseline
                .iter()
                .filter(|v| v.is_finite())
                .map(|v| (*v, false)),
        )
        .collect();
    let n1 = all.iter().filter(|(_, c)| *c).count();
    let n2 = all.len() - n1;
    if n1 == 0 || n2 == 0 {
        return MannWhitney {
            u: 0.0,
            p_value: 1.0,
        };
    }
    all.sort_by(|a, b| a.0.total_cmp(&b.0));
    // Midranks, and the tie term sum(t^3 - t) over groups of equal values.
    let mut rank_sum = 0.0;
    let mut tie_term = 0.0;
    let mut i = 0;
    while i < all.len() {
        let mut j = i;
        while j < all.len() && all[j].0 == all[i].0 {
            j += 1;
        }
        let midrank = (i + 1 + j) as f64 / 2.0;
        let in_candidate = all[i..j].iter().filter(|(_, c)| *c).count();
        rank_sum += midrank * in_candidate as f64;
        let t = (j - i) as f64;
        tie_term += t * t * t - t;
        i = j;
    }
    let (n1f, n2f) = (n1 as f64, n2 as f64);
    let u = rank_sum - n1f * (n1f + 1.0) / 2.0;
    let p_value = if tie_term == 0.0 && n1 <= EXACT_MAX_SIDE && n2 <= EXACT_MAX_SIDE {
        exact_upper_tail(n1, n2, u.round() as usize)
    } else {
        let total = n1f + n2f;
        let variance = n1f * n2f / 12.0 * ((total + 1.0) - tie_term / (total * (total - 1.0)));
        if variance <= 0.0 {
            1.0
        } else {
            let z = (u - n1f * n2f / 2.0 - 0.5) / variance.sqrt();
            normal_upper_tail(z)
        }
    };
    MannWhitney {
        u,
        p_value: p_value.clamp(0.0, 1.0),
    }
}

/// P(U >= u) for sizes `n1`, `n2` without ties: counts, over every way to interleave the two
/// samples, those with U at least `u` (the classic recurrence on the largest value).
fn exact_upper_tail(n1: usize, n2: usize, u: usize) -> f64 {
    let max_u = n1 * n2;
    // counts[i][j][k]: arrangements of i candidate and j baseline values with U = k.
    let mut counts = vec![vec![vec![0f64; max_u + 1]; n2 + 1]; n1 + 1];
    for row in &mut counts[0] {
        row[0] = 1.0;
    }
    for i in 1..=n1 {
        counts[i][0][0] = 1.0;
        for j in 1..=n2 {
            for k in 0..=i * j {
                // The largest value is a candidate's (it beats all j baseline values) or a
                // baseline's (it beats none).
                let from_candidate = if k >= j { counts[i - 1][j][k - j] } else { 0.0 };
                counts[i][j][k] = from_candidate + counts[i][j - 1][k];
            }
        }
    }
    let row = &counts[n1][n2];
    let total: f64 = row.iter().sum();
    let tail: f64 = row.iter().skip(u).sum();
    tail / total
}

/// P(Z > z) for a standard normal Z.
pub fn normal_upper_tail(z: f64) -> f64 {
    0.5 * erfc(z / std::f64::consts::SQRT_2)
}

/// The complementary error function (W. J. Cody's rational approximations as in Numerical
/// Recipes' `erfcc`, refined: relative error below 1.2e-7 everywhere), enough for p-values
/// compared against 0.05 or 0.01.
fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let r = t
        * (-z * z - 1.265_512_23
            + t * (1.000_023_68
                + t * (0.374_091_96
                    + t * (0.096_784_18
                        + t * (-0.186_288_06
                            + t * (0.278_868_07
                                + t * (-1.135_203_98
                                    + t * (1.488_515_87
                                        + t * (-0.822_152_23 + t * 0.170_872_77)))))))))
            .exp();
    if x >= 0.0 { r } else { 2.0 - r }
}

#[cfg(test)]
mod tests {
    //! Reference values: Fisher's own tea-tasting table (17/70, Fisher 1935), the published
    //! Mann-Whitney critical value for n1 = n2 = 5 (P(U <= 4) = 0.0476, Mann & Whitney 1947,
    //! table I), and figures computed exactly with Python's `math.comb` (hypergeometric tails,
    //! enumeration of rank arrangements) or with scipy's asymptotic formula for
    //! `mannwhitneyu(x, y, alternative="greater", use_continuity=True)` written out in Python
    //! (`scripts/stats-reference.py`: midranks, tie-corrected variance,
    //! `0.5 * erfc(z / sqrt(2))`).

    use super::*;

    fn close(got: f64, want: f64, tolerance: f64) {
        assert!(
            (got - want).abs() <= tolerance * want.abs().max(1e-300),
            "got {got}, want {want}"
        );
    }

    #[test]
    fn fisher_matches_exact_hypergeometric_tails() {
        close(fisher_greater(3, 4, 1, 4), 0.242_857_142_857_142_85, 1e-12);
        // A bad version: 20 of 130 against 2 of 650.
        close(
            fisher_greater(20, 130, 2, 650),
            1.286_138_008_202_799_8e-14,
            1e-9,
        );
        // Equal rates are no evidence.
        close(
            fisher_greater(2, 1000, 2, 1000),
            0.687_687_734_703_606_2,
            1e-9,
        );
        close(fisher_greater(5, 5, 0, 5), 0.003_968_253_968_253_968, 1e-12);
        // 10k requests a side: 0.3% against 0.2% is not significant at 95%.
        close(
            fisher_greater(30, 10_000, 20, 10_000),
            0.101_036_586_001_111_19,
            1e-7,
        );
    }

    #[test]
    fn fisher_with_nothing_to_compare_is_no_evidence() {
        assert_eq!(fisher_greater(0, 10, 0, 10), 1.0);
        assert_eq!(fisher_greater(3, 0, 1, 10), 1.0);
        assert_eq!(fisher_greater(3, 10, 1, 0), 1.0);
        // Events beyond trials are clamped, never a panic.
        assert!(fisher_greater(50, 10, 0, 10) < 1e-5);
    }

    #[test]
    fn mann_whitney_exact_for_tiny_samples() {
        // U = 21 of 25 for n = 5, 5: P(U >= 21) = P(U <= 4) = 0.0476 (the published table).
        let candidate = [6.0, 7.0, 8.0, 9.0, 1.5];
        let baseline = [1.0, 2.0, 3.0, 4.0, 5.0];
        let test = mann_whitney_greater(&candidate, &baseline);
        assert_eq!(test.u, 21.0);
        close(test.p_value, 0.047_619_047_619_047_616, 1e-12);
        // n = 3, 4, U = 12 (the maximum): 1/35.
        let test = mann_whitney_greater(&[10.0, 11.0, 12.0], &[1.0, 2.0, 3.0, 4.0]);
        assert_eq!(test.u, 12.0);
        close(test.p_value, 0.028_571_428_571_428_57, 1e-12);
    }

    #[test]
    fn mann_whitney_asymptotic_matches_scipy_formula() {
        let candidate = [1.1, 2.2, 3.3, 4.4, 5.5, 6.6, 7.7, 8.8, 9.9, 10.0];
        let baseline = [0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0];
        let test = mann_whitney_greater(&candidate, &baseline);
        assert_eq!(test.u, 80.0);
        close(test.p_value, 0.012_874_040_410_554_042, 1e-5);
    }

    #[test]
    fn mann_whitney_ties_use_midranks_and_the_tie_correction() {
        let candidate = [1.0, 2.0, 2.0, 3.0, 3.0, 3.0, 4.0, 5.0, 5.0, 6.0];
        let baseline = [1.0, 1.0, 2.0, 2.0, 2.0, 3.0, 3.0, 4.0, 4.0, 4.0];
        let test = mann_whitney_greater(&candidate, &baseline);
        assert_eq!(test.u, 64.5);
        close(test.p_value, 0.139_873_997_791_857_16, 1e-5);
        // Identical samples: no evidence either way.
        let same: Vec<f64> = (1..=10).map(f64::from).collect();
        close(
            mann_whitney_greater(&same, &same).p_value,
            0.515_131_978_789_979_6,
            1e-5,
        );
    }

    #[test]
    fn mann_whitney_degenerate_inputs_are_no_evidence() {
        assert_eq!(mann_whitney_greater(&[], &[1.0]).p_value, 1.0);
        assert_eq!(mann_whitney_greater(&[1.0], &[]).p_value, 1.0);
        assert_eq!(mann_whitney_greater(&[2.0; 12], &[2.0; 12]).p_value, 1.0);
        assert_eq!(mann_whitney_greater(&[f64::NAN], &[1.0]).p_value, 1.0);
    }

    #[test]
    fn normal_tail_matches_known_quantiles() {
        close(normal_upper_tail(-1.959_963_984_540_054), 0.975, 1e-6);
        close(normal_upper_tail(3.0), 0.001_349_898_031_630_095_7, 1e-6);
        close(normal_upper_tail(0.0), 0.5, 1e-7);
    }
}
