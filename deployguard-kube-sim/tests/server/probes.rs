//! What the kubelet says of a readiness probe: a container that is still starting refuses
//! connections (nothing listens yet), one whose app answers with an error says which; and the
//! API server's answers carry its clock in `Date`, which clients count pod ages on.

use std::time::Duration;

use deployguard_kube_sim::{FakeCluster, ImageBehaviour};
use serde_json::json;

fn deployment(image: &str) -> serde_json::Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "app", "namespace": "default"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "app"}},
            "template": {"metadata": {"labels": {"app": "app"}},
                "spec": {"containers": [{"name": "app", "image": image,
                    "ports": [{"name": "http", "containerPort": 8080}],
                    "readinessProbe": {"httpGet": {"path": "/healthz", "port": "http"}, "periodSeconds": 5}}]}}}})
}

/// The readiness probe failures the kubelet has reported, oldest first.
fn probe_failures(cluster: &FakeCluster) -> Vec<String> {
    let mut events = cluster.events("default").unwrap();
    events.sort_by_key(|e| e.metadata.creation_timestamp.clone().map(|t| t.0));
    events
        .into_iter()
        .filter(|e| e.reason.as_deref() == Some("Unhealthy"))
        .filter_map(|e| e.message)
        .collect()
}

#[tokio::test(start_paused = true)]
async fn a_starting_container_refuses_connections_and_a_running_app_answers_its_error() {
    let cluster = FakeCluster::with_controllers();
    cluster.set_image_behaviour("app:slow", ImageBehaviour::ready_after(60));
    cluster.create(deployment("app:slow")).unwrap();
    tokio::time::sleep(Duration::from_secs(30)).await;
    let failures = probe_failures(&cluster);
    assert!(!failures.is_empty(), "a starting app is probed");
    for message in &failures {
        assert!(
            message.starts_with("Readiness probe failed: Get \"http://10.244.")
                && message.contains(":8080/healthz\": dial tcp 10.244.")
                && message.ends_with(":8080: connect: connection refused"),
            "{message}"
        );
    }
    tokio::time::sleep(Duration::from_secs(40)).await;
    let pod = &cluster.pods("default").unwrap()[0];
    let ready = pod.status.as_ref().unwrap().conditions.as_ref().unwrap();
    assert!(
        ready
            .iter()
            .any(|c| c.type_ == "Ready" && c.status == "True")
    );

    // Slow to start, then its app answers 503 for ever.
    let cluster = FakeCluster::with_controllers();
    cluster.set_image_behaviour(
        "app:bad",
        ImageBehaviour::FailsAfterStart {
            startup: Duration::from_secs(40),
            probe_output: "HTTP probe failed with statuscode: 503".into(),
        },
    );
    cluster.create(deployment("app:bad")).unwrap();
    tokio::time::sleep(Duration::from_secs(70)).await;
    let failures = probe_failures(&cluster);
    assert!(
        failures[0].ends_with("connect: connection refused"),
        "{failures:?}"
    );
    assert_eq!(
        failures.last().map(String::as_str),
        Some("Readiness probe failed: HTTP probe failed with statuscode: 503"),
        "{failures:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn every_answer_carries_the_servers_clock() {
    let cluster = FakeCluster::with_controllers();
    let response = cluster
        .client()
        .send(
            http::Request::get("/version")
                .body(kube::client::Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    let date = response.headers()["date"].to_str().unwrap().to_owned();
    let now = cluster.now();
    let secs = now.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    // `Fri, 04 Dec 2026 07:40:29 GMT`: the cluster's time, to the second.
    let expected = jiff::Timestamp::from_second(secs as i64)
        .unwrap()
        .strftime("%a, %d %b %Y %H:%M:%S GMT")
        .to_string();
    assert_eq!(date, expected);
}
