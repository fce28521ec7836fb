//! Watches as kube-rs and kubectl hold them: bookmarks, resumption, timeouts, 410 after
//! compaction, and version-match lists.

use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, DeleteParams, ListParams, PostParams, VersionMatch, WatchEvent, WatchParams};

use deployguard_kube_sim::FakeCluster;

fn config_map(name: &str, value: &str) -> ConfigMap {
    serde_json::from_value(serde_json::json!({
        "metadata": {"name": name}, "data": {"v": value}
    }))
    .unwrap()
}

fn rv_of(cm: &ConfigMap) -> String {
    cm.metadata.resource_version.clone().unwrap()
}

#[tokio::test(start_paused = true)]
async fn an_ancient_resource_version_is_410_in_the_stream_and_a_future_one_is_too_large() {
    let cluster = FakeCluster::new();
    let api: Api<ConfigMap> = Api::namespaced(cluster.client(), "default");
    let first = api
        .create(&PostParams::default(), &config_map("a", "1"))
        .await
        .unwrap();
    // The history keeps five minutes of changes: once a change after `first` is older than
    // that, a watch from `first` cannot be served.
    tokio::time::advance(Duration::from_secs(360)).await;
    let second = api
        .create(&PostParams::default(), &config_map("b", "1"))
        .await
        .unwrap();
    tokio::time::advance(Duration::from_secs(360)).await;
    let later = api
        .create(&PostParams::default(), &config_map("c", "1"))
        .await
        .unwrap();

    let mut stream = api
        .watch(&WatchParams::default(), &rv_of(&first))
        .await
        .unwrap()
        .boxed();
    match stream.try_next().await.unwrap() {
        Some(WatchEvent::Error(status)) => {
            assert_eq!((status.code, status.reason.as_str()), (410, "Expired"));
            assert!(
                status.message.starts_with("too old resource version: "),
                "{}",
                status.message
            );
        }
        other => panic!("expected an in-stream 410, got {other:?}"),
    }
    // From a recent resourceVersion, only what came after.
    let mut stream = api
        .watch(&WatchParams::default(), &rv_of(&second))
        .await
        .unwrap()
        .boxed();
    match stream.try_next().await.unwrap() {
        Some(WatchEvent::Added(cm)) => assert_eq!(cm.metadata.name.as_deref(), Some("c")),
        other => panic!("expected c's creation, got {other:?}"),
    }

    let future = (rv_of(&later).parse::<u64>().unwrap() + 100).to_string();
    let err = match api.watch(&WatchParams::default(), &future).await {
        Err(err) => err.to_string(),
        Ok(stream) => match stream.boxed().try_next().await {
            Err(err) => err.to_string(),
            Ok(event) => panic!("a future resourceVersion must fail, got {event:?}"),
        },
    };
    assert!(
        err.contains(&format!(
            "Too large resource version: {future}, current: {}",
            rv_of(&later)
        )),
        "{err}"
    );
}

#[tokio::test(start_paused = true)]
async fn an_exact_list_shows_the_objects_as_they_were_at_that_version() {
    let cluster = FakeCluster::new();
    let api: Api<ConfigMap> = Api::namespaced(cluster.client(), "default");
    api.create(&PostParams::default(), &config_map("kept", "old"))
        .await
        .unwrap();
    api.create(&PostParams::default(), &config_map("deleted", "x"))
        .await
        .unwrap();
    let at = api
        .list(&ListParams::default())
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap();
    let mut kept = api.get("kept").await.unwrap();
    kept.data.as_mut().unwrap().insert("v".into(), "new".into());
    api.replace("kept", &PostParams::default(), &kept)
        .await
        .unwrap();
    api.delete("deleted", &DeleteParams::default())
        .await
        .unwrap();
    api.create(&PostParams::default(), &config_map("added", "y"))
        .await
        .unwrap();

    let exact = ListParams::default().at(&at).matching(VersionMatch::Exact);
    let then = api.list(&exact).await.unwrap();
    assert_eq!(then.metadata.resource_version.as_deref(), Some(at.as_str()));
    let mut seen: Vec<(String, String)> = then
        .items
        .iter()
        .map(|cm| {
            (
                cm.metadata.name.clone().unwrap(),
                cm.data.as_ref().unwrap()["v"].clone(),
            )
        })
        .collect();
    seen.sort();
    assert_eq!(
        seen,
        [
            ("deleted".to_owned(), "x".to_owned()),
            ("kept".to_owned(), "old".to_owned())
        ]
    );
    let now: Vec<String> = api
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|cm| cm.metadata.name.unwrap())
        .collect();
    assert_eq!(now, ["added", "kept"]);

    for name in ["later", "latest"] {
        tokio::time::advance(Duration::from_secs(360)).await;
        api.create(&PostParams::default(), &config_map(name, "z"))
            .await
            .unwrap();
    }
    let kube::Error::Api(status) = api.list(&exact).await.unwrap_err() else {
        panic!()
    };
    assert_eq!(
        (status.code, status.reason.as_str(), status.message.as_str()),
        (
            410,
            "Expired",
            "The resourceVersion for the provided list is too old."
        )
    );
}
