//! The Role [`rbac::rules`] grants is enough, on a cluster that enforces RBAC, for every
//! component of this crate to do its job — a guard recovers the seed incident, the router
//! switches and restores, the migration gate reads a failed Job and its logs — and each rule is
//! needed: with one rule less, a job fails with the API's Forbidden naming what is missing.

use std::sync::Arc;
use std::time::Duration;

use deployguard_core::analysis::{AnalysisCheck, Threshold};
use deployguard_core::engine::{Guard, GuardOutcome, Strategy};
use deployguard_core::{DeploymentBackendExt, MigrationInspector, MigrationStatus};
use deployguard_k8s::{
    JobMigrationInspector, KubeDeployment, LeaseLock, ServiceSelectorRouter, rbac,
};
use deployguard_testkit::cluster::wait::eventually;
use deployguard_testkit::cluster::{FakeCluster, SimulatedTraffic, scenarios};
use deployguard_testkit::conformance;
use k8s_openapi::api::rbac::v1::PolicyRule;
use serde_json::json;

const IMAGES: [&str; 5] = [
    "app:v2.3.1",
    "app:v2.4.0",
    "app:v2.5.0",
    "app:blue",
    "app:green",
];

/// A client that acts as ServiceAccount `default/deployguard`, bound to a Role with `rules`.
pub(crate) fn as_service_account(cluster: &FakeCluster, rules: &[PolicyRule]) -> kube::Client {
    cluster
        .create(json!({"apiVersion": "v1", "kind": "ServiceAccount",
            "metadata": {"name": "deployguard", "namespace": "default"}}))
        .unwrap();
    cluster
        .create(
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
            "metadata": {"name": "deployguard", "namespace": "default"},
            "rules": serde_json::to_value(rules).unwrap()}),
        )
        .unwrap();
    cluster
        .create(json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": "deployguard", "namespace": "default"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "deployguard"},
            "subjects": [{"kind": "ServiceAccount", "name": "deployguard", "namespace": "default"}]}))
        .unwrap();
    let token = cluster
        .service_account_token("default", "deployguard")
        .unwrap();
    cluster.client_with_token(&token)
}

async fn scenario(name: &str) -> FakeCluster {
    let cluster = FakeCluster::builder()
        .controllers(true)
        .images(IMAGES)
        .build();
    scenarios::load(&cluster, name).await.unwrap();
    cluster
}

/// A guard of the seed incident with the Kubernetes backend, the migration gate and the lease:
/// it must roll back to v2.3.1.
async fn guard_recovers_the_seed(rules: &[PolicyRule]) -> Result<(), String> {
    let cluster = scenario("seed-rolling-failure").await;
    eventually("the rollout to stall", || {
        scenarios::seed_has_stalled(&cluster)
    })
    .await;
    let client = as_service_account(&cluster, rules);
    let probe = cluster.traffic_probe("default", "myapp-service", Duration::from_secs(10));
    let guard = Guard::builder(
        Strategy::Rolling,
        Arc::new(KubeDeployment::new(
            client.clone(),
            "default",
            "app-deployment",
        )),
    )
    .check(
        AnalysisCheck::builder("error-rate", &probe, "error_rate")
            .success(Threshold::at_most(0.01))
            .interval(Duration::from_secs(10))
            .build()
            .unwrap(),
    )
    .probe(Arc::new(probe))
    .migrations(Arc::new(JobMigrationInspector::new(
        client.clone(),
        "default",
    )))
    .lock(
        Arc::new(LeaseLock::new(client.clone(), "default", "app-deployment")),
        "guard-1",
    )
    .journal(Arc::new(
        deployguard_k8s::KubeEvents::new(client, "default", "app-deployment").unwrap(),
    ))
    .recovery_deadline(Duration::from_secs(300))
    .build()
    .unwrap();
    let report = guard.run().await;
    if !matches!(report.outcome, GuardOutcome::RolledBack { .. }) {
        return Err(format!("the guard: {}", report.outcome));
    }
    // The Event saying so, written by KubeEvents' own task (it needs `create` on events).
    for _ in 0..50 {
        let written = cluster.list("v1", "Event", "default").iter().any(|e| {
            e.pointer("/source/component")
                .and_then(serde_json::Value::as_str)
                == Some("deployguard")
        });
        if written {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err("no Event from deployguard: Forbidden (403) to create resource \"events\"?".into())
}

/// The Service-selector router through the router conformance suite (switch, verify through
/// EndpointSlices, restore) on a blue-green pair.
async fn router_switches_and_restores(rules: &[PolicyRule]) -> Result<(), String> {
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
                    "template": {"metadata": {"labels": labels}, "spec": {"containers": [{"name": "app", "image": format!("app:{side}")}]}}}}))
            .unwrap();
        KubeDeployment::new(cluster.client(), "default", &format!("myapp-{side}"))
            .wait_until_complete(Duration::from_secs(60), Duration::from_secs(1))
            .await
            .unwrap();
    }
    cluster
        .create(json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "myapp-service", "namespace": "default"},
            "spec": {"selector": {"app": "myapp", "version": "blue"}, "ports": [{"port": 80, "targetPort": 8080}]}}))
        .unwrap();
    let client = as_service_account(&cluster, rules);
    let router = ServiceSelectorRouter::new(
        client,
        "default",
        "myapp-service",
        "version",
        [("blue", "blue"), ("green", "green")],
    )
    .unwrap();
    conformance::router_suite(&router)
        .await
        .map_err(|e| format!("the router: {e}"))
}

/// The migration gate reads the failed Job, its pod's log and the schema ConfigMap.
async fn gate_reads_a_failed_migration(rules: &[PolicyRule]) -> Result<(), String> {
    let cluster = scenario("migration-job-failed").await;
    // The Job's three attempts fail within 20 s.
    tokio::time::sleep(Duration::from_secs(20)).await;
    let client = as_service_account(&cluster, rules);
    let inspector = JobMigrationInspector::new(client, "default");
    let state = inspector
        .inspect()
        .await
        .map_err(|e| format!("the migration gate: {e}"))?;
    match &state.status {
        MigrationStatus::Failed { reason } if reason.contains("logs unavailable") => {
            Err(format!("the migration gate's evidence: {reason}"))
        }
        MigrationStatus::Failed { reason } if reason.contains("last log lines") => Ok(()),
        other => Err(format!("the migration gate read {other:?}")),
    }
}

/// Runs each job with `rules`; the first failure's text.
async fn first_failure(rules: &[PolicyRule]) -> Option<String> {
    if let Err(e) = guard_recovers_the_seed(rules).await {
        return Some(e);
    }
    if let Err(e) = router_switches_and_restores(rules).await {
        return Some(e);
    }
    gate_reads_a_failed_migration(rules).await.err()
}

#[tokio::test(start_paused = true)]
async fn the_role_suffices_and_every_rule_in_it_is_needed() {
    let all = rbac::rules();
    assert_eq!(first_failure(&all).await, None, "with every rule");
    let mut unneeded = Vec::new();
    for (index, removed) in all.iter().enumerate() {
        let mut fewer = all.clone();
        fewer.remove(index);
        let resource = &removed.resources.as_ref().unwrap()[0];
        match first_failure(&fewer).await {
            Some(failure)
                if failure.contains("Forbidden (403)")
                    && failure.contains(&format!("resource \"{resource}\"")) => {}
            other => unneeded.push(format!("{resource}: {other:?}")),
        }
    }
    assert!(
        unneeded.is_empty(),
        "rules whose absence no job noticed, or not as Forbidden naming them:\n{}",
        unneeded.join("\n")
    );
}
