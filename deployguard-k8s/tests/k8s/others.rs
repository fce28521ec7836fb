//! PodReadinessProbe, ServiceSelectorRouter, JobMigrationInspector and the RBAC rules against
//! the simulated cluster.

use std::time::Duration;

use deployguard_core::{
    DeploymentBackend, DeploymentBackendExt, ErrorKind, HealthProbe, MigrationInspector,
    MigrationStatus, SchemaVersion, TrafficRouter, TrafficRouterExt, TrafficSplit, Verification,
};
use deployguard_k8s::{
    JobMigrationInspector, KubeDeployment, PodReadinessProbe, ServiceSelectorRouter, rbac,
};
use deployguard_testkit::cluster::{FakeCluster, scenarios};
use deployguard_testkit::conformance;
use k8s_openapi::api::core::v1::Service;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;

/// The images these tests run (the simulated registry pulls nothing else).
const IMAGES: [&str; 2] = ["app:blue", "app:green"];

#[tokio::test(start_paused = true)]
async fn readiness_is_reported_per_revision_and_no_pods_is_no_data() {
    let cluster = FakeCluster::builder()
        .controllers(true)
        .images(IMAGES)
        .build();
    scenarios::load(&cluster, "seed-rolling-failure")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(20)).await;
    let probe = PodReadinessProbe::new(KubeDeployment::new(
        cluster.client(),
        "default",
        "app-deployment",
    ));
    let sample = probe.sample().await.unwrap();
    let value = |name: &str| sample.get(name).and_then(|m| m.value);
    assert_eq!(
        (
            value("ready_fraction"),
            value("ready_fraction_rev1"),
            value("ready_fraction_rev2")
        ),
        (Some(0.0), Some(1.0), Some(0.0))
    );
    assert_eq!(
        sample.evidence,
        "revision 1: 5/5 ready, revision 2: 0/3 ready"
    );
    conformance::probe_suite(&probe).await.unwrap();

    let backend = KubeDeployment::new(cluster.client(), "default", "app-deployment");
    backend.scale(0).await.unwrap();
    tokio::time::sleep(Duration::from_secs(5)).await;
    let sample = probe.sample().await.unwrap();
    assert_eq!(sample.get("ready_fraction").unwrap().value, None);
    assert_eq!(sample.evidence, "no pods");
}

async fn blue_green_cluster() -> FakeCluster {
    let cluster = FakeCluster::builder()
        .controllers(true)
        .images(IMAGES)
        .build();
    for side in ["blue", "green"] {
        let labels = json!({"app": "myapp", "version": side});
        cluster
            .create(json!({"apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": format!("myapp-{side}"), "namespace": "default", "labels": labels},
                "spec": {"replicas": 2, "selector": {"matchLabels": labels},
                    "template": {"metadata": {"labels": labels}, "spec": {"containers": [{"name": "app", "image": format!("app:{side}"), "ports": [{"containerPort": 8080}]}]}}}}))
            .unwrap();
    }
    cluster
        .create(json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "myapp-service", "namespace": "default"},
            "spec": {"selector": {"app": "myapp", "version": "blue"}, "ports": [{"port": 80, "targetPort": 8080}]}}))
        .unwrap();
    for side in ["blue", "green"] {
        KubeDeployment::new(cluster.client(), "default", &format!("myapp-{side}"))
            .wait_until_complete(Duration::from_secs(60), Duration::from_secs(1))
            .await
            .unwrap();
    }
    cluster
}

fn router(cluster: &FakeCluster) -> ServiceSelectorRouter {
    ServiceSelectorRouter::new(
        cluster.client(),
        "default",
        "myapp-service",
        "version",
        [("blue", "blue"), ("green", "green")],
    )
    .unwrap()
}

#[tokio::test(start_paused = true)]
async fn the_router_conformance_suite_passes() {
    let cluster = blue_green_cluster().await;
    conformance::router_suite(&router(&cluster)).await.unwrap();
    let boxed: Box<dyn TrafficRouter> = Box::new(router(&cluster));
    conformance::router_suite(&boxed).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn switching_patches_one_key_verifies_through_endpoint_slices_and_restores() {
    let cluster = blue_green_cluster().await;
    let router = router(&cluster);
    let green = TrafficSplit::all_to("green", &["blue"]).unwrap();
    let read = router.current().await.unwrap();
    assert_eq!(
        read.split,
        TrafficSplit::all_to("blue", &["green"]).unwrap()
    );
    router.apply(&green, &read.version).await.unwrap();
    let services: Api<Service> = Api::namespaced(cluster.client(), "default");
    let selector = services
        .get("myapp-service")
        .await
        .unwrap()
        .spec
        .unwrap()
        .selector
        .unwrap();
    assert_eq!(
        selector.get("app").map(String::as_str),
        Some("myapp"),
        "only the version key changed"
    );
    assert_eq!(selector.get("version").map(String::as_str), Some("green"));
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(router.verify(&green).await.unwrap(), Verification::Matches);

    let restored = router.restore_previous().await.unwrap();
    assert_eq!(restored.weight("blue"), Some(100));
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        router.verify(&restored).await.unwrap(),
        Verification::Matches
    );
}

#[tokio::test(start_paused = true)]
async fn a_side_with_no_ready_pods_is_refused_and_a_concurrent_edit_conflicts() {
    let cluster = blue_green_cluster().await;
    let router = router(&cluster);
    KubeDeployment::new(cluster.client(), "default", "myapp-green")
        .scale(0)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(5)).await;
    cluster.clear_requests();
    let err = router
        .switch(&TrafficSplit::all_to("green", &["blue"]).unwrap())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Refused, "{err}");
    assert!(
        cluster.requests().iter().all(|r| !r.verb.is_write()),
        "nothing written"
    );

    KubeDeployment::new(cluster.client(), "default", "myapp-green")
        .scale(2)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(5)).await;
    let read = router.current().await.unwrap();
    let services: Api<Service> = Api::namespaced(cluster.client(), "default");
    services
        .patch(
            "myapp-service",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"owner": "alice"}}})),
        )
        .await
        .unwrap();
    let err = router
        .apply(
            &TrafficSplit::all_to("green", &["blue"]).unwrap(),
            &read.version,
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict, "{err}");
    let selector = services
        .get("myapp-service")
        .await
        .unwrap()
        .spec
        .unwrap()
        .selector
        .unwrap();
    assert_eq!(selector.get("version").map(String::as_str), Some("blue"));
}

#[tokio::test(start_paused = true)]
async fn a_failed_migration_job_is_reported_with_its_logs() {
    let cluster = FakeCluster::builder()
        .controllers(true)
        .images(IMAGES)
        .build();
    scenarios::load(&cluster, "migration-job-failed")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(20)).await;
    let inspector = JobMigrationInspector::new(cluster.client(), "default");
    let state = inspector.inspect().await.unwrap();
    assert_eq!(state.current, Some(SchemaVersion(43)));
    let MigrationStatus::Failed { reason } = &state.status else {
        panic!("{state:?}")
    };
    assert!(
        reason.starts_with("job db-migrate-43 failed: BackoffLimitExceeded"),
        "{reason}"
    );
    assert!(
        reason.contains("migration 43 failed; schema marked dirty"),
        "{reason}"
    );
    conformance::migrations_suite(&inspector).await.unwrap();

    // Before the Job ran, with the ConfigMap's applied list, the schema is idle at 43.
    let fresh = FakeCluster::new();
    fresh
        .create(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "schema-version", "namespace": "default"},
            "data": {"version": "43", "applied": "42 add_currency compatible\n43 drop_legacy_price incompatible"}}))
        .unwrap();
    let state = JobMigrationInspector::new(fresh.client(), "default")
        .inspect()
        .await
        .unwrap();
    assert_eq!(state.status, MigrationStatus::Idle);
    assert_eq!(
        state
            .applied
            .iter()
            .map(|m| (m.version.0, m.backward_compatible))
            .collect::<Vec<_>>(),
        [(42, Some(true)), (43, Some(false))]
    );
}

#[test]
fn rbac_rules_as_yaml() {
    expect_test::expect![[r#"
        apiVersion: rbac.authorization.k8s.io/v1
        kind: Role
        metadata:
          name: deployguard
          namespace: default
        rules:
        - apiGroups: ["apps"]
          resources: ["deployments"]
          verbs: ["get", "list", "watch", "patch"]
        - apiGroups: ["apps"]
          resources: ["replicasets"]
          verbs: ["get", "list", "watch", "patch"]
        - apiGroups: [""]
          resources: ["pods"]
          verbs: ["get", "list", "watch"]
        - apiGroups: [""]
          resources: ["pods/log"]
          verbs: ["get"]
        - apiGroups: [""]
          resources: ["events"]
          verbs: ["list", "watch", "create"]
        - apiGroups: [""]
          resources: ["services"]
          verbs: ["get", "list", "watch", "patch"]
        - apiGroups: ["discovery.k8s.io"]
          resources: ["endpointslices"]
          verbs: ["get", "list", "watch"]
        - apiGroups: ["batch"]
          resources: ["jobs"]
          verbs: ["get", "list", "watch"]
        - apiGroups: [""]
          resources: ["configmaps"]
          verbs: ["get", "list", "watch"]
        - apiGroups: ["coordination.k8s.io"]
          resources: ["leases"]
          verbs: ["get", "create", "update"]
    "#]]
    .assert_eq(&rbac::role_yaml("default", "deployguard"));
    assert_eq!(rbac::rules().len(), 10);
}
