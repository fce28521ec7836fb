//! Where a Service's requests go, as kube-proxy and a mesh's sidecars would send them: to the
//! ready endpoints of the Service, split by the mesh's applied route when a VirtualService
//! routes it. The simulation of requests themselves is not the server's: an [`Extension`]
//! (the testkit's traffic) asks [`FakeCluster::routes`] and serves them.
//!
//! [`Extension`]: crate::Extension
//! [`FakeCluster::routes`]: crate::FakeCluster::routes

use serde_json::Value;

use crate::pointer::Pointer;
use crate::selectors::{FieldSelector, LabelSelector};
use crate::{Shared, gateway, lock, mesh};

/// A ready endpoint of a Service: its pod, the pod's (first container's) image and its
/// pod-template-hash label.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// The pod's name.
    pub pod: String,
    /// The image of the pod's first container.
    pub image: String,
    /// The pod's `pod-template-hash` label (empty without one).
    pub hash: String,
    /// The pod is being deleted and its process has stopped, but the proxies still send it
    /// requests (they learn of the deletion [`FakeCluster::set_proxy_lag`] after it): each
    /// such request fails, as a connection refused does.
    ///
    /// [`FakeCluster::set_proxy_lag`]: crate::FakeCluster::set_proxy_lag
    pub stopped: bool,
}

/// A share of a Service's requests and the ready endpoints that serve it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// The share, relative to the other routes' weights.
    pub weight: u64,
    /// The ready endpoints; none means the share's requests fail, as a proxy with no healthy
    /// upstream fails them.
    pub endpoints: Vec<Endpoint>,
}

/// Where Service `namespace/service`'s requests go: by the mesh's applied route when a
/// VirtualService routes it (each destination's share and the ready endpoints of its Service
/// whose pods carry its subset's labels), else all of them to its own ready endpoints.
pub(crate) fn routes(shared: &Shared, namespace: &str, service: &str) -> Vec<Route> {
    if let Some(routes) = gateway_routes(shared, namespace, service) {
        return routes;
    }
    let applied = lock(&shared.mesh).applied_in(namespace);
    let Some(destinations) = mesh::destinations(&applied, namespace, service) else {
        return vec![Route {
            weight: 1,
            endpoints: ready_endpoints(shared, namespace, service, None),
        }];
    };
    let rules = destination_rules(shared, namespace);
    destinations
        .into_iter()
        .map(|d| {
            let endpoints = match &d.subset {
                None => ready_endpoints(shared, namespace, &d.service, None),
                Some(subset) => match mesh::subset_labels(&rules, namespace, &d.service, subset) {
                    // A subset no DestinationRule defines has no endpoints: its requests fail.
                    None => Vec::new(),
                    Some(labels) => ready_endpoints(shared, namespace, &d.service, Some(&labels)),
                },
            };
            Route {
                weight: d.weight,
                endpoints,
            }
        })
        .collect()
}

/// Requests to Gateway `namespace/name` (when the Gateway API is installed and there is one):
/// split by the applied HTTPRoute attached to it over its backend Services' ready endpoints;
/// with no route, one share with no endpoints (the gateway answers 404: every request fails).
fn gateway_routes(shared: &Shared, namespace: &str, name: &str) -> Option<Vec<Route>> {
    let applied = {
        let gateways = lock(&shared.gateways);
        if !gateways.installed() {
            return None;
        }
        gateways.applied_in(namespace)
    };
    let types = lock(&shared.types).clone();
    let rt = types
        .iter()
        .find(|t| t.group == gateway::GATEWAY_GROUP && t.kind == "Gateway")?;
    lock(&shared.store).get(rt, namespace, name).ok()?;
    let backends = gateway::backends(&applied, namespace, name);
    if backends.is_empty() {
        return Some(vec![Route {
            weight: 1,
            endpoints: Vec::new(),
        }]);
    }
    Some(
        backends
            .into_iter()
            .map(|b| Route {
                weight: b.weight,
                endpoints: ready_endpoints(shared, namespace, &b.service, None),
            })
            .collect(),
    )
}

fn destination_rules(shared: &Shared, namespace: &str) -> Vec<Value> {
    let types = lock(&shared.types).clone();
    let Some(rt) = types
        .iter()
        .find(|t| t.group == mesh::ISTIO_GROUP && t.kind == "DestinationRule")
    else {
        return Vec::new();
    };
    lock(&shared.store).list(
        rt,
        Some(namespace),
        &LabelSelector::default(),
        &FieldSelector::default(),
    )
}

/// The ready endpoints of Service `namespace/service` whose pods carry `labels` (all of them
/// without).
fn ready_endpoints(
    shared: &Shared,
    namespace: &str,
    service: &str,
    labels: Option<&serde_json::Map<String, Value>>,
) -> Vec<Endpoint> {
    let store = lock(&shared.store);
    let types = lock(&shared.types).clone();
    let (Some(endpoints_rt), Some(pods_rt)) = (
        types
            .iter()
            .find(|t| t.group.is_empty() && t.kind == "Endpoints"),
        types.iter().find(|t| t.group.is_empty() && t.kind == "Pod"),
    ) else {
        return Vec::new();
    };
    let Ok(endpoints) = store.get(endpoints_rt, namespace, service) else {
        return Vec::new();
    };
    let lag = *lock(&shared.proxy_lag);
    let now = store.clock.now();
    let mut ready = Vec::new();
    for subset in endpoints
        .get("subsets")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        // Terminating pods leave the addresses at once; the proxies stop sending to them only
        // `lag` later.
        let lagging = subset
            .get("notReadyAddresses")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter(|_| !lag.is_zero());
        for (address, terminating) in subset
            .get("addresses")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|a| (a, false))
            .chain(lagging.map(|a| (a, true)))
        {
            let pod_name = address
                .at("/targetRef/name")
                .and_then(Value::as_str)
                .unwrap_or("");
            let Some(pod) = store.get_shared(pods_rt, namespace, pod_name) else {
                continue;
            };
            let carries = |labels: &serde_json::Map<String, Value>| {
                labels
                    .iter()
                    .all(|(k, v)| pod.at("/metadata/labels").and_then(|l| l.get(k)) == Some(v))
            };
            if labels.is_some_and(|labels| !carries(labels)) {
                continue;
            }
            let mut stopped = false;
            if terminating {
                let Some(marked) = crate::controllers::deletion_marked(&pod) else {
                    continue;
                };
                if now >= marked + lag {
                    continue;
                }
                stopped = now >= marked + crate::controllers::pre_stop(&pod);
            }
            let text = |pointer: &str| {
                pod.at(pointer)
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_owned()
            };
            ready.push(Endpoint {
                pod: pod_name.to_owned(),
                image: text("/spec/containers/0/image"),
                hash: text("/metadata/labels/pod-template-hash"),
                stopped,
            });
        }
    }
    ready
}
