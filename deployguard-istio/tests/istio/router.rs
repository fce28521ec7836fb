//! The Istio router against the simulated cluster's mesh: conformance, both API versions,
//! conditional writes, refusals that write nothing, verification through the mesh's status,
//! and the data plane following the weights.

use std::time::Duration;

use deployguard_core::{
    DeploymentBackend, DeploymentBackendExt, ErrorKind, TrafficRouter, TrafficRouterExt,
    TrafficSplit, Verification,
};
use deployguard_istio::{DestinationMatch, IstioRouter, IstioVersion, rbac};
use deployguard_k8s::KubeDeployment;
use deployguard_testkit::cluster::scenarios::{self, ISTIO_CANARY, ISTIO_ROUTE, ISTIO_STABLE};
use deployguard_testkit::cluster::{FakeCluster, SimulatedTraffic};
use deployguard_testkit::conformance;
use serde_json::{Value, json};

/// The healthy Istio canary, both Deployments rolled out, all traffic on `stable`.
async fn canary_cluster() -> FakeCluster {
    let cluster = FakeCluster::with_controllers();
    scenarios::load(&cluster, "istio-canary-healthy")
        .await
        .unwrap();
    for name in [ISTIO_STABLE, ISTIO_CANARY] {
        KubeDeployment::new(cluster.client(), "default", name)
            .wait_until_complete(Duration::from_secs(120), Duration::from_secs(1))
            .await
            .unwrap();
    }
    cluster
}

fn router(cluster: &FakeCluster) -> IstioRouter {
    IstioRouter::builder(cluster.client(), "default", ISTIO_ROUTE)
        .route("primary")
        .subset("stable")
        .subset("canary")
        .build()
        .unwrap()
}

fn weights(cluster: &FakeCluster) -> Vec<Value> {
    let vs = cluster
        .get(
            "networking.istio.io/v1",
            "VirtualService",
            "default",
            ISTIO_ROUTE,
        )
        .unwrap();
    vs.pointer("/spec/http/1/route")
        .and_then(Value::as_array)
        .unwrap()
        .iter()
        .map(|d| d["weight"].clone())
        .collect()
}

#[tokio::test(start_paused = true)]
async fn the_router_conformance_suite_passes_in_both_api_versions() {
    let cluster = canary_cluster().await;
    let discovered = router(&cluster);
    conformance::router_suite(&discovered).await.unwrap();
    assert_eq!(discovered.api_version().await.unwrap(), IstioVersion::V1);
    let v1beta1 = IstioRouter::builder(cluster.client(), "default", ISTIO_ROUTE)
        .route("primary")
        .subset("stable")
        .subset("canary")
        .api_version(IstioVersion::V1beta1)
        .build()
        .unwrap();
    let boxed: Box<dyn TrafficRouter> = Box::new(v1beta1);
    conformance::router_suite(&boxed).await.unwrap();
    let requests = cluster.requests();
    assert!(
        requests
            .iter()
            .any(|r| r.path.starts_with("/apis/networking.istio.io/v1beta1/"))
    );
}

#[tokio::test(start_paused = true)]
async fn a_weight_write_is_a_patch_of_the_weights_alone_conditional_on_the_version_read() {
    let cluster = canary_cluster().await;
    let router = router(&cluster);
    let read = router.current().await.unwrap();
    assert_eq!(
        read.split,
        TrafficSplit::two_way("stable", "canary", 0).unwrap()
    );
    let before = cluster
        .get(
            "networking.istio.io/v1",
            "VirtualService",
            "default",
            ISTIO_ROUTE,
        )
        .unwrap();
    cluster.clear_requests();
    router
        .apply(
            &TrafficSplit::two_way("stable", "canary", 30).unwrap(),
            &read.version,
        )
        .await
        .unwrap();
    assert_eq!(weights(&cluster), [json!(70), json!(30)]);
    let after = cluster
        .get(
            "networking.istio.io/v1",
            "VirtualService",
            "default",
            ISTIO_ROUTE,
        )
        .unwrap();
    // The header route, the hosts and everything else are as they were.
    assert_eq!(before["spec"]["http"][0], after["spec"]["http"][0]);
    assert_eq!(before["spec"]["hosts"], after["spec"]["hosts"]);
    let patches: Vec<_> = cluster
        .requests()
        .into_iter()
        .filter(|r| r.method == "PATCH")
        .collect();
    assert_eq!(patches.len(), 1, "{patches:?}");

    // Someone edits the route between our read and our write: a Conflict, nothing written.
    let stale = router.current().await.unwrap();
    let mut edited = after.clone();
    edited["spec"]["http"][1]["route"][0]["weight"] = json!(50);
    edited["spec"]["http"][1]["route"][1]["weight"] = json!(50);
    cluster.replace(edited).unwrap();
    let err = router
        .apply(
            &TrafficSplit::all_to("stable", &["canary"]).unwrap(),
            &stale.version,
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict, "{err}");
    assert_eq!(weights(&cluster), [json!(50), json!(50)]);

    // restore() puts back the split before the router's first write.
    assert_eq!(
        router.restore().await.unwrap(),
        TrafficSplit::all_to("stable", &["canary"]).unwrap()
    );
    assert_eq!(weights(&cluster), [json!(100), json!(0)]);
}

#[tokio::test(start_paused = true)]
async fn splits_the_route_or_the_mesh_cannot_serve_are_refused_and_nothing_is_written() {
    let cluster = canary_cluster().await;
    // The route must be named when there are several.
    let unnamed = IstioRouter::builder(cluster.client(), "default", ISTIO_ROUTE)
        .subset("stable")
        .subset("canary")
        .build()
        .unwrap();
    let err = unnamed.current().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(err.to_string().contains("canary-header, primary"), "{err}");
    let missing = IstioRouter::builder(cluster.client(), "default", ISTIO_ROUTE)
        .route("main")
        .subset("stable")
        .subset("canary")
        .build()
        .unwrap();
    let err = missing.current().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert!(
        err.to_string().contains("HTTP route \"main\" is not in it"),
        "{err}"
    );

    // A backend the route has no destination for.
    let preview = IstioRouter::builder(cluster.client(), "default", ISTIO_ROUTE)
        .route("primary")
        .subset("stable")
        .subset("canary")
        .subset("preview")
        .build()
        .unwrap();
    let split = TrafficSplit::new([("stable", 80), ("canary", 0), ("preview", 20)]).unwrap();
    let err = preview.switch(&split).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unsupported, "{err}");
    assert!(
        err.to_string()
            .contains("no destination for backend preview"),
        "{err}"
    );
    assert_eq!(weights(&cluster), [json!(100), json!(0)]);

    // A subset no DestinationRule defines.
    let mut dr = cluster
        .get(
            "networking.istio.io/v1",
            "DestinationRule",
            "default",
            ISTIO_ROUTE,
        )
        .unwrap();
    dr["spec"]["subsets"] = json!([{"name": "stable", "labels": {"track": "stable"}}]);
    cluster.replace(dr).unwrap();
    let router = router(&cluster);
    let err = router
        .switch(&TrafficSplit::two_way("stable", "canary", 10).unwrap())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    assert!(err.to_string().contains("subset \"canary\""), "{err}");
    assert_eq!(weights(&cluster), [json!(100), json!(0)]);

    // A subset whose pods are not ready.
    let mut dr = cluster
        .get(
            "networking.istio.io/v1",
            "DestinationRule",
            "default",
            ISTIO_ROUTE,
        )
        .unwrap();
    dr["spec"]["subsets"] = json!([{"name": "stable", "labels": {"track": "stable"}},
        {"name": "canary", "labels": {"track": "canary"}}]);
    cluster.replace(dr).unwrap();
    KubeDeployment::new(cluster.client(), "default", ISTIO_CANARY)
        .scale(0)
        .await
        .unwrap();
    // On the paused clock: the canary's pods terminate within a minute.
    for _ in 0..60 {
        if router.check_ready("canary").await.is_err() {
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let err = router
        .switch(&TrafficSplit::two_way("stable", "canary", 10).unwrap())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Refused, "{err}");
    assert!(err.to_string().contains("no ready pods match"), "{err}");
    assert_eq!(weights(&cluster), [json!(100), json!(0)]);
}

#[tokio::test(start_paused = true)]
async fn verify_waits_for_the_mesh_and_the_data_plane_follows_the_weights() {
    let cluster = canary_cluster().await;
    let router = router(&cluster);
    let half = TrafficSplit::two_way("stable", "canary", 50).unwrap();
    router.switch(&half).await.unwrap();
    // Written, not yet applied by the mesh.
    let verdict = router.verify(&half).await.unwrap();
    assert!(
        matches!(verdict, Verification::Unknown(ref why) if why.contains("not yet")),
        "{verdict:?}"
    );
    let other = TrafficSplit::two_way("stable", "canary", 10).unwrap();
    assert_eq!(
        router.verify(&other).await.unwrap(),
        Verification::Differs(half.clone())
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(router.verify(&half).await.unwrap(), Verification::Matches);

    // A minute of traffic: half of it reaches the canary's pods.
    tokio::time::sleep(Duration::from_secs(60)).await;
    let seconds = cluster.traffic_window("default", "myapp-service", Duration::from_secs(60));
    let (mut canary, mut total) = (0, 0);
    for second in &seconds {
        total += second.requests;
        canary += second
            .versions
            .iter()
            .filter(|v| v.image == "app:v2.4.0")
            .map(|v| v.requests)
            .sum::<u64>();
    }
    let share = canary as f64 / total as f64;
    assert!(
        (0.45..0.55).contains(&share),
        "canary served {canary} of {total}"
    );

    // And none of it before the weights moved: with everything on stable, the canary serves
    // nothing.
    router
        .switch(&TrafficSplit::all_to("stable", &["canary"]).unwrap())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(62)).await;
    let last = cluster.traffic_window("default", "myapp-service", Duration::from_secs(60));
    assert!(
        last.iter()
            .flat_map(|s| &s.versions)
            .all(|v| v.image != "app:v2.4.0"),
        "the canary still served after all traffic went to stable"
    );
}

#[tokio::test]
async fn bad_settings_are_refused_at_build_with_what_is_wrong() {
    let client = FakeCluster::new().client();
    let cases = [
        (
            IstioRouter::builder(client.clone(), "default", "My_VS")
                .subset("a")
                .subset("b"),
            "virtual service",
        ),
        (
            IstioRouter::builder(client.clone(), "default", "vs").subset("a"),
            "two or more backends",
        ),
        (
            IstioRouter::builder(client.clone(), "default", "vs")
                .subset("a")
                .backend("b", DestinationMatch::subset("a")),
            "are both subset a",
        ),
    ];
    for (builder, expected) in cases {
        let err = builder.build().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        assert!(err.to_string().contains(expected), "{err}");
    }
}

#[test]
fn the_role_grants_what_the_router_uses_and_nothing_else() {
    let yaml = rbac::role_yaml("prod", "deployguard-istio");
    assert!(
        yaml.contains("resources: [\"virtualservices\"]\n  verbs: [\"get\", \"patch\"]"),
        "{yaml}"
    );
    assert!(!yaml.contains("update") && !yaml.contains("delete") && !yaml.contains("create"));
}
