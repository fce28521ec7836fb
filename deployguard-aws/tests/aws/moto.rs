//! The ALB router and the target-health probe against moto's ELBv2 emulator, started by each
//! test on a free loopback port: the conformance suites, what a write keeps, conditional writes,
//! and a guarded blue-green that promotes on a healthy probe and switches back when it fails.

use crate::support;

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_elasticloadbalancingv2::types::ForwardActionConfig;
use deployguard_aws::{AlbRouter, AlbTarget, TargetHealthProbe, iam};
use deployguard_core::analysis::{AnalysisCheck, Threshold};
use deployguard_core::engine::{BlueGreen, Guard, GuardOutcome, Strategy};
use deployguard_core::{
    ErrorKind, HealthProbe, TrafficRouter, TrafficRouterExt, TrafficSplit, Verification,
};
use deployguard_testkit::{Behaviour, FakeDeployment, conformance};
use support::{Alb, Moto};

fn router(moto: &Moto, target: &AlbTarget, alb: &Alb) -> AlbRouter {
    let builder = AlbRouter::builder(&moto.sdk_config())
        .backend("blue", "shop-blue")
        .backend("green", &alb.green);
    match target {
        AlbTarget::Listener(arn) => builder.listener(arn),
        AlbTarget::Rule(arn) => builder.rule(arn),
        _ => unreachable!(),
    }
    .build()
    .unwrap()
}

async fn forward(moto: &Moto, alb: &Alb) -> ForwardActionConfig {
    let listeners = moto
        .client()
        .describe_listeners()
        .listener_arns(&alb.listener_arn)
        .send()
        .await
        .unwrap();
    listeners.listeners()[0].default_actions()[0]
        .forward_config()
        .unwrap()
        .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn router_and_probe_pass_the_conformance_suites_against_moto() {
    let moto = Moto::start().await;
    let alb = moto.alb().await;
    for target in [
        AlbTarget::Listener(alb.listener_arn.clone()),
        AlbTarget::Rule(alb.rule_arn.clone()),
    ] {
        let router = router(&moto, &target, &alb);
        conformance::router_suite(&router).await.unwrap();
        let boxed: Box<dyn TrafficRouter> = Box::new(router);
        conformance::router_suite(&boxed).await.unwrap();
    }
    let probe = TargetHealthProbe::builder(&moto.sdk_config())
        .target_group("blue", "shop-blue")
        .target_group("green", &alb.green)
        .build()
        .unwrap();
    conformance::probe_suite(&probe).await.unwrap();
    // Credentials never show, whatever is printed.
    let router = router(&moto, &AlbTarget::Listener(alb.listener_arn.clone()), &alb);
    for text in [
        format!("{router:?}"),
        format!("{probe:?}"),
        format!("{:?}", moto.sdk_config()),
    ] {
        assert!(!text.contains("moto-secret-never-printed"), "{text}");
    }
    let sample = probe.sample().await.unwrap();
    assert_eq!(sample.evidence, "blue: 3/3 healthy; green: 3/3 healthy");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_changes_the_weights_alone_and_a_concurrent_edit_is_a_conflict() {
    let moto = Moto::start().await;
    let alb = moto.alb().await;
    let router = router(&moto, &AlbTarget::Listener(alb.listener_arn.clone()), &alb);
    let read = router.current().await.unwrap();
    assert_eq!(
        read.split,
        TrafficSplit::all_to("blue", &["green"]).unwrap()
    );
    router
        .apply(
            &TrafficSplit::two_way("blue", "green", 10).unwrap(),
            &read.version,
        )
        .await
        .unwrap();
    let config = forward(&moto, &alb).await;
    let weights: Vec<(String, Option<i32>)> = config
        .target_groups()
        .iter()
        .map(|t| (t.target_group_arn().unwrap().to_owned(), t.weight()))
        .collect();
    assert_eq!(
        weights,
        [(alb.blue.clone(), Some(90)), (alb.green.clone(), Some(10))]
    );
    // Stickiness is kept as it was.
    let stickiness = config.target_group_stickiness_config().unwrap();
    assert_eq!(
        (stickiness.enabled(), stickiness.duration_seconds()),
        (Some(true), Some(300))
    );

    // Someone else changes the listener between our read and our write.
    let stale = router.current().await.unwrap();
    moto.set_listener(&alb, support::forward(&alb.blue, 50, &alb.green, 50, false))
        .await;
    let err = router
        .apply(
            &TrafficSplit::all_to("blue", &["green"]).unwrap(),
            &stale.version,
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict, "{err}");
    assert!(err.to_string().contains(&alb.listener_arn), "{err}");
    assert_eq!(
        router.current().await.unwrap().split,
        TrafficSplit::two_way("blue", "green", 50).unwrap()
    );
    // restore() puts back what the listener had before the router's first write.
    assert_eq!(
        router.restore().await.unwrap(),
        TrafficSplit::all_to("blue", &["green"]).unwrap()
    );
    assert_eq!(
        router
            .verify(&TrafficSplit::all_to("blue", &["green"]).unwrap())
            .await
            .unwrap(),
        Verification::Matches
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traffic_never_goes_to_a_target_group_without_healthy_targets_and_names_are_checked() {
    let moto = Moto::start().await;
    let alb = moto.alb().await;
    let router = router(&moto, &AlbTarget::Rule(alb.rule_arn.clone()), &alb);
    moto.deregister_green(&alb).await;
    let err = router
        .switch(&TrafficSplit::two_way("blue", "green", 10).unwrap())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Refused, "{err}");
    assert!(err.to_string().contains("has no healthy target"), "{err}");
    assert_eq!(
        router.current().await.unwrap().split,
        TrafficSplit::all_to("blue", &["green"]).unwrap()
    );

    let missing = AlbRouter::builder(&moto.sdk_config())
        .rule(&alb.rule_arn)
        .backend("blue", "shop-blue")
        .backend("green", "shop-grene")
        .build()
        .unwrap();
    let err = missing.current().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    assert!(err.to_string().contains("shop-grene"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guarded_blue_green_promotes_on_healthy_targets_and_switches_back_when_they_fail() {
    for fails in [false, true] {
        let moto = Moto::start().await;
        let alb = moto.alb().await;
        let router = Arc::new(router(
            &moto,
            &AlbTarget::Listener(alb.listener_arn.clone()),
            &alb,
        ));
        let probe = Arc::new(
            TargetHealthProbe::builder(&moto.sdk_config())
                .target_group("blue", &alb.blue)
                .target_group("green", &alb.green)
                .build()
                .unwrap(),
        );
        let check = AnalysisCheck::builder("targets-healthy", &probe, "healthy_fraction")
            .success(Threshold::at_least(1.0))
            .interval(Duration::from_millis(500))
            .count(4)
            .build()
            .unwrap();
        let (green, _) = FakeDeployment::builder("shop-green")
            .revision(["shop:green"], Behaviour::healthy())
            .build();
        let (blue, _) = FakeDeployment::builder("shop-blue")
            .revision(["shop:blue"], Behaviour::healthy())
            .build();
        let guard = Guard::builder(
            Strategy::BlueGreen(
                BlueGreen::new("blue", "green")
                    .with_post_promotion(check)
                    .with_scale_down_delay(Duration::from_millis(100)),
            ),
            Arc::new(green),
        )
        .stable(Arc::new(blue))
        .router(Arc::clone(&router) as Arc<dyn TrafficRouter>)
        .probe(probe)
        .poll_interval(Duration::from_millis(200))
        .build()
        .unwrap();
        let sabotage = {
            let moto_client = moto.client();
            let alb = alb.clone();
            let router = Arc::clone(&router);
            tokio::spawn(async move {
                if !fails {
                    return;
                }
                // Once green has the traffic, its targets go away.
                let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
                let green_live = TrafficSplit::all_to("green", &["blue"]).unwrap();
                while router.current().await.ok().map(|r| r.split) != Some(green_live.clone()) {
                    assert!(
                        tokio::time::Instant::now() < deadline,
                        "green never got the traffic"
                    );
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                support::deregister_green(&moto_client, &alb).await;
            })
        };
        let report = tokio::time::timeout(Duration::from_secs(120), guard.run())
            .await
            .expect("the guard finishes");
        sabotage.await.unwrap();
        let (expected, live) = if fails {
            (
                matches!(report.outcome, GuardOutcome::RolledBack { .. }),
                "blue",
            )
        } else {
            (
                matches!(report.outcome, GuardOutcome::Promoted { .. }),
                "green",
            )
        };
        assert!(expected, "fails={fails}: {}", report.outcome);
        let other = if live == "blue" { "green" } else { "blue" };
        assert_eq!(
            router
                .verify(&TrafficSplit::all_to(live, &[other]).unwrap())
                .await
                .unwrap(),
            Verification::Matches,
            "fails={fails}"
        );
    }
}

#[test]
fn the_iam_policy_grants_describes_and_modify_on_the_named_listener_only() {
    let listener = "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/shop/0123456789abcdef/0123456789abcdef";
    let policy = iam::policy(&[AlbTarget::Listener(listener.into())]);
    let statements = policy["Statement"].as_array().unwrap();
    assert_eq!(statements.len(), 2);
    assert_eq!(statements[0]["Resource"], "*");
    assert!(statements[0]["Action"].as_array().unwrap().iter().all(|a| {
        a.as_str()
            .unwrap()
            .starts_with("elasticloadbalancing:Describe")
    }));
    assert_eq!(
        statements[1]["Action"],
        "elasticloadbalancing:ModifyListener"
    );
    assert_eq!(statements[1]["Resource"], serde_json::json!([listener]));
}
