//! An Istio-like service mesh: the `networking.istio.io` CRDs as Istio installs them, a control
//! plane that applies each VirtualService a moment after it is written (and says so in its
//! status, as istiod does with status reporting on), and the routing the traffic simulation
//! follows: a Service's requests split by the applied route's weights over its destinations,
//! each destination's pods picked by the DestinationRule subset's labels.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use serde_json::{Value, json};

use crate::controllers::util::{Ctx, i, name, namespace, s};

/// The API group of Istio's networking resources.
pub const ISTIO_GROUP: &str = "networking.istio.io";

/// How the simulated mesh behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct MeshConfig {
    /// How long after a VirtualService is written its route takes effect (Envoy receives its
    /// configuration a moment after istiod sees the write).
    pub propagation: Duration,
    /// Whether the control plane reports what it applied in each VirtualService's status
    /// (`observedGeneration` and a `Reconciled` condition), as istiod does when its status
    /// reporting is enabled.
    pub report_status: bool,
}

impl Default for MeshConfig {
    /// One second of propagation, status reported.
    fn default() -> Self {
        Self {
            propagation: Duration::from_secs(1),
            report_status: true,
        }
    }
}

impl MeshConfig {
    /// The same mesh with another propagation delay.
    pub fn with_propagation(self, propagation: Duration) -> Self {
        Self {
            propagation,
            ..self
        }
    }

    /// The same mesh without status reporting (istiod's default before it is switched on).
    pub fn without_status(self) -> Self {
        Self {
            report_status: false,
            ..self
        }
    }
}

/// One CRD as Istio's chart installs it: served in v1alpha3, v1beta1 and v1, stored as v1, with a
/// status subresource and its printer columns.
fn crd(kind: &str, plural: &str, short: &str, columns: Value) -> Value {
    let version = |name: &str, storage: bool| {
        json!({
            "name": name, "served": true, "storage": storage,
            "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true,
                "properties": {"spec": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                    "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}},
            "subresources": {"status": {}},
            "additionalPrinterColumns": columns,
        })
    };
    json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": format!("{plural}.{ISTIO_GROUP}"),
            "labels": {"app": "istio-pilot", "chart": "istio", "heritage": "Tiller", "release": "istio"},
            "annotations": {"helm.sh/resource-policy": "keep"}},
        "spec": {
            "group": ISTIO_GROUP,
            "names": {"kind": kind, "listKind": format!("{kind}List"), "plural": plural,
                "singular": kind.to_lowercase(), "shortNames": [short], "categories": ["istio-io", "networking-istio-io"]},
            "scope": "Namespaced",
            "versions": [version("v1", true), version("v1alpha3", false), version("v1beta1", false)],
        }
    })
}

/// The VirtualService and DestinationRule CRDs, as Istio installs them.
pub fn istio_crds() -> Vec<Value> {
    let age = json!({"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp",
        "description": "CreationTimestamp is a timestamp representing the server time when this object was created."});
    vec![
        crd(
            "VirtualService",
            "virtualservices",
            "vs",
            json!([
                {"name": "Gateways", "type": "string", "jsonPath": ".spec.gateways", "description": "The names of gateways and sidecars that should apply these routes"},
                {"name": "Hosts", "type": "string", "jsonPath": ".spec.hosts", "description": "The destination hosts to which traffic is being sent"},
                age,
            ]),
        ),
        crd(
            "DestinationRule",
            "destinationrules",
            "dr",
            json!([
                {"name": "Host", "type": "string", "jsonPath": ".spec.host", "description": "The name of a service from the service registry"},
                age,
            ]),
        ),
    ]
}

/// What a control plane has applied of one route object (a VirtualService, an HTTPRoute), and
/// what it is applying.
#[derive(Debug, Clone, Default)]
pub(crate) struct RouteState {
    /// The generation and spec the data plane routes by.
    pub(crate) applied: Option<(i64, Value)>,
    /// A newer generation on its way: its spec and when it was seen.
    pending: Option<(i64, Value, SystemTime)>,
}

impl RouteState {
    /// Sees `object` at `now`: a new generation starts on its way, and one seen `delay` ago is
    /// applied. Returns when to look again, while one is on its way.
    pub(crate) fn advance(
        &mut self,
        object: &Value,
        now: SystemTime,
        delay: Duration,
    ) -> Option<SystemTime> {
        let generation = i(object, "/metadata/generation");
        if self.applied.as_ref().is_some_and(|(g, _)| *g == generation) {
            return None;
        }
        if self
            .pending
            .as_ref()
            .is_none_or(|(g, _, _)| *g != generation)
        {
            let spec = object.get("spec").cloned().unwrap_or(Value::Null);
            self.pending = Some((generation, spec, now));
        }
        let (g, spec, seen) = self.pending.clone()?;
        let due = seen + delay;
        if now >= due {
            self.applied = Some((g, spec));
            self.pending = None;
            None
        } else {
            Some(due)
        }
    }
}

/// The mesh's control plane state.
#[derive(Debug, Default)]
pub(crate) struct Mesh {
    config: Option<MeshConfig>,
    routes: BTreeMap<(String, String), RouteState>,
}

impl Mesh {
    pub(crate) fn install(&mut self, config: MeshConfig) {
        self.config = Some(config);
    }

    /// The applied specs of the VirtualServices in `ns`.
    pub(crate) fn applied_in(&self, ns: &str) -> Vec<Value> {
        self.routes
            .iter()
            .filter(|((route_ns, _), _)| route_ns == ns)
            .filter_map(|(_, state)| state.applied.as_ref().map(|(_, spec)| spec.clone()))
            .collect()
    }
}

/// Applies each VirtualService's newest generation once its propagation delay has passed, and
/// reports it in the status.
pub(crate) fn reconcile(ctx: &mut Ctx<'_>, mesh: &mut Mesh) {
    let Some(config) = mesh.config else { return };
    let services = ctx.all(ISTIO_GROUP, "VirtualService");
    let present: Vec<(String, String)> = services
        .iter()
        .map(|vs| (namespace(vs), name(vs)))
        .collect();
    mesh.routes.retain(|key, _| present.contains(key));
    for vs in services {
        let key = (namespace(&vs), name(&vs));
        let now = ctx.now();
        let state = mesh.routes.entry(key).or_default();
        if let Some(due) = state.advance(&vs, now, config.propagation) {
            ctx.wake_at(due);
        }
        let Some((applied, _)) = state.applied.as_ref() else {
            continue;
        };
        let applied = *applied;
        if config.report_status && i(&vs, "/status/observedGeneration") != applied {
            let mut updated = vs.clone();
            let at = ctx.now_text();
            updated["status"] = json!({
                "observedGeneration": applied,
                "conditions": [{"type": "Reconciled", "status": "True", "lastProbeTime": at,
                    "lastTransitionTime": at, "message": "The configuration has been applied by every proxy"}],
            });
            let _ = ctx.update_status(ISTIO_GROUP, "VirtualService", updated);
        }
    }
}

/// Whether `host` (as a VirtualService or destination in namespace `ns` names it) is Service
/// `service` of `ns`.
pub(crate) fn names_service(host: &str, ns: &str, service: &str) -> bool {
    host == service
        || host == format!("{service}.{ns}")
        || host == format!("{service}.{ns}.svc")
        || host == format!("{service}.{ns}.svc.cluster.local")
}

/// One weighted destination of an applied route.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Destination {
    /// The Service it sends to.
    pub(crate) service: String,
    /// The subset, if any.
    pub(crate) subset: Option<String>,
    /// Its weight (relative).
    pub(crate) weight: u64,
}

/// The destinations Service `service`'s requests go to, by the first applied route of a
/// VirtualService for it that matches every request; `None` when no VirtualService routes it
/// (requests spread over its endpoints as before).
pub(crate) fn destinations(applied: &[Value], ns: &str, service: &str) -> Option<Vec<Destination>> {
    let spec = applied.iter().find(|spec| {
        spec.get("hosts")
            .and_then(Value::as_array)
            .is_some_and(|hosts| {
                hosts
                    .iter()
                    .any(|h| h.as_str().is_some_and(|h| names_service(h, ns, service)))
            })
    })?;
    let route = spec
        .get("http")
        .and_then(Value::as_array)?
        .iter()
        .find(|r| {
            r.get("match")
                .and_then(Value::as_array)
                .is_none_or(Vec::is_empty)
        })?;
    let targets = route.get("route").and_then(Value::as_array)?;
    let single = targets.len() == 1;
    Some(
        targets
            .iter()
            .map(|t| {
                let host = s(t, "/destination/host");
                let service = host.split('.').next().unwrap_or(host).to_owned();
                let weight = t
                    .get("weight")
                    .and_then(Value::as_u64)
                    .unwrap_or(if single { 100 } else { 0 });
                Destination {
                    service,
                    subset: t
                        .pointer("/destination/subset")
                        .and_then(Value::as_str)
                        .map(str::to_owned),
                    weight,
                }
            })
            .collect(),
    )
}

/// The labels of subset `subset` of the DestinationRules in `rules` for Service `service`.
pub(crate) fn subset_labels(
    rules: &[Value],
    ns: &str,
    service: &str,
    subset: &str,
) -> Option<serde_json::Map<String, Value>> {
    rules
        .iter()
        .filter(|dr| names_service(s(dr, "/spec/host"), ns, service))
        .flat_map(|dr| {
            dr.pointer("/spec/subsets")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default()
        })
        .find(|sub| s(sub, "/name") == subset)
        .map(|sub| {
            sub.get("labels")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default()
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_catch_all_route_decides_and_a_lone_destination_takes_everything() {
        let spec = json!({"hosts": ["app.default.svc.cluster.local"], "http": [
            {"name": "canary-header", "match": [{"headers": {"x-canary": {"exact": "true"}}}],
             "route": [{"destination": {"host": "app", "subset": "canary"}}]},
            {"name": "primary", "route": [
                {"destination": {"host": "app", "subset": "stable"}, "weight": 90},
                {"destination": {"host": "app.default.svc.cluster.local", "subset": "canary"}, "weight": 10}]}]});
        let routes = destinations(&[spec], "default", "app").unwrap();
        assert_eq!(
            routes
                .iter()
                .map(|d| (d.service.as_str(), d.subset.as_deref(), d.weight))
                .collect::<Vec<_>>(),
            [("app", Some("stable"), 90), ("app", Some("canary"), 10)]
        );
        let lone =
            json!({"hosts": ["app"], "http": [{"route": [{"destination": {"host": "app"}}]}]});
        assert_eq!(
            destinations(&[lone], "default", "app").unwrap()[0].weight,
            100
        );
        assert!(destinations(&[], "default", "app").is_none());
    }
}
