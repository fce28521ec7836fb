//! The emergency command racing other writers and a slow cluster, over real HTTP: someone runs
//! `kubectl rollout undo` while it recovers (its relative undo would flip a finished rollback
//! back to the broken version), and a cluster so slow its watch stays quiet past every silence
//! limit.

use std::time::Duration;

use deployguard_cli::emergency::{self, ClientOptions, Confirm, Exit};
use deployguard_k8s::transport::Limits;
use deployguard_testkit::cluster::k8s_openapi::api::apps::v1::Deployment;
use deployguard_testkit::cluster::kubectl::Kubectl;
use deployguard_testkit::cluster::scenarios;

use crate::common::image_of;

struct Nobody;

impl Confirm for Nobody {
    fn confirm(&mut self, _: &str) -> Option<bool> {
        None
    }
}

/// Ten runs, kubectl started 0, 30, … 270 ms after the command: each run stops with exit 4 and
/// names the writer, the image and the revision; nothing of the command's is written after.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_concurrent_kubectl_undo_stops_the_recovery_and_is_named() {
    let mut failures = Vec::new();
    for run in 0..10u64 {
        let seed = scenarios::served_seed(10.0).await.unwrap();
        // Set up fast; recover at the wall clock's pace, so the rollback takes seconds.
        seed.cluster.set_time_scale(1.0);
        let (client, server) = emergency::client_from(&seed.kubeconfig).await.unwrap();
        let mut options = emergency::parse(
            ["app-deployment", "--yes", "--max-rollback-time", "60s"].map(String::from),
        )
        .unwrap();
        options.server = Some(server);
        let kubectl = Kubectl::new(&seed.served).unwrap();
        let delay = Duration::from_millis(30 * run);
        let undo = async {
            tokio::time::sleep(delay).await;
            kubectl
                .run(&["rollout", "undo", "deployment/app-deployment"])
                .await
        };
        let mut out = Vec::new();
        let mut nobody = Nobody;
        let command = emergency::run(
            client,
            &options,
            &mut nobody,
            &mut out,
            Box::new(std::io::sink()),
        );
        let (exit, undone) = tokio::join!(command, undo);
        let out = String::from_utf8(out).unwrap();
        let deployment: Deployment = seed
            .cluster
            .deployment("default", "app-deployment")
            .unwrap();
        let (image, revision) = image_of(&deployment);
        // kubectl sends no field manager: the API server names it after its User-Agent.
        let expected = format!("now {image} (revision {revision}), written by kubectl;");
        let marker = deployment
            .metadata
            .annotations
            .as_ref()
            .unwrap()
            .iter()
            .find(|(key, _)| key.starts_with("deployguard.io/recovery"))
            .map(|(_, value)| value.clone())
            .unwrap_or_default();
        let ok = undone.code == 0
            && exit == Exit::Interfered
            && out.contains("stopped: conflict: the deployment's template changed under us")
            && out.contains(&expected)
            && out.contains("nothing more was written")
            && marker.contains("changed under us");
        println!(
            "run {run} (kubectl after {delay:?}): {exit:?}, ends on {image} revision {revision}"
        );
        if !ok {
            failures.push(format!(
                "run {run}: {exit:?}, kubectl {}: {}\nexpected {expected:?} in:\n{out}\nmarker: {marker}",
                undone.code, undone.stderr
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// A cluster slower than every silence limit: the watch says nothing for seconds at a time
/// while the answers' silence limit is one second. The watch is not cut by it, and the recovery
/// finishes inside its deadline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_quiet_longer_than_any_silence_limit_does_not_end_the_recovery() {
    let seed = scenarios::served_seed(10.0).await.unwrap();
    // A new pod is ready 2 s of cluster time after it starts: 8 s of quiet at a quarter speed.
    seed.cluster.set_time_scale(0.25);
    let mut limits = Limits::default();
    limits.silence = Duration::from_secs(1);
    let (client, server) = emergency::client_with(&ClientOptions {
        kubeconfig: Some(seed.kubeconfig.clone()),
        limits,
        ..ClientOptions::default()
    })
    .await
    .unwrap();
    let mut options = emergency::parse(
        ["app-deployment", "--yes", "--max-rollback-time", "120s"].map(String::from),
    )
    .unwrap();
    options.server = Some(server);
    let mut out = Vec::new();
    let began = std::time::Instant::now();
    let exit = emergency::run(
        client,
        &options,
        &mut Nobody,
        &mut out,
        Box::new(std::io::sink()),
    )
    .await;
    let took = began.elapsed();
    let out = String::from_utf8(out).unwrap();
    println!("slow cluster: {exit:?} after {:.1}s", took.as_secs_f64());
    assert_eq!(exit, Exit::Ok, "{out}");
    assert!(took < Duration::from_secs(120), "{took:?}");
    let deployment: Deployment = seed
        .cluster
        .deployment("default", "app-deployment")
        .unwrap();
    assert_eq!(
        image_of(&deployment),
        ("app:v2.3.1".to_owned(), "3".to_owned())
    );
    // One watch followed the whole rollback, through quiet longer than the silence limit: a
    // watch cut by that limit would have been opened again.
    let watches = seed
        .cluster
        .requests()
        .iter()
        .filter(|r| r.query.contains("watch=true"))
        .count();
    println!("slow cluster: {watches} watch request(s)");
    assert_eq!(watches, 1, "the watch was never cut");
    assert!(
        took > Duration::from_secs(2),
        "quiet for longer than the 1 s limit: {took:?}"
    );
}
