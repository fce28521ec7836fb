//! What moto cannot produce, with recorded responses (aws-smithy-mocks): unhealthy, draining and
//! initial targets with their reasons, throttling, access denied, a 500, a rule deleted in the
//! middle of a recovery, and a write raced by another writer.

use aws_sdk_elasticloadbalancingv2::Client;
use aws_sdk_elasticloadbalancingv2::config::retry::RetryConfig;
use aws_sdk_elasticloadbalancingv2::operation::describe_rules::{
    DescribeRulesError, DescribeRulesOutput,
};
use aws_sdk_elasticloadbalancingv2::operation::describe_target_health::DescribeTargetHealthOutput;
use aws_sdk_elasticloadbalancingv2::operation::modify_rule::ModifyRuleOutput;
use aws_sdk_elasticloadbalancingv2::types::error::RuleNotFoundException;
use aws_sdk_elasticloadbalancingv2::types::{
    Action, ActionTypeEnum, ForwardActionConfig, Rule, TargetDescription, TargetGroupTuple,
    TargetHealth, TargetHealthDescription, TargetHealthReasonEnum, TargetHealthStateEnum,
};
use aws_smithy_mocks::{RuleMode, mock, mock_client};
use deployguard_aws::{AlbRouter, TargetHealthProbe};
use deployguard_core::{ErrorKind, HealthProbe, TrafficRouter, TrafficSplit};

const RULE: &str = "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener-rule/app/shop/0123456789abcdef/0123456789abcdef/0123456789abcdef";
const BLUE: &str =
    "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/shop-blue/0123456789abcdef";
const GREEN: &str =
    "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/shop-green/0123456789abcdef";

fn rule_forwarding(blue: i32, green: i32) -> DescribeRulesOutput {
    let action = Action::builder()
        .r#type(ActionTypeEnum::Forward)
        .forward_config(
            ForwardActionConfig::builder()
                .target_groups(
                    TargetGroupTuple::builder()
                        .target_group_arn(BLUE)
                        .weight(blue)
                        .build(),
                )
                .target_groups(
                    TargetGroupTuple::builder()
                        .target_group_arn(GREEN)
                        .weight(green)
                        .build(),
                )
                .build(),
        )
        .build();
    DescribeRulesOutput::builder()
        .rules(
            Rule::builder()
                .rule_arn(RULE)
                .priority("10")
                .actions(action)
                .build(),
        )
        .build()
}

fn router(client: Client) -> AlbRouter {
    AlbRouter::builder_with_client(client)
        .rule(RULE)
        .backend("blue", BLUE)
        .backend("green", GREEN)
        .build()
        .unwrap()
}

fn error_xml(code: &str, message: &str) -> String {
    format!(
        "<ErrorResponse xmlns=\"http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/\"><Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error><RequestId>6e8a0f7c</RequestId></ErrorResponse>"
    )
}

fn target(
    id: &str,
    state: TargetHealthStateEnum,
    reason: Option<TargetHealthReasonEnum>,
) -> TargetHealthDescription {
    let mut health = TargetHealth::builder().state(state);
    if let Some(reason) = reason {
        health = health.reason(reason);
    }
    TargetHealthDescription::builder()
        .target(TargetDescription::builder().id(id).port(8080).build())
        .target_health(health.build())
        .build()
}

#[tokio::test]
async fn the_probe_counts_each_state_and_names_the_unhealthy_reasons() {
    let health = mock!(Client::describe_target_health).then_output(|| {
        DescribeTargetHealthOutput::builder()
            .target_health_descriptions(target("10.0.1.1", TargetHealthStateEnum::Healthy, None))
            .target_health_descriptions(target(
                "10.0.1.2",
                TargetHealthStateEnum::Unhealthy,
                Some(TargetHealthReasonEnum::ResponseCodeMismatch),
            ))
            .target_health_descriptions(target(
                "10.0.1.3",
                TargetHealthStateEnum::Unhealthy,
                Some(TargetHealthReasonEnum::Timeout),
            ))
            .target_health_descriptions(target(
                "10.0.1.4",
                TargetHealthStateEnum::Draining,
                Some(TargetHealthReasonEnum::DeregistrationInProgress),
            ))
            .target_health_descriptions(target(
                "10.0.1.5",
                TargetHealthStateEnum::Initial,
                Some(TargetHealthReasonEnum::InitialHealthChecking),
            ))
            .build()
    });
    let client = mock_client!(aws_sdk_elasticloadbalancingv2, [&health]);
    let probe = TargetHealthProbe::builder_with_client(client)
        .target_group("v2.4.0", GREEN)
        .build()
        .unwrap();
    let sample = probe.sample().await.unwrap();
    let value = |name: &str| {
        sample
            .measurements
            .iter()
            .find(|m| m.name == name)
            .and_then(|m| m.value)
    };
    assert_eq!(value("healthy_fraction"), Some(0.2));
    assert_eq!(value("unhealthy_targets"), Some(2.0));
    assert_eq!(value("draining_targets"), Some(1.0));
    assert_eq!(value("initial_targets"), Some(1.0));
    let reasons: Vec<(String, f64)> = sample
        .measurements
        .iter()
        .filter(|m| m.name == "unhealthy_reason")
        .map(|m| (m.labels["reason"].clone(), m.value.unwrap()))
        .collect();
    assert_eq!(
        reasons,
        [
            ("Target.ResponseCodeMismatch".to_owned(), 1.0),
            ("Target.Timeout".to_owned(), 1.0)
        ]
    );
    assert!(
        sample
            .measurements
            .iter()
            .all(|m| m.labels["version"] == "v2.4.0")
    );
    assert_eq!(
        sample.evidence,
        "v2.4.0: 1/5 healthy (1 Target.ResponseCodeMismatch, 1 Target.Timeout), 1 draining, 1 initial"
    );
}

#[tokio::test]
async fn aws_errors_map_to_kinds_with_the_arn_and_whether_a_retry_helps() {
    let cases = [
        (403, "AccessDenied", ErrorKind::Forbidden, false),
        (400, "Throttling", ErrorKind::Unavailable, true),
        (500, "InternalFailure", ErrorKind::Unavailable, true),
    ];
    for (status, code, kind, retryable) in cases {
        let body = error_xml(
            code,
            "User: arn:aws:sts::123456789012:assumed-role/deployer is not authorized",
        );
        let answer = mock!(Client::describe_rules)
            .sequence()
            .http_status(status, Some(body))
            .repeatedly()
            .build();
        let client = mock_client!(
            aws_sdk_elasticloadbalancingv2,
            RuleMode::MatchAny,
            [&answer],
            |c| c.retry_config(RetryConfig::disabled())
        );
        let err = router(client).current().await.unwrap_err();
        assert_eq!(
            (err.kind(), err.is_retryable()),
            (kind, retryable),
            "{code}: {err}"
        );
        let text = err.to_string();
        assert!(text.contains(RULE) && text.contains(code), "{code}: {text}");
        assert!(
            !text.contains("moto-secret") && !format!("{err:?}").contains("secret"),
            "{text}"
        );
    }
}

#[tokio::test]
async fn a_rule_deleted_in_the_middle_of_a_recovery_is_not_found_and_nothing_is_written() {
    let reads = mock!(Client::describe_rules)
        .sequence()
        .output(|| rule_forwarding(90, 10))
        .error(|| {
            DescribeRulesError::RuleNotFoundException(
                RuleNotFoundException::builder()
                    .message("One or more rules not found")
                    .build(),
            )
        })
        .repeatedly()
        .build();
    let writes = mock!(Client::modify_rule).then_output(|| ModifyRuleOutput::builder().build());
    let client = mock_client!(
        aws_sdk_elasticloadbalancingv2,
        RuleMode::MatchAny,
        [&reads, &writes],
        |c| c.retry_config(RetryConfig::disabled())
    );
    let router = router(client);
    let read = router.current().await.unwrap();
    let err = router
        .apply(
            &TrafficSplit::all_to("blue", &["green"]).unwrap(),
            &read.version,
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    assert!(err.to_string().contains(RULE), "{err}");
    assert_eq!(writes.num_calls(), 0);
}

#[tokio::test]
async fn a_write_raced_by_another_writer_is_reported_as_a_conflict() {
    // Read (current), read twice in apply (the second right before the write), write, read
    // back: someone else's split.
    let reads = mock!(Client::describe_rules)
        .sequence()
        .output(|| rule_forwarding(90, 10))
        .times(3)
        .output(|| rule_forwarding(50, 50))
        .repeatedly()
        .build();
    let writes = mock!(Client::modify_rule).then_output(|| ModifyRuleOutput::builder().build());
    let client = mock_client!(
        aws_sdk_elasticloadbalancingv2,
        RuleMode::MatchAny,
        [&reads, &writes]
    );
    let router = router(client);
    let read = router.current().await.unwrap();
    let err = router
        .apply(
            &TrafficSplit::two_way("blue", "green", 20).unwrap(),
            &read.version,
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict, "{err}");
    assert!(err.to_string().contains("green=50%"), "{err}");
    assert_eq!(writes.num_calls(), 1);
}
