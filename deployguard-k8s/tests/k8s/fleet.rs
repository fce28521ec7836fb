//! Fleet mode: twenty deployments observed from shared caches, not twenty sets of requests.

use std::time::Duration;

use deployguard_core::DeploymentBackend;
use deployguard_k8s::{Fleet, KubeDeployment};
use deployguard_testkit::cluster::{FakeCluster, Verb, scenarios};
use deployguard_testkit::conformance;
use serde_json::json;

/// The images these tests run (the simulated registry pulls nothing else).
const IMAGES: [&str; 1] = ["app:1"];

#[tokio::test(start_paused = true)]
async fn twenty_deployments_share_one_watch_per_kind() {
    let cluster = FakeCluster::builder()
        .controllers(true)
        .images(IMAGES)
        .build();
    for i in 0..20 {
        let labels = json!({"app": format!("svc-{i}")});
        cluster
            .create(json!({"apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": format!("svc-{i}"), "namespace": "default"},
                "spec": {"replicas": 2, "selector": {"matchLabels": labels},
                    "template": {"metadata": {"labels": labels}, "spec": {"containers": [{"name": "app", "image": "app:1"}]}}}}))
            .unwrap();
    }
    tokio::time::sleep(Duration::from_secs(10)).await;
    let fleet = Fleet::start(cluster.client(), "default").await.unwrap();
    assert_eq!(fleet.len(), 20);

    cluster.clear_requests();
    for i in 0..20 {
        let snapshot = fleet
            .deployment(&format!("svc-{i}"))
            .observe()
            .await
            .unwrap();
        assert_eq!(
            (snapshot.desired, snapshot.ready, snapshot.pods.len()),
            (2, 2, 2)
        );
    }
    let fleet_requests = cluster
        .requests()
        .iter()
        .filter(|r| r.verb != Verb::Watch)
        .count();
    cluster.clear_requests();
    for i in 0..20 {
        KubeDeployment::new(cluster.client(), "default", &format!("svc-{i}"))
            .observe()
            .await
            .unwrap();
    }
    let direct_requests = cluster.requests().len();
    println!("20 observes: fleet {fleet_requests} requests, direct {direct_requests}");
    assert_eq!(fleet_requests, 0);
    assert_eq!(direct_requests, 60);
}

#[tokio::test(start_paused = true)]
async fn a_fleet_deployment_passes_the_backend_conformance_suite() {
    let cluster = FakeCluster::builder()
        .controllers(true)
        .images(IMAGES)
        .build();
    scenarios::load(&cluster, "healthy-rollout").await.unwrap();
    tokio::time::sleep(Duration::from_secs(30)).await;
    let fleet = Fleet::start(cluster.client(), "default").await.unwrap();
    conformance::backend_suite(&fleet.deployment("app-deployment"))
        .await
        .unwrap();
}

/// A watch that breaks and cannot be re-established makes reads fail, retryably, instead of
/// answering from a stale cache; once the watch delivers again, reads do too.
#[tokio::test(start_paused = true)]
async fn a_failing_watch_is_an_error_not_a_stale_read() {
    use deployguard_core::ErrorKind;
    use deployguard_testkit::cluster::Fault;

    let cluster = FakeCluster::builder()
        .controllers(true)
        .images(IMAGES)
        .build();
    scenarios::load(&cluster, "healthy-rollout").await.unwrap();
    let fleet = Fleet::start(cluster.client(), "default").await.unwrap();
    let backend = fleet.deployment("app-deployment");
    backend.observe().await.unwrap();

    // The Deployment watch ends (its timeout, as every watch does) and can neither be resumed
    // nor relisted.
    cluster.inject(Fault::status(503).on(Verb::List).resource("deployments"));
    cluster.inject(Fault::status(503).on(Verb::Watch).resource("deployments"));
    cluster
        .edit(
            "default",
            "app-deployment",
            |d: &mut deployguard_k8s::k8s_openapi::api::apps::v1::Deployment| {
                d.metadata
                    .labels
                    .get_or_insert_default()
                    .insert("team".into(), "payments".into());
            },
        )
        .unwrap();
    let err = async {
        // Watches end within their timeout (kube-rs asks for 290 s); simulated time is cheap.
        for _ in 0..6000 {
            if let Err(err) = backend.observe().await {
                return err;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the fleet never noticed its broken watch");
    }
    .await;
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    assert!(err.is_retryable());
    assert!(
        err.to_string().contains("Deployment watch is failing"),
        "{err}"
    );

    cluster.clear_faults();
    let mut recovered = false;
    for _ in 0..1200 {
        if backend.observe().await.is_ok() {
            recovered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(recovered, "the watch never recovered");
}
