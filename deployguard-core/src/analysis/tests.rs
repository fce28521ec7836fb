use std::fmt::Write as _;
use std::time::Duration;

use expect_test::{Expect, expect};

use super::*;
use crate::model::{Measurement, Sample};

use MeasurementOutcome::{Error, Failed, Inconclusive, NoData, Successful};

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
        .failure(Threshold::at_most(0.05))
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
    let check = base().failure(Threshold::at_most(0.05)).build().unwrap();
    let sample = |v: Option<f64>| {
        Sample::new(
            vec![Measurement {
                name: "error_rate".into(),
                value: v,
            }],
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
            base().failure(Threshold::at_most(-0.5)),
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
