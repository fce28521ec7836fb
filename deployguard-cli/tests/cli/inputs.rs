//! Bad input, table-driven, over the library's builders and backends and over the commands:
//! each case gets a typed error (or exit code) naming what was wrong, and the request log of the
//! simulated cluster shows that nothing was written — for names that cannot be URLs, that
//! nothing was even sent. The argument parsers never panic, whatever they are given.

use std::sync::Arc;
use std::time::Duration;

use deployguard_cli::emergency::{self, Confirm, Exit};
use deployguard_core::analysis::{AnalysisCheck, Threshold};
use deployguard_core::engine::{Canary, CanaryStep, Guard, Strategy};
use deployguard_core::{
    DeploymentBackend, Error, ErrorKind, RevisionId, RollbackOptions, TrafficSplit,
};
use deployguard_k8s::{KubeDeployment, ServiceSelectorRouter};
use deployguard_testkit::cluster::{FakeCluster, scenarios};
use deployguard_testkit::{Behaviour, FakeDeployment, FakeRouter, ScriptedProbe};
use proptest::prelude::*;

struct Nobody;

impl Confirm for Nobody {
    fn confirm(&mut self, _: &str) -> Option<bool> {
        None
    }
}

fn writes(cluster: &FakeCluster) -> usize {
    cluster
        .requests()
        .iter()
        .filter(|r| r.verb.is_write())
        .count()
}

/// Asserts `result` is an error of `kind` whose message contains `words`.
fn refused<T: std::fmt::Debug>(case: &str, result: Result<T, Error>, kind: ErrorKind, words: &str) {
    let err = result.expect_err(case);
    assert_eq!(err.kind(), kind, "{case}: {err}");
    assert!(err.to_string().contains(words), "{case}: {err}");
}

#[tokio::test(start_paused = true)]
async fn bad_names_never_reach_a_url_and_bad_keys_write_nothing() {
    let cluster = FakeCluster::with_controllers();
    scenarios::load(&cluster, "seed-rolling-failure")
        .await
        .unwrap();
    cluster.clear_requests();
    let names: &[(&str, &str)] = &[
        ("default", "app-deployment?x=1"),
        ("default", "../secrets"),
        ("default", "App-Deployment"),
        ("default", ""),
        ("default", "a/b"),
        ("default", "web%2F..%2Fx"),
        ("default", "-web"),
        ("default", "web deployment"),
        ("Default", "app-deployment"),
        ("kube-system/..", "app-deployment"),
        ("", "app-deployment"),
    ];
    for (namespace, name) in names {
        let backend = KubeDeployment::new(cluster.client(), namespace, name);
        let case = format!("{namespace}/{name}");
        refused(
            &case,
            backend.observe().await,
            ErrorKind::InvalidInput,
            "is not a valid name",
        );
        refused(
            &case,
            backend
                .rollback_to(RevisionId(1), RollbackOptions::default())
                .await,
            ErrorKind::InvalidInput,
            "is not a valid name",
        );
        refused(
            &case,
            backend
                .set_marker("deployguard.io/x", Some("1".into()))
                .await,
            ErrorKind::InvalidInput,
            "is not a valid name",
        );
    }
    assert_eq!(cluster.requests().len(), 0, "nothing was sent");

    let backend = KubeDeployment::new(cluster.client(), "default", "app-deployment");
    for key in [
        "rollout",
        "deployguard.io/",
        "example.com/rollout",
        "deployguard.io/a b",
        "",
    ] {
        refused(
            key,
            backend.set_marker(key, Some("1".into())).await,
            ErrorKind::InvalidInput,
            "marker key",
        );
    }
    // namespace, service, selector key, backends, what the error names.
    type RouterCase<'a> = (&'a str, &'a str, &'a str, &'a [(&'a str, &'a str)], &'a str);
    let routers: &[RouterCase<'_>] = &[
        (
            "Default",
            "svc",
            "version",
            &[("stable", "blue"), ("candidate", "green")],
            "namespace",
        ),
        (
            "default",
            "svc?x=1",
            "version",
            &[("stable", "blue"), ("candidate", "green")],
            "service",
        ),
        (
            "default",
            "svc",
            "version",
            &[("stable", "blue")],
            "backends",
        ),
        (
            "default",
            "svc",
            "version",
            &[("stable", "blue"), ("candidate", "blue")],
            "backends",
        ),
        (
            "default",
            "svc",
            "",
            &[("stable", "blue"), ("candidate", "green")],
            "key",
        ),
    ];
    for (namespace, service, key, backends, words) in routers {
        refused(
            service,
            ServiceSelectorRouter::new(
                cluster.client(),
                namespace,
                service,
                key,
                backends.iter().copied(),
            ),
            ErrorKind::InvalidInput,
            words,
        );
    }
    assert_eq!(writes(&cluster), 0);
}

#[test]
fn builders_refuse_what_cannot_work() {
    let splits: &[(&[(&str, u8)], &str)] = &[
        (&[("stable", 99)], "sum"),
        (&[("stable", 60), ("canary", 41)], "sum"),
        (&[("stable", 50), ("stable", 50)], "named twice"),
        (&[("", 100)], "empty"),
        (&[], "no backends"),
    ];
    for (weights, words) in splits {
        let weights = weights.iter().map(|(n, w)| ((*n).to_owned(), *w));
        refused(
            words,
            TrafficSplit::new(weights),
            ErrorKind::InvalidInput,
            words,
        );
    }
    let checks: Vec<(Result<AnalysisCheck, Error>, &str)> = vec![
        (AnalysisCheck::builder("e", "p", "m").build(), "success"),
        (
            AnalysisCheck::builder("e", "p", "m")
                .success(Threshold::between(0.5, 0.1))
                .build(),
            "greater than max",
        ),
        (
            AnalysisCheck::builder("e", "p", "m")
                .success(Threshold::at_most(0.1))
                .interval(Duration::ZERO)
                .build(),
            "interval",
        ),
        (
            AnalysisCheck::builder("e", "p", "m")
                .success(Threshold::at_most(0.1))
                .count(0)
                .build(),
            "count",
        ),
        (
            AnalysisCheck::builder("", "p", "m")
                .success(Threshold::at_most(0.1))
                .build(),
            "check name",
        ),
        (
            AnalysisCheck::builder("e", "p", "")
                .success(Threshold::at_most(0.1))
                .build(),
            "metric",
        ),
    ];
    for (result, words) in checks {
        refused(words, result, ErrorKind::InvalidInput, words);
    }
    let backend = || {
        Arc::new(
            FakeDeployment::builder("web")
                .revision(["app:v1"], Behaviour::healthy())
                .build()
                .0,
        )
    };
    let check = |probe: &str| {
        AnalysisCheck::builder("error-rate", probe, "error_rate")
            .success(Threshold::at_most(0.01))
            .build()
            .unwrap()
    };
    let probe = || Arc::new(ScriptedProbe::new("http").reports(["errors"]).build().0);
    let guards: Vec<(Result<Guard, Error>, &str)> = vec![
        (
            Guard::builder(Strategy::Rolling, backend())
                .recovery_deadline(Duration::ZERO)
                .build(),
            "recovery_deadline",
        ),
        (
            Guard::builder(Strategy::Rolling, backend())
                .step_timeout(Duration::ZERO)
                .build(),
            "step_timeout",
        ),
        (
            Guard::builder(Strategy::Rolling, backend())
                .poll_interval(Duration::ZERO)
                .build(),
            "poll_interval",
        ),
        (
            Guard::builder(Strategy::Rolling, backend())
                .check(check("http"))
                .build(),
            "no probe called",
        ),
        (
            Guard::builder(Strategy::Rolling, backend())
                .probe(probe())
                .check(check("http"))
                .build(),
            "never reports",
        ),
        (
            Guard::builder(Strategy::Rolling, backend())
                .probe(probe())
                .check(check("http"))
                .check(check("http"))
                .build(),
            "never reports",
        ),
        (
            Guard::builder(
                Strategy::Canary(Canary::new(
                    "stable",
                    "canary",
                    vec![CanaryStep::SetWeight(10)],
                )),
                backend(),
            )
            .build(),
            "need a traffic router",
        ),
        (
            Guard::builder(
                Strategy::Canary(Canary::new(
                    "stable",
                    "canary",
                    vec![CanaryStep::SetWeight(10)],
                )),
                backend(),
            )
            .router(Arc::new(FakeRouter::weighted("mesh", ["blue", "green"]).0))
            .build(),
            "does not route backend",
        ),
    ];
    for (result, words) in guards {
        refused(words, result, ErrorKind::InvalidInput, words);
    }
}

#[tokio::test(start_paused = true)]
async fn the_command_refuses_what_it_cannot_act_on_and_writes_nothing() {
    let cluster = FakeCluster::with_controllers();
    scenarios::load(&cluster, "seed-blue-green").await.unwrap();
    cluster.clear_requests();
    let cases: &[(&[&str], Exit, &str)] = &[
        (&["nope", "--yes"], Exit::Usage, "not found"),
        (
            &["app", "-n", "missing-namespace", "--yes"],
            Exit::Usage,
            "not found",
        ),
        (
            &[
                "myapp-green",
                "--strategy",
                "blue-green",
                "--service",
                "nope",
                "--stable",
                "blue",
                "--candidate",
                "green",
                "--yes",
            ],
            Exit::Failed,
            "not found",
        ),
        (
            &[
                "myapp-green",
                "--strategy",
                "blue-green",
                "--service",
                "myapp-service",
                "--stable",
                "blue",
                "--candidate",
                "blue",
                "--yes",
            ],
            Exit::Usage,
            "distinct label values",
        ),
        (
            &[
                "myapp-green",
                "--strategy",
                "blue-green",
                "--service",
                "myapp-service",
                "--stable",
                "purple",
                "--candidate",
                "green",
                "--yes",
            ],
            Exit::Failed,
            "is none of the router's backends",
        ),
    ];
    for (args, expected, words) in cases {
        let options = emergency::parse(args.iter().map(|a| (*a).to_owned())).unwrap();
        let mut out = Vec::new();
        let progress = std::sync::Arc::new(std::sync::Mutex::new(Vec::<u8>::new()));
        struct Shared(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);
        impl std::io::Write for Shared {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(buf);
                Ok(buf.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let exit = emergency::run(
            cluster.client(),
            &options,
            &mut Nobody,
            &mut out,
            Box::new(Shared(std::sync::Arc::clone(&progress))),
        )
        .await;
        let said = format!(
            "{}{}",
            String::from_utf8(out).unwrap(),
            String::from_utf8(progress.lock().unwrap().clone()).unwrap()
        );
        assert_eq!(exit, *expected, "{args:?}: {said}");
        assert!(said.contains(words), "{args:?}: {said}");
    }
    assert_eq!(writes(&cluster), 0);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn argument_parsers_never_panic(text in ".{0,80}", args in prop::collection::vec(".{0,24}", 0..6)) {
        let _ = emergency::parse_name(&text);
        let _ = emergency::parse_deadline(&text);
        let _ = emergency::redacted(&text);
        let _ = deployguard_testkit::cluster::parse_fault(&text);
        let _ = emergency::parse(args);
    }

    #[test]
    fn accepted_names_are_url_safe(text in "[a-z0-9.?/%-]{1,70}") {
        if let Ok(name) = emergency::parse_name(&text) {
            prop_assert!(name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'));
        }
    }

    #[test]
    fn accepted_deadlines_are_bounded(text in "[0-9]{1,20}(ns|us|ms|s|m|h|d|y)") {
        if let Ok(deadline) = emergency::parse_deadline(&text) {
            prop_assert!(deadline > Duration::ZERO && deadline <= Duration::from_secs(24 * 3600));
        }
    }
}
