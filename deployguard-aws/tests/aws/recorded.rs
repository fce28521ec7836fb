//! What moto cannot produce, as recorded ELBv2 responses (the XML the API sends, served by a
//! connector that answers each action from its list and records the requests): unhealthy,
//! draining and initial targets with their reasons, access denied, throttling, a 500, a rule
//! deleted in the middle of a recovery, and a write raced by another writer.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};

use aws_sdk_elasticloadbalancingv2::config::retry::RetryConfig;
use aws_sdk_elasticloadbalancingv2::config::{
    BehaviorVersion, Credentials, Region, SharedCredentialsProvider,
};
use aws_sdk_elasticloadbalancingv2::{Client, Config};
use aws_smithy_runtime_api::client::http::{
    HttpConnector, HttpConnectorFuture, SharedHttpConnector, http_client_fn,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::http::StatusCode;
use aws_smithy_types::body::SdkBody;
use deployguard_aws::{AlbRouter, TargetHealthProbe};
use deployguard_core::{ErrorKind, HealthProbe, TrafficRouter, TrafficSplit};

const RULE: &str = "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener-rule/app/shop/0123456789abcdef/0123456789abcdef/0123456789abcdef";
const BLUE: &str =
    "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/shop-blue/0123456789abcdef";
const GREEN: &str =
    "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/shop-green/0123456789abcdef";
const NS: &str = "http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/";

/// Per action, the recorded answers still to give: HTTP status and XML body.
type Answers = BTreeMap<String, VecDeque<(u16, String)>>;

/// Answers each ELBv2 action with the next of its recorded responses (the last one repeats),
/// and keeps the actions asked for.
#[derive(Debug, Clone, Default)]
struct Recorded {
    answers: Arc<Mutex<Answers>>,
    asked: Arc<Mutex<Vec<String>>>,
}

impl Recorded {
    fn answer(self, action: &str, status: u16, body: String) -> Self {
        self.answers
            .lock()
            .unwrap()
            .entry(action.to_owned())
            .or_default()
            .push_back((status, body));
        self
    }

    fn asked(&self, action: &str) -> usize {
        self.asked
            .lock()
            .unwrap()
            .iter()
            .filter(|a| *a == action)
            .count()
    }

    fn client(&self) -> Client {
        let connector = SharedHttpConnector::new(self.clone());
        let config = Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
                "AKIDEXAMPLE",
                "recorded-secret",
                None,
                None,
                "recorded",
            )))
            .retry_config(RetryConfig::disabled())
            .http_client(http_client_fn(move |_, _| connector.clone()))
            .build();
        Client::from_conf(config)
    }
}

impl HttpConnector for Recorded {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let form = String::from_utf8_lossy(request.body().bytes().unwrap_or_default()).into_owned();
        let action = form
            .split('&')
            .find_map(|pair| pair.strip_prefix("Action="))
            .unwrap_or_default()
            .to_owned();
        self.asked.lock().unwrap().push(action.clone());
        let (status, body) = {
            let mut answers = self.answers.lock().unwrap();
            let queue = answers
                .get_mut(&action)
                .unwrap_or_else(|| panic!("no recorded answer for {action}"));
            if queue.len() > 1 {
                queue.pop_front().unwrap()
            } else {
                queue.front().cloned().unwrap()
            }
        };
        let response =
            HttpResponse::new(StatusCode::try_from(status).unwrap(), SdkBody::from(body));
        HttpConnectorFuture::ready(Ok(response))
    }
}

fn rule_forwarding(blue: u32, green: u32) -> String {
    format!(
        "<DescribeRulesResponse xmlns=\"{NS}\"><DescribeRulesResult><Rules><member>\
         <RuleArn>{RULE}</RuleArn><Priority>10</Priority><Conditions/>\
         <Actions><member><Type>forward</Type><ForwardConfig><TargetGroups>\
         <member><TargetGroupArn>{BLUE}</TargetGroupArn><Weight>{blue}</Weight></member>\
         <member><TargetGroupArn>{GREEN}</TargetGroupArn><Weight>{green}</Weight></member>\
         </TargetGroups><TargetGroupStickinessConfig><Enabled>false</Enabled></TargetGroupStickinessConfig>\
         </ForwardConfig></member></Actions><IsDefault>false</IsDefault></member></Rules></DescribeRulesResult>\
         <ResponseMetadata><RequestId>1</RequestId></ResponseMetadata></DescribeRulesResponse>"
    )
}

fn modified() -> String {
    format!(
        "<ModifyRuleResponse xmlns=\"{NS}\"><ModifyRuleResult><Rules/></ModifyRuleResult>\
         <ResponseMetadata><RequestId>2</RequestId></ResponseMetadata></ModifyRuleResponse>"
    )
}

fn error(code: &str, message: &str) -> String {
    format!(
        "<ErrorResponse xmlns=\"{NS}\"><Error><Type>Sender</Type><Code>{code}</Code>\
         <Message>{message}</Message></Error><RequestId>3</RequestId></ErrorResponse>"
    )
}

fn router(recorded: &Recorded) -> AlbRouter {
    AlbRouter::builder_with_client(recorded.client())
        .rule(RULE)
        .backend("blue", BLUE)
        .backend("green", GREEN)
        .build()
        .unwrap()
}

#[tokio::test]
async fn the_probe_counts_each_state_and_names_the_unhealthy_reasons() {
    let target = |id: &str, health: &str| {
        format!(
            "<member><Target><Id>{id}</Id><Port>8080</Port></Target><HealthCheckPort>traffic-port</HealthCheckPort><TargetHealth>{health}</TargetHealth></member>"
        )
    };
    let body = format!(
        "<DescribeTargetHealthResponse xmlns=\"{NS}\"><DescribeTargetHealthResult><TargetHealthDescriptions>{}{}{}{}{}</TargetHealthDescriptions></DescribeTargetHealthResult><ResponseMetadata><RequestId>4</RequestId></ResponseMetadata></DescribeTargetHealthResponse>",
        target("10.0.1.1", "<State>healthy</State>"),
        target(
            "10.0.1.2",
            "<State>unhealthy</State><Reason>Target.ResponseCodeMismatch</Reason><Description>Health checks failed with these codes: [502]</Description>"
        ),
        target(
            "10.0.1.3",
            "<State>unhealthy</State><Reason>Target.Timeout</Reason>"
        ),
        target(
            "10.0.1.4",
            "<State>draining</State><Reason>Target.DeregistrationInProgress</Reason>"
        ),
        target(
            "10.0.1.5",
            "<State>initial</State><Reason>Elb.InitialHealthChecking</Reason>"
        ),
    );
    let recorded = Recorded::default().answer("DescribeTargetHealth", 200, body);
    let probe = TargetHealthProbe::builder_with_client(recorded.client())
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
            .all(|m| m.labels["version"] == "v2.4.0" && m.labels["target_group"] == GREEN)
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
        (400, "RuleNotFound", ErrorKind::NotFound, false),
    ];
    for (status, code, kind, retryable) in cases {
        let recorded = Recorded::default().answer(
            "DescribeRules",
            status,
            error(
                code,
                "User: arn:aws:sts::123456789012:assumed-role/deployer is not authorized",
            ),
        );
        let err = router(&recorded).current().await.unwrap_err();
        assert_eq!(
            (err.kind(), err.is_retryable()),
            (kind, retryable),
            "{code}: {err}"
        );
        let text = err.to_string();
        assert!(text.contains(RULE) && text.contains(code), "{code}: {text}");
        assert!(!format!("{err:?}").contains("recorded-secret"));
    }
}

#[tokio::test]
async fn a_rule_deleted_in_the_middle_of_a_recovery_is_not_found_and_nothing_is_written() {
    let recorded = Recorded::default()
        .answer("DescribeRules", 200, rule_forwarding(90, 10))
        .answer(
            "DescribeRules",
            400,
            error("RuleNotFound", "One or more rules not found"),
        )
        .answer("ModifyRule", 200, modified());
    let router = router(&recorded);
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
    assert_eq!(recorded.asked("ModifyRule"), 0);
}

#[tokio::test]
async fn a_write_raced_by_another_writer_is_reported_as_a_conflict() {
    // Read (current), read twice in apply (the second right before the write), write, read
    // back: someone else's split.
    let recorded = Recorded::default()
        .answer("DescribeRules", 200, rule_forwarding(90, 10))
        .answer("DescribeRules", 200, rule_forwarding(90, 10))
        .answer("DescribeRules", 200, rule_forwarding(90, 10))
        .answer("DescribeRules", 200, rule_forwarding(50, 50))
        .answer("ModifyRule", 200, modified());
    let router = router(&recorded);
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
    assert_eq!(recorded.asked("ModifyRule"), 1);
}
