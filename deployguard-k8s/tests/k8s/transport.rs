//! The guarded transport on the in-process simulated API server, on tokio's paused clock: a
//! watch may be quiet as long as it asked to be, an answer that does not start in time and a
//! body over its limit are errors that name the server, and error bodies are summarized.

use std::time::Duration;

use deployguard_k8s::transport::{GuardedLayer, Limits};
use deployguard_testkit::cluster::k8s_openapi::api::core::v1::ConfigMap;
use deployguard_testkit::cluster::kube::api::{Api, PostParams, WatchEvent, WatchParams};
use deployguard_testkit::cluster::kube::client::ClientBuilder;
use deployguard_testkit::cluster::{FakeCluster, Fault, Verb};
use futures::{StreamExt, TryStreamExt};

fn client(cluster: &FakeCluster, limits: Limits) -> deployguard_testkit::cluster::kube::Client {
    ClientBuilder::new(cluster.api_service(), "default")
        .with_layer(&GuardedLayer::new("https://sim.test", limits))
        .build()
}

fn config_map(name: &str, value: &str) -> ConfigMap {
    serde_json::from_value(serde_json::json!({
        "metadata": {"name": name}, "data": {"value": value}
    }))
    .unwrap()
}

#[tokio::test(start_paused = true)]
async fn a_watch_may_stay_quiet_past_the_silence_limit_and_still_deliver() {
    let cluster = FakeCluster::new();
    let maps: Api<ConfigMap> = Api::namespaced(client(&cluster, Limits::default()), "default");
    let created = maps
        .create(&PostParams::default(), &config_map("settings", "a"))
        .await
        .unwrap();
    let version = created.metadata.resource_version.unwrap();
    let stream = maps
        .watch(
            &WatchParams::default().timeout(290).disable_bookmarks(),
            &version,
        )
        .await
        .unwrap();
    let mut stream = std::pin::pin!(stream);
    // Two minutes of quiet: four times the 30 s an answer may be silent.
    let quiet = tokio::time::timeout(Duration::from_secs(120), stream.next()).await;
    assert!(quiet.is_err(), "nothing came, nothing broke: {quiet:?}");
    maps.replace("settings", &PostParams::default(), &{
        let mut map = maps.get("settings").await.unwrap();
        map.data = Some([("value".to_owned(), "b".to_owned())].into());
        map
    })
    .await
    .unwrap();
    let event = stream.try_next().await.unwrap();
    assert!(matches!(event, Some(WatchEvent::Modified(_))), "{event:?}");
}

#[tokio::test(start_paused = true)]
async fn an_answer_that_does_not_start_in_time_names_the_server() {
    let cluster = FakeCluster::new();
    let maps: Api<ConfigMap> = Api::namespaced(client(&cluster, Limits::default()), "default");
    cluster.inject(
        Fault::latency(Duration::from_secs(45))
            .on(Verb::Get)
            .times(1),
    );
    let started = tokio::time::Instant::now();
    let err = maps.get("settings").await.unwrap_err();
    assert_eq!(started.elapsed(), Duration::from_secs(30));
    assert!(
        err.to_string()
            .contains("https://sim.test: no answer within 30s"),
        "{err}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_body_over_its_limit_is_refused_and_an_error_body_is_summarized() {
    let cluster = FakeCluster::new();
    let mut limits = Limits::default();
    limits.object = 2000;
    let maps: Api<ConfigMap> = Api::namespaced(client(&cluster, limits), "default");
    // The create's answer is the object: over the limit too.
    let _ = maps
        .create(
            &PostParams::default(),
            &config_map("big", &"x".repeat(5000)),
        )
        .await;
    let err = maps.get("big").await.unwrap_err();
    assert!(
        err.to_string()
            .contains("https://sim.test: an answer larger than 2000 bytes; refused"),
        "{err}"
    );
    // A Kubernetes Status passes as it is (the server's own words).
    let err = maps.get("nowhere").await.unwrap_err();
    assert!(
        err.to_string().contains("configmaps \"nowhere\" not found"),
        "{err}"
    );
}
