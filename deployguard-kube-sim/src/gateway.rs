//! A Kubernetes Gateway API implementation: the `gateway.networking.k8s.io` CRDs as the
//! project publishes them (standard channel v1.6.1, the `v1` version: GatewayClass, Gateway,
//! HTTPRoute, with their real schemas, so the server checks and defaults what a real one
//! does), and a gateway controller that accepts its class's Gateways, applies each HTTPRoute
//! attached to them a moment after it is written, and reports it in the route's status per
//! parent (`Accepted`, `ResolvedRefs`, each with the generation it describes), as
//! Envoy Gateway, Cilium or NGINX Gateway Fabric do.
//!
//! Requests sent to a Gateway (the traffic simulation's target is then the Gateway's name) are
//! routed by the applied HTTPRoutes attached to it: the first rule that matches every request
//! (no matches, or a `/` path prefix only) splits them over its `backendRefs` by weight, each
//! backend the ready endpoints of its Service. A backend Service that does not exist has no
//! endpoints: its share fails, as a gateway answers 500 for it.
//!
//! Not simulated: listeners' hostnames and TLS, other route kinds, ReferenceGrants
//! (a backend in another namespace is `RefNotPermitted`), filters, header matches.

use std::collections::BTreeMap;
use std::sync::OnceLock;
use std::time::Duration;

use serde_json::{Value, json};

use crate::controllers::util::{Ctx, i, name, namespace, s};
use crate::mesh::RouteState;

/// The API group of the Gateway API.
pub const GATEWAY_GROUP: &str = "gateway.networking.k8s.io";

/// The controller name of the simulated gateway (a GatewayClass's `spec.controllerName`).
pub const CONTROLLER_NAME: &str = "sim.deployguard.dev/gateway-controller";

/// How the simulated gateway behaves.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct GatewayConfig {
    /// How long after an HTTPRoute is written its rules take effect.
    pub propagation: Duration,
    /// The GatewayClass created for the controller.
    pub class: String,
}

impl Default for GatewayConfig {
    /// One second of propagation, class `sim`.
    fn default() -> Self {
        Self {
            propagation: Duration::from_secs(1),
            class: "sim".into(),
        }
    }
}

impl GatewayConfig {
    /// The same gateway with another propagation delay.
    pub fn with_propagation(self, propagation: Duration) -> Self {
        Self {
            propagation,
            ..self
        }
    }
}

/// The GatewayClass, Gateway and HTTPRoute CRDs of the Gateway API's standard channel
/// (v1.6.1), their `v1` version only.
pub fn gateway_api_crds() -> Vec<Value> {
    static CRDS: OnceLock<Vec<Value>> = OnceLock::new();
    CRDS.get_or_init(|| {
        serde_json::from_str(include_str!("../crds/gateway-api-v1.6.1-standard-v1.json"))
            .unwrap_or_default()
    })
    .clone()
}

/// The gateway controller's state.
#[derive(Debug, Default)]
pub(crate) struct Gateways {
    config: Option<GatewayConfig>,
    routes: BTreeMap<(String, String), RouteState>,
}

impl Gateways {
    pub(crate) fn install(&mut self, config: GatewayConfig) {
        self.config = Some(config);
    }

    /// The applied specs of the HTTPRoutes in `ns`, by route name.
    pub(crate) fn applied_in(&self, ns: &str) -> Vec<(String, Value)> {
        self.routes
            .iter()
            .filter(|((route_ns, _), _)| route_ns == ns)
            .filter_map(|((_, route), state)| {
                state
                    .applied
                    .as_ref()
                    .map(|(_, spec)| (route.clone(), spec.clone()))
            })
            .collect()
    }

    pub(crate) fn installed(&self) -> bool {
        self.config.is_some()
    }
}

/// A condition as the Gateway API's status schema wants it.
fn condition(
    kind: &str,
    ok: bool,
    reason: &str,
    message: &str,
    generation: i64,
    at: &str,
) -> Value {
    json!({"type": kind, "status": if ok { "True" } else { "False" }, "reason": reason,
        "message": message, "observedGeneration": generation, "lastTransitionTime": at})
}

/// Accepts the class's GatewayClasses and Gateways, applies each attached HTTPRoute's newest
/// generation once its propagation delay has passed, and reports it in the route's status.
pub(crate) fn reconcile(ctx: &mut Ctx<'_>, gateways: &mut Gateways) {
    let Some(config) = gateways.config.clone() else {
        return;
    };
    let at = ctx.now_text();
    let ours: Vec<String> = ctx
        .all(GATEWAY_GROUP, "GatewayClass")
        .into_iter()
        .filter(|class| s(class, "/spec/controllerName") == CONTROLLER_NAME)
        .map(|class| {
            let generation = i(&class, "/metadata/generation");
            if i(&class, "/status/conditions/0/observedGeneration") != generation {
                let mut updated = class.clone();
                updated["status"] = json!({"conditions": [condition("Accepted", true, "Accepted",
                    "Handled by the simulated gateway controller", generation, &at)]});
                let _ = ctx.update_status(GATEWAY_GROUP, "GatewayClass", updated);
            }
            name(&class)
        })
        .collect();
    let routes = ctx.all(GATEWAY_GROUP, "HTTPRoute");
    let gateways_present: Vec<Value> = ctx
        .all(GATEWAY_GROUP, "Gateway")
        .into_iter()
        .filter(|gw| ours.iter().any(|c| c == s(gw, "/spec/gatewayClassName")))
        .collect();
    for (index, gateway) in gateways_present.iter().enumerate() {
        program_gateway(ctx, gateway, index, &routes, &at);
    }
    let present: Vec<(String, String)> = routes.iter().map(|r| (namespace(r), name(r))).collect();
    gateways.routes.retain(|key, _| present.contains(key));
    for route in routes {
        let ns = namespace(&route);
        let parents: Vec<Value> = parent_refs(&route)
            .into_iter()
            .filter(|parent| {
                let parent_ns = parent
                    .get("namespace")
                    .and_then(Value::as_str)
                    .unwrap_or(&ns);
                gateways_present
                    .iter()
                    .any(|gw| namespace(gw) == parent_ns && name(gw) == s(parent, "/name"))
            })
            .collect();
        if parents.is_empty() {
            gateways.routes.remove(&(ns, name(&route)));
            continue;
        }
        let now = ctx.now();
        let state = gateways
            .routes
            .entry((ns.clone(), name(&route)))
            .or_default();
        if let Some(due) = state.advance(&route, now, config.propagation) {
            ctx.wake_at(due);
        }
        let Some((applied, _)) = state.applied.clone() else {
            continue;
        };
        let (resolved, reason, message) = resolve_refs(ctx, &route);
        let status = json!({"parents": parents.iter().map(|parent| json!({
            "parentRef": parent,
            "controllerName": CONTROLLER_NAME,
            "conditions": [
                condition("Accepted", true, "Accepted", "Route is accepted", applied, &at),
                condition("ResolvedRefs", resolved, reason, &message, applied, &at),
            ],
        })).collect::<Vec<_>>()});
        if !route
            .get("status")
            .is_some_and(|old| same_but_times(old, &status))
        {
            let mut updated = route.clone();
            updated["status"] = status;
            let _ = ctx.update_status(GATEWAY_GROUP, "HTTPRoute", updated);
        }
    }
}

/// A Gateway of the class: accepted, programmed, an address, each listener's attached routes.
fn program_gateway(ctx: &mut Ctx<'_>, gateway: &Value, index: usize, routes: &[Value], at: &str) {
    let generation = i(gateway, "/metadata/generation");
    let ns = namespace(gateway);
    let attached = routes
        .iter()
        .filter(|route| {
            parent_refs(route).iter().any(|parent| {
                s(parent, "/name") == name(gateway)
                    && parent
                        .get("namespace")
                        .and_then(Value::as_str)
                        .unwrap_or(&namespace(route))
                        == ns
            })
        })
        .count();
    let listeners: Vec<Value> = gateway
        .pointer("/spec/listeners")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|listener| {
            json!({"name": s(listener, "/name"), "attachedRoutes": attached,
                "supportedKinds": [{"group": GATEWAY_GROUP, "kind": "HTTPRoute"}],
                "conditions": [
                    condition("Accepted", true, "Accepted", "Listener is accepted", generation, at),
                    condition("Programmed", true, "Programmed", "Listener is programmed", generation, at),
                    condition("ResolvedRefs", true, "ResolvedRefs", "Resolved all references", generation, at),
                ]})
        })
        .collect();
    let status = json!({
        "addresses": [{"type": "IPAddress", "value": format!("10.96.250.{}", 10 + index % 240)}],
        "conditions": [
            condition("Accepted", true, "Accepted", "Gateway is accepted", generation, at),
            condition("Programmed", true, "Programmed", "Gateway is programmed", generation, at),
        ],
        "listeners": listeners,
    });
    if !gateway
        .get("status")
        .is_some_and(|old| same_but_times(old, &status))
    {
        let mut updated = gateway.clone();
        updated["status"] = status;
        let _ = ctx.update_status(GATEWAY_GROUP, "Gateway", updated);
    }
}

/// Whether two statuses say the same, whenever their conditions last changed.
fn same_but_times(a: &Value, b: &Value) -> bool {
    let (mut a, mut b) = (a.clone(), b.clone());
    strip_times(&mut a);
    strip_times(&mut b);
    a == b
}

fn strip_times(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.remove("lastTransitionTime");
            map.values_mut().for_each(strip_times);
        }
        Value::Array(items) => items.iter_mut().for_each(strip_times),
        _ => {}
    }
}

/// The route's parentRefs that are Gateways.
fn parent_refs(route: &Value) -> Vec<Value> {
    route
        .pointer("/spec/parentRefs")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|parent| {
            parent
                .get("kind")
                .and_then(Value::as_str)
                .unwrap_or("Gateway")
                == "Gateway"
                && parent
                    .get("group")
                    .and_then(Value::as_str)
                    .unwrap_or(GATEWAY_GROUP)
                    == GATEWAY_GROUP
        })
        .cloned()
        .collect()
}

/// Whether every backendRef of the route names a Service there is (`ResolvedRefs`).
fn resolve_refs(ctx: &Ctx<'_>, route: &Value) -> (bool, &'static str, String) {
    let ns = namespace(route);
    for backend in backend_refs(route) {
        let kind = backend
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or("Service");
        let group = backend.get("group").and_then(Value::as_str).unwrap_or("");
        if kind != "Service" || !group.is_empty() {
            return (
                false,
                "InvalidKind",
                format!("backendRef kind {kind:?} of group {group:?} is not supported"),
            );
        }
        if backend
            .get("namespace")
            .and_then(Value::as_str)
            .is_some_and(|other| other != ns)
        {
            return (
                false,
                "RefNotPermitted",
                format!(
                    "backendRef {} is in another namespace, and no ReferenceGrant allows it",
                    s(&backend, "/name")
                ),
            );
        }
        if ctx.get("", "Service", &ns, s(&backend, "/name")).is_none() {
            return (
                false,
                "BackendNotFound",
                format!("Service {ns}/{} not found", s(&backend, "/name")),
            );
        }
    }
    (
        true,
        "ResolvedRefs",
        "Resolved all the Object references for the Route".into(),
    )
}

fn backend_refs(route: &Value) -> Vec<Value> {
    route
        .pointer("/spec/rules")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .flat_map(|rule| {
            rule.get("backendRefs")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default()
        })
        .collect()
}

/// One weighted backend of an applied rule: a Service and its relative weight.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Backend {
    pub(crate) service: String,
    pub(crate) weight: u64,
}

/// Whether a rule matches every request: no matches, or only a `/` path prefix.
fn catches_all(rule: &Value) -> bool {
    rule.get("matches")
        .and_then(Value::as_array)
        .is_none_or(|matches| {
            matches.is_empty()
                || matches.iter().any(|m| {
                    m.as_object().is_some_and(|m| m.keys().all(|k| k == "path"))
                        && m.pointer("/path/type")
                            .and_then(Value::as_str)
                            .unwrap_or("PathPrefix")
                            == "PathPrefix"
                        && m.pointer("/path/value")
                            .and_then(Value::as_str)
                            .unwrap_or("/")
                            == "/"
                })
        })
}

/// The backends requests to Gateway `gateway` of `ns` go to: the first catch-all rule of the
/// first applied HTTPRoute (by name) attached to it. Empty when none routes it.
pub(crate) fn backends(applied: &[(String, Value)], ns: &str, gateway: &str) -> Vec<Backend> {
    let attached = applied.iter().find(|(_, spec)| {
        spec.get("parentRefs")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .any(|p| {
                s(p, "/name") == gateway
                    && p.get("namespace").and_then(Value::as_str).unwrap_or(ns) == ns
            })
    });
    let Some((_, spec)) = attached else {
        return Vec::new();
    };
    let Some(rule) = spec
        .get("rules")
        .and_then(Value::as_array)
        .and_then(|rules| rules.iter().find(|r| catches_all(r)))
    else {
        return Vec::new();
    };
    rule.get("backendRefs")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|backend| Backend {
            service: s(backend, "/name").to_owned(),
            weight: backend.get("weight").and_then(Value::as_u64).unwrap_or(1),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_crds_are_the_projects_with_their_schemas() {
        let crds = gateway_api_crds();
        let kinds: Vec<&str> = crds.iter().map(|c| s(c, "/spec/names/kind")).collect();
        assert_eq!(kinds, ["GatewayClass", "Gateway", "HTTPRoute"]);
        let weight = crds[2].pointer(
            "/spec/versions/0/schema/openAPIV3Schema/properties/spec/properties/rules/items/properties/backendRefs/items/properties/weight",
        );
        assert_eq!(weight.and_then(|w| w.get("maximum")), Some(&json!(1000000)));
    }

    #[test]
    fn the_first_catch_all_rule_of_the_attached_route_splits_requests() {
        let spec = json!({"parentRefs": [{"name": "gw"}], "rules": [
            {"matches": [{"headers": [{"name": "x-canary", "value": "true"}]}],
             "backendRefs": [{"name": "app-canary", "port": 80}]},
            {"matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
             "backendRefs": [{"name": "app-stable", "port": 80, "weight": 90},
                             {"name": "app-canary", "port": 80, "weight": 10}]}]});
        let applied = vec![("app".to_owned(), spec)];
        assert_eq!(
            backends(&applied, "default", "gw"),
            [
                Backend {
                    service: "app-stable".into(),
                    weight: 90
                },
                Backend {
                    service: "app-canary".into(),
                    weight: 10
                }
            ]
        );
        assert!(backends(&applied, "default", "other").is_empty());
    }
}
