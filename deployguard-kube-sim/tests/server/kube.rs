//! kube-rs against the simulated cluster, in process, under a paused clock.

use std::time::Duration;

use deployguard_kube_sim::{FakeCluster, Fault, Verb};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::{WatchStreamExt, reflector, watcher};
use serde_json::json;

fn deployment(name: &str, image: &str) -> Deployment {
    serde_json::from_value(json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "web", "image": image, "ports": [{"containerPort": 80}]}]}
            }
        }
    }))
    .unwrap()
}

fn api_error(err: kube::Error) -> (u16, String, String) {
    match err {
        kube::Error::Api(status) => (status.code, status.reason, status.message),
        other => panic!("expected an API error, got {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn crud_with_defaults_generation_and_exact_not_found() {
    let cluster = FakeCluster::new();
    let api: Api<Deployment> = Api::namespaced(cluster.client(), "default");
    let created = api
        .create(&PostParams::default(), &deployment("web", "nginx:1.3"))
        .await
        .unwrap();
    let meta = &created.metadata;
    assert!(
        meta.uid.is_some() && meta.resource_version.is_some() && meta.creation_timestamp.is_some()
    );
    assert_eq!(meta.generation, Some(1));
    let spec = created.spec.as_ref().unwrap();
    assert_eq!(spec.revision_history_limit, Some(10));
    assert_eq!(spec.progress_deadline_seconds, Some(600));
    let strategy = spec.strategy.as_ref().unwrap();
    assert_eq!(strategy.type_.as_deref(), Some("RollingUpdate"));
    let container = &spec.template.spec.as_ref().unwrap().containers[0];
    assert_eq!(container.image_pull_policy.as_deref(), Some("IfNotPresent"));
    assert_eq!(
        container.termination_message_path.as_deref(),
        Some("/dev/termination-log")
    );

    api.create(&PostParams::default(), &deployment("api", "api:1"))
        .await
        .unwrap();
    let listed = api
        .list(&ListParams::default().labels("app=web"))
        .await
        .unwrap();
    assert_eq!(listed.items.len(), 1);
    let by_name = api
        .list(&ListParams::default().fields("metadata.name=api"))
        .await
        .unwrap();
    assert_eq!(by_name.items[0].metadata.name.as_deref(), Some("api"));

    // A label change does not bump the generation; a spec change does.
    let mut changed = api.get("web").await.unwrap();
    changed
        .metadata
        .labels
        .get_or_insert_default()
        .insert("tier".into(), "front".into());
    let changed = api
        .replace("web", &PostParams::default(), &changed)
        .await
        .unwrap();
    assert_eq!(changed.metadata.generation, Some(1));
    let mut scaled = changed.clone();
    scaled.spec.as_mut().unwrap().replicas = Some(5);
    let scaled = api
        .replace("web", &PostParams::default(), &scaled)
        .await
        .unwrap();
    assert_eq!(scaled.metadata.generation, Some(2));

    api.delete("web", &DeleteParams::default()).await.unwrap();
    let (code, reason, message) = api_error(api.get("web").await.unwrap_err());
    assert_eq!(
        (code, reason.as_str(), message.as_str()),
        (404, "NotFound", "deployments.apps \"web\" not found")
    );

    let (code, reason, _) = api_error(
        api.create(&PostParams::default(), &deployment("api", "api:1"))
            .await
            .unwrap_err(),
    );
    assert_eq!((code, reason.as_str()), (409, "AlreadyExists"));
    let cms: Api<ConfigMap> = Api::namespaced(cluster.client(), "nowhere");
    let mut cm = ConfigMap::default();
    cm.metadata.name = Some("x".into());
    let (code, _, message) = api_error(cms.create(&PostParams::default(), &cm).await.unwrap_err());
    assert_eq!(
        (code, message.as_str()),
        (404, "namespaces \"nowhere\" not found")
    );
}

#[tokio::test(start_paused = true)]
async fn stale_writes_conflict_with_the_real_message_and_change_nothing() {
    let cluster = FakeCluster::new();
    let api: Api<Deployment> = Api::namespaced(cluster.client(), "default");
    let original = api
        .create(&PostParams::default(), &deployment("web", "nginx:1.3"))
        .await
        .unwrap();
    let mut first = original.clone();
    first.spec.as_mut().unwrap().replicas = Some(4);
    api.replace("web", &PostParams::default(), &first)
        .await
        .unwrap();
    let mut stale = original.clone();
    stale.spec.as_mut().unwrap().replicas = Some(9);
    let (code, reason, message) = api_error(
        api.replace("web", &PostParams::default(), &stale)
            .await
            .unwrap_err(),
    );
    assert_eq!((code, reason.as_str()), (409, "Conflict"));
    assert_eq!(
        message,
        "Operation cannot be fulfilled on deployments.apps \"web\": the object has been modified; please apply your changes to the latest version and try again"
    );
    assert_eq!(
        api.get("web").await.unwrap().spec.unwrap().replicas,
        Some(4)
    );
}

#[tokio::test(start_paused = true)]
async fn each_patch_type() {
    let cluster = FakeCluster::new();
    let api: Api<Deployment> = Api::namespaced(cluster.client(), "default");
    api.create(&PostParams::default(), &deployment("web", "nginx:1.3"))
        .await
        .unwrap();
    let pp = PatchParams::default();

    // Strategic merge: containers merge by name; the port survives.
    let set_image = json!({"spec": {"template": {"spec": {
        "$setElementOrder/containers": [{"name": "web"}],
        "containers": [{"name": "web", "image": "nginx:1.4"}]}}}});
    let patched = api
        .patch("web", &pp, &Patch::Strategic(&set_image))
        .await
        .unwrap();
    let container = &patched
        .spec
        .as_ref()
        .unwrap()
        .template
        .spec
        .as_ref()
        .unwrap()
        .containers[0];
    assert_eq!(container.image.as_deref(), Some("nginx:1.4"));
    assert_eq!(container.ports.as_ref().unwrap()[0].container_port, 80);

    // Merge: annotations are merged, and bump the generation of a Deployment.
    let before = patched.metadata.generation.unwrap();
    let annotated = api
        .patch(
            "web",
            &pp,
            &Patch::Merge(json!({"metadata": {"annotations": {"team": "payments"}}})),
        )
        .await
        .unwrap();
    assert_eq!(annotated.metadata.annotations.unwrap()["team"], "payments");
    assert_eq!(annotated.metadata.generation, Some(before + 1));

    // JSON patch: a failing `test` is 422 and changes nothing.
    let ops: json_patch::Patch = serde_json::from_value(json!([
        {"op": "test", "path": "/spec/replicas", "value": 7},
        {"op": "replace", "path": "/spec/replicas", "value": 1}
    ]))
    .unwrap();
    let (code, _, _) = api_error(
        api.patch("web", &pp, &Patch::<()>::Json(ops))
            .await
            .unwrap_err(),
    );
    assert_eq!(code, 422);
    let ops: json_patch::Patch = serde_json::from_value(json!([
        {"op": "test", "path": "/spec/replicas", "value": 3},
        {"op": "replace", "path": "/spec/replicas", "value": 1}
    ]))
    .unwrap();
    assert_eq!(
        api.patch("web", &pp, &Patch::<()>::Json(ops))
            .await
            .unwrap()
            .spec
            .unwrap()
            .replicas,
        Some(1)
    );

    // Server-side apply: needs a field manager; creates what does not exist.
    let (code, _, message) = api_error(
        api.patch("other", &pp, &Patch::Apply(deployment("other", "x:1")))
            .await
            .unwrap_err(),
    );
    assert_eq!(code, 422);
    assert_eq!(
        message,
        "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch"
    );
    let applied = api
        .patch(
            "other",
            &PatchParams::apply("deployguard"),
            &Patch::Apply(deployment("other", "x:1")),
        )
        .await
        .unwrap();
    assert_eq!(applied.metadata.generation, Some(1));

    // A no-op patch changes no resourceVersion.
    let rv = api.get("web").await.unwrap().metadata.resource_version;
    let same = api
        .patch("web", &pp, &Patch::Merge(json!({"spec": {"replicas": 1}})))
        .await
        .unwrap();
    assert_eq!(same.metadata.resource_version, rv);
}

#[tokio::test(start_paused = true)]
async fn status_and_scale_subresources() {
    let cluster = FakeCluster::new();
    let api: Api<Deployment> = Api::namespaced(cluster.client(), "default");
    api.create(&PostParams::default(), &deployment("web", "nginx:1.3"))
        .await
        .unwrap();
    // The main resource ignores status; /status ignores spec.
    let with_status = api
        .patch_status(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"readyReplicas": 2}, "spec": {"replicas": 9}})),
        )
        .await
        .unwrap();
    assert_eq!(with_status.status.unwrap().ready_replicas, Some(2));
    assert_eq!(with_status.spec.unwrap().replicas, Some(3));
    assert_eq!(with_status.metadata.generation, Some(1));

    let scale = api.get_scale("web").await.unwrap();
    assert_eq!(scale.spec.unwrap().replicas, Some(3));
    assert_eq!(scale.status.unwrap().selector.as_deref(), Some("app=web"));
    let scaled = api
        .patch_scale(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 6}})),
        )
        .await
        .unwrap();
    assert_eq!(scaled.spec.unwrap().replicas, Some(6));
    assert_eq!(
        api.get("web").await.unwrap().spec.unwrap().replicas,
        Some(6)
    );
}

#[tokio::test(start_paused = true)]
async fn a_reflector_sees_every_change_in_order() {
    let cluster = FakeCluster::new();
    let api: Api<ConfigMap> = Api::namespaced(cluster.client(), "default");
    let (reader, writer) = reflector::store::<ConfigMap>();
    let events = watcher(api.clone(), watcher::Config::default())
        .reflect(writer)
        .applied_objects()
        .map_ok(|cm| {
            let data = cm.data.unwrap_or_default();
            format!(
                "{}={}",
                cm.metadata.name.unwrap_or_default(),
                data.get("v").cloned().unwrap_or_default()
            )
        });
    let collector = tokio::spawn(async move { events.take(6).try_collect::<Vec<String>>().await });
    tokio::time::sleep(Duration::from_millis(10)).await;
    for (name, value) in [
        ("a", "1"),
        ("b", "1"),
        ("a", "2"),
        ("c", "1"),
        ("a", "3"),
        ("b", "2"),
    ] {
        let patch = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"v": value}});
        api.patch(name, &PatchParams::apply("test"), &Patch::Apply(&patch))
            .await
            .unwrap();
    }
    let seen = collector.await.unwrap().unwrap();
    assert_eq!(seen, ["a=1", "b=1", "a=2", "c=1", "a=3", "b=2"]);
    assert_eq!(reader.state().len(), 3);
}

#[tokio::test(start_paused = true)]
async fn a_watcher_relists_after_its_resource_version_expired() {
    let cluster = FakeCluster::new();
    let api: Api<ConfigMap> = Api::namespaced(cluster.client(), "default");
    let cm =
        |name: &str| json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}});
    api.patch(
        "first",
        &PatchParams::apply("t"),
        &Patch::Apply(cm("first")),
    )
    .await
    .unwrap();
    let mut stream = watcher(api.clone(), watcher::Config::default())
        .default_backoff()
        .boxed();
    let mut log: Vec<String> = Vec::new();
    // Initial list: Init, InitApply(first), InitDone.
    for _ in 0..3 {
        log.push(format!("{:?}", kind(&stream.next().await.unwrap())));
    }
    // A partition: the open watch times out (kube-rs asks for 290 s) and re-watches fail, while
    // a change is made and the history is compacted behind the watcher's back.
    cluster.inject(Fault::status(503).on(Verb::Watch));
    let writer = {
        let (api, cluster) = (api.clone(), cluster.clone());
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(300)).await;
            api.patch(
                "missed",
                &PatchParams::apply("t"),
                &Patch::Apply(cm("missed")),
            )
            .await
            .unwrap();
            cluster.compact();
            cluster.clear_faults();
        })
    };
    // The watcher's backoff is jittered: "second" is written once the relist is done (else it
    // would come in the relist), and an hour of cluster time is the most this may take.
    let follow = async {
        let mut relisted = 0;
        loop {
            let text = format!("{:?}", kind(&stream.next().await.unwrap()));
            if log.last() != Some(&text) {
                log.push(text.clone());
            }
            if text == "InitDone" {
                relisted += 1;
                api.patch(
                    "second",
                    &PatchParams::apply("t"),
                    &Patch::Apply(cm("second")),
                )
                .await
                .unwrap();
                assert_eq!(relisted, 1, "one relist: {log:?}");
            }
            if text == "Apply(\"second\")" {
                break;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(3600), follow)
        .await
        .unwrap_or_else(|_| panic!("the watcher did not recover within an hour: {log:?}"));
    writer.await.unwrap();
    assert_eq!(
        log,
        [
            "Init",
            "InitApply(\"first\")",
            "InitDone",
            "Error(503)",
            "Error(410)",
            "Init",
            "InitApply(\"first\")",
            "InitApply(\"missed\")",
            "InitDone",
            "Apply(\"second\")"
        ]
    );
    let expired_watch = cluster
        .requests()
        .iter()
        .filter(|r| r.verb == Verb::Watch)
        .any(|r| r.status == 200);
    assert!(
        expired_watch,
        "the 410 came in-stream, on an HTTP 200 watch"
    );
}

#[derive(Debug, PartialEq)]
enum Seen {
    Init,
    InitApply(String),
    InitDone,
    Apply(String),
    Delete(String),
    Error(u16),
}

fn kind(event: &Result<watcher::Event<ConfigMap>, watcher::Error>) -> Seen {
    let name = |cm: &ConfigMap| cm.metadata.name.clone().unwrap_or_default();
    match event {
        Ok(watcher::Event::Init) => Seen::Init,
        Ok(watcher::Event::InitApply(cm)) => Seen::InitApply(name(cm)),
        Ok(watcher::Event::InitDone) => Seen::InitDone,
        Ok(watcher::Event::Apply(cm)) => Seen::Apply(name(cm)),
        Ok(watcher::Event::Delete(cm)) => Seen::Delete(name(cm)),
        Err(watcher::Error::WatchError(status)) => Seen::Error(status.code),
        Err(watcher::Error::WatchStartFailed(kube::Error::Api(status))) => Seen::Error(status.code),
        Err(other) => panic!("unexpected watcher error {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn injected_faults_reach_kube_rs_and_are_logged() {
    let cluster = FakeCluster::new();
    let api: Api<Deployment> = Api::namespaced(cluster.client(), "default");
    api.create(&PostParams::default(), &deployment("web", "nginx:1.3"))
        .await
        .unwrap();
    cluster.inject(
        Fault::status(503)
            .on(Verb::Get)
            .resource("deployments")
            .times(1),
    );
    let (code, reason, _) = api_error(api.get("web").await.unwrap_err());
    assert_eq!((code, reason.as_str()), (503, "ServiceUnavailable"));
    assert!(api.get("web").await.is_ok(), "the fault fired once");

    cluster.inject(Fault::conflict().on(Verb::Patch).times(1));
    let (code, _, _) = api_error(
        api.patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 1}})),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!(code, 409);
    assert_eq!(
        api.get("web").await.unwrap().spec.unwrap().replicas,
        Some(3),
        "nothing written"
    );

    cluster.inject(
        Fault::latency(Duration::from_secs(2))
            .on(Verb::Get)
            .times(1),
    );
    let started = tokio::time::Instant::now();
    api.get("web").await.unwrap();
    assert_eq!(started.elapsed(), Duration::from_secs(2));

    let log: Vec<String> = cluster
        .requests()
        .iter()
        .map(|r| format!("{} {} {}", r.method, r.path, r.status))
        .collect();
    assert_eq!(
        log[1],
        "GET /apis/apps/v1/namespaces/default/deployments/web 503"
    );
    assert_eq!(
        cluster.requests().last().unwrap().duration,
        Duration::from_secs(2)
    );
}
