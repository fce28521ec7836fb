//! kubectl 1.27 and 1.33 see the simulated mesh's Istio resources as on a cluster with Istio:
//! `get` (printer columns, both API versions, short names), `describe`, a merge patch of the
//! weights, and the router reading what kubectl wrote.

use std::time::Duration;

use deployguard_core::{TrafficRouter, TrafficSplit};
use deployguard_istio::IstioRouter;
use deployguard_testkit::cluster::FakeCluster;
use deployguard_testkit::cluster::kubectl::Kubectl;
use deployguard_testkit::cluster::scenarios::{self, ISTIO_ROUTE};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_gets_describes_and_patches_the_virtual_service() {
    let cluster = FakeCluster::builder()
        .controllers(true)
        .time_scale(20.0)
        .build();
    scenarios::load(&cluster, "istio-canary-healthy")
        .await
        .unwrap();
    let served = cluster.serve().await.unwrap();
    for minor in [27, 33] {
        let kubectl = Kubectl::version(minor, &served).unwrap();
        let table = kubectl.ok(&["get", "virtualservices"]).await;
        let header: Vec<&str> = table.lines().next().unwrap().split_whitespace().collect();
        assert_eq!(
            header,
            ["NAME", "GATEWAYS", "HOSTS", "AGE"],
            "kubectl 1.{minor}: {table}"
        );
        assert!(
            table.contains("[\"myapp-service\"]"),
            "kubectl 1.{minor}: {table}"
        );
        let short = kubectl.ok(&["get", "vs", ISTIO_ROUTE, "-o", "name"]).await;
        assert_eq!(short.trim(), "virtualservice.networking.istio.io/myapp");
        let older = kubectl
            .ok(&[
                "get",
                "virtualservices.v1beta1.networking.istio.io",
                ISTIO_ROUTE,
                "-o",
                "jsonpath={.apiVersion}",
            ])
            .await;
        assert_eq!(older, "networking.istio.io/v1beta1");
        let rules = kubectl.ok(&["get", "dr"]).await;
        assert!(rules.lines().next().unwrap().contains("HOST"), "{rules}");
        let described = kubectl
            .ok(&["describe", "virtualservice", ISTIO_ROUTE])
            .await;
        for expected in [
            "Name:         myapp",
            "API Version:  networking.istio.io/v1",
            "Kind:         VirtualService",
            "Subset:  stable",
        ] {
            assert!(
                described.contains(expected),
                "kubectl 1.{minor} describe lacks {expected:?}:\n{described}"
            );
        }
        let crds = kubectl.ok(&["get", "crd"]).await;
        assert!(
            crds.contains("virtualservices.networking.istio.io"),
            "{crds}"
        );

        // An edit-style patch (what `kubectl edit` sends for a custom resource: a merge patch).
        let weight = if minor == 27 { 20 } else { 40 };
        let patch = format!(
            r#"{{"spec":{{"http":[{{"name":"canary-header","match":[{{"headers":{{"x-canary":{{"exact":"true"}}}}}}],"route":[{{"destination":{{"host":"myapp-service","subset":"canary"}}}}]}},{{"name":"primary","route":[{{"destination":{{"host":"myapp-service","subset":"stable"}},"weight":{}}},{{"destination":{{"host":"myapp-service","subset":"canary"}},"weight":{weight}}}]}}]}}}}"#,
            100 - weight
        );
        kubectl
            .ok(&[
                "patch",
                "virtualservice",
                ISTIO_ROUTE,
                "--type",
                "merge",
                "-p",
                &patch,
            ])
            .await;
        let router =
            IstioRouter::builder(served.kube_client().await.unwrap(), "default", ISTIO_ROUTE)
                .route("primary")
                .subset("stable")
                .subset("canary")
                .build()
                .unwrap();
        assert_eq!(
            router.current().await.unwrap().split,
            TrafficSplit::two_way("stable", "canary", weight).unwrap(),
            "kubectl 1.{minor}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
