//! The emergency command puts an AWS ALB listener back on its stable target group, against moto
//! (started on a free loopback port, stopped after): dry run, no consent, consent, rerun.

#[path = "../../../deployguard-aws/tests/aws/support/mod.rs"]
mod support;

use deployguard_cli::emergency::{self, Confirm, Exit};

struct Nobody;

impl Confirm for Nobody {
    fn confirm(&mut self, _: &str) -> Option<bool> {
        None
    }
}

async fn run(sdk: &aws_types::SdkConfig, args: &[&str]) -> (Exit, String) {
    let options = emergency::parse(args.iter().map(|a| (*a).to_owned())).unwrap();
    let mut out = Vec::new();
    let exit = emergency::run_alb(sdk, &options, &mut Nobody, &mut out).await;
    (exit, String::from_utf8(out).unwrap())
}

async fn weights(moto: &support::Moto, listener: &str) -> Vec<Option<i32>> {
    let answer = moto
        .client()
        .describe_listeners()
        .listener_arns(listener)
        .send()
        .await
        .unwrap();
    answer.listeners()[0].default_actions()[0]
        .forward_config()
        .unwrap()
        .target_groups()
        .iter()
        .map(|t| t.weight())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alb_listener_is_put_back_on_the_stable_target_group_with_consent() {
    let moto = support::Moto::start().await;
    let alb = moto.alb().await;
    let sdk = moto.sdk_config();
    // A bad cutover: everything on green.
    moto.set_listener(&alb, support::forward(&alb.blue, 0, &alb.green, 100, false))
        .await;
    let args = [
        "shop",
        "--strategy",
        "blue-green",
        "--alb-listener",
        alb.listener_arn.as_str(),
        "--stable",
        "shop-blue",
        "--candidate",
        "shop-green",
    ];
    let dry: Vec<&str> = args.iter().copied().chain(["--dry-run"]).collect();
    let (exit, out) = run(&sdk, &dry).await;
    assert_eq!(exit, Exit::Ok, "{out}");
    assert!(
        out.contains("dry run: would set listener") && out.contains("from shop-blue=0%, shop-green=100% to shop-blue=100%, shop-green=0%; nothing was written"),
        "{out}"
    );
    let (exit, out) = run(&sdk, &args).await;
    assert_eq!(exit, Exit::Refused, "{out}");
    assert!(out.contains("no terminal to confirm on"), "{out}");
    assert_eq!(
        weights(&moto, &alb.listener_arn).await,
        [Some(0), Some(100)]
    );

    let consented: Vec<&str> = args.iter().copied().chain(["--yes"]).collect();
    let (exit, out) = run(&sdk, &consented).await;
    assert_eq!(exit, Exit::Ok, "{out}");
    assert!(
        out.contains("all traffic on target group shop-blue"),
        "{out}"
    );
    assert_eq!(
        weights(&moto, &alb.listener_arn).await,
        [Some(100), Some(0)]
    );
    let (exit, out) = run(&sdk, &consented).await;
    assert_eq!(exit, Exit::Ok, "{out}");
    assert!(
        out.contains("traffic is already on target group shop-blue"),
        "{out}"
    );

    // Flags that cannot work together are refused by the parser, naming what is missing.
    let err = emergency::parse(
        [
            "shop",
            "--alb-listener",
            alb.listener_arn.as_str(),
            "--stable",
            "shop-blue",
        ]
        .iter()
        .map(|a| (*a).to_owned()),
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("--strategy blue-green --stable <TG> --candidate <TG>"),
        "{err}"
    );
}
