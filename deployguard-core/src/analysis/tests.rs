use std::fmt::Write as _;
use std::time::Duration;

use expect_test::{Expect, expect};

use super::*;
use crate::model::{Measurement, Sample};

use MeasurementOutcome::{Error, Failed, Inconclusive, NoData, Successful, TooFew};

fn base() -> AnalysisCheckBuilder {
    AnalysisCheck::builder("error-rate", "http", "error_rate")
        .success(Threshold::at_most(0.01))
        .interval(Duration::from_secs(10))
}

/// Feeds `outcomes` to a run of `check` and renders the status after each.
fn check(check: AnalysisCheckBuilder, outcomes: &[MeasurementOutcome], expect: Expect) {
    let check = check.build().unwrap();
    let mut run = CheckRun::default();
    let mut out = String::new();
    for outcome in outcomes {
        let status = run.record(&check, *outcome).clone();
        writeln!(out, "{outcome:?} -> {status:?}").unwrap();
    }
    expect.assert_eq(&out);
}

#[test]
fn failure_limit_zero_fails_on_the_first_failure() {
    check(
        base(),
        &[Successful(0.0), Failed(0.2), Successful(0.0)],
        expect![[r#"
            Successful(0.0) -> Running
            Failed(0.2) -> Failed("error_rate = 0.2 is not at most 0.01 (1 failed, limit 0)")
            Successful(0.0) -> Failed("error_rate = 0.2 is not at most 0.01 (1 failed, limit 0)")
        "#]],
    );
}

#[test]
fn failure_limit_tolerates_that_many_failures() {
    check(
        base().failure_limit(1),
        &[Failed(0.2), Failed(0.3)],
        expect![[r#"
            Failed(0.2) -> Running
            Failed(0.3) -> Failed("error_rate = 0.3 is not at most 0.01 (2 failed, limit 1)")
        "#]],
    );
}

#[test]
fn errors_are_not_failures_until_the_consecutive_limit() {
    check(
        base(),
        &[
            Error,
            Error,
            Error,
            Error,
            Successful(0.0),
            Error,
            Error,
            Error,
            Error,
            Error,
        ],
        expect![[r#"
        Error -> Running
        Error -> Running
        Error -> Running
        Error -> Running
        Successful(0.0) -> Running
        Error -> Running
        Error -> Running
        Error -> Running
        Error -> Running
        Error -> Errored("5 consecutive errors reading error_rate (limit 4)")
    "#]],
    );
}

#[test]
fn inconclusive_pauses_past_its_limit() {
    let builder = base()
        .inconclusive_within(Threshold::at_most(0.05))
        .inconclusive_limit(1);
    check(
        builder,
        &[Inconclusive(0.03), Successful(0.0), Inconclusive(0.04)],
        expect![[r#"
        Inconclusive(0.03) -> Running
        Successful(0.0) -> Running
        Inconclusive(0.04) -> Inconclusive("error_rate = 0.04 is neither passing nor failing (2 inconclusive, limit 1)")
    "#]],
    );
}

#[test]
fn each_no_data_policy() {
    check(
        base().no_data(NoDataPolicy::Pause),
        &[NoData],
        expect![[r#"
        NoData -> Inconclusive("no data for error_rate")
    "#]],
    );
    check(
        base().no_data(NoDataPolicy::Fail),
        &[NoData],
        expect![[r#"
        NoData -> Failed("no data for error_rate (1 failed, limit 0)")
    "#]],
    );
    check(
        base().no_data(NoDataPolicy::Ignore).count(2),
        &[NoData, Successful(0.0), NoData, Successful(0.0)],
        expect![[r#"
            NoData -> Running
            Successful(0.0) -> Successful
            NoData -> Successful
            Successful(0.0) -> Successful
        "#]],
    );
}

#[test]
fn count_and_consecutive_successes_end_a_check() {
    check(
        base().count(3),
        &[Successful(0.0), Successful(0.0), Successful(0.0)],
        expect![[r#"
        Successful(0.0) -> Running
        Successful(0.0) -> Running
        Successful(0.0) -> Successful
    "#]],
    );
    check(
        base().consecutive_success_limit(2).failure_limit(2),
        &[
            Successful(0.0),
            Failed(0.1),
            Successful(0.0),
            Successful(0.0),
        ],
        expect![[r#"
        Successful(0.0) -> Running
        Failed(0.1) -> Running
        Successful(0.0) -> Running
        Successful(0.0) -> Successful
    "#]],
    );
}

#[test]
fn classify_reads_the_metric_and_treats_nan_as_no_data() {
    let check = base()
        .inconclusive_within(Threshold::at_most(0.05))
        .build()
        .unwrap();
    let sample = |v: Option<f64>| {
        Sample::new(
            vec![v.map_or_else(
                || Measurement::no_data("error_rate"),
                |v| Measurement::value("error_rate", v),
            )],
            "",
        )
    };
    let err = crate::Error::new(crate::ErrorKind::Unavailable, "503");
    let got = [
        check.classify(Ok(&sample(Some(0.001)))),
        check.classify(Ok(&sample(Some(0.02)))),
        check.classify(Ok(&sample(Some(0.2)))),
        check.classify(Ok(&sample(None))),
        check.classify(Ok(&sample(Some(f64::NAN)))),
        check.classify(Ok(&Sample::default())),
        check.classify(Err(&err)),
    ];
    expect![[
        r#"[Successful(0.001), Inconclusive(0.02), Failed(0.2), NoData, NoData, NoData, Error]"#
    ]]
    .assert_eq(&format!("{got:?}"));
}

#[test]
fn invalid_checks_are_refused_naming_the_field() {
    let cases = [
        (
            base().success(Threshold::at_most(f64::NAN)),
            "invalid input: check error-rate: success.max: NaN is not a finite number",
        ),
        (
            base().success(Threshold::at_least(-1.0)),
            "invalid input: check error-rate: success.min: -1 is negative",
        ),
        (
            base().success(Threshold::between(2.0, 1.0)),
            "invalid input: check error-rate: success: min 2 is greater than max 1",
        ),
        (
            base().inconclusive_within(Threshold::at_most(-0.5)),
            "invalid input: check error-rate: failure.max: -0.5 is negative",
        ),
        (
            base().interval(Duration::ZERO),
            "invalid input: check error-rate: interval: must be greater than zero",
        ),
        (
            base().count(0),
            "invalid input: check error-rate: count: must be at least 1",
        ),
        (
            AnalysisCheck::builder("x", "p", "m"),
            "invalid input: check x: success: has neither min nor max",
        ),
    ];
    for (builder, expected) in cases {
        let err = builder.build().unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::InvalidInput);
        assert_eq!(err.to_string(), expected);
    }
}

#[test]
fn verdict_ignores_dry_run_checks_and_prefers_failure() {
    let real = base().build().unwrap();
    let shadow = base().dry_run(true).build().unwrap();
    let failed = CheckRun {
        status: CheckStatus::Failed("bad".into()),
        ..CheckRun::default()
    };
    let running = CheckRun::default();
    let inconclusive = CheckRun {
        status: CheckStatus::Inconclusive("meh".into()),
        ..CheckRun::default()
    };
    assert_eq!(
        Verdict::combine([(&shadow, &failed), (&real, &running)]),
        Verdict::Running
    );
    assert_eq!(
        Verdict::combine([(&real, &inconclusive), (&real, &failed)]),
        Verdict::Failed("check error-rate: bad".into())
    );
    assert_eq!(
        Verdict::combine([(&real, &inconclusive), (&real, &running)]),
        Verdict::Inconclusive("check error-rate: meh".into())
    );
}

mod judges {
    //! Each judge with a failing case and its healthy twin, and the shared cause between them.

    use super::*;

    fn versions() -> Versions {
        Versions::new(
            Some(VersionRef::new("app:v2.4.0", vec!["v2.4.0".into()])),
            Some(VersionRef::new("app:v2.3.1", vec!["v2.3.1".into()])),
        )
    }

    /// Error counts per version, labelled by tag as a mesh exports them.
    fn errors(candidate: (u64, u64), baseline: (u64, u64)) -> Sample {
        Sample::new(
            vec![
                Measurement::proportion("error_rate", candidate.0, candidate.1)
                    .with_label("version", "v2.4.0"),
                Measurement::proportion("error_rate", baseline.0, baseline.1)
                    .with_label("version", "v2.3.1"),
            ],
            "",
        )
    }

    fn judge(check: &AnalysisCheck, sample: &Sample) -> String {
        let j = check.judge(Ok(sample), &versions());
        format!("{:?}: {}", j.outcome, j.reason)
    }

    #[test]
    fn threshold_per_version_blames_the_candidate_alone_or_names_a_shared_cause() {
        let check = base().build().unwrap();
        expect![[r#"
            Failed(0.15384615384615385): error_rate 15.4% on app:v2.4.0 vs 0.2% on app:v2.3.1, not at most 1.0%
            Successful(0.002): error_rate 0.2% on app:v2.4.0 vs 0.2% on app:v2.3.1
            Shared(0.15): error_rate 15.0% on app:v2.4.0 vs 14.8% on app:v2.3.1, not at most 1.0%
        "#]]
        .assert_eq(&format!(
            "{}\n{}\n{}\n",
            judge(&check, &errors((20, 130), (2, 1000))),
            judge(&check, &errors((2, 1000), (2, 1000))),
            judge(&check, &errors((150, 1000), (148, 1000))),
        ));
    }

    /// Feeds `looks` to a pooled sequential check and returns its last verdict.
    fn sequential(looks: &[Sample]) -> String {
        let check = base().judge(Judge::sequential()).build().unwrap();
        let mut pool = crate::analysis::pool::Pool::default();
        let mut last = String::new();
        for look in looks {
            let j = check.judge_pooled(&mut pool, Ok(look), &versions());
            last = format!("{:?}: {}", j.outcome, j.reason);
        }
        last
    }

    fn candidate_alone(events: u64, trials: u64) -> Sample {
        Sample::new(
            vec![
                Measurement::proportion("error_rate", events, trials)
                    .with_label("version", "v2.4.0"),
            ],
            "",
        )
    }

    #[test]
    fn the_sequential_judge_fails_by_e_values_and_spares_the_healthy_twin() {
        // Worse than the baseline and over the range: the comparison fails it.
        let worse = vec![errors((20, 300), (1, 700)); 3];
        // The healthy twin: alike.
        let alike = vec![errors((1, 300), (2, 700)); 30];
        // Worse than the baseline beyond chance, but inside the range: the floor spares it.
        let inside = vec![errors((2, 300), (0, 700)); 30];
        // The bake (no baseline serves): 3% alone is over the range beyond chance.
        let mut bake = vec![errors((1, 300), (2, 700)); 2];
        bake.extend(vec![candidate_alone(24, 780); 4]);
        // Both versions over the range: a shared cause, never the candidate's failure.
        let both = vec![errors((15, 300), (36, 700)); 6];
        expect![[r#"
            Failed(0.06666666666666667): since the new version first served: error_rate 6.7% on app:v2.4.0 vs 0.1% on app:v2.3.1: worse than the baseline beyond chance (e = 7.2e16 ≥ 200 on errors, after 900 requests on app:v2.4.0)
            Successful(0.0033333333333333335): since the new version first served: error_rate 0.3% on app:v2.4.0 vs 0.3% on app:v2.3.1: e = 0.02 < 200 worse than the baseline on errors, e = 0.17 < 200 over the range (at most 1.0%)
            Successful(0.006666666666666667): since the new version first served: error_rate 0.7% on app:v2.4.0 vs 0.0% on app:v2.3.1: e = 2.4e18 < 200 worse than the baseline on errors, e = 0.18 < 200 over the range (at most 1.0%); worse than the baseline beyond chance but inside the range (at most 1.0%), so not failed
            Failed(0.026344086021505377): since the new version first served: error_rate 2.6% on app:v2.4.0 vs 0.3% on app:v2.3.1: over the range (at most 1.0%) beyond chance, where the baseline is not (e = 5.2e13 ≥ 200 from its minute 1 on: 98 of 3720 over the bound on app:v2.4.0)
            Shared(0.05): since the new version first served: error_rate 5.0% on app:v2.4.0 vs 5.1% on app:v2.3.1: both versions over the range (at most 1.0%) beyond chance (e = 8.3e30 and 1.3e78 ≥ 200)
        "#]]
        .assert_eq(&format!(
            "{}\n{}\n{}\n{}\n{}\n",
            sequential(&worse),
            sequential(&alike),
            sequential(&inside),
            sequential(&bake),
            sequential(&both),
        ));
    }

    #[test]
    fn the_sequential_judge_holds_a_plain_value_to_the_range() {
        let latency = |candidate: f64, baseline: f64| {
            Sample::new(
                vec![
                    Measurement::value("error_rate", candidate).with_label("version", "v2.4.0"),
                    Measurement::value("error_rate", baseline).with_label("version", "v2.3.1"),
                ],
                "",
            )
        };
        expect![[r#"
            Failed(0.05): error_rate 5.0% on app:v2.4.0 vs 0.1% on app:v2.3.1: over the range (at most 1.0%)
            Successful(0.002): error_rate 0.2% on app:v2.4.0 vs 0.1% on app:v2.3.1
        "#]]
        .assert_eq(&format!(
            "{}\n{}\n",
            sequential(&[latency(0.05, 0.001)]),
            sequential(&[latency(0.002, 0.001)]),
        ));
    }

    #[test]
    fn the_statistical_judge_needs_significance_and_a_margin() {
        let check = base().judge(Judge::statistical()).build().unwrap();
        expect![[r#"
            Failed(0.15384615384615385): error_rate 15.4% on app:v2.4.0 vs 0.2% on app:v2.3.1 (p < 0.001)
            Successful(0.003): error_rate 0.3% on app:v2.4.0 vs 0.2% on app:v2.3.1 (p = 0.101)
            Successful(0.006): error_rate 0.6% on app:v2.4.0 vs 0.2% on app:v2.3.1 (p < 0.001)
            Shared(0.15): error_rate 15.0% on app:v2.4.0 vs 14.8% on app:v2.3.1 (p = 0.475)
            TooFew: too few observations on app:v2.4.0: 12, 50 needed
        "#]]
        .assert_eq(&format!(
            "{}\n{}\n{}\n{}\n{}\n",
            judge(&check, &errors((20, 130), (2, 1000))),
            // 10k a side: 0.3% against 0.2% is noise (Fisher p = 0.10).
            judge(&check, &errors((30, 10_000), (20, 10_000))),
            // Significant, but within the 1-point margin: not worth a rollback.
            judge(&check, &errors((60, 10_000), (20, 10_000))),
            // Both at 15%: the service, not the version.
            judge(&check, &errors((150, 1000), (148, 1000))),
            judge(&check, &errors((6, 12), (2, 1000))),
        ));
    }

    #[test]
    fn mann_whitney_judges_latency_samples() {
        let check = AnalysisCheck::builder("latency", "http", "latency_seconds")
            .judge(Judge::Statistical {
                confidence: 0.99,
                margin: 0.2,
                min_observations: 20,
            })
            .build()
            .unwrap();
        let spread = |scale: f64| -> Vec<f64> {
            (0..60)
                .map(|i| scale * (0.05 + f64::from(i % 12) * 0.01))
                .collect()
        };
        let sample = |candidate: Vec<f64>, baseline: Vec<f64>| {
            Sample::new(
                vec![
                    Measurement::samples("latency_seconds", Some(0.1), candidate)
                        .with_label("version", "app:v2.4.0"),
                    Measurement::samples("latency_seconds", Some(0.1), baseline)
                        .with_label("version", "app:v2.3.1"),
                ],
                "",
            )
        };
        let slow = check.judge(Ok(&sample(spread(3.0), spread(1.0))), &versions());
        assert!(matches!(slow.outcome, Failed(_)), "{slow:?}");
        assert!(slow.p_value.unwrap() < 1e-6);
        let same = check.judge(Ok(&sample(spread(1.0), spread(1.0))), &versions());
        assert!(matches!(same.outcome, Successful(_)), "{same:?}");
    }

    #[test]
    fn a_shared_cause_pauses_or_continues_by_policy_and_never_fails() {
        let shared = Judgement {
            outcome: MeasurementOutcome::Shared(0.15),
            candidate: None,
            baseline: None,
            p_value: None,
            reason: "error_rate 15.0% on app:v2.4.0 vs 14.8% on app:v2.3.1".into(),
        };
        let pause = base().build().unwrap();
        let mut run = CheckRun::default();
        expect![[r#"SharedCause("error_rate 15.0% on app:v2.4.0 vs 14.8% on app:v2.3.1: both versions are out of range (at most 0.01), so the cause is shared (capacity, a dependency), not the new version")"#]]
            .assert_eq(&format!("{:?}", run.record_judgement(&pause, &shared)));
        let verdict = Verdict::combine([(&pause, &run)]);
        assert!(matches!(verdict, Verdict::SharedCause(_)), "{verdict:?}");

        let go_on = base()
            .shared_cause(SharedCausePolicy::Continue)
            .build()
            .unwrap();
        let mut run = CheckRun::default();
        assert_eq!(run.record_judgement(&go_on, &shared), &CheckStatus::Running);
        assert_eq!(run.failures, 0);
    }

    #[test]
    fn comparing_judges_without_labels_are_too_few_and_without_a_baseline_use_the_range() {
        let check = base()
            .judge(Judge::Compare {
                max_ratio: Some(2.0),
                max_increase: Some(0.01),
                min_observations: 50,
            })
            .build()
            .unwrap();
        let unlabelled = Sample::new(vec![Measurement::proportion("error_rate", 50, 100)], "");
        assert_eq!(check.judge(Ok(&unlabelled), &versions()).outcome, TooFew);
        // Nothing serves beside the candidate (a completed rolling update): it answers for the
        // range alone — out of it, failed; too few requests, still too few.
        let no_baseline = Versions::new(versions().candidate, None);
        let alone = check.judge(Ok(&errors((50, 100), (0, 100))), &no_baseline);
        assert_eq!(alone.outcome, Failed(0.5));
        assert_eq!(
            alone.reason,
            "error_rate 50.0% on app:v2.4.0; no baseline serves, judged by the range (at most 1.0%)"
        );
        assert_eq!(
            check
                .judge(Ok(&errors((5, 10), (0, 100))), &no_baseline)
                .outcome,
            TooFew
        );
        let unbounded = AnalysisCheck::builder("error-rate", "http", "error_rate")
            .judge(Judge::statistical())
            .build()
            .unwrap();
        assert_eq!(
            unbounded
                .judge(Ok(&errors((50, 100), (0, 100))), &no_baseline)
                .outcome,
            TooFew
        );
        // 2x and +1 point: 5% against 1% fails; 1.8% against 1% is within the comparison
        // but over the 1% success range on its own, which a human decides; 0.9% passes.
        let outcome = |c, b| check.judge(Ok(&errors(c, b)), &versions()).outcome;
        assert!(matches!(outcome((50, 1000), (10, 1000)), Failed(_)));
        assert!(matches!(outcome((18, 1000), (10, 1000)), Inconclusive(_)));
        assert!(matches!(outcome((9, 1000), (10, 1000)), Successful(_)));
    }

    #[test]
    fn judge_settings_are_validated() {
        let err = base()
            .judge(Judge::Statistical {
                confidence: 95.0,
                margin: 0.01,
                min_observations: 50,
            })
            .build()
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid input: check error-rate: judge.confidence: 95 is not between 0.5 and 1 (0.99 is 99%)"
        );
        let err = base()
            .judge(Judge::Compare {
                max_ratio: None,
                max_increase: None,
                min_observations: 0,
            })
            .build()
            .unwrap_err();
        assert!(err.to_string().contains("needs max_ratio"), "{err}");
    }
}

#[test]
fn a_probe_that_cannot_be_read_pauses_and_never_fails_the_version() {
    let check = base().build().unwrap();
    let mut run = CheckRun::default();
    for _ in 0..5 {
        run.record(&check, Error);
    }
    let verdict = Verdict::combine([(&check, &run)]);
    expect![[r#"Inconclusive("check error-rate: 5 consecutive errors reading error_rate (limit 4); the probe's errors say nothing about the new version")"#]]
        .assert_eq(&format!("{verdict:?}"));
}

#[test]
fn a_check_whose_probe_only_errored_has_judged_nothing_and_is_not_satisfied() {
    let mut schedule = CheckSchedule::new(vec![base().build().unwrap()]);
    let check = schedule.checks[0].clone();
    schedule.runs[0].record(&check, Error);
    assert!(!schedule.satisfied(true), "an error is not an evaluation");
    schedule.runs[0].record(&check, Successful(0.0));
    assert!(schedule.satisfied(true));
}
