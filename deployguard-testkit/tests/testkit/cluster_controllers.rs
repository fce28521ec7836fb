//! The simulated controllers under a paused clock: rolling-update math step by step, revisions,
//! and each pod failure shape with its events.
#![cfg(feature = "cluster")]

use std::fmt::Write as _;
use std::time::Duration;

use deployguard_testkit::cluster::{FakeCluster, ImageBehaviour, SimulatedTraffic};
use deployguard_testkit::cluster::{k8s_openapi, kube};
use expect_test::{Expect, expect};
use futures::StreamExt;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{Event, Pod};
use kube::api::{Api, ListParams, Patch, PatchParams, WatchEvent, WatchParams};
use serde_json::{Value, json};

/// The images these tests run (the simulated registry pulls nothing else).
const IMAGES: [&str; 9] = [
    "app:big",
    "app:cfg",
    "app:ok",
    "app:v2.3.1",
    "app:v2.4.0",
    "leaky:v1",
    "web:1",
    "web:2",
    "web:3",
];

fn deployment(name: &str, replicas: u32, image: &str) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": "default", "labels": {"app": "myapp"}},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "myapp"}},
            "template": {"metadata": {"labels": {"app": "myapp"}},
                "spec": {"containers": [{"name": "app", "image": image}]}}}
    })
}

async fn wait_complete(api: &Api<Deployment>, name: &str) -> Deployment {
    for _ in 0..600 {
        let d = api.get(name).await.unwrap();
        let (spec, status) = (
            d.spec.clone().unwrap(),
            d.status.clone().unwrap_or_default(),
        );
        let want = spec.replicas.unwrap_or(1);
        if status.observed_generation >= d.metadata.generation
            && status.updated_replicas.unwrap_or(0) == want
            && status.replicas.unwrap_or(0) == want
            && status.available_replicas.unwrap_or(0) == want
        {
            return d;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    panic!("deployment {name} did not complete");
}

#[tokio::test(start_paused = true)]
async fn a_six_replica_rolling_update_steps_like_the_real_controller() {
    let cluster = FakeCluster::builder()
        .controllers(true)
        .images(IMAGES)
        .build();
    cluster.set_image_behaviour("app:v2.4.0", ImageBehaviour::ready_after(10));
    cluster
        .create(deployment("app-deployment", 6, "app:v2.3.1"))
        .unwrap();
    let deployments: Api<Deployment> = Api::namespaced(cluster.client(), "default");
    let done = wait_complete(&deployments, "app-deployment").await;
    assert_eq!(
        done.metadata.annotations.unwrap()["deployment.kubernetes.io/revision"],
        "1"
    );

    let replica_sets: Api<ReplicaSet> = Api::namespaced(cluster.client(), "default");
    let rv = cluster.resource_version().to_string();
    let mut watch = replica_sets
        .watch(&WatchParams::default(), &rv)
        .await
        .unwrap()
        .boxed();
    let set_image = json!({"spec": {"template": {"spec": {"$setElementOrder/containers": [{"name": "app"}], "containers": [{"name": "app", "image": "app:v2.4.0"}]}}}});
    deployments
        .patch(
            "app-deployment",
            &PatchParams::default(),
            &Patch::Strategic(&set_image),
        )
        .await
        .unwrap();
    let completion = {
        let deployments = deployments.clone();
        tokio::spawn(async move { wait_complete(&deployments, "app-deployment").await })
    };
    let mut counts: Vec<(i32, i32)> = vec![(6, 0)];
    let (mut old, mut new) = (6, 0);
    while counts.last() != Some(&(0, 6)) {
        let Some(Ok(WatchEvent::Added(rs) | WatchEvent::Modified(rs))) = watch.next().await else {
            continue;
        };
        let replicas = rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0);
        let image = rs
            .spec
            .as_ref()
            .and_then(|s| s.template.as_ref())
            .and_then(|t| t.spec.as_ref())
            .map(|s| s.containers[0].image.clone().unwrap_or_default());
        if image.as_deref() == Some("app:v2.4.0") {
            new = replicas
        } else {
            old = replicas
        }
        if counts.last() != Some(&(old, new)) {
            counts.push((old, new));
        }
    }
    // maxSurge 2 (25% of 6, rounded up), maxUnavailable 1 (rounded down).
    assert_eq!(
        counts,
        [(6, 0), (6, 2), (5, 2), (5, 3), (2, 3), (2, 6), (0, 6)]
    );
    let done = completion.await.unwrap();
    assert_eq!(
        done.metadata.annotations.unwrap()["deployment.kubernetes.io/revision"],
        "2"
    );
    let conditions: Vec<String> = done
        .status
        .unwrap()
        .conditions
        .unwrap()
        .iter()
        .map(|c| {
            format!(
                "{} {} {}",
                c.type_,
                c.status,
                c.reason.clone().unwrap_or_default()
            )
        })
        .collect();
    assert_eq!(
        conditions,
        [
            "Available True MinimumReplicasAvailable",
            "Progressing True NewReplicaSetAvailable"
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn a_stalled_rollout_exceeds_its_progress_deadline_with_old_pods_serving() {
    let cluster = FakeCluster::builder()
        .controllers(true)
        .images(IMAGES)
        .build();
    cluster.set_image_behaviour("app:v2.4.0", ImageBehaviour::never_ready());
    cluster
        .create(deployment("app-deployment", 6, "app:v2.3.1"))
        .unwrap();
    let deployments: Api<Deployment> = Api::namespaced(cluster.client(), "default");
    wait_complete(&deployments, "app-deployment").await;
    deployments
        .patch("app-deployment", &PatchParams::default(), &Patch::Merge(json!({"spec": {"template": {"spec": {"containers": [{"name": "app", "image": "app:v2.4.0"}]}}}})))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(60)).await;
    let status = deployments
        .get("app-deployment")
        .await
        .unwrap()
        .status
        .unwrap();
    assert_eq!(
        (
            status.replicas,
            status.updated_replicas,
            status.ready_replicas,
            status.available_replicas
        ),
        (Some(8), Some(3), Some(5), Some(5))
    );
    let progressing = |d: &Deployment| {
        d.status
            .clone()
            .unwrap()
            .conditions
            .unwrap()
            .into_iter()
            .find(|c| c.type_ == "Progressing")
            .unwrap()
    };
    assert_eq!(
        progressing(&deployments.get("app-deployment").await.unwrap())
            .reason
            .as_deref(),
        Some("ReplicaSetUpdated")
    );
    tokio::time::sleep(Duration::from_secs(600)).await;
    let stalled = progressing(&deployments.get("app-deployment").await.unwrap());
    assert_eq!(
        (stalled.status.as_str(), stalled.reason.as_deref()),
        ("False", Some("ProgressDeadlineExceeded"))
    );
    assert!(
        stalled
            .message
            .unwrap()
            .ends_with("has timed out progressing.")
    );
}

/// Renders the one pod of a 1-replica deployment of `image` after a minute, and its events.
async fn check_failure(
    image: &str,
    behaviour: Option<ImageBehaviour>,
    container: Value,
    expect: Expect,
) {
    let cluster = FakeCluster::builder()
        .controllers(true)
        .images(IMAGES)
        .build();
    if let Some(behaviour) = behaviour {
        cluster.set_image_behaviour(image, behaviour);
    }
    let mut manifest = deployment("web", 1, image);
    manifest["spec"]["template"]["spec"]["containers"][0] = container;
    cluster.create(manifest).unwrap();
    tokio::time::sleep(Duration::from_secs(60)).await;
    let pods: Api<Pod> = Api::namespaced(cluster.client(), "default");
    let pod = pods
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .remove(0);
    let status = pod.status.clone().unwrap();
    let mut out = String::new();
    writeln!(out, "phase {}", status.phase.unwrap_or_default()).unwrap();
    for c in status
        .conditions
        .unwrap_or_default()
        .iter()
        .filter(|c| c.status != "True")
    {
        writeln!(
            out,
            "condition {} {} {} {}",
            c.type_,
            c.status,
            c.reason.clone().unwrap_or_default(),
            c.message.clone().unwrap_or_default()
        )
        .unwrap();
    }
    for c in status.container_statuses.unwrap_or_default() {
        let state = c.state.unwrap_or_default();
        let waiting = state.waiting.map(|w| {
            format!(
                "waiting {} {}",
                w.reason.unwrap_or_default(),
                w.message.unwrap_or_default()
            )
        });
        let last = c.last_state.and_then(|l| l.terminated).map(|t| {
            format!(
                " last terminated {} {}",
                t.reason.unwrap_or_default(),
                t.exit_code
            )
        });
        writeln!(
            out,
            "container ready={} restarts={} {}{}",
            c.ready,
            c.restart_count,
            waiting.unwrap_or_else(|| "running".into()),
            last.unwrap_or_default()
        )
        .unwrap();
    }
    let events: Api<Event> = Api::namespaced(cluster.client(), "default");
    let uid = pod.metadata.uid.unwrap();
    let mut seen: Vec<String> = events
        .list(&ListParams::default().fields(&format!("involvedObject.uid={uid}")))
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|e| {
            format!(
                "event {} {} {}",
                e.type_.unwrap_or_default(),
                e.reason.unwrap_or_default(),
                e.message.unwrap_or_default()
            )
        })
        .collect();
    seen.sort();
    for line in seen {
        let line = line
            .replace(&uid, "UID")
            .replace(pod.metadata.name.as_deref().unwrap(), "POD");
        writeln!(out, "{line}").unwrap();
    }
    expect.assert_eq(&out);
}

fn container(image: &str) -> Value {
    json!({"name": "app", "image": image})
}

#[tokio::test(start_paused = true)]
async fn each_failure_shape_has_its_status_and_events() {
    check_failure(
        "app:ok",
        None,
        container("app:ok"),
        expect![[r#"
            phase Running
            container ready=true restarts=0 running
            event Normal Created Created container app
            event Normal Pulled Container image "app:ok" already present on machine
            event Normal Scheduled Successfully assigned default/POD to node-1
            event Normal Started Started container app
        "#]],
    )
    .await;
    check_failure(
        "app:unready",
        Some(ImageBehaviour::never_ready()),
        container("app:unready"),
        expect![[r#"
            phase Running
            condition Ready False ContainersNotReady containers with unready status: [app]
            condition ContainersReady False ContainersNotReady containers with unready status: [app]
            container ready=false restarts=0 running
            event Normal Created Created container app
            event Normal Pulled Container image "app:unready" already present on machine
            event Normal Scheduled Successfully assigned default/POD to node-3
            event Normal Started Started container app
            event Warning Unhealthy Readiness probe failed: HTTP probe failed with statuscode: 503
        "#]],
    )
    .await;
    check_failure("app:crash", Some(ImageBehaviour::crash_loop("panic: DATABASE_URL not set")), container("app:crash"), expect![[r#"
        phase Running
        condition Ready False ContainersNotReady containers with unready status: [app]
        condition ContainersReady False ContainersNotReady containers with unready status: [app]
        container ready=false restarts=3 waiting CrashLoopBackOff back-off 40s restarting failed container=app pod=web-7dcd869b76-lkxtb_default(6b1e0000-0000-4000-8000-000000000026) last terminated Error 1
        event Normal Created Created container app
        event Normal Pulled Container image "app:crash" already present on machine
        event Normal Scheduled Successfully assigned default/POD to node-3
        event Normal Started Started container app
        event Warning BackOff Back-off restarting failed container app in pod POD_default(UID)
    "#]]).await;
    check_failure("app:gone", Some(ImageBehaviour::pull_fails("app:gone")), container("app:gone"), expect![[r#"
        phase Pending
        condition Ready False ContainersNotReady containers with unready status: [app]
        condition ContainersReady False ContainersNotReady containers with unready status: [app]
        container ready=false restarts=0 waiting ImagePullBackOff Back-off pulling image "app:gone"
        event Normal BackOff Back-off pulling image "app:gone"
        event Normal Pulling Pulling image "app:gone"
        event Normal Scheduled Successfully assigned default/POD to node-3
        event Warning Failed Error: ErrImagePull
        event Warning Failed Error: ImagePullBackOff
        event Warning Failed Failed to pull image "app:gone": rpc error: code = NotFound desc = failed to pull and unpack image "app:gone": not found
    "#]]).await;
    check_failure("app:oom", Some(ImageBehaviour::OomKilled), container("app:oom"), expect![[r#"
        phase Running
        condition Ready False ContainersNotReady containers with unready status: [app]
        condition ContainersReady False ContainersNotReady containers with unready status: [app]
        container ready=false restarts=3 waiting CrashLoopBackOff back-off 40s restarting failed container=app pod=web-55d6ffcd5d-lkxtb_default(6b1e0000-0000-4000-8000-000000000026) last terminated OOMKilled 137
        event Normal Created Created container app
        event Normal Pulled Container image "app:oom" already present on machine
        event Normal Scheduled Successfully assigned default/POD to node-3
        event Normal Started Started container app
        event Warning BackOff Back-off restarting failed container app in pod POD_default(UID)
    "#]]).await;
    let needs_config = json!({"name": "app", "image": "app:cfg", "envFrom": [{"configMapRef": {"name": "app-config"}}]});
    check_failure("app:cfg", None, needs_config, expect![[r#"
        phase Pending
        condition Ready False ContainersNotReady containers with unready status: [app]
        condition ContainersReady False ContainersNotReady containers with unready status: [app]
        container ready=false restarts=0 waiting CreateContainerConfigError configmap "app-config" not found
        event Normal Scheduled Successfully assigned default/POD to node-1
        event Warning Failed Error: configmap "app-config" not found
    "#]]).await;
    let too_big =
        json!({"name": "app", "image": "app:big", "resources": {"requests": {"cpu": "8"}}});
    check_failure("app:big", None, too_big, expect![[r#"
        phase Pending
        condition PodScheduled False Unschedulable 0/4 nodes are available: 1 node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }, 3 Insufficient cpu. preemption: 0/4 nodes are available: 1 Preemption is not helpful for scheduling, 3 No preemption victims found for incoming pod.
        event Warning FailedScheduling 0/4 nodes are available: 1 node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }, 3 Insufficient cpu. preemption: 0/4 nodes are available: 1 Preemption is not helpful for scheduling, 3 No preemption victims found for incoming pod.
    "#]]).await;
}

#[tokio::test(start_paused = true)]
async fn a_bad_version_shows_in_its_own_traffic_and_recovers_after_a_rollback() {
    use deployguard_core::HealthProbe;
    use deployguard_testkit::cluster::scenarios;

    let cluster = FakeCluster::builder()
        .controllers(true)
        .images(IMAGES)
        .build();
    scenarios::load(&cluster, "bad-version").await.unwrap();
    tokio::time::sleep(Duration::from_secs(60)).await;
    let probe = cluster.traffic_probe("default", "myapp-service", Duration::from_secs(10));
    let sample = probe.sample().await.unwrap();
    let of = |name: &str, version: Option<&str>| {
        sample
            .series(name)
            .find(|m| m.version() == version)
            .and_then(|m| m.value)
    };
    // The rollout completed: only the new version serves, and its errors are its own (15%).
    let errors = of("error_rate", Some("app:v2.4.0")).unwrap();
    assert!((errors - 0.15).abs() < 0.04, "{}", sample.evidence);
    assert_eq!(
        of("error_rate", Some("app:v2.3.1")),
        None,
        "{}",
        sample.evidence
    );
    assert_eq!(of("error_rate", None), Some(errors));
    assert!(of("latency_seconds", Some("app:v2.4.0")).unwrap() > 3.0);
    let rate = of("requests_per_second", None).unwrap();
    assert!((rate - 78.0).abs() < 10.0, "{rate}");

    let deployments: Api<Deployment> = Api::namespaced(cluster.client(), "default");
    let back = json!({"spec": {"template": {"spec": {"containers": [{"name": "app", "image": "app:v2.3.1"}]}}}});
    deployments
        .patch(
            "app-deployment",
            &PatchParams::default(),
            &Patch::Strategic(&back),
        )
        .await
        .unwrap();
    wait_complete(&deployments, "app-deployment").await;
    tokio::time::sleep(Duration::from_secs(15)).await;
    let sample = probe.sample().await.unwrap();
    let after = sample.get("error_rate").and_then(|m| m.value).unwrap();
    assert!(after < 0.01, "{}", sample.evidence);

    // The exposition: counters by code and histograms, labelled as a mesh labels them.
    let metrics = cluster.traffic_metrics();
    for text in [
        "# TYPE http_requests_total counter",
        "# TYPE http_request_duration_seconds histogram",
        "service=\"myapp-service\",pod=\"app-deployment-",
        "version=\"v2.4.0\",pod_template_hash=\"",
        "code=\"503\"}",
        "le=\"+Inf\"}",
        "http_request_duration_seconds_count{",
    ] {
        assert!(metrics.contains(text), "{text} missing from:\n{metrics}");
    }
    // Every second is charged once, and the counters add up to the history.
    let history = cluster.traffic_window("default", "myapp-service", Duration::from_secs(3600));
    for pair in history.windows(2) {
        assert_eq!(
            pair[1].at.duration_since(pair[0].at).unwrap(),
            Duration::from_secs(1)
        );
    }
    let counted: u64 = metrics
        .lines()
        .filter(|l| l.starts_with("http_requests_total{"))
        .map(|l| l.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
        .sum();
    let sent: u64 = history.iter().map(|s| s.requests).sum();
    assert_eq!(counted, sent);
}

#[tokio::test(start_paused = true)]
async fn a_full_service_fails_every_version_alike() {
    use deployguard_core::HealthProbe;
    use deployguard_testkit::cluster::scenarios;

    let cluster = FakeCluster::builder()
        .controllers(true)
        .images(IMAGES)
        .build();
    scenarios::load(&cluster, "overloaded-rollout")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(10)).await;
    let probe = cluster.traffic_probe("default", "myapp-service", Duration::from_secs(10));
    let sample = probe.sample().await.unwrap();
    let rate = |version: &str| {
        sample
            .series("error_rate")
            .find(|m| m.version() == Some(version))
            .and_then(|m| m.value)
            .unwrap()
    };
    let (new, old) = (rate("app:v2.4.0"), rate("app:v2.3.1"));
    assert!(new > 0.05 && old > 0.05, "{}", sample.evidence);
    assert!((new - old).abs() < 0.05, "{}", sample.evidence);
}

#[tokio::test(start_paused = true)]
async fn a_failed_migration_job_has_its_status_logs_and_events() {
    use deployguard_testkit::cluster::scenarios;
    use k8s_openapi::api::batch::v1::Job;
    use kube::api::LogParams;

    let cluster = FakeCluster::builder()
        .controllers(true)
        .images(IMAGES)
        .build();
    scenarios::load(&cluster, "migration-job-failed")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(20)).await;
    let jobs: Api<Job> = Api::namespaced(cluster.client(), "default");
    let job = jobs.get("db-migrate-43").await.unwrap();
    let status = job.status.unwrap();
    assert_eq!(status.failed, Some(1));
    let failed = status
        .conditions
        .unwrap()
        .into_iter()
        .find(|c| c.type_ == "Failed")
        .unwrap();
    assert_eq!(
        (failed.status.as_str(), failed.reason.as_deref()),
        ("True", Some("BackoffLimitExceeded"))
    );
    let pods: Api<Pod> = Api::namespaced(cluster.client(), "default");
    let pod = pods
        .list(&ListParams::default().labels("job-name=db-migrate-43"))
        .await
        .unwrap()
        .items
        .remove(0);
    assert_eq!(pod.status.unwrap().phase.as_deref(), Some("Failed"));
    let logs = pods
        .logs(
            pod.metadata.name.as_deref().unwrap(),
            &LogParams {
                tail_lines: Some(1),
                ..LogParams::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(logs, "migration 43 failed; schema marked dirty\n");
}

#[tokio::test(start_paused = true)]
async fn endpoints_and_slices_follow_pod_readiness() {
    use deployguard_testkit::cluster::scenarios;
    use k8s_openapi::api::core::v1::Endpoints;
    use k8s_openapi::api::discovery::v1::EndpointSlice;

    let cluster = FakeCluster::builder()
        .controllers(true)
        .images(IMAGES)
        .build();
    scenarios::load(&cluster, "seed-rolling-failure")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(10)).await;
    let endpoints: Api<Endpoints> = Api::namespaced(cluster.client(), "default");
    let subset = endpoints
        .get("myapp-service")
        .await
        .unwrap()
        .subsets
        .unwrap()
        .remove(0);
    assert_eq!(subset.addresses.unwrap_or_default().len(), 5);
    assert_eq!(subset.not_ready_addresses.unwrap_or_default().len(), 3);
    assert_eq!(
        subset.ports.unwrap()[0].port,
        8080,
        "the named target port resolved"
    );
    let slices: Api<EndpointSlice> = Api::namespaced(cluster.client(), "default");
    let slice = slices
        .list(&ListParams::default().labels("kubernetes.io/service-name=myapp-service"))
        .await
        .unwrap()
        .items
        .remove(0);
    let ready = slice
        .endpoints
        .iter()
        .filter(|e| e.conditions.as_ref().and_then(|c| c.ready) == Some(true))
        .count();
    assert_eq!((slice.endpoints.len(), ready), (8, 5));
}

#[tokio::test(start_paused = true)]
async fn recreate_stops_old_pods_first_and_history_is_trimmed() {
    let cluster = FakeCluster::builder()
        .controllers(true)
        .images(IMAGES)
        .build();
    let mut manifest = deployment("web", 3, "web:1");
    manifest["spec"]["strategy"] = json!({"type": "Recreate"});
    manifest["spec"]["revisionHistoryLimit"] = json!(1);
    cluster.create(manifest).unwrap();
    let deployments: Api<Deployment> = Api::namespaced(cluster.client(), "default");
    wait_complete(&deployments, "web").await;
    let pods: Api<Pod> = Api::namespaced(cluster.client(), "default");
    for image in ["web:2", "web:3"] {
        let rv = cluster.resource_version().to_string();
        let mut watch = pods
            .watch(&WatchParams::default(), &rv)
            .await
            .unwrap()
            .boxed();
        deployments
            .patch("web", &PatchParams::default(), &Patch::Strategic(json!({"spec": {"template": {"spec": {"containers": [{"name": "app", "image": image}]}}}})))
            .await
            .unwrap();
        // Every old pod is deleted before the first new one is created.
        let mut deleted = 0;
        loop {
            match watch.next().await {
                Some(Ok(WatchEvent::Deleted(_))) => deleted += 1,
                Some(Ok(WatchEvent::Added(pod))) => {
                    assert_eq!(deleted, 3, "a {image} pod was created while old pods ran");
                    assert_eq!(
                        pod.spec.unwrap().containers[0].image.as_deref(),
                        Some(image)
                    );
                    break;
                }
                None => panic!("the watch ended before a {image} pod was created"),
                _ => {}
            }
        }
        wait_complete(&deployments, "web").await;
    }
    // revisionHistoryLimit 1: the current ReplicaSet and one old one.
    let replica_sets: Api<ReplicaSet> = Api::namespaced(cluster.client(), "default");
    let mut revisions: Vec<String> = replica_sets
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .iter()
        .map(|rs| {
            rs.metadata.annotations.clone().unwrap()["deployment.kubernetes.io/revision"].clone()
        })
        .collect();
    revisions.sort();
    assert_eq!(revisions, ["2", "3"]);
}

#[tokio::test(start_paused = true)]
async fn a_version_that_fails_after_its_warm_up_serves_well_until_then() {
    use deployguard_core::HealthProbe;
    use deployguard_testkit::cluster::{ServingProfile, TrafficConfig};

    let cluster = FakeCluster::builder()
        .controllers(true)
        .images(IMAGES)
        .build();
    cluster.set_serving(
        "leaky:v1",
        ServingProfile {
            errors_after: Some(Duration::from_secs(120)),
            ..ServingProfile::SEED_BAD
        },
    );
    cluster
        .create(json!({"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "leaky", "namespace": "default"},
            "spec": {"selector": {"app": "leaky"}, "ports": [{"port": 80}]}}))
        .unwrap();
    let mut leaky = deployment("leaky", 3, "leaky:v1");
    leaky["metadata"]["labels"] = json!({"app": "leaky"});
    leaky["spec"]["selector"] = json!({"matchLabels": {"app": "leaky"}});
    leaky["spec"]["template"]["metadata"]["labels"] = json!({"app": "leaky"});
    cluster.create(leaky).unwrap();
    // 45 rps on three pods of 20: busy, never full.
    let load = TrafficConfig {
        requests_per_second: 45.0,
        capacity_per_pod: 20.0,
        seed: 7,
    };
    cluster.enable_traffic("default", "leaky", load);
    let probe = cluster.traffic_probe("default", "leaky", Duration::from_secs(30));
    let error_rate = || async {
        let sample = probe.sample().await.unwrap();
        sample.get("error_rate").and_then(|m| m.value).unwrap()
    };
    tokio::time::sleep(Duration::from_secs(60)).await;
    let warm = error_rate().await;
    assert!(warm < 0.02, "{warm}");
    tokio::time::sleep(Duration::from_secs(120)).await;
    let leaking = error_rate().await;
    assert!((leaking - 0.15).abs() < 0.05, "{leaking}");
}

#[tokio::test(start_paused = true)]
async fn ongoing_failures_keep_counting_their_events_as_a_kubelet_does() {
    let cluster = FakeCluster::builder()
        .controllers(true)
        .images(IMAGES)
        .build();
    cluster.set_image_behaviour("app:unready", ImageBehaviour::never_ready());
    let pods = [
        ("unready", json!({"name": "app", "image": "app:unready"})),
        ("typo", json!({"name": "app", "image": "app:typo"})),
        (
            "cfg",
            json!({"name": "app", "image": "app:cfg", "envFrom": [{"configMapRef": {"name": "app-config"}}]}),
        ),
        (
            "big",
            json!({"name": "app", "image": "app:big", "resources": {"requests": {"cpu": "8"}}}),
        ),
    ];
    for (name, container) in &pods {
        let mut manifest = deployment(name, 1, "app:ok");
        manifest["metadata"]["labels"]["app"] = json!(name);
        manifest["spec"]["selector"]["matchLabels"]["app"] = json!(name);
        manifest["spec"]["template"]["metadata"]["labels"]["app"] = json!(name);
        manifest["spec"]["template"]["spec"]["containers"][0] = container.clone();
        cluster.create(manifest).unwrap();
    }
    tokio::time::sleep(Duration::from_secs(300)).await;
    let events: Api<Event> = Api::namespaced(cluster.client(), "default");
    let all = events.list(&ListParams::default()).await.unwrap().items;
    let now = cluster.now();
    let count = |reason: &str, message_part: &str| {
        let event = all
            .iter()
            .find(|e| {
                e.reason.as_deref() == Some(reason)
                    && e.message
                        .as_deref()
                        .is_some_and(|m| m.contains(message_part))
            })
            .unwrap_or_else(|| panic!("no {reason} event with {message_part:?}"));
        let last = event.last_timestamp.as_ref().unwrap().0;
        let age = now
            .duration_since(std::time::SystemTime::from(last))
            .unwrap_or_default();
        (event.count.unwrap_or(0), age)
    };
    // A readiness probe every 10 s and the scheduler's 10 s back-off: ~30 in five minutes.
    let (unhealthy, age) = count("Unhealthy", "Readiness probe failed");
    assert!(
        unhealthy >= 25 && age <= Duration::from_secs(10),
        "{unhealthy} {age:?}"
    );
    let (unschedulable, age) = count("FailedScheduling", "Insufficient cpu");
    assert!(
        unschedulable >= 25 && age <= Duration::from_secs(10),
        "{unschedulable} {age:?}"
    );
    // Pulls and container configuration back off from 10 s, doubling: 10+20+40+80+160 = 310 s.
    let (pulls, _) = count("BackOff", "Back-off pulling image \"app:typo\"");
    assert!((4..=6).contains(&pulls), "{pulls}");
    let (config, _) = count("Failed", "configmap \"app-config\" not found");
    assert!((4..=6).contains(&config), "{config}");
}

#[tokio::test(start_paused = true)]
async fn an_autoscaler_scales_on_the_cpu_the_simulated_traffic_costs() {
    use deployguard_testkit::cluster::TrafficConfig;
    use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
    let cluster = FakeCluster::builder()
        .controllers(true)
        .images(IMAGES)
        .build();
    cluster
        .create(json!({"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]}}))
        .unwrap();
    let mut web = deployment("web", 2, "web:1");
    web["metadata"]["labels"] = json!({"app": "web"});
    web["spec"]["selector"] = json!({"matchLabels": {"app": "web"}});
    web["spec"]["template"]["metadata"]["labels"] = json!({"app": "web"});
    web["spec"]["template"]["spec"]["containers"][0]["resources"] =
        json!({"requests": {"cpu": "500m"}});
    cluster.create(web).unwrap();
    cluster
        .create(json!({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                "minReplicas": 2, "maxReplicas": 6,
                "metrics": [{"type": "Resource", "resource": {"name": "cpu",
                    "target": {"type": "Utilization", "averageUtilization": 50}}}]}}))
        .unwrap();
    let deployments: Api<Deployment> = Api::namespaced(cluster.client(), "default");
    let hpas: Api<HorizontalPodAutoscaler> = Api::namespaced(cluster.client(), "default");
    let replicas = || async { deployments.get("web").await.unwrap().spec.unwrap().replicas };
    let utilization = || async {
        let status = hpas.get("web").await.unwrap().status.unwrap();
        let current = status.current_metrics.unwrap_or_default();
        current
            .first()
            .and_then(|m| m.resource.as_ref())
            .and_then(|r| r.current.average_utilization)
    };
    let limited = || async {
        let status = hpas.get("web").await.unwrap().status.unwrap();
        let conditions = status.conditions.unwrap_or_default();
        let limited = conditions.iter().find(|c| c.type_ == "ScalingLimited");
        limited.map(|c| (c.status.clone(), c.reason.clone().unwrap_or_default()))
    };
    wait_complete(&deployments, "web").await;
    // Before any traffic the pods report nothing, as pods without a metrics server.
    tokio::time::sleep(Duration::from_secs(30)).await;
    assert_eq!(utilization().await, None);
    assert_eq!(replicas().await, Some(2));

    // 100 rps on two pods of 20: both saturated, a whole CPU each, 201% of their request.
    let busy = TrafficConfig {
        requests_per_second: 100.0,
        capacity_per_pod: 20.0,
        seed: 3,
    };
    cluster.enable_traffic("default", "web", busy);
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert_eq!(
        replicas().await,
        Some(6),
        "scaled up at once, to its maximum"
    );
    wait_complete(&deployments, "web").await;
    tokio::time::sleep(Duration::from_secs(60)).await;
    // Six pods at 16.7 rps each: 838m, 168%; still wanting more than the maximum.
    let busy_utilization = utilization().await.unwrap();
    assert!(
        (150..=185).contains(&busy_utilization),
        "{busy_utilization}"
    );
    assert_eq!(
        limited().await,
        Some(("True".into(), "TooManyReplicas".into()))
    );

    // The load falls to 10 rps: 1.7 rps a pod, 18%. The autoscaler waits out its five-minute
    // window, then scales down to what keeps the pods near the target: three.
    cluster.enable_traffic("default", "web", busy.with_seed(4).with_rate(10.0));
    tokio::time::sleep(Duration::from_secs(120)).await;
    assert_eq!(
        replicas().await,
        Some(6),
        "not within the scale-down window"
    );
    let idle_utilization = utilization().await.unwrap();
    assert!((10..=25).contains(&idle_utilization), "{idle_utilization}");
    tokio::time::sleep(Duration::from_secs(300)).await;
    assert_eq!(replicas().await, Some(3));
    tokio::time::sleep(Duration::from_secs(600)).await;
    assert_eq!(replicas().await, Some(3), "steady at the target");
    assert_eq!(
        limited().await,
        Some(("False".into(), "DesiredWithinRange".into()))
    );
}
