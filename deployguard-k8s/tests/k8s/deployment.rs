//! KubeDeployment against the simulated cluster: conformance, kubectl-equivalent rollbacks,
//! conflicts, diagnosis of every failure scenario, and how many requests each call takes.

use std::sync::Arc;
use std::time::Duration;

use deployguard_core::engine::diagnose;
use deployguard_core::{
    DeploymentBackend, DeploymentBackendExt, ErrorKind, RevisionId, RollbackOptions,
    RollbackOutcome,
};
use deployguard_k8s::KubeDeployment;
use deployguard_testkit::cluster::kubectl::Kubectl;
use deployguard_testkit::cluster::{FakeCluster, Fault, Verb, scenarios};
use deployguard_testkit::conformance;
use expect_test::{Expect, expect};
use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;

/// The images these tests run (the simulated registry pulls nothing else).
const IMAGES: [&str; 3] = ["app:v2.3.1", "app:v2.4.0", "app:v2.5.0"];

async fn scenario(name: &str) -> FakeCluster {
    let cluster = FakeCluster::builder()
        .controllers(true)
        .images(IMAGES)
        .build();
    scenarios::load(&cluster, name).await.unwrap();
    cluster
}

async fn settle(backend: &KubeDeployment) {
    backend
        .wait_until_complete(Duration::from_secs(300), Duration::from_secs(1))
        .await
        .unwrap();
}

#[tokio::test(start_paused = true)]
async fn the_backend_conformance_suite_passes_concretely_and_through_dyn() {
    for boxed in [false, true] {
        let cluster = scenario("healthy-rollout").await;
        let backend = KubeDeployment::new(cluster.client(), "default", "app-deployment");
        settle(&backend).await;
        if boxed {
            let dynamic: Box<dyn DeploymentBackend> = Box::new(backend);
            conformance::backend_suite(&dynamic).await.unwrap();
        } else {
            conformance::backend_suite(&backend).await.unwrap();
        }
    }
}

fn set_image(image: &str) -> serde_json::Value {
    json!({"metadata": {"annotations": {"kubernetes.io/change-cause": format!("deploy {image}")}},
        "spec": {"template": {"spec": {"containers": [{"name": "app", "image": image}]}}}})
}

#[tokio::test(start_paused = true)]
async fn a_rollback_after_two_rollbacks_restores_the_right_template() {
    let cluster = scenario("healthy-rollout").await;
    let backend = KubeDeployment::new(cluster.client(), "default", "app-deployment");
    settle(&backend).await;
    let deployments: Api<Deployment> = Api::namespaced(cluster.client(), "default");
    deployments
        .patch(
            "app-deployment",
            &PatchParams::default(),
            &Patch::Strategic(set_image("app:v2.5.0")),
        )
        .await
        .unwrap();
    settle(&backend).await;
    // 1 v2.3.1, 2 v2.4.0, 3 v2.5.0. Roll back to 1 (→ 4), then to 2 (→ 5).
    for (to, expect) in [(1, "app:v2.3.1"), (2, "app:v2.4.0")] {
        let outcome = backend
            .rollback_to(RevisionId(to), RollbackOptions::default())
            .await
            .unwrap();
        assert!(matches!(outcome, RollbackOutcome::RolledBack { .. }));
        settle(&backend).await;
        assert_eq!(
            backend.current_revision().await.unwrap().unwrap().images,
            [expect]
        );
    }
    let ids: Vec<u64> = backend
        .history()
        .await
        .unwrap()
        .iter()
        .map(|r| r.id.0)
        .collect();
    assert_eq!(ids, [3, 4, 5]);
    // Revision 3 sits between renumbered ones: rolling back to it restores v2.5.0, never
    // "current - 1" (which would be 4, v2.3.1).
    let outcome = backend
        .rollback_to(RevisionId(3), RollbackOptions::default())
        .await
        .unwrap();
    assert!(matches!(outcome, RollbackOutcome::RolledBack { .. }));
    settle(&backend).await;
    let current = backend.current_revision().await.unwrap().unwrap();
    assert_eq!(
        (current.id, current.images.clone()),
        (RevisionId(6), vec!["app:v2.5.0".to_owned()])
    );
    assert_eq!(current.previous_ids, [RevisionId(3)]);

    // kubectl agrees (with its own temporary kubeconfig and cache).
    let served = cluster.serve().await.unwrap();
    let kubectl = Kubectl::new(&served).unwrap();
    let rows = kubectl.rollout_history("app-deployment").await.unwrap();
    let text = rows.join("\n");
    assert_eq!(
        rows,
        [
            "4 deploy app:v2.3.1",
            "5 deploy app:v2.4.0",
            "6 deploy app:v2.5.0"
        ],
        "{text}"
    );
}

/// Rolls the seed back to revision 1 while `concurrent` writes the deployment between the
/// backend's read and its write (its ReplicaSet listing is slowed down to make room).
async fn rollback_racing(
    concurrent: impl AsyncFnOnce(&Api<Deployment>),
) -> (FakeCluster, deployguard_core::Result<RollbackOutcome>) {
    let cluster = scenario("seed-rolling-failure").await;
    let backend = Arc::new(KubeDeployment::new(
        cluster.client(),
        "default",
        "app-deployment",
    ));
    cluster.inject(
        Fault::latency(Duration::from_secs(2))
            .on(Verb::List)
            .resource("replicasets")
            .times(1),
    );
    let rollback = {
        let backend = Arc::clone(&backend);
        tokio::spawn(async move {
            backend
                .rollback_to(RevisionId(1), RollbackOptions::default())
                .await
        })
    };
    tokio::time::sleep(Duration::from_secs(1)).await;
    let deployments: Api<Deployment> = Api::namespaced(cluster.client(), "default");
    concurrent(&deployments).await;
    (cluster, rollback.await.unwrap())
}

#[tokio::test(start_paused = true)]
async fn a_concurrent_edit_between_read_and_write_is_a_conflict_and_survives() {
    let (cluster, result) = rollback_racing(async |deployments| {
        let edit = json!({"metadata": {"annotations": {"oncall": "alice"}}});
        deployments
            .patch(
                "app-deployment",
                &PatchParams::default(),
                &Patch::Merge(edit),
            )
            .await
            .unwrap();
    })
    .await;
    let err = result.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict, "{err}");
    assert!(err.is_retryable());
    let deployments: Api<Deployment> = Api::namespaced(cluster.client(), "default");
    let now = deployments.get("app-deployment").await.unwrap();
    assert_eq!(now.metadata.annotations.unwrap()["oncall"], "alice");
    let image = now.spec.unwrap().template.spec.unwrap().containers[0]
        .image
        .clone();
    assert_eq!(
        image.as_deref(),
        Some("app:v2.4.0"),
        "nothing was rolled back"
    );
}

#[tokio::test(start_paused = true)]
async fn a_paused_deployment_is_refused_unless_resumed_and_a_missing_revision_writes_nothing() {
    let cluster = scenario("seed-rolling-failure").await;
    let backend = KubeDeployment::new(cluster.client(), "default", "app-deployment");
    backend.set_paused(true).await.unwrap();
    let err = backend
        .rollback_to(RevisionId(1), RollbackOptions::default())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Refused);
    cluster.clear_requests();
    let err = backend
        .rollback_to(RevisionId(9), RollbackOptions::default())
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "not found: unable to find specified revision 9 in history (rollback_to on deployment default/app-deployment)"
    );
    assert!(cluster.requests().iter().all(|r| !r.verb.is_write()));
    let outcome = backend
        .rollback_to(
            RevisionId(1),
            RollbackOptions::default().with_resume_if_paused(true),
        )
        .await
        .unwrap();
    assert!(matches!(outcome, RollbackOutcome::RolledBack { .. }));
    assert!(!backend.observe().await.unwrap().paused);
    settle(&backend).await;
}

#[tokio::test(start_paused = true)]
async fn request_counts_on_the_six_replica_seed_scenario() {
    let cluster = scenario("seed-rolling-failure").await;
    tokio::time::sleep(Duration::from_secs(30)).await;
    let backend = KubeDeployment::new(cluster.client(), "default", "app-deployment");
    let mut counts = Vec::new();
    for (what, run) in [("observe", 0), ("history", 1), ("rollback", 2)] {
        cluster.clear_requests();
        match run {
            0 => drop(backend.observe().await.unwrap()),
            1 => drop(backend.history().await.unwrap()),
            _ => drop(
                backend
                    .rollback_to(RevisionId(1), RollbackOptions::default())
                    .await
                    .unwrap(),
            ),
        }
        let requests: Vec<String> = cluster
            .requests()
            .iter()
            .map(|r| format!("{} {}", r.method, r.path))
            .collect();
        println!("{what}: {} requests: {requests:?}", requests.len());
        counts.push(requests.len());
    }
    // observe: deployment, replicasets, pods, events; history: answered from that read;
    // rollback: one PATCH, conditional on the generation observe read.
    assert_eq!(counts, [4, 0, 1]);
}

async fn check_diagnosis(name: &str, expect: Expect) {
    let cluster = scenario(name).await;
    tokio::time::sleep(Duration::from_secs(60)).await;
    let backend = KubeDeployment::new(cluster.client(), "default", "app-deployment");
    let snapshot = backend.observe().await.unwrap();
    let rendered: String = diagnose(&snapshot)
        .iter()
        .map(|d| {
            let scrub = |line: &str| -> String {
                line.split_whitespace()
                    .map(|w| {
                        if w.contains("app-deployment-") {
                            if w.starts_with("pod/") {
                                "pod/POD:"
                            } else {
                                "POD"
                            }
                        } else {
                            w
                        }
                    })
                    .collect::<Vec<_>>()
                    .join(" ")
            };
            let mut evidence: Vec<String> = d.evidence.iter().map(|e| scrub(e)).collect();
            evidence.dedup();
            evidence.truncate(3);
            format!("{:?}\n  {}\n", d.mode, evidence.join("\n  "))
        })
        .collect();
    expect.assert_eq(&rendered);
}

#[tokio::test(start_paused = true)]
async fn each_failure_scenario_is_diagnosed_with_evidence() {
    check_diagnosis(
        "seed-rolling-failure",
        expect![[r#"
            ReadinessFailing
              3 of 3 pods of the current revision run but are not ready
              pod POD its app answers the readiness probe with an error 1 min after it was created, past the 15 s a start takes (its probes declare 15 s): Readiness probe failed: HTTP probe failed with statuscode: 503
        "#]],
    )
    .await;
    check_diagnosis(
        "image-pull-failure",
        expect![[r#"
        ImagePull { image: "app:v2.4.0" }
          pod POD ImagePullBackOff: Back-off pulling image "app:v2.4.0"
    "#]],
    )
    .await;
    check_diagnosis(
        "crash-loop",
        expect![[r#"
        CrashLoop { restarts: 3 }
          pod POD CrashLoopBackOff, 3 restarts
          pod POD log: panic: failed to connect to database: DATABASE_URL not set
          pod POD CrashLoopBackOff, 3 restarts
    "#]],
    )
    .await;
    check_diagnosis(
        "missing-config",
        expect![[r#"
        ConfigError { missing: "configmap \"app-config-v2\"" }
          pod POD CreateContainerConfigError: configmap "app-config-v2" not found
    "#]],
    )
    .await;
    check_diagnosis("unschedulable", expect![[r#"
        Unschedulable { resource: Some("cpu") }
          pod/POD: FailedScheduling: 0/4 nodes are available: 1 node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }, 3 Insufficient cpu. preemption: 0/4 nodes are available: 1 Preemption is not helpful for scheduling, 3 No preemption victims found for incoming pod.
    "#]]).await;
}

#[tokio::test(start_paused = true)]
async fn a_status_update_between_read_and_write_is_no_conflict() {
    // What the Deployment controller does all through a rollout.
    let (_, result) = rollback_racing(async |deployments| {
        let status = json!({"status": {"collisionCount": 0}});
        deployments
            .patch_status(
                "app-deployment",
                &PatchParams::default(),
                &Patch::Merge(status),
            )
            .await
            .unwrap();
    })
    .await;
    assert!(matches!(
        result.unwrap(),
        RollbackOutcome::RolledBack { .. }
    ));
}

/// The backend answers from what it last read; anything that changed since reaches it through a
/// write's precondition, never as a silent overwrite, and the next call reads afresh.
#[tokio::test(start_paused = true)]
async fn what_was_read_is_reused_until_a_change_is_met_then_read_again() {
    let cluster = scenario("healthy-rollout").await;
    let backend = KubeDeployment::new(cluster.client(), "default", "app-deployment");
    settle(&backend).await;
    let before = backend.observe().await.unwrap();
    let deployments: Api<Deployment> = Api::namespaced(cluster.client(), "default");
    // Someone rolls out v2.5.0 behind the backend's back.
    deployments
        .patch(
            "app-deployment",
            &PatchParams::default(),
            &Patch::Strategic(set_image("app:v2.5.0")),
        )
        .await
        .unwrap();
    cluster.clear_requests();
    let err = backend
        .rollback_to(RevisionId(1), RollbackOptions::default())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict, "{err}");
    let image = |d: &Deployment| {
        d.spec
            .as_ref()
            .unwrap()
            .template
            .spec
            .as_ref()
            .unwrap()
            .containers[0]
            .image
            .clone()
            .unwrap()
    };
    assert_eq!(
        image(&deployments.get("app-deployment").await.unwrap()),
        "app:v2.5.0"
    );
    // A marker is one annotation of ours: written again on a fresh read, conditional on it.
    backend
        .set_marker("deployguard.io/note", Some("seen".into()))
        .await
        .unwrap();
    let now = deployments.get("app-deployment").await.unwrap();
    assert_eq!(image(&now), "app:v2.5.0");
    assert_eq!(
        now.metadata.annotations.unwrap()["deployguard.io/note"],
        "seen"
    );
    // The history is read afresh after the conflict: it has v2.5.0's revision.
    settle(&backend).await;
    let history = backend.history().await.unwrap();
    assert_eq!(history.len(), 3, "{history:?}");
    assert!(before.current_revision < backend.observe().await.unwrap().current_revision);
    // The waiting started from a complete status it had seen: it read once to be sure.
    cluster.clear_requests();
    settle(&backend).await;
    let reads: Vec<String> = cluster
        .requests()
        .iter()
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert_eq!(
        reads,
        ["GET /apis/apps/v1/namespaces/default/deployments/app-deployment"]
    );
}

/// A Deployment selected by `matchExpressions` alone is observed by its own pods, not by every
/// pod of the namespace (another app's pods run beside it).
#[tokio::test(start_paused = true)]
async fn a_set_based_selector_selects_the_deployments_pods_only() {
    let cluster = FakeCluster::builder()
        .controllers(true)
        .images(IMAGES)
        .build();
    let deployment = |name: &str, selector: serde_json::Value, replicas: u32| {
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"replicas": replicas, "selector": selector,
                "template": {"metadata": {"labels": {"app": name}},
                    "spec": {"containers": [{"name": "app", "image": "app:v2.3.1"}]}}}
        })
    };
    cluster
        .create(deployment(
            "web",
            json!({"matchExpressions": [{"key": "app", "operator": "In", "values": ["web"]}]}),
            2,
        ))
        .unwrap();
    cluster
        .create(deployment(
            "other",
            json!({"matchLabels": {"app": "other"}}),
            3,
        ))
        .unwrap();
    let backend = KubeDeployment::new(cluster.client(), "default", "web");
    settle(&backend).await;
    let snapshot = backend.observe().await.unwrap();
    assert_eq!(snapshot.pods.len(), 2, "{:?}", snapshot.pods);
    assert!(
        snapshot.pods.iter().all(|p| p.name.starts_with("web-")),
        "{:?}",
        snapshot.pods
    );
}

/// The seed's healthy twin, with one request in five to the API server answered 503 once the
/// rollout has completed (the bake and the promotion's writes all under fire): every read and
/// write of the promotion goes through the retry policy, so the guard still promotes. Over 20
/// fault seeds.
#[tokio::test(start_paused = true)]
async fn a_healthy_rollout_is_promoted_through_503s_after_it_completes() {
    use deployguard_core::engine::{Guard, GuardOutcome, Strategy};

    for seed in 1..=20 {
        let cluster = scenario("healthy-rollout").await;
        let backend = Arc::new(KubeDeployment::new(
            cluster.client(),
            "default",
            "app-deployment",
        ));
        let guard = Guard::builder(Strategy::Rolling, backend)
            .bake(Duration::from_secs(60))
            .poll_interval(Duration::from_secs(2))
            .build()
            .unwrap();
        let faults = {
            let cluster = cluster.clone();
            tokio::spawn(async move {
                let watcher = KubeDeployment::new(cluster.client(), "default", "app-deployment");
                settle(&watcher).await;
                cluster.inject(Fault::status(503).probability(0.2, seed));
            })
        };
        let report = guard.run().await;
        faults.await.unwrap();
        let served_503 = cluster
            .requests()
            .iter()
            .filter(|r| r.status == 503)
            .count();
        assert!(
            matches!(report.outcome, GuardOutcome::Promoted { .. }),
            "seed {seed}: {:?}",
            report.outcome
        );
        assert!(served_503 > 0, "seed {seed}: no fault fired");
    }
}

/// What the guard decided is on the Deployment as Kubernetes Events: `kubectl describe
/// deployment` shows the rollback in words.
#[tokio::test(start_paused = true)]
async fn kubectl_describe_shows_the_guards_rollback_as_an_event() {
    use deployguard_core::engine::{Guard, GuardOutcome, Strategy};
    use deployguard_k8s::KubeEvents;

    let cluster = scenario("seed-rolling-failure").await;
    let backend = Arc::new(KubeDeployment::new(
        cluster.client(),
        "default",
        "app-deployment",
    ));
    let events = KubeEvents::new(cluster.client(), "default", "app-deployment").unwrap();
    let guard = Guard::builder(Strategy::Rolling, backend)
        .journal(Arc::new(events.clone()))
        .build()
        .unwrap();
    let report = guard.run().await;
    assert!(
        matches!(report.outcome, GuardOutcome::RolledBack { .. }),
        "{}",
        report.outcome
    );
    // Written by the sink's own task: wait for it (simulated time).
    let mut written = false;
    for _ in 0..100 {
        let events = cluster.list("v1", "Event", "default");
        written = events.iter().any(|e| {
            e.pointer("/reason").and_then(serde_json::Value::as_str) == Some("RolledBack")
        });
        if written {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(written, "no RolledBack event");
    let served = cluster.serve().await.unwrap();
    let kubectl = Kubectl::new(&served).unwrap();
    let described = kubectl
        .ok(&["describe", "deployment", "app-deployment"])
        .await;
    assert!(
        described.contains("RolledBack")
            && described.contains("deployguard: rolled back app:v2.4.0"),
        "{described}"
    );
    assert_eq!(events.dropped(), 0);
}
