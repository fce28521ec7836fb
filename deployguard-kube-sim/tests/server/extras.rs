//! Custom resources, discovery, authentication, pagination, bookmarks and dropped watches.

use std::time::Duration;

use deployguard_kube_sim::{FakeCluster, Fault, ResourceType, Verb};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{
    Api, ApiResource, DynamicObject, GroupVersionKind, ListParams, PostParams, WatchParams,
};
use kube::discovery::Discovery;
use serde_json::json;

#[tokio::test(start_paused = true)]
async fn custom_resources_registered_at_run_time_are_served_and_discovered() {
    let cluster = FakeCluster::new();
    cluster.register(
        ResourceType::custom(
            "networking.istio.io",
            "v1",
            "VirtualService",
            "virtualservices",
        )
        .with_short_names(&["vs"]),
    );
    let gvk = GroupVersionKind::gvk("networking.istio.io", "v1", "VirtualService");
    let resource = ApiResource::from_gvk_with_plural(&gvk, "virtualservices");
    let api: Api<DynamicObject> = Api::namespaced_with(cluster.client(), "default", &resource);
    let vs: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
        "metadata": {"name": "web"},
        "spec": {"http": [{"route": [{"destination": {"host": "web", "subset": "stable"}, "weight": 100}]}]}
    }))
    .unwrap();
    api.create(&PostParams::default(), &vs).await.unwrap();
    let read = api.get("web").await.unwrap();
    assert_eq!(read.data["spec"]["http"][0]["route"][0]["weight"], 100);

    for discovery in [
        Discovery::new(cluster.client()).run().await.unwrap(),
        Discovery::new(cluster.client())
            .run_aggregated()
            .await
            .unwrap(),
    ] {
        let groups: Vec<String> = discovery.groups().map(|g| g.name().to_owned()).collect();
        assert!(
            groups.contains(&"networking.istio.io".to_owned())
                && groups.contains(&"apps".to_owned()),
            "{groups:?}"
        );
        let (found, caps) = discovery
            .resolve_gvk(&GroupVersionKind::gvk("apps", "v1", "Deployment"))
            .unwrap();
        assert_eq!(found.plural, "deployments");
        assert!(
            caps.subresources
                .iter()
                .any(|(sub, _)| sub.plural == "deployments/scale" || sub.plural == "scale"),
            "{:?}",
            caps.subresources
        );
    }
}

#[tokio::test]
async fn a_bearer_token_is_required_when_configured() {
    let cluster = FakeCluster::builder().bearer_token("s3cret").build();
    let served = cluster.serve().await.unwrap();
    // Debug output never shows the credential.
    for shown in [
        format!("{cluster:?}"),
        format!("{served:?}"),
        format!("{:?}", FakeCluster::builder().bearer_token("s3cret")),
    ] {
        assert!(
            !shown.contains("s3cret") && shown.contains("<redacted>"),
            "{shown}"
        );
    }
    let anonymous =
        kube::Client::try_from(kube::Config::new(served.url().parse().unwrap())).unwrap();
    let err = Api::<ConfigMap>::namespaced(anonymous, "default")
        .list(&ListParams::default())
        .await
        .unwrap_err();
    assert!(
        matches!(err, kube::Error::Api(ref s) if s.code == 401),
        "{err:?}"
    );

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kubeconfig");
    served.write_kubeconfig(&path).unwrap();
    let kubeconfig = kube::config::Kubeconfig::read_from(&path).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .unwrap();
    let client = kube::Client::try_from(config).unwrap();
    Api::<ConfigMap>::namespaced(client, "default")
        .list(&ListParams::default())
        .await
        .unwrap();
}

#[tokio::test(start_paused = true)]
async fn lists_paginate_with_continue_tokens() {
    let cluster = FakeCluster::new();
    for i in 0..7 {
        cluster.create(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": format!("cm-{i}"), "namespace": "default"}})).unwrap();
    }
    let api: Api<ConfigMap> = Api::namespaced(cluster.client(), "default");
    let mut names = Vec::new();
    let mut params = ListParams::default().limit(3);
    let mut pages = 0;
    loop {
        let page = api.list(&params).await.unwrap();
        pages += 1;
        names.extend(
            page.items
                .iter()
                .map(|cm| cm.metadata.name.clone().unwrap()),
        );
        match page.metadata.continue_ {
            Some(token) if !token.is_empty() => params = params.continue_token(&token),
            _ => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(
        names,
        ["cm-0", "cm-1", "cm-2", "cm-3", "cm-4", "cm-5", "cm-6"]
    );
}

#[tokio::test(start_paused = true)]
async fn watches_send_bookmarks_end_on_timeout_and_can_be_dropped() {
    let cluster = FakeCluster::new();
    let api: Api<ConfigMap> = Api::namespaced(cluster.client(), "default");
    let rv = cluster.resource_version().to_string();
    let params = WatchParams::default().timeout(150);
    let lines: Vec<&str> = api
        .watch(&params, &rv)
        .await
        .unwrap()
        .map_ok(|event| match event {
            kube::api::WatchEvent::Bookmark(_) => "bookmark",
            _ => "other",
        })
        .try_collect()
        .await
        .unwrap();
    // Bookmarks every 60 s until the 150 s timeout closes the stream.
    assert_eq!(lines, ["bookmark", "bookmark"]);

    cluster.inject(Fault::drop_watch().times(1));
    let started = tokio::time::Instant::now();
    let dropped: Vec<_> = api
        .watch(&WatchParams::default(), &rv)
        .await
        .unwrap()
        .collect()
        .await;
    assert!(dropped.is_empty());
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "dropped at once"
    );
    let watch_requests = cluster
        .requests()
        .iter()
        .filter(|r| r.verb == Verb::Watch)
        .count();
    assert_eq!(watch_requests, 2);
}

/// An injected conflict on a create answers as a real server's create conflicts (409
/// `AlreadyExists`, nothing written), and the request log says what each fault did: a lost
/// response is not a 200, a reset answered nothing.
#[tokio::test]
async fn injected_faults_are_shaped_as_real_answers_and_logged_as_what_they_did() {
    let cluster = FakeCluster::new();
    let client = cluster.client();
    let maps: Api<ConfigMap> = Api::namespaced(client, "default");
    let map: ConfigMap = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "settings"}, "data": {"a": "b"}
    }))
    .unwrap();
    cluster.inject(Fault::conflict().on(Verb::Create).times(1));
    let err = maps.create(&PostParams::default(), &map).await.unwrap_err();
    let kube::Error::Api(status) = err else {
        panic!("{err}")
    };
    assert_eq!(
        (status.code, status.reason.as_str()),
        (409, "AlreadyExists")
    );
    assert_eq!(status.message, "configmaps \"settings\" already exists");
    assert!(
        maps.get_opt("settings").await.unwrap().is_none(),
        "nothing written"
    );

    cluster.inject(Fault::lose_response().on(Verb::Create).times(1));
    assert!(maps.create(&PostParams::default(), &map).await.is_err());
    assert!(maps.get_opt("settings").await.unwrap().is_some(), "served");
    cluster.inject(Fault::reset().on(Verb::Get).times(1));
    assert!(maps.get("settings").await.is_err());

    let log = cluster.requests();
    let faults: Vec<(u16, Option<&str>)> = log
        .iter()
        .filter(|r| r.fault.is_some())
        .map(|r| (r.status, r.fault.as_deref()))
        .collect();
    assert_eq!(
        faults,
        [
            (409, Some("answered 409, nothing written")),
            (
                201,
                Some("lost response: served, then closed without the answer")
            ),
            (0, Some("reset: closed without an answer, nothing served")),
        ]
    );
}

/// A custom resource is checked against its CRD's structural schema after pruning: types,
/// enums, required fields, patterns, lengths and bounds, every problem named in one 422.
#[tokio::test(start_paused = true)]
async fn custom_resources_are_checked_against_their_crds_schema() {
    let cluster = FakeCluster::new();
    cluster
        .create(json!({
            "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": "widgets.example.com"},
            "spec": {"group": "example.com", "scope": "Namespaced",
                "names": {"kind": "Widget", "plural": "widgets", "singular": "widget", "listKind": "WidgetList"},
                "versions": [{"name": "v1", "served": true, "storage": true, "schema": {"openAPIV3Schema": {
                    "type": "object",
                    "properties": {"spec": {"type": "object", "required": ["size"], "properties": {
                        "size": {"type": "integer", "minimum": 1, "maximum": 10},
                        "colour": {"type": "string", "enum": ["red", "blue"]},
                        "name": {"type": "string", "maxLength": 8, "pattern": "^[a-z]+$"},
                        "port": {"x-kubernetes-int-or-string": true},
                        "note": {"type": "string", "nullable": true},
                        "tags": {"type": "array", "maxItems": 2, "items": {"type": "string"}},
                        "free": {"x-kubernetes-preserve-unknown-fields": true}
                    }}}
                }}}]}
        }))
        .unwrap();
    let gvk = GroupVersionKind::gvk("example.com", "v1", "Widget");
    let resource = ApiResource::from_gvk_with_plural(&gvk, "widgets");
    let api: Api<DynamicObject> = Api::namespaced_with(cluster.client(), "default", &resource);
    let widget = |name: &str, spec: serde_json::Value| -> DynamicObject {
        serde_json::from_value(json!({"apiVersion": "example.com/v1", "kind": "Widget",
            "metadata": {"name": name}, "spec": spec}))
        .unwrap()
    };

    let good = widget(
        "good",
        json!({"size": 3, "colour": "red", "name": "abc", "port": "http", "note": null,
               "tags": ["a"], "free": "anything"}),
    );
    api.create(&PostParams::default(), &good).await.unwrap();
    let read = api.get("good").await.unwrap();
    assert_eq!(read.data["spec"]["free"], "anything");

    let refused = api
        .create(
            &PostParams::default(),
            &widget("bad", json!({"size": "three"})),
        )
        .await
        .unwrap_err();
    let kube::Error::Api(status) = refused else {
        panic!("{refused:?}")
    };
    assert_eq!(status.code, 422);
    assert_eq!(
        status.message,
        "Widget.example.com \"bad\" is invalid: spec.size: Invalid value: \"string\": spec.size in body must be of type integer: \"string\""
    );

    let refused = api
        .create(
            &PostParams::default(),
            &widget(
                "worse",
                json!({"colour": "green", "name": "Too_Long_Name", "size": 11, "port": 1.5,
                       "tags": ["a", "b", "c"]}),
            ),
        )
        .await
        .unwrap_err();
    let kube::Error::Api(status) = refused else {
        panic!("{refused:?}")
    };
    for expected in [
        "spec.colour: Unsupported value: \"green\": supported values: \"red\", \"blue\"",
        "spec.name: Too long: may not be more than 8 bytes",
        "spec.name: Invalid value: \"Too_Long_Name\": spec.name in body should match '^[a-z]+$'",
        "spec.size: Invalid value: 11: spec.size in body should be less than or equal to 10",
        "spec.port: Invalid value: \"number\": spec.port in body must be of type integer,string: \"number\"",
        "spec.tags: Too many: 3: must have at most 2 items",
    ] {
        assert!(
            status.message.contains(expected),
            "{expected} not in {}",
            status.message
        );
    }
    let refused = api
        .create(&PostParams::default(), &widget("empty", json!({})))
        .await
        .unwrap_err();
    assert!(
        matches!(&refused, kube::Error::Api(s) if s.message.ends_with("spec.size: Required value")),
        "{refused:?}"
    );
    // Nothing refused was written.
    let names: Vec<String> = api
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|w| w.metadata.name)
        .collect();
    assert_eq!(names, ["good"]);
}
