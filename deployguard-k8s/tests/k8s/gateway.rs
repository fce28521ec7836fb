//! The Gateway API router against the simulated cluster's gateway: conformance (in process
//! and over HTTP), conditional writes of the weights alone, refusals that write nothing,
//! verification through the route's status, the data plane following the weights, kubectl
//! 1.27 and 1.33 reading what it wrote, and the Role it needs.

use std::time::Duration;

use deployguard_core::{
    DeploymentBackend, DeploymentBackendExt, ErrorKind, TrafficRouter, TrafficRouterExt,
    TrafficSplit, Verification,
};
use deployguard_k8s::{GatewayRouter, KubeDeployment, rbac};
use deployguard_testkit::cluster::kubectl::Kubectl;
use deployguard_testkit::cluster::scenarios::{
    self, GATEWAY, GATEWAY_ROUTE, ISTIO_CANARY, ISTIO_STABLE,
};
use deployguard_testkit::cluster::{FakeCluster, SimulatedTraffic};
use deployguard_testkit::conformance;
use serde_json::{Value, json};

/// The healthy Gateway canary, both Deployments rolled out, all weight on `app-stable`.
async fn gateway_cluster(cluster: FakeCluster) -> FakeCluster {
    scenarios::load(&cluster, "gateway-canary-healthy")
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

fn router(client: kube::Client) -> GatewayRouter {
    GatewayRouter::builder(client, "default", GATEWAY_ROUTE)
        .rule_named("primary")
        .backend("stable", ISTIO_STABLE)
        .backend("canary", ISTIO_CANARY)
        .build()
        .unwrap()
}

fn route(cluster: &FakeCluster) -> Value {
    cluster
        .get(
            "gateway.networking.k8s.io/v1",
            "HTTPRoute",
            "default",
            GATEWAY_ROUTE,
        )
        .unwrap()
}

fn weights(cluster: &FakeCluster) -> Vec<Value> {
    route(cluster)["spec"]["rules"][0]["backendRefs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["weight"].clone())
        .collect()
}

#[tokio::test(start_paused = true)]
async fn the_router_conformance_suite_passes() {
    let cluster = gateway_cluster(FakeCluster::with_controllers()).await;
    conformance::router_suite(&router(cluster.client()))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_http_the_suite_passes_and_kubectl_reads_the_weights_written() {
    let cluster = FakeCluster::builder()
        .controllers(true)
        .time_scale(20.0)
        .build();
    let cluster = gateway_cluster(cluster).await;
    let served = cluster.serve().await.unwrap();
    let router = router(served.kube_client().await.unwrap());
    conformance::router_suite(&router).await.unwrap();
    for (minor, canary) in [(27, 20), (33, 40)] {
        let split = TrafficSplit::two_way("stable", "canary", canary).unwrap();
        router.switch(&split).await.unwrap();
        let kubectl = Kubectl::version(minor, &served).unwrap();
        let table = kubectl.ok(&["get", "httproutes"]).await;
        let header: Vec<&str> = table.lines().next().unwrap().split_whitespace().collect();
        assert_eq!(
            header,
            ["NAME", "HOSTNAMES", "AGE"],
            "kubectl 1.{minor}: {table}"
        );
        assert!(
            table.contains("[\"myapp.example.com\"]"),
            "kubectl 1.{minor}: {table}"
        );
        let shown = kubectl
            .ok(&[
                "get",
                "httproute",
                GATEWAY_ROUTE,
                "-o",
                "jsonpath={range .spec.rules[0].backendRefs[*]}{.name}={.weight} {end}",
            ])
            .await;
        assert_eq!(
            shown.trim(),
            format!("app-stable={} app-canary={canary}", 100 - canary),
            "kubectl 1.{minor}"
        );
        // The route's status says the gateway took it, as `describe` shows.
        let described = kubectl.ok(&["describe", "httproute", GATEWAY_ROUTE]).await;
        assert!(
            described.contains("Controller Name:         sim.deployguard.dev/gateway-controller")
                && described.contains("Type:                  ResolvedRefs"),
            "kubectl 1.{minor}: {described}"
        );
        let gateways = kubectl.ok(&["get", "gateways"]).await;
        assert!(
            gateways.contains("myapp-gateway") && gateways.contains("True"),
            "{gateways}"
        );
        // The server checks routes by the project's schema, as a real one does.
        let refused = kubectl
            .run(&[
                "patch",
                "httproute",
                GATEWAY_ROUTE,
                "--type=json",
                "-p",
                r#"[{"op": "replace", "path": "/spec/rules/0/backendRefs/0/weight", "value": -1}]"#,
            ])
            .await;
        assert_ne!(refused.code, 0, "kubectl 1.{minor}: {}", refused.stdout);
        assert!(
            refused
                .stderr
                .contains("spec.rules[0].backendRefs[0].weight: Invalid value: -1"),
            "kubectl 1.{minor}: {}",
            refused.stderr
        );
    }
}

#[tokio::test(start_paused = true)]
async fn a_weight_write_is_a_patch_of_the_weights_alone_conditional_on_the_version_read() {
    let cluster = gateway_cluster(FakeCluster::with_controllers()).await;
    let router = router(cluster.client());
    let before = route(&cluster);
    let routed = router.current().await.unwrap();
    assert_eq!(
        routed.split,
        TrafficSplit::all_to("stable", &["canary"]).unwrap()
    );
    cluster.clear_requests();
    let split = TrafficSplit::two_way("stable", "canary", 10).unwrap();
    router.apply(&split, &routed.version).await.unwrap();
    let patches: Vec<_> = cluster
        .requests()
        .into_iter()
        .filter(|r| r.method == "PATCH")
        .collect();
    assert_eq!(patches.len(), 1, "{patches:?}");
    assert_eq!(weights(&cluster), [json!(90), json!(10)]);
    let after = route(&cluster);
    assert_eq!(after["spec"]["hostnames"], before["spec"]["hostnames"]);
    assert_eq!(after["spec"]["parentRefs"], before["spec"]["parentRefs"]);

    // Someone edits the route between a read and a write: a Conflict, nothing written.
    let stale = router.current().await.unwrap().version;
    let mut edited = route(&cluster);
    edited["spec"]["rules"][0]["backendRefs"][0]["weight"] = json!(90);
    edited["spec"]["hostnames"] = json!(["myapp.example.com", "app.example.com"]);
    cluster.replace(edited).unwrap();
    let err = router
        .apply(
            &TrafficSplit::two_way("stable", "canary", 50).unwrap(),
            &stale,
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict, "{err}");
    assert_eq!(weights(&cluster), [json!(90), json!(10)]);

    // restore puts back what the route had before the router's first write.
    router.restore().await.unwrap();
    assert_eq!(weights(&cluster), [json!(100), json!(0)]);
}

#[tokio::test(start_paused = true)]
async fn splits_the_route_or_its_backends_cannot_serve_are_refused_and_nothing_is_written() {
    let cluster = gateway_cluster(FakeCluster::with_controllers()).await;
    let router = router(cluster.client());
    // A canary with no ready pods gets no weight.
    KubeDeployment::new(cluster.client(), "default", ISTIO_CANARY)
        .scale(0)
        .await
        .unwrap();
    KubeDeployment::new(cluster.client(), "default", ISTIO_CANARY)
        .wait_until_complete(Duration::from_secs(60), Duration::from_secs(1))
        .await
        .unwrap();
    let err = router
        .switch(&TrafficSplit::two_way("stable", "canary", 10).unwrap())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Refused, "{err}");
    assert_eq!(weights(&cluster), [json!(100), json!(0)]);

    // Weights that are no whole percentages, and weight on a backendRef the router does not
    // know, are read as what they are and refused.
    let mut edited = route(&cluster);
    edited["spec"]["rules"][0]["backendRefs"][0]["weight"] = json!(1);
    edited["spec"]["rules"][0]["backendRefs"][1]["weight"] = json!(2);
    cluster.replace(edited).unwrap();
    let err = router.current().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unsupported, "{err}");
    assert!(err.to_string().contains("not whole percentages"), "{err}");
    let mut edited = route(&cluster);
    edited["spec"]["rules"][0]["backendRefs"] = json!([
        {"name": ISTIO_STABLE, "port": 80, "weight": 1},
        {"name": ISTIO_CANARY, "port": 80, "weight": 1},
        {"name": "legacy", "port": 80, "weight": 2}]);
    cluster.replace(edited).unwrap();
    let err = router.current().await.unwrap_err();
    assert!(
        err.to_string()
            .contains("sends weight 2 to Service legacy:80 (backendRef 2)"),
        "{err}"
    );

    // A rule that is not there is named with the ones that are.
    let missing = GatewayRouter::builder(cluster.client(), "default", GATEWAY_ROUTE)
        .rule_named("canary")
        .backend("stable", ISTIO_STABLE)
        .backend("canary", ISTIO_CANARY)
        .build()
        .unwrap();
    let err = missing.current().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert!(
        err.to_string()
            .contains("rule \"canary\" is not in it (its rules: primary)"),
        "{err}"
    );
}

#[tokio::test(start_paused = true)]
async fn verify_waits_for_the_gateway_and_the_data_plane_follows_the_weights() {
    let cluster = gateway_cluster(FakeCluster::with_controllers()).await;
    let router = router(cluster.client());
    let half = TrafficSplit::two_way("stable", "canary", 50).unwrap();
    router.switch(&half).await.unwrap();
    let verdict = router.verify(&half).await.unwrap();
    assert!(
        matches!(verdict, Verification::Unknown(ref why) if why.contains("not yet")),
        "{verdict:?}"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(router.verify(&half).await.unwrap(), Verification::Matches);
    let status = route(&cluster)["status"]["parents"][0].clone();
    assert_eq!(status["parentRef"]["name"], GATEWAY);
    assert_eq!(status["conditions"][1]["type"], "ResolvedRefs");

    tokio::time::sleep(Duration::from_secs(60)).await;
    let seconds = cluster.traffic_window("default", GATEWAY, Duration::from_secs(60));
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

    // A backend whose Service is gone: the gateway says so, and verify does not pass.
    cluster
        .get("v1", "Service", "default", ISTIO_CANARY)
        .unwrap();
    let services: kube::Api<k8s_openapi::api::core::v1::Service> =
        kube::Api::namespaced(cluster.client(), "default");
    services
        .delete(ISTIO_CANARY, &Default::default())
        .await
        .unwrap();
    let mut edited = route(&cluster);
    edited["spec"]["hostnames"] = json!(["myapp.example.com", "www.myapp.example.com"]);
    cluster.replace(edited).unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let verdict = router.verify(&half).await.unwrap();
    assert!(
        matches!(verdict, Verification::Unknown(ref why) if why.contains("ResolvedRefs=False (BackendNotFound)")),
        "{verdict:?}"
    );
}

#[tokio::test]
async fn bad_settings_are_refused_at_build_with_what_is_wrong() {
    let client = || FakeCluster::new().client();
    let one = GatewayRouter::builder(client(), "default", "app")
        .backend("stable", "app-stable")
        .build()
        .unwrap_err();
    assert!(one.to_string().contains("two or more backends"), "{one}");
    let twice = GatewayRouter::builder(client(), "default", "app")
        .backend("stable", "app-stable")
        .backend("canary", "app-stable")
        .build()
        .unwrap_err();
    assert!(
        twice
            .to_string()
            .contains("backends \"stable\" and \"canary\" are both Service app-stable"),
        "{twice}"
    );
    let bad = GatewayRouter::builder(client(), "default", "Not_A_Route")
        .service("a")
        .service("b")
        .build()
        .unwrap_err();
    assert_eq!(bad.kind(), ErrorKind::InvalidInput, "{bad}");
}

/// What the router does in a canary, as a ServiceAccount bound to `rules`.
async fn router_jobs(rules: &[k8s_openapi::api::rbac::v1::PolicyRule]) -> Option<String> {
    let cluster = gateway_cluster(FakeCluster::with_controllers()).await;
    let client = super::rbac::as_service_account(&cluster, rules);
    let router = router(client);
    let ten = TrafficSplit::two_way("stable", "canary", 10).unwrap();
    if let Err(err) = router.apply_verified(&ten).await {
        return Some(err.to_string());
    }
    router.restore().await.err().map(|e| e.to_string())
}

#[tokio::test(start_paused = true)]
async fn the_gateway_role_suffices_and_every_rule_in_it_is_needed() {
    let all = rbac::gateway_rules();
    assert_eq!(router_jobs(&all).await, None, "with every rule");
    for (index, removed) in all.iter().enumerate() {
        let mut fewer = all.clone();
        fewer.remove(index);
        let resource = &removed.resources.as_ref().unwrap()[0];
        let failure = router_jobs(&fewer).await.unwrap_or_default();
        assert!(
            failure.contains("Forbidden (403)")
                && failure.contains(&format!("resource \"{resource}\"")),
            "without {resource}: {failure:?}"
        );
    }
}
