//! A moto server of the test's own (on a free loopback port, stopped when dropped), an
//! `SdkConfig` pointed at it as a user would point one at an endpoint, and an ALB built through
//! the SDK: two target groups with targets, a listener and a rule forwarding to them.

#![allow(dead_code)]

use std::process::Stdio;
use std::time::Duration;

use aws_sdk_elasticloadbalancingv2::Client;
use aws_sdk_elasticloadbalancingv2::config::{
    BehaviorVersion, Credentials, Region, SharedCredentialsProvider,
};
use aws_sdk_elasticloadbalancingv2::types::{
    Action, ActionTypeEnum, ForwardActionConfig, LoadBalancerTypeEnum, ProtocolEnum, RuleCondition,
    TargetDescription, TargetGroupStickinessConfig, TargetGroupTuple, TargetTypeEnum,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};

/// A running `moto_server`.
#[derive(Debug)]
pub struct Moto {
    pub port: u16,
    child: Child,
    _log: tempfile::NamedTempFile,
}

impl Moto {
    /// Starts moto on a free loopback port and waits (30 s at most) until it answers.
    pub async fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free loopback port");
        let log = tempfile::NamedTempFile::new().expect("a log file");
        let child = Command::new("moto_server")
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(log.reopen().expect("the log"))
            .stderr(log.reopen().expect("the log"))
            .kill_on_drop(true)
            .spawn()
            .expect("moto_server is installed (pip install 'moto[server]'; .ci/run does)");
        let moto = Self {
            port,
            child,
            _log: log,
        };
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            if moto
                .get("/moto-api/data.json")
                .await
                .is_some_and(|r| r.starts_with("HTTP/1.1 200") || r.starts_with("HTTP/1.0 200"))
            {
                return moto;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "moto_server did not answer on port {port} within 30 s"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    async fn request(&self, text: String) -> Option<String> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).await.ok()?;
        stream.write_all(text.as_bytes()).await.ok()?;
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await.ok()?;
        Some(String::from_utf8_lossy(&answer).into_owned())
    }

    async fn get(&self, path: &str) -> Option<String> {
        self.request(format!(
            "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\n\r\n",
            self.port
        ))
        .await
    }

    /// One EC2 Query API call (moto routes on the credential scope and does not check
    /// signatures); the XML answer.
    pub async fn ec2(&self, form: &str) -> String {
        let body = format!("{form}&Version=2016-11-15");
        let request = format!(
            "POST / HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Type: application/x-www-form-urlencoded\r\n\
             Authorization: AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/ec2/aws4_request, SignedHeaders=host, Signature=0\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            self.port,
            body.len()
        );
        self.request(request).await.expect("moto answers EC2")
    }

    /// An SDK configuration pointed at this moto, as a user points one at any endpoint.
    pub fn sdk_config(&self) -> aws_types::SdkConfig {
        aws_types::SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
                "AKIDEXAMPLE",
                "moto-secret-never-printed",
                None,
                None,
                "moto",
            )))
            .endpoint_url(self.url())
            .http_client(aws_smithy_http_client::Builder::new().build_http())
            .build()
    }

    pub fn client(&self) -> Client {
        Client::new(&self.sdk_config())
    }

    /// Creates the VPC, subnets, load balancer, target groups (3 IP targets each), a listener
    /// whose default action forwards 100/0 to blue/green, and a rule (`/api/*`) doing the same.
    pub async fn alb(&self) -> Alb {
        let vpc = tag(
            &self.ec2("Action=CreateVpc&CidrBlock=10.0.0.0%2F16").await,
            "vpcId",
        );
        let mut subnets = Vec::new();
        for (cidr, zone) in [
            ("10.0.1.0%2F24", "us-east-1a"),
            ("10.0.2.0%2F24", "us-east-1b"),
        ] {
            let answer = self
                .ec2(&format!(
                    "Action=CreateSubnet&VpcId={vpc}&CidrBlock={cidr}&AvailabilityZone={zone}"
                ))
                .await;
            subnets.push(tag(&answer, "subnetId"));
        }
        let client = self.client();
        let lb = client
            .create_load_balancer()
            .name("shop")
            .r#type(LoadBalancerTypeEnum::Application)
            .set_subnets(Some(subnets))
            .send()
            .await
            .expect("create_load_balancer");
        let lb_arn = lb.load_balancers()[0]
            .load_balancer_arn()
            .unwrap()
            .to_owned();
        let mut groups = Vec::new();
        for (name, base) in [("shop-blue", 10), ("shop-green", 20)] {
            let group = client
                .create_target_group()
                .name(name)
                .protocol(ProtocolEnum::Http)
                .port(8080)
                .vpc_id(&vpc)
                .target_type(TargetTypeEnum::Ip)
                .send()
                .await
                .expect("create_target_group");
            let arn = group.target_groups()[0]
                .target_group_arn()
                .unwrap()
                .to_owned();
            let mut register = client.register_targets().target_group_arn(&arn);
            for i in 0..3 {
                register = register.targets(
                    TargetDescription::builder()
                        .id(format!("10.0.1.{}", base + i))
                        .port(8080)
                        .build(),
                );
            }
            register.send().await.expect("register_targets");
            groups.push(arn);
        }
        let forward = |blue: i32, green: i32| forward(&groups[0], blue, &groups[1], green, true);
        let listener = client
            .create_listener()
            .load_balancer_arn(&lb_arn)
            .protocol(ProtocolEnum::Http)
            .port(80)
            .default_actions(forward(100, 0))
            .send()
            .await
            .expect("create_listener");
        let listener_arn = listener.listeners()[0].listener_arn().unwrap().to_owned();
        let rule = client
            .create_rule()
            .listener_arn(&listener_arn)
            .priority(10)
            .conditions(
                RuleCondition::builder()
                    .field("path-pattern")
                    .values("/api/*")
                    .build(),
            )
            .actions(forward(100, 0))
            .send()
            .await
            .expect("create_rule");
        let rule_arn = rule.rules()[0].rule_arn().unwrap().to_owned();
        Alb {
            lb_arn,
            listener_arn,
            rule_arn,
            blue: groups[0].clone(),
            green: groups[1].clone(),
        }
    }
}

/// A forward action: `blue_weight` to `blue`, `green_weight` to `green`, with five minutes of
/// target-group stickiness when `sticky`.
pub fn forward(
    blue: &str,
    blue_weight: i32,
    green: &str,
    green_weight: i32,
    sticky: bool,
) -> Action {
    let mut config = ForwardActionConfig::builder()
        .target_groups(
            TargetGroupTuple::builder()
                .target_group_arn(blue)
                .weight(blue_weight)
                .build(),
        )
        .target_groups(
            TargetGroupTuple::builder()
                .target_group_arn(green)
                .weight(green_weight)
                .build(),
        );
    if sticky {
        config = config.target_group_stickiness_config(
            TargetGroupStickinessConfig::builder()
                .enabled(true)
                .duration_seconds(300)
                .build(),
        );
    }
    Action::builder()
        .r#type(ActionTypeEnum::Forward)
        .forward_config(config.build())
        .build()
}

impl Moto {
    /// Deregisters the three targets [`Moto::alb`] registered in green.
    pub async fn deregister_green(&self, alb: &Alb) {
        deregister_green(&self.client(), alb).await;
    }

    /// Sets the listener's default action.
    pub async fn set_listener(&self, alb: &Alb, action: Action) {
        self.client()
            .modify_listener()
            .listener_arn(&alb.listener_arn)
            .default_actions(action)
            .send()
            .await
            .expect("modify_listener");
    }
}

/// Deregisters the three targets [`Moto::alb`] registered in green, through `client`.
pub async fn deregister_green(client: &Client, alb: &Alb) {
    let mut deregister = client.deregister_targets().target_group_arn(&alb.green);
    for i in 0..3 {
        deregister = deregister.targets(
            TargetDescription::builder()
                .id(format!("10.0.1.{}", 20 + i))
                .port(8080)
                .build(),
        );
    }
    deregister.send().await.expect("deregister_targets");
}

/// What [`Moto::alb`] made.
#[derive(Debug, Clone)]
pub struct Alb {
    pub lb_arn: String,
    pub listener_arn: String,
    pub rule_arn: String,
    pub blue: String,
    pub green: String,
}

fn tag(xml: &str, name: &str) -> String {
    let open = format!("<{name}>");
    let start = xml
        .find(&open)
        .unwrap_or_else(|| panic!("no <{name}> in {xml}"))
        + open.len();
    let end = start + xml[start..].find('<').unwrap();
    xml[start..end].to_owned()
}
